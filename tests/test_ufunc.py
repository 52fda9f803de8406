"""NumPy ufunc behaviour: broadcasting, out=, where=, dtypes and bad input."""

import numpy as np
import pytest

import gelu_numba as gn
from _kernels import ALL, BINARY

UNARY_NAMES = [n for n in ALL if n not in BINARY]


def call(name, x, **kw):
    f = getattr(gn, name)
    return f(np.ones_like(x), x, **kw) if name in BINARY else f(x, **kw)


def test_values_at_seed_points():
    assert gn.gelu(-1.0) == pytest.approx(-0.15865525393145707, rel=1e-15)
    assert gn.gelu(2.0) == pytest.approx(1.9544997361036416, rel=1e-15)
    assert gn.gelu_tanh(2.0) == pytest.approx(1.954597694087775, rel=1e-15)


def test_broadcasting_backward():
    dy = np.arange(1.0, 4.0).reshape(3, 1)
    x = np.linspace(-2, 2, 4)
    out = gn.gelu_backward(dy, x)
    assert out.shape == (3, 4)
    assert np.array_equal(out, dy * gn.gelu_grad(x))


def test_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError):
        gn.gelu_backward(np.ones(3), np.ones(4))


@pytest.mark.parametrize("name", ALL)
def test_out_and_in_place(name, dtype):
    x = np.linspace(-5, 5, 101).astype(dtype)
    expect = call(name, x)
    out = np.empty_like(x)
    assert call(name, x, out=out) is out
    assert np.array_equal(out, expect)
    y = x.copy()
    if name in BINARY:
        getattr(gn, name)(np.ones_like(y), y, out=y)
    else:
        getattr(gn, name)(y, out=y)
    assert np.array_equal(y, expect)


def test_where_leaves_other_entries():
    x = np.linspace(-3, 3, 7)
    out = np.full_like(x, 99.0)
    gn.gelu(x, out=out, where=x > 0)
    assert np.array_equal(out[x <= 0], np.full(4, 99.0))
    assert np.array_equal(out[x > 0], gn.gelu(x[x > 0]))


def test_dtype_argument_selects_the_loop():
    x = np.linspace(-3, 3, 7)
    y = gn.gelu(x, dtype=np.float32)
    assert y.dtype == np.float32
    assert np.array_equal(y, gn.gelu(x.astype(np.float32)))


@pytest.mark.parametrize("name", ALL)
def test_zero_d_empty_and_scalars(name, dtype):
    assert call(name, np.array(dtype(0.5))).shape == ()
    assert call(name, np.empty((0, 3), dtype)).shape == (0, 3)
    r = call(name, dtype(-0.5))
    assert isinstance(r, dtype)


def test_python_scalars_are_float64():
    assert isinstance(gn.gelu(1.0), np.float64)
    assert isinstance(gn.gelu(1), np.float64)
    assert isinstance(gn.gelu_backward(1.0, -2.0), np.float64)


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_non_contiguous_inputs(name, dtype):
    base = np.random.default_rng(0).standard_normal((40, 30)).astype(dtype) * 4
    for view in (base[::3, ::2], base.T, base[::-1], np.asfortranarray(base), base[5:, 7]):
        assert np.array_equal(call(name, view), call(name, np.ascontiguousarray(view)))


def test_non_native_byte_order():
    x = np.linspace(-4, 4, 33)
    assert np.array_equal(gn.gelu(x.astype(">f8")), gn.gelu(x))


@pytest.mark.parametrize("kind", [np.int8, np.uint16, np.int32, np.int64, np.uint64, np.bool_])
def test_integers_and_bools_follow_numpy_casting(kind):
    x = np.array([-3, -1, 0, 1, 2]).astype(kind)
    # NumPy picks the first loop (float32, then float64) it can cast to safely.
    target = np.float32 if np.can_cast(kind, np.float32) else np.float64
    y = gn.gelu(x)
    assert y.dtype == target
    assert np.array_equal(y, gn.gelu(x.astype(target)))


def test_float16_rule():
    x = np.linspace(-4, 4, 17).astype(np.float16)
    y = gn.gelu(x)
    assert y.dtype == np.float32  # computed and returned in float32
    assert np.array_equal(y, gn.gelu(x.astype(np.float32)))
    out = np.empty_like(x)
    gn.gelu(x, out=out)  # a float16 out= rounds the float32 result once
    assert np.array_equal(out, y.astype(np.float16))


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1 + 2j]),
        np.array(["1.0"]),
        np.array([1.0], dtype=object),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
    ],
    ids=["complex", "str", "object", "datetime", "timedelta"],
)
@pytest.mark.parametrize("name", ["gelu", "gelu_grad", "gelu_backward"])
def test_unsupported_dtypes_raise_type_error(bad, name):
    with pytest.raises(TypeError, match="not supported"):
        call(name, bad)


def test_out_untouched_on_error():
    out = np.full(4, 7.0)
    with pytest.raises(ValueError):
        gn.gelu(np.ones(3), out=out)
    with pytest.raises(TypeError):
        gn.gelu(np.array([1j, 2j, 3j, 4j]), out=out)
    with pytest.raises(TypeError):
        gn.gelu(np.ones(4), out=np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError):
        gn.gelu_backward(np.ones(3), np.ones(4), out=out)
    assert np.array_equal(out, np.full(4, 7.0))
