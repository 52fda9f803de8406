"""Side-by-side timings: gelu_numba next to PyTorch, JAX and NumPy+SciPy.

    python -m gelu_numba bench [--size 1M 16M] [--threads 2] [--data normal|tail] [--json]

Every implementation runs in the same process on the same input (see
:data:`DATA`), writes into a preallocated output where the library allows
it, and is timed after a warm-up call (JIT compilation and first-touch page
faults excluded).  The implementations of one row are timed in interleaved
rounds (each called once per round, for about ``budget`` seconds each), so
that a slow spell of a shared machine falls on all of them alike, and each
figure is the best round; a figure whose rounds disagree is flagged (see
:data:`UNSTEADY`).  Results are ns per element; a ratio is ours /
theirs, so below 1.0 means faster.  Peers that are not installed are left
out; JAX runs with float64 enabled so that the float64 rows compare like with
like.
"""

import decimal
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


#: Size suffixes: binary, as everywhere in this package (1M, the default and
#: the report's size, is 2**20 elements; the parallel thresholds are 8K and
#: 2K, 8192 and 2048).
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    """Elements in `text`: 4096, 64K, 1.5M, 2G (K, M, G as in :data:`UNITS`).

    Exact: ``1.5M`` is 1,572,864 elements, and a request that is no whole
    number of elements (``1.3M``: 1,363,148.8) raises ValueError, as does
    one below 1.  :func:`size_label` writes a size back in this form.
    """
    t = text.strip().upper()
    unit = UNITS.get(t[-1:], 1)
    try:
        number = decimal.Decimal(t[:-1] if unit > 1 else t)
    except decimal.InvalidOperation:
        raise ValueError(f"not a size: {text!r} (try 4096, 64K, 1M, 1.5M, 16M)") from None
    if not number.is_finite():
        raise ValueError(f"not a size: {text!r} (try 4096, 64K, 1M, 1.5M, 16M)")
    # Exact: a Decimal times a power of two, in a context with room for every
    # digit (the default's 28 would round 1e30K).
    value = decimal.Context(prec=len(number.as_tuple().digits) + 20).multiply(number, unit)
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number of elements: {text!r} is {value.normalize():f} "
                         f"(K, M and G are 1024, 1024**2 and 1024**3)")
    if value < 1:
        raise ValueError(f"size must be positive, not {text!r}")
    if value >= 1 << 63:
        raise ValueError(f"size too large: {text!r} (an array holds fewer than 2**63 elements)")
    return int(value)


def size_label(size):
    """The shortest of ``size`` written plain, in K, M or G that
    :func:`parse_size` reads back as exactly ``size`` (a tie goes to the
    larger unit): 1572864 is ``1.5M``, 1536000 ``1500K``, 2048 ``2K``, 1000
    ``1000``."""
    forms = []
    for suffix, unit in sorted(UNITS.items(), key=lambda u: -u[1]):
        # size / unit is a dyadic fraction: exact in as many digits as size has, plus 10 per K
        exact = decimal.Context(prec=len(str(size)) + 30).divide(decimal.Decimal(size), unit)
        forms.append(f"{exact.normalize():f}{suffix}")
    forms.append(str(size))
    return min(forms, key=len)


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
    spread: float = math.nan  # the slowest tenth of the rounds over the best: whether they agree


#: A cell whose slowest tenth of rounds took this many times its best round
#: is flagged: its rounds disagree, so something else had the CPU for part
#: of them, and its best may have been caught in the same spell.  A median
#: over all cells (:func:`noise`) hides such a cell among the steady ones.
#: Measured on a 2-core VM, every kernel at 1M, float32 and float64: with
#: other programs using under 0.02 of a core during the run, each of 196
#: cells within 1.55 (the threaded ones, waking two threads, the highest;
#: median 1.12); with one using 0.37 cores, 53 of 124 cells above 1.5 and
#: the worst 39.  So 2 flags no quiet cell and most disturbed ones.
UNSTEADY = 2.0


def _round_stats(seconds, size):
    """(best, median) ns/element and the spread (see :attr:`Timing.spread`)
    of one implementation's rounds."""
    v = np.asarray(seconds, dtype=np.float64)
    best = float(v.min())
    spread = float(np.quantile(v, 0.9)) / best if best > 0 else math.nan
    return best / size * 1e9, float(np.median(v)) / size * 1e9, spread


