"""gelu_numba.parallel gives bit-identical results to the serial ufuncs."""

import llvmlite.binding as llvm
import numpy as np
import pytest

from _kernels import ALL, BINARY, parallel, serial


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 6).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -50.0, -0.7517915], dtype=dtype)
    x[: min(n, special.size)] = special[: min(n, special.size)]
    return x


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n", [0, 1, 7, 4099, 100_003, (1 << 20) + 5])
def test_bit_identical(name, n, dtype):
    x = data(n, dtype)
    args = (data(n, dtype, seed=1), x) if name in BINARY else (x,)
    with np.errstate(under="ignore", invalid="ignore"):  # dy = -inf times f'(-inf) = -0.0
        a, b = serial(name)(*args), parallel(name)(*args)
    assert np.array_equal(bits(a), bits(b))


@pytest.mark.parametrize("name", ["gelu", "gelu_sigmoid_grad", "gelu_tanh_backward"])
def test_bit_identical_strided(name, dtype):
    x = data(300_000, dtype).reshape(600, 500)[::2, ::-3]
    args = (np.ones_like(x), x) if name in BINARY else (x,)
    assert np.array_equal(bits(serial(name)(*args)), bits(parallel(name)(*args)))


def _threaded(f, *args):
    """f(*args), asserting that the call took the threaded path."""
    from gelu_numba.core import runtime

    runtime.reset_paths()
    y = f(*args)
    assert runtime.paths()["threaded"] == 1, runtime.paths()
    return y


X86 = llvm.get_process_triple().startswith("x86_64")


@pytest.mark.skipif(not X86, reason="the loops carry the flags across threads in MXCSR, x86-64's")
@pytest.mark.parametrize("where", ["first", "last"])
def test_threaded_calls_raise_the_flags_of_every_block(where, dtype):
    """NumPy reads the floating-point flags of the calling thread only: the
    flags a block raised in another thread must reach it, as the serial
    loop's do (a subnormal result raises "underflow", dy = inf times
    f'(x) = -0.0 raises "invalid"), whichever thread ran the block."""
    n = 40_000
    at = 0 if where == "first" else n - 1
    x = np.zeros(n, dtype)
    x[at] = -14.0 if dtype == np.float32 else -38.0  # a subnormal result
    for f in (serial("gelu"), parallel("gelu")):
        with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="underflow"):
            _threaded(f, x) if f is parallel("gelu") else f(x)
    dy = np.ones(n, dtype)
    x[at], dy[at] = -50.0, np.inf  # f'(-50) = -0.0
    for f in (serial("gelu_backward"), parallel("gelu_backward")):
        with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="invalid"):
            _threaded(f, dy, x) if f is parallel("gelu_backward") else f(dy, x)


@pytest.mark.skipif(not X86, reason="the loops carry the flags across threads in MXCSR, x86-64's")
def test_threaded_calls_do_not_report_earlier_calls_flags(dtype):
    """The pool's threads keep their flags between calls: a call whose
    blocks raise nothing reports nothing, after calls that raised
    "underflow" in those threads."""
    n = 40_000
    tiny = np.zeros(n, dtype)
    tiny[::100] = -14.0 if dtype == np.float32 else -38.0
    clean = np.linspace(-3, 3, n, dtype=dtype)
    f = parallel("gelu")
    for _ in range(4):
        with np.errstate(all="ignore"):
            _threaded(f, tiny)
        with np.errstate(all="raise"):
            _threaded(f, clean)
