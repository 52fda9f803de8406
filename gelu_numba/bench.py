"""Side-by-side timings: gelu_numba next to PyTorch, JAX and NumPy+SciPy.

    python -m gelu_numba bench [--size 1M 16M] [--threads 2] [--data normal|tail] [--json]

Every implementation runs in the same process on the same input (see
:data:`DATA`), writes into a preallocated output where the library allows
it, and is timed after a warm-up call (JIT compilation and first-touch page
faults excluded).  The implementations of one row are timed in interleaved
rounds (each called once per round, for about ``budget`` seconds each), so
that a slow spell of a shared machine falls on all of them alike, and each
figure is the best round.  Results are ns per element; a ratio is ours /
theirs, so below 1.0 means faster.  Peers that are not installed are left
out; JAX runs with float64 enabled so that the float64 rows compare like with
like.
"""

import math
import os
import time
from dataclasses import dataclass

import numpy as np

#: The operations compared: (row label, gelu_numba name, torch approximate,
#: whether it is a backward, i.e. takes (dy, x)).  The first five are the
#: headline (``bench``'s default); the derivatives and the sigmoid form's
#: backward have no PyTorch or JAX function of their own (autograd gives
#: them only as part of a backward pass) and are compared with NumPy+SciPy.
OPERATIONS = (
    ("gelu", "gelu", "none", False),
    ("gelu_tanh", "gelu_tanh", "tanh", False),
    ("gelu_sigmoid", "gelu_sigmoid", None, False),
    ("gelu_backward", "gelu_backward", "none", True),
    ("gelu_tanh_backward", "gelu_tanh_backward", "tanh", True),
    ("gelu_grad", "gelu_grad", False, False),
    ("gelu_tanh_grad", "gelu_tanh_grad", False, False),
    ("gelu_sigmoid_grad", "gelu_sigmoid_grad", False, False),
    ("gelu_sigmoid_backward", "gelu_sigmoid_backward", False, True),
    ("gelu_grad2", "gelu_grad2", False, False),
    ("gelu_tanh_grad2", "gelu_tanh_grad2", False, False),
    ("gelu_sigmoid_grad2", "gelu_sigmoid_grad2", False, False),
)
HEADLINE = tuple(o[0] for o in OPERATIONS[:5])

#: The input data sets: x, with dy standard normal for the backward kernels.
DATA = {
    "normal": "x ~ N(0, 3^2)",
    "tail": "|x| uniform in [5, 12] (float32) or [5, 30] (float64), random signs",
}


def make_data(kind, size, dtype, rng):
    """x for data set `kind` (see :data:`DATA`)."""
    if kind == "normal":
        x = 3.0 * rng.standard_normal(size)
    elif kind == "tail":
        hi = 12.0 if np.dtype(dtype) == np.float32 else 30.0
        x = rng.uniform(5.0, hi, size) * rng.choice((-1.0, 1.0), size)
    else:
        raise ValueError(f"unknown data {kind!r}; use one of {', '.join(DATA)}")
    return x.astype(dtype)


OURS = ("gelu_numba", "gelu_numba.parallel")
PEERS = ("torch", "jax", "numpy+scipy")


@dataclass
class Timing:
    operation: str
    dtype: str
    size: int
    implementation: str
    ns_per_element: float  # the best round
    median_ns: float = math.nan  # the median round: how noisy the best is


def _interleaved(fns, size, budget=0.6, min_rounds=5, max_rounds=200):
    """{name: (best, median) ns/element} over rounds that call each fn once.

    Each fn is called once first (compilation, page faults); then rounds run
    until about `budget` seconds per fn have passed.
    """
    for fn in fns.values():
        fn()
    samples = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() - start < budget * len(fns) and rounds < max_rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
        rounds += 1
    return {name: (min(v) / size * 1e9, float(np.median(v)) / size * 1e9) for name, v in samples.items()}


# --------------------------------------------------------------------------
# Implementations: each returns a zero-argument callable, or None.


