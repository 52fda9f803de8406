"""The CUDA kernels on the CUDA simulator (NUMBA_ENABLE_CUDASIM=1).

The simulator runs the kernels as Python: the same scalar functions, on
NumPy scalars, with an exact FMA.  On the CPU, the 'same-precision' build
compiles those functions with float32 computed in float32, as on a GPU, so
the two must agree bit for bit.  CI runs this file in its own process with
the simulator on; without it the tests are skipped.
"""

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (CI runs this file separately)", allow_module_level=True)

from numba import cuda  # noqa: E402

import gelu_numba.gpu as gg  # noqa: E402
from _kernels import same_precision_values  # noqa: E402
from gelu_numba.core.build import BINARY, NAMES  # noqa: E402
from gelu_numba.core.names import FUSED  # noqa: E402

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, -0.7517915, 1e-30, -40.0, 40.0, -13.2, 1.0, -1.0, -0.6]


def bits(a):
    return a.view(f"u{a.itemsize}")


reference = same_precision_values


def sample(dtype, n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 5).astype(dtype)
    x[: len(SPECIALS)] = np.array(SPECIALS).astype(dtype)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("name", NAMES)
def test_matches_cpu_same_precision(name, dtype):
    x = sample(dtype)
    args = ([sample(dtype, seed=1), x] if name in BINARY else [x])
    with np.errstate(all="ignore"):
        got = getattr(gg, name)(*(cuda.to_device(a) for a in args)).copy_to_host()
        want = reference(name, *args)
    assert got.dtype == dtype
    assert np.array_equal(bits(got), bits(want))


def test_strided_views_negative_strides_and_3d():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 6, 5)) * 3).astype(np.float32)
    d = cuda.to_device(x)
    for view, host in ((d[::-1, ::2, 1:], x[::-1, ::2, 1:]), (d.T, x.T), (d[:, 3], x[:, 3])):
        got = gg.gelu_tanh(view).copy_to_host()
        assert np.array_equal(bits(got), bits(reference("gelu_tanh", np.ascontiguousarray(host))))


def test_out_and_in_place():
    x = sample(np.float64)
    d = cuda.to_device(x)
    out = cuda.device_array_like(x)
    assert gg.gelu_grad(d, out=out) is out
    assert np.array_equal(bits(out.copy_to_host()), bits(reference("gelu_grad", x)))
    gg.gelu(d, out=d)
    assert np.array_equal(bits(d.copy_to_host()), bits(reference("gelu", x)))


def test_backward_mixed_layouts():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 7)).astype(np.float32)
    dy = rng.standard_normal((7, 8)).astype(np.float32).T  # Fortran-ordered
    got = gg.gelu_backward(cuda.to_device(dy), cuda.to_device(x)).copy_to_host()
    assert np.array_equal(bits(got), bits(reference("gelu_backward", np.ascontiguousarray(dy), x)))


def test_errors_before_launch():
    x = cuda.to_device(np.ones(4, np.float32))
    with pytest.raises(TypeError, match="NumPy array"):
        gg.gelu(np.ones(4, np.float32))
    with pytest.raises(TypeError, match="float64 but x is float32"):
        gg.gelu_backward(cuda.to_device(np.ones(4)), x)
    with pytest.raises(ValueError, match="shape"):
        gg.gelu_backward(cuda.to_device(np.ones(5, np.float32)), x)
    with pytest.raises(ValueError, match="shape"):
        gg.gelu(x, out=cuda.to_device(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="out is float64"):
        gg.gelu(x, out=cuda.to_device(np.ones(4)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        gg.gelu(cuda.to_device(np.ones(4, np.int32)))
    with pytest.raises(TypeError, match="takes"):
        gg.gelu_backward(x)


def test_empty_and_zero_d():
    assert gg.gelu(cuda.to_device(np.ones(0, np.float32))).copy_to_host().shape == (0,)
    got = gg.gelu(cuda.to_device(np.array(-1.0))).copy_to_host()
    assert got.shape == () and got == reference("gelu", np.array(-1.0))


# -- the fused forms ----------------------------------------------------------------


def _fused_reference(name, *args):
    """The unfused expression with the CPU build of the CUDA arithmetic:
    the sum or product in the operands' format (the first operand's NaN
    where it is one), then the single form."""
    from gelu_numba.core.names import parse_fused

    kind, form = parse_fused(name)
    f = lambda v: same_precision_values(form, v)  # noqa: E731
    fb = lambda d, v: same_precision_values(form + "_backward", d, v)  # noqa: E731
    first = lambda p, r: np.where(np.isnan(p), p + p, r)  # noqa: E731
    args = [np.broadcast_to(a, np.broadcast_shapes(*(b.shape for b in args))).copy() for a in args]
    if kind == "bias":
        return (f(first(args[0], args[0] + args[1])),)
    if kind == "bias_backward":
        return (fb(args[0], first(args[1], args[1] + args[2])),)
    if kind == "geglu":
        y = f(args[0])
        return (first(y, y * args[1]),)
    dy, a, g = args
    return fb(first(dy, dy * g), a), first(dy, dy * f(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FUSED)
def test_fused_forms_match_the_unfused_expression(name, dtype):
    from gelu_numba.core.names import ARITY, parse_fused

    nin, nout = ARITY[parse_fused(name)[0]]
    rows = [sample(dtype, seed=s).reshape(6, 8) for s in range(nin)]
    f = getattr(gg, name)
    views = [(slice(None), slice(None))] * nin
    cases = [(rows, views), (rows[:-1] + [rows[-1][2]], views),  # the last input along the last axis
             (rows, [(slice(None, None, -1), slice(None, None, 2))] + [(slice(None), slice(1, None, 2))] * (nin - 1))]
    with np.errstate(all="ignore"):
        for host, index in cases:
            args = [h[i] if h.ndim == 2 else h for h, i in zip(host, index)]
            got = f(*(cuda.to_device(h)[i] if h.ndim == 2 else cuda.to_device(h) for h, i in zip(host, index)))
            got = got if isinstance(got, tuple) else (got,)
            want = _fused_reference(name, *args)
            assert len(got) == nout
            for g, w in zip(got, want):
                g = g.copy_to_host()
                assert g.shape == w.shape and g.dtype == dtype
                assert np.array_equal(bits(g), bits(w)), (name, [a.shape for a in args])


def test_fused_out_and_errors():
    x = cuda.to_device(np.ones((4, 8), np.float32))
    b = cuda.to_device(np.ones(8, np.float32))
    out = cuda.to_device(np.zeros((4, 8), np.float32))
    assert gg.bias_gelu(x, b, out=out) is out
    da, dg = cuda.to_device(np.zeros((4, 8), np.float32)), cuda.to_device(np.zeros((4, 8), np.float32))
    assert gg.geglu_backward(x, x, b, out=(da, dg)) == (da, dg)
    with pytest.raises(ValueError, match="broadcast"):
        gg.bias_gelu(x, cuda.to_device(np.ones(5, np.float32)))
    with pytest.raises(TypeError):
        gg.geglu(x, cuda.to_device(np.ones(8)))
    with pytest.raises(ValueError, match="shape"):
        gg.bias_gelu(x, b, out=cuda.to_device(np.zeros(8, np.float32)))
