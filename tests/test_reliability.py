"""Inside other people's programs: fork, Python threads, every threading
layer, read-only installs, and the path each loop takes.

Whatever can hang or abort runs in a subprocess with a timeout, so that a
hang fails the test instead of stalling the run.
"""

import functools
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gelu_numba as gn
import gelu_numba.parallel as gp
from gelu_numba.core import runtime as _runtime
from gelu_numba.core.loops import PARALLEL_MIN_SIZE

from _kernels import ALL, BINARY, UNARY

PACKAGE_PARENT = str(pathlib.Path(gn.__file__).resolve().parents[1])
TIMEOUT = 240


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _python(code, timeout=TIMEOUT, **env):
    """Run `code` in a fresh interpreter; (returncode, stdout, stderr).  A
    hang is a failure, not a stalled test run."""
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           timeout=timeout, env=_env(**env), cwd=PACKAGE_PARENT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {timeout} s; output so far: {exc.stdout!r} {exc.stderr!r}")
    return r.returncode, r.stdout, r.stderr


def _tbb_env():
    """Environment in which Numba's tbb layer loads: the PyPI wheel puts
    libtbb.so.12 in <prefix>/lib, which is not on the loader's path in a
    virtualenv (see docs/operations.md)."""
    return {"LD_LIBRARY_PATH": os.pathsep.join([os.path.join(sys.prefix, "lib"),
                                                os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)}


@functools.cache
def _layer_loads(layer):
    code = f"""
        import numba
        from numba import njit, prange
        @njit(parallel=True)
        def f(n):
            s = 0.0
            for i in prange(n):
                s += i
            return s
        f(1000)
        print(numba.threading_layer())
    """
    env = dict(NUMBA_THREADING_LAYER=layer, **(_tbb_env() if layer == "tbb" else {}))
    code_, out, _ = _python(code, timeout=120, **env)
    return code_ == 0 and out.strip() == layer


def _layer(layer):
    if not _layer_loads(layer):
        hint = {"tbb": "pip install tbb (the 'tbb' extra)", "omp": "no OpenMP runtime found"}.get(layer, "")
        pytest.skip(f"Numba's {layer} threading layer does not load here ({hint})")
    return dict(NUMBA_THREADING_LAYER=layer, **(_tbb_env() if layer == "tbb" else {}))


LAYERS = ["tbb", "omp", "workqueue"]


# --------------------------------------------------------------------------
# fork


FORK_POOL = """
    import multiprocessing, sys
    import numpy as np, numba
    import gelu_numba as gn, gelu_numba.parallel as gp
    from gelu_numba import _runtime

    x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal(1 << 20).astype(np.float32)
    reference = gn.gelu(x), gn.gelu_backward(dy, x)

    def child(i):
        _runtime.reset_paths()
        same = (np.array_equal(gp.gelu(x), reference[0])
                and np.array_equal(gp.gelu_backward(dy, x), reference[1]))
        return same, _runtime.paths()["threaded"], _runtime.serial_only()

    if __name__ == "__main__":
        assert np.array_equal(gp.gelu(x), reference[0])  # the parent starts its threads first
        layer = numba.threading_layer()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(child, range(4), chunksize=1)
        assert all(same for same, _, _ in results), results
        print(layer, results[0][1], results[0][2])
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_fork_pool_after_use(layer):
    env = _layer(layer)
    code, out, err = _python(FORK_POOL.replace('if __name__ == "__main__":', "if True:"), **env)
    assert code == 0, err
    used, threaded, serial = out.split()
    assert used == layer
    if layer in _runtime.FORK_SAFE_LAYERS:
        assert threaded == "2" and serial == "False"  # the child keeps its threads
    else:
        assert threaded == "0" and serial == "True"  # the child computes single-threaded
    assert "Terminating" not in err


def test_fork_without_parallel_use_keeps_threads():
    # A parent that never started a threading layer leaves its children free
    # to start one of their own.
    code, out, err = _python("""
        import os, numpy as np
        import gelu_numba.parallel as gp
        from gelu_numba import _runtime
        pid = os.fork()
        if pid == 0:
            gp.gelu(np.ones(1 << 20, np.float32))
            os._exit(0 if _runtime.paths()["threaded"] == 1 and not _runtime.serial_only() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, **_layer("omp"))
    assert code == 0 and out.strip() == "0", err


# --------------------------------------------------------------------------
# Python threads


THREADS = """
    import threading
    import numpy as np, numba
    import gelu_numba as gn, gelu_numba.parallel as gp
    from gelu_numba import _runtime

    rng = np.random.default_rng(0)
    x = {t: rng.standard_normal(1 << 17).astype(t) for t in (np.float32, np.float64)}
    expected = {(t, n): (getattr(gn, n)(x[t], x[t]) if n.endswith("_backward") else getattr(gn, n)(x[t]))
                for t in x for n in ("gelu", "gelu_tanh_grad", "gelu_backward")}
    failures = []
    start = threading.Barrier(8)

    def work():
        start.wait()
        for _ in range(10):
            for (t, n), want in expected.items():
                f = getattr(gp, n)
                got = f(x[t], x[t]) if n.endswith("_backward") else f(x[t])
                if not np.array_equal(got, want):
                    failures.append((t, n))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    p = _runtime.paths()
    print(numba.threading_layer(), len(failures), p["threaded"], p["declined"], p["fallback"])
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_eight_python_threads_at_once(layer):
    code, out, err = _python(THREADS, **_layer(layer))
    assert code == 0, f"exit {code}: {err[-2000:]}"
    used, failures, threaded, declined, fallback = out.split()
    assert used == layer and failures == "0"
    # every call threaded, declined (another held the pool) or run serially
    # by the fallback (eight threads on two cores: threads may not pay)
    assert int(threaded) + int(declined) + int(fallback) == 8 * 10 * 6 and int(threaded) > 0
    assert "Concurrent access" not in err


def test_serial_ufuncs_release_the_gil():
    # A serial call in one thread does not stop Python in another: the
    # other thread counts while a long kernel call runs.
    code, out, err = _python("""
        import threading, time
        import numpy as np
        import gelu_numba as gn
        x = np.linspace(-10, 10, 1 << 24)
        gn.gelu(x[:10])
        ticks = 0
        done = threading.Event()
        def counter():
            global ticks
            while not done.is_set():
                ticks += 1
        t = threading.Thread(target=counter)
        t.start()
        time.sleep(0.05)
        before = ticks
        gn.gelu(x)              # about 0.1 s on one core
        during = ticks - before
        done.set(); t.join()
        print(during)
    """)
    assert code == 0, err
    assert int(out) > 1000  # with the GIL held, the counter would stand still


def test_many_small_calls_do_not_leak():
    code, out, err = _python("""
        import resource
        import numpy as np
        import gelu_numba as gn, gelu_numba.parallel as gp
        x = np.ones(16, np.float32)
        out = np.empty_like(x)
        for f in (gn.gelu, gp.gelu, gn.gelu_backward, gp.gelu_backward):  # every loop below, loaded
            f(x, out=out) if f not in (gn.gelu_backward, gp.gelu_backward) else f(x, x, out=out)
        rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        before = rss()
        for _ in range(100_000):
            gn.gelu(x, out=out)
            gp.gelu_backward(x, x, out=out)
        print(rss() - before)
    """)
    assert code == 0, err
    assert int(out) < 2048  # KiB: 200,000 calls, well under 10 bytes a call


# --------------------------------------------------------------------------
# read-only installs


def _as_nobody(code, cwd):
    """Run `code` as the unprivileged user nobody, keeping only the
    capability to read (so that a Python under /root can start): it can
    write nothing but /tmp.  HOME is not writable, NUMBA_CACHE_DIR unset,
    and the package is importable only from where the tests import it."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a child as the unprivileged user nobody")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    env = {"HOME": "/nonexistent", "PATH": "/usr/bin:/bin", "PYTHONPATH": PACKAGE_PARENT}
    try:
        r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
                            sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           timeout=TIMEOUT, env=env, cwd=str(cwd))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {TIMEOUT} s: {exc.stderr!r}")
    if r.returncode != 0 and r.stderr.startswith("setpriv"):
        pytest.skip(f"setpriv cannot drop to nobody here: {r.stderr.strip()}")
    return r