def _ours(module_name, op, x, dy, out):
    import importlib

    f = getattr(importlib.import_module(module_name), op)
    if dy is not None:
        return lambda: f(dy, x, out=out)
    return lambda: f(x, out=out)


def _ours_allocating(op, x, dy):
    import gelu_numba.parallel as gp

    f = getattr(gp, op)
    return (lambda: f(dy, x)) if dy is not None else (lambda: f(x))


def _torch(approximate, x, dy, out, allocating=False):
    try:
        import torch
    except ImportError:
        return None
    if approximate is False:  # no torch function for this operation
        return None
    tx, tout = torch.from_numpy(x), torch.from_numpy(out)
    if approximate is None:  # no fused sigmoid GELU in torch: the expression
        if dy is not None:
            return None
        tmp = torch.empty_like(tx)

        def run():
            torch.mul(tx, 1.702, out=tmp)
            torch.sigmoid(tmp, out=tmp)
            torch.mul(tx, tmp, out=tout)

        return run
    if dy is not None:
        tdy = torch.from_numpy(dy)
        return lambda: torch.ops.aten.gelu_backward.grad_input(tdy, tx, approximate=approximate, grad_input=tout)
    if allocating:
        import torch.nn.functional as F

        return lambda: F.gelu(tx, approximate=approximate)
    return lambda: torch.ops.aten.gelu.out(tx, approximate=approximate, out=tout)


def _jax(approximate, x, dy):
    try:
        import jax
    except ImportError:
        return None
    if approximate is False:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    jx = jax.device_put(jnp.asarray(x))
    if approximate is None:
        f = jax.jit(lambda v: v * jax.nn.sigmoid(1.702 * v))
    else:
        f = jax.jit(lambda v: jax.nn.gelu(v, approximate=approximate == "tanh"))
    if dy is None:
        return lambda: f(jx).block_until_ready()
    if approximate is None:
        return None
    jdy = jax.device_put(jnp.asarray(dy))
    g = jax.jit(lambda d, v: jax.vjp(f, v)[1](d)[0])
    return lambda: g(jdy, jx).block_until_ready()


