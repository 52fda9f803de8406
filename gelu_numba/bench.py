"""Side-by-side timings: gelu_numba next to PyTorch, JAX and NumPy+SciPy.

    python -m gelu_numba bench [--size 1M 16M] [--threads 2] [--json]

Every implementation runs in the same process on the same input (standard
normal values), writes into a preallocated output where the library allows
it, and is timed as the best of several calls after a warm-up call (JIT
compilation and first-touch page faults excluded).  Results are ns per
element; a ratio is ours / theirs, so below 1.0 means faster.  Peers that
are not installed are left out; JAX runs with float64 enabled so that the
float64 rows compare like with like.
"""

import math
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
)
HEADLINE = tuple(o[0] for o in OPERATIONS[:5])

OURS = ("gelu_numba", "gelu_numba.parallel")
PEERS = ("torch", "jax", "numpy+scipy")


@dataclass
class Timing:
    operation: str
    dtype: str
    size: int
    implementation: str
    ns_per_element: float


def _best_time(fn, size, budget=0.6, min_repeats=3, max_repeats=200):
    """Best ns/element over repeated calls for about `budget` seconds."""
    fn()  # warm-up: compilation, page faults
    best = math.inf
    start = time.perf_counter()
    repeats = 0
    while repeats < min_repeats or (time.perf_counter() - start < budget and repeats < max_repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        repeats += 1
    return best / size * 1e9


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


def run(sizes=(1 << 20, 1 << 24), dtypes=("float32", "float64"), threads=2,
        operations=HEADLINE, progress=None, budget=0.6):
    """Time every implementation; returns a list of :class:`Timing`.

    `operations` are labels from :data:`OPERATIONS` (None: all of them);
    `budget` is roughly the seconds spent timing each implementation.
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
    rng = np.random.default_rng(0)
    for size in sizes:
        for dtype in dtypes:
            x = rng.standard_normal(size).astype(dtype)
            dy = rng.standard_normal(size).astype(dtype)
            out = np.empty_like(x)
            results.append(Timing("copy", dtype, size, "np.copyto", _best_time(_copy(x, out), size, budget)))
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
                for name, fn in impls.items():
                    if fn is not None:
                        results.append(Timing(label, dtype, size, name, _best_time(fn, size, budget)))
                done += 1
                if progress is not None:
                    progress(done / steps)
    return results


def table(results):
    """Rows (operation, dtype, size) with ns/element per implementation and
    the ratio of gelu_numba.parallel to the fastest of torch and jax."""
    rows = {}
    for r in results:
        rows.setdefault((r.operation, r.dtype, r.size), {})[r.implementation] = r.ns_per_element
    out = []
    for (op, dtype, size), cells in rows.items():
        peers = [cells[p] for p in ("torch", "jax") if p in cells]
        ours = cells.get("gelu_numba.parallel")
        ratio = ours / min(peers) if peers and ours else None
        out.append({"operation": op, "dtype": dtype, "size": size, "ns_per_element": cells,
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
        ratio = f"{r['parallel_vs_fastest_peer']:6.2f}" if r["parallel_vs_fastest_peer"] else f"{'':>6}"
        lines.append(f"{r['operation']:{w}} {r['dtype']:8} {size:>5} {cells} {ratio}")
    return "\n".join(lines)