def _interleaved(fns, size, budget=0.6, min_rounds=5, max_rounds=200, rotate=False):
    """{name: (best, median, spread)} over rounds that call each fn once
    (see :func:`_round_stats`).

    Each fn is called once first (compilation, page faults); then rounds run
    until about `budget` seconds per fn have passed.  With `rotate`, each
    round starts one fn later: a peer whose pool keeps its threads spinning
    after a call slows whatever runs next with threads of its own, and
    rotating spreads that over every implementation alike.
    """
    for fn in fns.values():
        fn()
    names = list(fns)
    samples = {name: [] for name in names}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() - start < budget * len(fns) and rounds < max_rounds):
        first = rounds % len(names) if rotate else 0
        for name in names[first:] + names[:first]:
            t = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t)
        rounds += 1
    return {name: _round_stats(v, size) for name, v in samples.items()}


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


def _torch_copy(x, out):
    """torch's copy_, on its threads: the memory speed of a multi-threaded
    loop (np.copyto has one thread)."""
    try:
        import torch
    except ImportError:
        return None
    tx, to = torch.from_numpy(x), torch.from_numpy(out)
    return lambda: to.copy_(tx)


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

    from .. import __version__

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
            # A step's arrays are gone before the next step's are made:
            # memory_needed counts one step at a time.
            for timings in _step(size, dtype, ops, data, rng, budget):
                results += timings
                if timings[0].operation != "copy":
                    done += 1
                    if progress is not None:
                        progress(done / steps)
    return results


def _step(size, dtype, ops, data, rng, budget):
    """Yield the copy's timing, then each operation's, on one size and
    dtype, as lists.  Their arrays are made here and live only until the
    last is yielded."""
    x = make_data(data, size, dtype, rng)
    dy = rng.standard_normal(size).astype(dtype)
    out = np.empty_like(x)
    copies = {"np.copyto": _copy(x, out), "torch copy_": _torch_copy(x, out)}
    copies = {k: v for k, v in copies.items() if v is not None}
    yield [Timing("copy", dtype, size, name, best, median, spread)
           for name, (best, median, spread) in _interleaved(copies, size, budget).items()]
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
        timed = _interleaved(impls, size, budget)
        del impls  # its temporaries (and JAX's copies) go before the next operation's are made
        yield [Timing(label, dtype, size, name, best, median, spread)
               for name, (best, median, spread) in timed.items()]


# --------------------------------------------------------------------------
# Memory: what a run needs, and what this machine has


def installed_peers():
    """The peers :func:`run` would find, without importing them (a second
    or more each, for torch and JAX)."""
    import importlib.util

    return [name for name, module in (("torch", "torch"), ("jax", "jax"), ("numpy+scipy", "scipy"))
            if importlib.util.find_spec(module) is not None]


def _arrays(op, approximate, backward, peers):
    """How many arrays of the input's size and dtype one operation of
    :func:`_step` holds at once, at most, besides x, dy and out.

    Read off the implementations above, rounding up where a library decides:
    each of ours and PyTorch's allocating calls makes one output, dropped
    before the next call; torch's sigmoid expression keeps one scratch array
    per variant (out= and allocating); JAX copies x (and dy) onto its device
    and each call makes an output, counted with one more array for whatever
    XLA keeps between the fused loops of a backward; the NumPy/SciPy
    expression keeps its scratch arrays (tmp, tmp2, and tmp3 for the tanh
    form's derivatives), a backward those of the derivative it calls too.
    """
    held, fresh = 0, 1  # fresh: the allocating calls' outputs, one alive at a time
    if "numpy+scipy" in peers:
        grad = op.replace("_backward", "_grad")
        held += 2 + (grad in ("gelu_tanh_grad", "gelu_tanh_grad2"))
        if backward:
            held += 2 + (grad == "gelu_tanh_grad")
    if "torch" in peers and approximate is None and not backward:
        held += 2
    if "jax" in peers and approximate is not False and not (backward and approximate is None):
        held += 1 + backward
        fresh = 2
    return held + fresh


#: Bytes that :func:`run` grows by before its first array, whatever the
#: size, in a process that has imported Numba: our kernels loaded and SciPy
#: imported, then each of PyTorch and JAX imported and run once.  Measured
#: (peak resident memory, a run at 4096 elements) with Numba 0.68.1, SciPy
#: 1.17.1, torch 2.14.1 (+480 MiB) and jax 0.10.2 (+190 MiB), rounded up.
LIBRARY_MEMORY = {"gelu_numba": 128 << 20, "torch": 512 << 20, "jax": 256 << 20}