def _numpy_scipy(op, x, dy, out):
    try:
        from scipy import special
    except ImportError:
        return None
    t = x.dtype.type
    tmp = np.empty_like(x)
    tmp2 = np.empty_like(x)
    c = t(math.sqrt(2 / math.pi))
    if op == "gelu":
        def run():
            special.ndtr(x, out=tmp)
            np.multiply(x, tmp, out=out)
    elif op == "gelu_tanh":
        def run():
            np.multiply(x, x, out=tmp)
            np.multiply(tmp, t(0.044715), out=tmp)
            np.add(tmp, t(1), out=tmp)
            np.multiply(tmp, x, out=tmp)
            np.multiply(tmp, c, out=tmp)
            np.tanh(tmp, out=tmp)
            np.add(tmp, t(1), out=tmp)
            np.multiply(tmp, x, out=tmp)
            np.multiply(tmp, t(0.5), out=out)
    elif op == "gelu_sigmoid":
        def run():
            np.multiply(x, t(1.702), out=tmp)
            special.expit(tmp, out=tmp)
            np.multiply(x, tmp, out=out)
    elif op.endswith("_backward"):
        grad = _numpy_scipy(op.replace("_backward", "_grad"), x, None, tmp)

        def run():
            grad()
            np.multiply(dy, tmp, out=out)
    elif op == "gelu_grad":  # Phi(x) + x phi(x)
        inv = t(1 / math.sqrt(2 * math.pi))

        def run():
            np.multiply(x, x, out=tmp)
            np.multiply(tmp, t(-0.5), out=tmp)
            np.exp(tmp, out=tmp)
            np.multiply(tmp, x, out=tmp)
            np.multiply(tmp, inv, out=tmp)
            special.ndtr(x, out=tmp2)
            np.add(tmp, tmp2, out=out)
    elif op == "gelu_tanh_grad":  # 0.5 (1 + th) + 0.5 x (1 - th^2) c (1 + 3a x^2)
        a = t(0.044715)
        tmp3 = np.empty_like(x)

        def run():
            np.multiply(x, x, out=tmp)
            np.multiply(tmp, t(3) * a, out=tmp2)
            np.add(tmp2, t(1), out=tmp2)
            np.multiply(tmp2, c, out=tmp2)  # u' = c (1 + 3a x^2)
            np.multiply(tmp, a, out=tmp)
            np.add(tmp, t(1), out=tmp)
            np.multiply(tmp, x, out=tmp)
            np.multiply(tmp, c, out=tmp)
            np.tanh(tmp, out=tmp)  # th
            np.multiply(tmp, tmp, out=tmp3)
            np.subtract(t(1), tmp3, out=tmp3)
            np.multiply(tmp3, x, out=tmp3)
            np.multiply(tmp3, tmp2, out=tmp3)
            np.add(tmp, tmp3, out=tmp)
            np.add(tmp, t(1), out=tmp)
            np.multiply(tmp, t(0.5), out=out)
    elif op == "gelu_sigmoid_grad":  # s + 1.702 x s (1 - s)
        def run():
            np.multiply(x, t(1.702), out=tmp)
            special.expit(tmp, out=tmp)
            np.subtract(t(1), tmp, out=tmp2)
            np.multiply(tmp2, tmp, out=tmp2)
            np.multiply(tmp2, x, out=tmp2)
            np.multiply(tmp2, t(1.702), out=tmp2)
            np.add(tmp, tmp2, out=out)
    elif op == "gelu_grad2":  # phi(x) (2 - x^2)
        inv = t(1 / math.sqrt(2 * math.pi))

        def run():
            np.multiply(x, x, out=tmp)
            np.multiply(tmp, t(-0.5), out=tmp2)
            np.exp(tmp2, out=tmp2)
            np.subtract(t(2), tmp, out=tmp)
            np.multiply(tmp, tmp2, out=tmp)
            np.multiply(tmp, inv, out=out)
    elif op == "gelu_sigmoid_grad2":  # s (1 - s) (2a + a^2 x (1 - 2s))
        a = t(1.702)

        def run():
            np.multiply(x, a, out=tmp)
            special.expit(tmp, out=tmp)
            np.multiply(tmp, t(-2), out=tmp2)
            np.add(tmp2, t(1), out=tmp2)
            np.multiply(tmp2, x, out=tmp2)
            np.multiply(tmp2, a * a, out=tmp2)
            np.add(tmp2, t(2) * a, out=tmp2)
            np.subtract(t(1), tmp, out=out)
            np.multiply(out, tmp, out=out)
            np.multiply(out, tmp2, out=out)
    elif op == "gelu_tanh_grad2":  # (1 - th^2)/4 (2w' + x w'' - x th w'^2), w = 2u
        a = t(0.044715)
        w1 = t(2) * c
        tmp3 = np.empty_like(x)

        def run():
            np.multiply(x, x, out=tmp)
            np.multiply(tmp, a, out=tmp2)
            np.add(tmp2, t(1), out=tmp2)
            np.multiply(tmp2, x, out=tmp2)
            np.multiply(tmp2, c, out=tmp2)
            np.tanh(tmp2, out=tmp2)  # th
            np.multiply(tmp, t(3) * a, out=tmp3)
            np.add(tmp3, t(1), out=tmp3)
            np.multiply(tmp3, w1, out=tmp3)  # w'
            np.multiply(tmp3, tmp3, out=out)
            np.multiply(out, tmp2, out=out)
            np.multiply(out, x, out=out)  # x th w'^2
            np.multiply(tmp, t(12) * a * c, out=tmp)  # x w''
            np.multiply(tmp3, t(2), out=tmp3)
            np.add(tmp3, tmp, out=tmp3)
            np.subtract(tmp3, out, out=tmp3)
            np.multiply(tmp2, tmp2, out=tmp2)
            np.subtract(t(1), tmp2, out=tmp2)
            np.multiply(tmp2, t(0.25), out=tmp2)
            np.multiply(tmp2, tmp3, out=out)
    else:
        return None
    return run