def test_read_only_install_compiles_in_memory(tmp_path):
    r = _as_nobody("""
        import os, warnings
        import numpy as np
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import gelu_numba as gn, gelu_numba.parallel as gp
            x = np.linspace(-3, 3, 50_000)
            y, z = gn.gelu(x), gp.gelu_backward(x, x)
            y32 = gn.gelu_tanh(x.astype(np.float32))
        ours = [w for w in caught if "no writable cache location" in str(w.message)]
        print(os.getuid(), len(ours), repr(float(y[0])), repr(float(z[-1])), y32.dtype)
    """, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    uid, warnings_, y0, z_last, dtype = r.stdout.split()
    assert uid == "65534" and warnings_ == "1"  # at most one warning, however many kernels
    x = np.linspace(-3, 3, 50_000)
    assert float(y0) == float(gn.gelu(x)[0]) and float(z_last) == float(gn.gelu_backward(x, x)[-1])
    assert dtype == "float32"


def test_compile_without_a_cache_location_is_exit_2(tmp_path):
    r = _as_nobody("""
        import sys
        from gelu_numba.tools.cli import main
        sys.exit(main(["compile"]))
    """, tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines()[-1].startswith("gelu-numba compile: no writable cache location")


# --------------------------------------------------------------------------
# Every loop path, element by element against the scalar kernel, with
# inputs that can reach only that path (checked by the path counters).


def _pool(dtype):
    """Values of x: the common range, the minimum, the region junctions,
    tails, tiny and special values (the scalar kernel in plain Python costs
    milliseconds a call, so the arrays below are drawn from this pool)."""
    from _strategies import JUNCTIONS

    info = np.finfo(dtype)
    v = [-30.0, -12.0, -9.5, -6.0, -5.0, -3.3, -2.0, -1.0, -0.7517915246935645, -0.5, -0.1, -1e-5,
         -1e-30, 0.0, -0.0, 1e-30, 1e-5, 0.3, 0.75, 1.0, 2.7, 4.0, 6.5, 9.0, 40.0, *JUNCTIONS,
         float(info.smallest_subnormal), -float(info.smallest_subnormal), float(info.max), -float(info.max),
         np.inf, -np.inf, np.nan]
    return np.array(v, dtype=dtype)


DY_POOL = (1.0, -1.75, 3e-20, 0.0)


def _scalar_kernel(name, dtype):
    """The kernel's scalar definition, outside the loops: float64 as plain
    Python (gelu_numba.scalar); float32 by the scalar emission of the CPU's
    float32 algorithm (gelu_numba.core.vector32), one element per compiled
    call, which the AVX-512 blocks, their masked remainders, the threads and
    the strided paths must all reproduce."""
    if dtype is np.float64:
        from gelu_numba import scalar

        return getattr(scalar, name)
    from numba import njit

    from gelu_numba.core import vector32

    if name in BINARY:
        return njit(lambda dy, x: vector32.binary(name, dy, x))
    return njit(lambda x: vector32.unary(name, x))


@functools.cache
def _table(name, dtype):
    """The scalar kernel on the pool: shape (len(DY_POOL), pool) for a
    backward kernel, (pool,) otherwise."""
    f = _scalar_kernel(name, dtype)
    xs = _pool(dtype)
    with np.errstate(all="ignore"):
        if name in BINARY:
            return np.array([[f(dtype(d), x) for x in xs] for d in DY_POOL], dtype=dtype)
        return np.array([f(x) for x in xs], dtype=dtype)


def _case(name, dtype, n, seed, strided=False, dy="array"):
    """(args, expected) with n elements drawn from the pool, shuffled, so that
    tail values sit among common ones at arbitrary positions."""
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, len(_pool(dtype)), n * (2 if strided else 1))
    x = _pool(dtype)[ix]
    if strided:
        x, ix = x[::2], ix[::2]
    if name not in BINARY:
        return (x,), _table(name, dtype)[ix]
    if dy == "array":
        idy = rng.integers(0, len(DY_POOL), ix.shape)
        dyv = np.array(DY_POOL, dtype=dtype)[idy]
        if strided:
            dyv = np.array(DY_POOL, dtype=dtype)[np.repeat(idy, 2)][::2]
        return (dyv, x), _table(name, dtype)[idy, ix]
    d = 1  # index of -1.75
    dyv = np.asarray(dtype(DY_POOL[d])) if dy == "scalar" else np.broadcast_to(dtype(DY_POOL[d]), x.shape)
    return (dyv, x), _table(name, dtype)[d, ix]


def _same_bits(y, expected):
    return y.dtype == expected.dtype and np.array_equal(y.view(f"u{y.itemsize}"),
                                                        np.ascontiguousarray(expected).view(f"u{y.itemsize}"))


def _calls(module, name, args):
    _runtime.reset_paths()
    y = getattr(module, name)(*args)
    return y, {k: v for k, v in _runtime.paths().items() if v}


@pytest.mark.parametrize("name", ALL)
def test_path_unit_stride_serial(name, dtype):
    n = PARALLEL_MIN_SIZE[np.dtype(dtype).itemsize] - 1  # just below the threading threshold
    args, expected = _case(name, dtype, n, seed=0)
    for module in (gn, gp):
        y, paths = _calls(module, name, args)
        assert paths == {"unit": 1}
        assert _same_bits(y, expected)


@pytest.mark.parametrize("name", ALL)
def test_path_threaded(name, dtype):
    args, expected = _case(name, dtype, PARALLEL_MIN_SIZE[np.dtype(dtype).itemsize] * 2 + 5, seed=1)
    y, paths = _calls(gp, name, args)
    assert paths == {"threaded": 1}
    assert _same_bits(y, expected)


@pytest.mark.parametrize("name", ALL)
def test_path_strided(name, dtype):
    args, expected = _case(name, dtype, 4001, seed=2, strided=True)
    assert all(a.strides[0] == 2 * a.itemsize for a in args)
    for module in (gn, gp):
        y, paths = _calls(module, name, args)
        assert paths == {"strided": 1}
        assert _same_bits(y, expected)


@pytest.mark.parametrize("name", BINARY)
def test_path_broadcast_dy(name, dtype):
    args, expected = _case(name, dtype, PARALLEL_MIN_SIZE[np.dtype(dtype).itemsize] - 1, seed=3, dy="scalar")
    for module in (gn, gp):
        y, paths = _calls(module, name, args)
        assert paths == {"broadcast": 1}
        assert _same_bits(y, expected)


@pytest.mark.parametrize("name", BINARY)
def test_path_threaded_broadcast_dy(name, dtype):
    # A stride-0 dy (y.sum().backward() in torch) still takes the threads.
    n = PARALLEL_MIN_SIZE[np.dtype(dtype).itemsize] * 2 + 5
    args, expected = _case(name, dtype, n, seed=4, dy="broadcast")
    assert args[0].strides == (0,)
    y, paths = _calls(gp, name, args)
    assert paths == {"threaded_broadcast": 1}
    assert _same_bits(y, expected)


@pytest.mark.parametrize("name", ["gelu", "gelu_backward"])
def test_path_declined_while_another_call_holds_the_pool(name):
    # The lock taken by hand: a long call runs serially, with the same bits.
    args, expected = _case(name, np.float32, PARALLEL_MIN_SIZE[4] * 3, seed=5)
    _runtime._STATE[_runtime.LOCK] = 1
    try:
        y, paths = _calls(gp, name, args)
    finally:
        _runtime._STATE[_runtime.LOCK] = 0
    assert paths == {"declined": 1}
    assert _same_bits(y, expected)
    y2, paths = _calls(gp, name, args)
    assert paths == {"threaded": 1} and _same_bits(y2, expected)