def memory_needed(sizes, dtypes, operations=HEADLINE, data="normal", peers=None, libraries=True):
    """Bytes that :func:`run` needs at its peak, for the same arguments:
    its arrays, and with `libraries` those of :data:`LIBRARY_MEMORY`;
    `peers` the ones it times (default: those installed).

    The arrays: one size and dtype at a time (see :func:`_step`), whichever
    needs most of making the data, in float64 (the tail data's uniform draw,
    random signs and product alive together, two arrays for the normal
    data), then dy's float64 draw next to x and its own cast; and timing, x,
    dy and out with the worst operation's arrays (see :func:`_arrays`).
    Measured (NumPy's arrays with tracemalloc, the whole process's resident
    memory with PyTorch and JAX), at 1M and 8M elements, the estimate was
    1.17-1.33 times the arrays' peak.
    """
    peers = installed_peers() if peers is None else peers
    ops = [o for o in OPERATIONS if operations is None or o[0] in operations]
    worst = 0
    for size in sizes:
        for dtype in dtypes:
            item = np.dtype(dtype).itemsize
            making = max((3 if data == "tail" else 2) * 8 + item, item + 8 + item)
            timing = (3 + max((_arrays(op, a, b, peers) for _, op, a, b in ops), default=0)) * item
            worst = max(worst, size * max(making, timing))
    if libraries:
        worst += sum(LIBRARY_MEMORY.get(name, 0) for name in ("gelu_numba", *peers))
    return worst


def available_memory(root="/"):
    """(bytes, what limits them) that this process can still allocate, or
    None where the system does not say (no /proc/meminfo): the smaller of
    the kernel's MemAvailable and the headroom of this process's memory
    cgroup, its limit less its usage (v2 or v1; each ancestor's limit
    applies too).  `root` is for the tests."""
    try:
        with open(os.path.join(root, "proc/meminfo")) as f:
            fields = dict(ln.split(":", 1) for ln in f if ":" in ln)
        free = int(fields["MemAvailable"].split()[0]) * 1024  # "24032016 kB"
    except (OSError, KeyError, ValueError, IndexError):
        return None
    best = (free, "MemAvailable in /proc/meminfo")
    headroom = _cgroup_headroom(root)
    if headroom is not None and headroom[0] < best[0]:
        best = headroom
    return best


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


#: cgroup v2, then v1: (mount point, controller name in /proc/self/cgroup,
#: limit, usage, the memory.stat line of reclaimable page cache).
_CGROUPS = (("sys/fs/cgroup", "", "memory.max", "memory.current", "inactive_file"),
            ("sys/fs/cgroup/memory", "memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
             "total_inactive_file"))