def _copy(x, out):
    return lambda: np.copyto(out, x)


# --------------------------------------------------------------------------


def available_peers():
    found = []
    for name, module in (("torch", "torch"), ("jax", "jax"), ("numpy+scipy", "scipy")):
        try:
            __import__(module)
            found.append(name)
        except ImportError:
            pass
    return found


def peer_versions():
    """'torch 2.14.1', ... for the peers found."""
    import importlib

    out = []
    for name in available_peers():
        module = importlib.import_module("scipy" if name == "numpy+scipy" else name)
        label = f"numpy {np.__version__} + scipy" if name == "numpy+scipy" else name
        out.append(f"{label} {module.__version__}")
    return out


def environment():
    """What a figure depends on: CPU, versions, threads, date."""
    import datetime
    import platform

    import numba

    from . import __version__

    try:
        import llvmlite.binding as llvm

        cpu = llvm.get_host_cpu_name()
    except Exception:  # noqa: BLE001 (informational only)
        cpu = "unknown"
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return {"date": datetime.date.today().isoformat(), "cpu": f"{model} ({cpu})",
            "cores": os.cpu_count(), "python": platform.python_version(), "gelu_numba": __version__,
            "numpy": np.__version__, "numba": numba.__version__, "peers": peer_versions()}


def run(sizes=(1 << 20, 1 << 24), dtypes=("float32", "float64"), threads=2,
        operations=HEADLINE, progress=None, budget=0.6, data="normal"):
    """Time every implementation; returns a list of :class:`Timing`.

    `operations` are labels from :data:`OPERATIONS` (None: all of them);
    `budget` is roughly the seconds spent timing each implementation;
    `data` a key of :data:`DATA`.
    """
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    ops = [o for o in OPERATIONS if operations is None or o[0] in operations]
    results = []
    steps = len(sizes) * len(dtypes) * len(ops)
    done = 0
    if progress is not None:
        progress(0.0)
    rng = np.random.default_rng(0)
    for size in sizes:
        for dtype in dtypes:
            x = make_data(data, size, dtype, rng)
            dy = rng.standard_normal(size).astype(dtype)
            out = np.empty_like(x)
            best, median = _interleaved({"np.copyto": _copy(x, out)}, size, budget)["np.copyto"]
            results.append(Timing("copy", dtype, size, "np.copyto", best, median))
            for label, op, approximate, backward in ops:
                d = dy if backward else None
                impls = {
                    "gelu_numba": _ours("gelu_numba", op, x, d, out),
                    "gelu_numba.parallel": _ours("gelu_numba.parallel", op, x, d, out),
                    "gelu_numba.parallel (allocating)": _ours_allocating(op, x, d),
                    "torch": _torch(approximate, x, d, out),
                    "torch (allocating)": None if backward else _torch(approximate, x, d, out, True),
                    "jax": _jax(approximate, x, d),
                    "numpy+scipy": _numpy_scipy(op, x, d, out),
                }
                impls = {k: v for k, v in impls.items() if v is not None}
                for name, (best, median) in _interleaved(impls, size, budget).items():
                    results.append(Timing(label, dtype, size, name, best, median))
                done += 1
                if progress is not None:
                    progress(done / steps)
    return results


def table(results):
    """Rows (operation, dtype, size) with ns/element per implementation and
    the ratio of gelu_numba.parallel to the fastest of torch and jax."""
    rows, medians = {}, {}
    for r in results:
        rows.setdefault((r.operation, r.dtype, r.size), {})[r.implementation] = r.ns_per_element
        medians.setdefault((r.operation, r.dtype, r.size), {})[r.implementation] = r.median_ns
    out = []
    for (op, dtype, size), cells in rows.items():
        peers = [cells[p] for p in ("torch", "jax") if p in cells]
        ours = cells.get("gelu_numba.parallel")
        ratio = ours / min(peers) if peers and ours else None
        out.append({"operation": op, "dtype": dtype, "size": size, "ns_per_element": cells,
                    "median_ns_per_element": medians.get((op, dtype, size), {}),
                    "parallel_vs_fastest_peer": ratio})
    return out


COLUMNS = ("gelu_numba", "gelu_numba.parallel", "gelu_numba.parallel (allocating)",
           "torch", "torch (allocating)", "jax", "numpy+scipy", "np.copyto")
SHORT = {"gelu_numba": "ours", "gelu_numba.parallel": "ours par", "gelu_numba.parallel (allocating)": "ours alloc",
         "torch": "torch", "torch (allocating)": "torch alloc", "jax": "jax", "numpy+scipy": "np+scipy",
         "np.copyto": "copyto"}


def format_table(rows):
    """A plain-text table: ns/element, and ours (parallel) / fastest peer."""
    present = [c for c in COLUMNS if any(c in r["ns_per_element"] for r in rows)]
    w = max([len("operation"), *(len(r["operation"]) for r in rows)])
    head = f"{'operation':{w}} {'dtype':8} {'size':>5} " + " ".join(f"{SHORT[c]:>11}" for c in present) + f" {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        size = f"{r['size'] >> 20}M" if r["size"] >= 1 << 20 else str(r["size"])
        cells = " ".join(
            f"{r['ns_per_element'][c]:11.3f}" if c in r["ns_per_element"] else f"{'':>11}" for c in present
        )
        ratio = f"{r['parallel_vs_fastest_peer']:6.2f}" if r["parallel_vs_fastest_peer"] else f"{'-':>6}"
        lines.append(f"{r['operation']:{w}} {r['dtype']:8} {size:>5} {cells} {ratio}")
    return "\n".join(lines)


def noise(rows):
    """The median over all cells of (median round / best round - 1)."""
    spreads = [r["median_ns_per_element"][c] / v - 1 for r in rows for c, v in r["ns_per_element"].items()
               if c in r.get("median_ns_per_element", {}) and v > 0]
    return float(np.median(spreads)) if spreads else math.nan


def machine_load():
    """The 1-minute load average, or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def legend(rows, threads, load=None):
    """What the columns of :func:`format_table` mean, and how far to trust
    them; `load` is the load average when the run started."""
    present = [c for c in COLUMNS if any(c in r["ns_per_element"] for r in rows)]
    meaning = {
        "gelu_numba": "ours: gelu_numba, serial, out=",
        "gelu_numba.parallel": f"ours par: gelu_numba.parallel, {threads} thread{'s' * (threads != 1)}, out=",
        "gelu_numba.parallel (allocating)": "ours alloc: gelu_numba.parallel, a new output each call",
        "torch": "torch: PyTorch, out=", "torch (allocating)": "torch alloc: F.gelu, a new output",
        "jax": "jax: jax.jit, output allocated by XLA", "numpy+scipy": "np+scipy: the NumPy/SciPy expression",
        "np.copyto": "copyto: np.copyto of the input (memory speed)",
    }
    lines = ["; ".join(meaning[c] for c in present) + "."]
    if any(c in ("torch", "jax") for c in present):
        lines.append("ratio: ours par / the faster of torch and jax (below 1.00: ours is faster).")
    else:
        lines.append("ratio: - (neither torch nor jax is installed to compare with).")
    n = noise(rows)
    spread = f"the median round was {100 * n:.0f} % slower than the best here; " if n == n else ""
    lines.append(f"Each figure is the best of interleaved rounds; {spread}on a shared machine figures "
                 "move up to 20 % from run to run, so compare within one run.")
    cores = os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        lines.append(f"WARNING: the machine was busy when this run started (load average {load:.1f} on "
                     f"{cores} cores): other programs took CPU time, and these figures, the threaded ones "
                     "above all, do not measure the kernels.")
    return "\n".join(lines)