def _cgroup_headroom(root):
    """(limit - usage, where), the least over this process's memory cgroup
    and its ancestors, or None where no limit is set or readable.

    Usage less inactive page cache, as ``docker stats`` and the kubelet
    count it: the cgroup counts the files it has read or written (a pip
    install just before, say), and the kernel drops that cache before it
    kills anything, so counting it would refuse runs that fit.
    """
    membership = {}
    for line in (_read(os.path.join(root, "proc/self/cgroup")) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                membership.setdefault(controller, parts[2])
    best = None
    for mount, controller, limit_file, usage_file, cache_line in _CGROUPS:
        base = os.path.join(root, mount)
        parts = [p for p in membership.get(controller, "").split("/") if p]
        # this process's cgroup, then each ancestor up to the mount's root
        dirs = [os.path.join(base, *parts[:i]) for i in range(len(parts), -1, -1)]
        if not os.path.isdir(dirs[0]):  # in a container's namespace: its cgroup is the mount's root
            dirs = [base]
        for here in dirs:
            limit = (_read(os.path.join(here, limit_file)) or "").strip()
            usage = (_read(os.path.join(here, usage_file)) or "").strip()
            if not (limit.isdigit() and usage.isdigit()):  # "max" (v2): no limit here
                continue
            cache = 0
            for line in (_read(os.path.join(here, "memory.stat")) or "").splitlines():
                key, _, value = line.partition(" ")
                if key == cache_line and value.strip().isdigit():
                    cache = int(value)
            headroom = max(int(limit) - max(int(usage) - cache, 0), 0)
            if best is None or headroom < best[0]:
                where = os.path.join("/", os.path.relpath(here, root))
                best = (headroom, f"the limit of memory cgroup {where} less its usage")
    return best


def table(results):
    """Rows (operation, dtype, size) with ns/element per implementation, the
    ratio of gelu_numba.parallel to the fastest of torch and jax, each
    cell's spread (see :attr:`Timing.spread`) and the cells whose rounds
    disagree (``unsteady``: spread above :data:`UNSTEADY`)."""
    rows, medians, spreads = {}, {}, {}
    for r in results:
        key = (r.operation, r.dtype, r.size)
        rows.setdefault(key, {})[r.implementation] = r.ns_per_element
        medians.setdefault(key, {})[r.implementation] = r.median_ns
        spreads.setdefault(key, {})[r.implementation] = r.spread
    out = []
    for (op, dtype, size), cells in rows.items():
        peers = [cells[p] for p in ("torch", "jax") if p in cells]
        ours = cells.get("gelu_numba.parallel")
        ratio = ours / min(peers) if peers and ours else None
        spread = spreads[(op, dtype, size)]
        out.append({"operation": op, "dtype": dtype, "size": size, "ns_per_element": cells,
                    "median_ns_per_element": medians[(op, dtype, size)],
                    "parallel_vs_fastest_peer": ratio,
                    "round_spread": spread,
                    "unsteady": [c for c in cells if spread.get(c, 0) > UNSTEADY]})
    return out


COLUMNS = ("gelu_numba", "gelu_numba.parallel", "gelu_numba.parallel (allocating)",
           "torch", "torch (allocating)", "jax", "numpy+scipy", "np.copyto", "torch copy_")
SHORT = {"gelu_numba": "ours", "gelu_numba.parallel": "ours par", "gelu_numba.parallel (allocating)": "ours alloc",
         "torch": "torch", "torch (allocating)": "torch alloc", "jax": "jax", "numpy+scipy": "np+scipy",
         "np.copyto": "copyto", "torch copy_": "copy_ par"}
#: After a figure whose rounds disagree.
MARK = "*"


def format_table(rows):
    """A plain-text table: ns/element, and ours (parallel) / fastest peer;
    :data:`MARK` after a cell whose rounds disagree."""
    present = [c for c in COLUMNS if any(c in r["ns_per_element"] for r in rows)]
    w = max([len("operation"), *(len(r["operation"]) for r in rows)])
    sw = max([len("size"), *(len(size_label(r["size"])) for r in rows)])
    head = (f"{'operation':{w}} {'dtype':8} {'size':>{sw}} " + " ".join(f"{SHORT[c]:>11}" for c in present)
            + f" {'ratio':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        flagged = r.get("unsteady", ())
        cells = " ".join(
            (f"{r['ns_per_element'][c]:10.3f}{MARK}" if c in flagged else f"{r['ns_per_element'][c]:11.3f}")
            if c in r["ns_per_element"] else f"{'':>11}" for c in present
        )
        ratio = f"{r['parallel_vs_fastest_peer']:6.2f}" if r["parallel_vs_fastest_peer"] else f"{'-':>6}"
        lines.append(f"{r['operation']:{w}} {r['dtype']:8} {size_label(r['size']):>{sw}} {cells} {ratio}")
    return "\n".join(lines)


def noise(rows):
    """The median over all cells of (median round / best round - 1)."""
    spreads = [r["median_ns_per_element"][c] / v - 1 for r in rows for c, v in r["ns_per_element"].items()
               if c in r.get("median_ns_per_element", {}) and v > 0]
    return float(np.median(spreads)) if spreads else math.nan


def unsteady(rows):
    """The spreads of the cells whose rounds disagree (see :data:`UNSTEADY`)."""
    return [r["round_spread"][c] for r in rows for c in r.get("unsteady", ())]


def machine_load():
    """The 1-minute load average, or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# Whether the machine was busy: the load average cannot say.  It is a
# one-minute average of runnable processes, ours included, so right after
# the README's `pip install ... && gelu-numba` it still counts pip (it
# compiles and unpacks for a minute on 2 cores) and warned on every first
# run, on an idle machine.  What distorts the figures is CPU time that
# other programs take *while the run times*: the CPUs this process may run
# on, busy, less this process's own CPU time (all its threads), over the
# run.  Linux counts both (/proc/stat, CLOCK_PROCESS_CPUTIME_ID); a
# hypervisor's steal counts as busy, as it is time another machine had.
# Elsewhere the load average at the start is all there is.


def usable_cores():
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _busy_seconds(stat, cpus):
    """Seconds that `cpus` have spent busy since boot, from the text of
    /proc/stat; None where it has none of them."""
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy, found = 0, False
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal (guest time is in user)
            ticks = [int(t) for t in rest.split()[:8]]
            busy += sum(ticks) - ticks[3] - ticks[4]
            found = True
    return busy / hz if found else None


def cpu_sample():
    """(seconds, busy CPU seconds of :func:`usable_cores`, CPU seconds of
    this process) now, for :func:`others_busy`; None without /proc/stat."""
    stat = _read("/proc/stat")
    busy = _busy_seconds(stat, set(usable_cores())) if stat else None
    if busy is None:
        return None
    return time.monotonic(), busy, time.process_time()


def others_busy(start, end=None):
    """Cores' worth of CPU that other programs used between two
    :func:`cpu_sample` (`end` default: now), or None where not measured."""
    end = cpu_sample() if end is None and start is not None else end
    if start is None or end is None or end[0] <= start[0]:
        return None
    return max(0.0, (end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0])


def fallback_sample():
    """The counts of the fallback to serial calls so far, for :func:`fallbacks`."""
    from ..core import runtime

    return runtime.paths()


def fallbacks(start):
    """(times the fallback engaged, calls it ran serially) since `start`
    (:func:`fallback_sample`)."""
    now = fallback_sample()
    return now["engaged"] - start["engaged"], now["fallback"] - start["fallback"]


#: Other programs' CPU use, in cores, from which the figures are flagged.
BUSY_WARNING_CORES = 0.25


def legend(rows, threads, load=None, busy=None, fallback=None):
    """What the columns of :func:`format_table` mean, and how far to trust
    them.  `busy`: the cores' worth of CPU that other programs used while
    the rows were timed (:func:`others_busy`); where that is None, `load`,
    the load average when the run started.  `fallback`: (engaged, calls)
    of the fallback to serial calls during the run (:func:`fallbacks`)."""
    present = [c for c in COLUMNS if any(c in r["ns_per_element"] for r in rows)]
    meaning = {
        "gelu_numba": "ours: gelu_numba, serial, out=",
        "gelu_numba.parallel": f"ours par: gelu_numba.parallel, {threads} thread{'s' * (threads != 1)}, out=",
        "gelu_numba.parallel (allocating)": "ours alloc: gelu_numba.parallel, a new output each call",
        "torch": "torch: PyTorch, out=", "torch (allocating)": "torch alloc: F.gelu, a new output",
        "jax": "jax: jax.jit, output allocated by XLA", "numpy+scipy": "np+scipy: the NumPy/SciPy expression",
        "np.copyto": "copyto: np.copyto of the input (memory speed, one thread)",
        "torch copy_": f"copy_ par: torch's copy_ of the input, {threads} threads (the same with threads)",
    }
    lines = ["; ".join(meaning[c] for c in present) + "."]
    if any(c in ("torch", "jax") for c in present):
        lines.append("ratio: ours par / the faster of torch and jax (below 1.00: ours is faster).")
    else:
        lines.append("ratio: - (neither torch nor jax is installed to compare with).")
    n = noise(rows)
    spread = f"the median round was {100 * n:.0f} % slower than the best here; " if n == n else ""
    bad = unsteady(rows)
    if bad:
        cells = "1 figure" if len(bad) == 1 else f"{len(bad)} figures"
        spread += (f"the rounds of {cells}, marked {MARK}, disagree (the slowest tenth took "
                   f"{min(bad):.1f}{f'-{max(bad):.1f}' if len(bad) > 1 else ''}x the best): something else "
                   "had the CPU then, perhaps in the best round too, so rerun before trusting them; ")
    lines.append(f"Each figure is the best of interleaved rounds; {spread}on a shared machine figures "
                 "move up to 20 % from run to run, so compare within one run.")
    cores = len(usable_cores())
    if busy is not None:
        if busy >= BUSY_WARNING_CORES:
            lines.append(f"WARNING: other programs used {busy:.2f} of the {cores} cores while this ran: "
                         "these figures, the threaded ones above all, do not measure the kernels alone.")
    elif load is not None and load > 0.5 * cores:
        lines.append(f"WARNING: the machine was busy when this run started (load average {load:.1f} on "
                     f"{cores} cores): other programs took CPU time, and these figures, the threaded ones "
                     "above all, do not measure the kernels.")
    slower = [f"{r['operation']} {r['dtype']} {size_label(r['size'])}" for r in rows
              if r["ns_per_element"].get("gelu_numba.parallel", 0) > r["ns_per_element"].get("gelu_numba", math.inf)]
    if slower:
        lines.append(f"WARNING: threaded calls came out slower than serial ones for {', '.join(slower)}: "
                     "something else had the cores (docs/operations.md, 'Threads under contention').")
    if fallback is not None and fallback[0]:
        lines.append(f"WARNING: threads did not pay during this run: the fallback to serial calls engaged "
                     f"{fallback[0]} time{'s' * (fallback[0] != 1)} and ran {fallback[1]} calls serially, so "
                     "the threaded figures are partly serial ones (docs/operations.md, 'Threads under "
                     "contention').")
    return "\n".join(lines)
