"""The fused forms (bias-GELU, GeGLU, forward and backward) give the bits of
the unfused expression, on every loop path and target.

The contract (gelu_numba.core.fused): for operands of one float dtype,

    bias_gelu(x, b)              == f(x + b)
    bias_gelu_backward(dy, x, b) == f_backward(dy, x + b)
    geglu(a, g)                  == f(a) * g
    geglu_backward(dy, a, g)     == (f_backward(dy * g, a), dy * f(a))

bit for bit, the sums and products rounded in the operands' format, a NaN
sum or product being its first operand's NaN (quieted) where that is one.
The reference below computes exactly that with NumPy and the single forms.

The AVX2 and SSE2-only builds are compared with the host's in
test_vectorized.py (test_same_bits_on_every_cpu covers the fused names).
"""

import pickle

import numpy as np
import pytest

import gelu_numba as gn
import gelu_numba.parallel as gp
from gelu_numba.core import runtime
from gelu_numba.core.names import ARITY, FUSED, parse_fused

UINT = {np.float32: np.uint32, np.float64: np.uint64}


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(UINT[a.dtype.type])


#: x86's default NaN, what an invalid operation (0 * inf, inf - inf) gives
#: there; ARM's has no sign bit.  The contract is x86's NaNs on every CPU.
X86_NAN = {np.float32: np.uint32(0xFFC00000).view(np.float32), np.float64: np.uint64(0xFFF8000000000000).view(np.float64)}


def _made(result, *inputs):
    """result, with x86's default NaN where it is a NaN that no input was."""
    made = np.isnan(result)
    for v in inputs:
        made &= ~np.isnan(v)
    return np.where(made, X86_NAN[result.dtype.type], result)


def _first_nan(p, result, q):
    """p op q (`result`) with x86's NaNs: p's NaN quieted where p is a NaN,
    else x86's default NaN where neither operand is one."""
    return np.where(np.isnan(p), p + p.dtype.type(0), _made(result, p, q))


def reference(name, *args):
    """The unfused expression, by NumPy and the single forms (a tuple), with
    x86's NaNs (on x86, what NumPy gives already)."""
    kind, form = parse_fused(name)
    f, fb = getattr(gn, form), getattr(gn, form + "_backward")
    args = [np.asarray(a) for a in args]
    with np.errstate(all="ignore"):
        if kind == "bias":
            x, b = args
            return (f(_first_nan(x, x + b, b)),)
        if kind == "bias_backward":
            dy, x, b = args
            h = _first_nan(x, x + b, b)
            return (_made(fb(dy, h), dy, h),)
        if kind == "geglu":
            a, g = args
            y = f(a)
            return (_first_nan(y, y * g, g),)
        dy, a, g = args
        t = _first_nan(dy, dy * g, g)
        return _made(fb(t, a), t, a), _first_nan(dy, dy * f(a), f(a))


def call(f, *args, **kwargs):
    with np.errstate(all="ignore"):
        out = f(*args, **kwargs)
    return out if isinstance(out, tuple) else (out,)


def assert_same(name, got, want, what=""):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (name, what, i, g.shape, w.shape, g.dtype, w.dtype)
        differ = np.nonzero(bits(g).ravel() != bits(w).ravel())[0]
        assert differ.size == 0, (f"{name} {what} output {i}: {differ.size} elements differ, the first at "
                                  f"{differ[0]}: {hex(int(bits(g).ravel()[differ[0]]))} against "
                                  f"{hex(int(bits(w).ravel()[differ[0]]))}")


def sample(dtype, n, seed):
    """A dense, mixed sample: random bit patterns (NaN payloads, quiet and
    signalling, subnormals, infinities), N(0, 3^2), the left tail, the
    neighbourhood of the minimum, small values, and the special values."""
    rng = np.random.default_rng(seed)
    uint = UINT[dtype]
    parts = [
        rng.integers(0, np.iinfo(uint).max, n // 5, dtype=uint, endpoint=True).view(dtype),
        rng.normal(0.0, 3.0, n // 5).astype(dtype),
        -rng.uniform(0.0, 40.0, n // 5).astype(dtype),
        rng.uniform(-1.1, -0.4, n // 5).astype(dtype),
        (rng.normal(0.0, 1.0, n // 5) * 10.0 ** rng.integers(-40, 3, n // 5)).astype(dtype),
    ]
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45], dtype)
    payloads = np.array([0x7FC12345, 0xFFD54321, 0x7F800001, 0xFF812345] if dtype == np.float32 else
                        [0x7FF8123456789ABC, 0xFFF80000DEADBEEF, 0x7FF0000000000001, 0xFFF0123456789ABC],
                        uint).view(dtype)
    # NaNs, quiet and signalling, both signs, random payloads: 5 %, so that
    # independent samples have NaNs at the same positions (the first
    # operand's NaN against the second's)
    exponent = np.array(0x7F800000 if dtype == np.float32 else 0x7FF0000000000000, uint)
    nans = (rng.integers(1, exponent, n // 20, dtype=uint) & ~exponent) | exponent
    nans |= rng.integers(0, 2, nans.size, dtype=uint) << uint(8 * np.dtype(uint).itemsize - 1)
    parts.append(nans.view(dtype))
    rest = rng.permutation(np.concatenate(parts))
    x = np.concatenate([special, payloads, rest, rest])[:n]
    return rng.permutation(x)


def operands(name, dtype, n, seed=0):
    """The inputs of `name`, each its own dense sample of n elements (and
    every special value against every other somewhere: the samples are
    permuted independently)."""
    nin = ARITY[parse_fused(name)[0]][0]
    return [sample(dtype, n, seed + 17 * i) for i in range(nin)]


# -- the contract, on long contiguous operands (the threaded path for gp) ----------


@pytest.mark.parametrize("module", [gn, gp], ids=["serial", "parallel"])
@pytest.mark.parametrize("name", FUSED)
def test_same_bits_as_the_unfused_expression(name, module, dtype):
    args = operands(name, dtype, 60_013)
    runtime.reset_paths()
    got = call(getattr(module, name), *args)
    assert runtime.paths()["threaded" if module is gp else "unit"] == 1, runtime.paths()
    assert_same(name, got, reference(name, *args), module.__name__)


def test_the_reference_is_not_the_kernel_alone():
    """The reference differs from a plausible wrong fusion: the sum not
    rounded before the kernel (float32 operands computed in float64), and
    a product's NaN taken from the second operand."""
    x, b = operands("bias_gelu", np.float32, 60_013)
    with np.errstate(all="ignore"):
        wrong = gn.gelu((x.astype(np.float64) + b.astype(np.float64))).astype(np.float32)
    assert not np.array_equal(bits(wrong), bits(reference("bias_gelu", x, b)[0]))
    a, g = operands("geglu", np.float32, 60_013)
    with np.errstate(all="ignore"):
        second = np.where(np.isnan(g), g + np.float32(0), gn.gelu(a) * g)
    assert not np.array_equal(bits(second), bits(reference("geglu", a, g)[0]))


# -- every path: rows, broadcasts, strides, where=, aliasing -------------------------


@pytest.mark.parametrize("module", [gn, gp], ids=["serial", "parallel"])
@pytest.mark.parametrize("name", FUSED)
def test_a_bias_along_the_last_axis(name, module, dtype):
    """The common case: the last input (b, or g) along the last axis of a
    2-D first input.  gelu_numba.parallel runs it through its rows gufunc,
    threaded; NumPy calls the serial ufunc once per row."""
    args = operands(name, dtype, 96 * 1037)
    args = [a.reshape(96, 1037) for a in args]
    args[-1] = args[-1][7]
    runtime.reset_paths()
    got = call(getattr(module, name), *args)
    if module is gp:
        assert runtime.paths()["threaded"] == 1, runtime.paths()
    assert_same(name, got, reference(name, *args), "bias along the last axis")


@pytest.mark.parametrize("name", FUSED)
def test_broadcast_operands(name, dtype):
    """Each input broadcast in turn: a scalar (stride 0 over the whole
    call), and a bias over the channel axis of (batch, channel, time), as a
    Conv1d's, constant along each inner row."""
    nin = ARITY[parse_fused(name)[0]][0]
    args = operands(name, dtype, 4 * 33 * 257)
    for module in (gn, gp):
        f = getattr(module, name)
        for i in range(nin):
            for value in (dtype(-0.7517915246935645), dtype(np.nan), dtype(2.5)):
                trial = list(args)
                trial[i] = value
                assert_same(name, call(f, *trial), reference(name, *trial), f"input {i} = {value}")
            trial = [a.reshape(4, 33, 257) for a in args]
            trial[i] = args[i][:33].reshape(33, 1)
            assert_same(name, call(f, *trial), reference(name, *trial), f"input {i} along the channels")


@pytest.mark.parametrize("name", FUSED)
def test_strided_operands_and_outputs(name, dtype):
    """Non-unit strides on inputs and outputs (gathered into and scattered
    from buffers on the stack, a chunk at a time), negative ones included,
    serial and threaded."""
    kind = parse_fused(name)[0]
    nin, nout = ARITY[kind]
    n = 30_011
    args = operands(name, dtype, 3 * n)
    views = [a[::3] for a in args[:-1]] + [args[-1][::-3][:n]]
    for module in (gn, gp):
        f = getattr(module, name)
        outs = tuple(np.full(2 * n, 7, dtype)[::2] for _ in range(nout))
        got = call(f, *views, out=outs)
        assert all(g.base is o.base for g, o in zip(got, outs))
        assert_same(name, got, reference(name, *views), "strided")
        assert_same(name, [np.full(2 * n, 7, dtype)[1::2]] * nout, [o.base[1::2] for o in outs], "left alone")


@pytest.mark.parametrize("name", FUSED)
def test_every_length_and_offset(name, dtype):
    """Lengths 0..40 at offsets 0..3 elements (the SIMD loops' heads,
    masked remainders and whole blocks): each element's bits are those of
    the unfused expression."""
    args = operands(name, dtype, 4096)
    want = reference(name, *args)
    f = getattr(gn, name)
    for offset in range(4):
        for n in range(41):
            trial = [a[offset:offset + n] for a in args]
            got = call(f, *trial)
            assert_same(name, got, [w[offset:offset + n] for w in want], f"offset {offset} length {n}")


@pytest.mark.parametrize("module", [gn, gp], ids=["serial", "parallel"])
@pytest.mark.parametrize("name", FUSED)
def test_out_may_be_any_input(name, module, dtype):
    """out= the very array of an input (NumPy hands aliased operands to the
    loop as they are): each output on each input in turn, long enough for
    the threaded path."""
    nin, nout = ARITY[parse_fused(name)[0]]
    args = operands(name, dtype, 40_009)
    want = reference(name, *args)
    f = getattr(module, name)
    for i in range(nin):
        for j in range(nout):
            trial = [a.copy() for a in args]
            outs = [np.empty_like(trial[0]) for _ in range(nout)]
            outs[j] = trial[i]
            got = call(f, *trial, out=tuple(outs))
            assert got[j] is trial[i]
            assert_same(name, got, want, f"output {j} on input {i}")


@pytest.mark.parametrize("name", ["bias_gelu", "geglu_tanh", "bias_gelu_sigmoid_backward", "geglu_backward"])
def test_where(name, dtype):
    """where= writes the selected elements only, serial and parallel."""
    nout = ARITY[parse_fused(name)[0]][1]
    args = operands(name, dtype, 20_000)
    mask = np.random.default_rng(5).random(20_000) < 0.5
    want = reference(name, *args)
    for module in (gn, gp):
        outs = tuple(np.full(20_000, -3, dtype) for _ in range(nout))
        got = call(getattr(module, name), *args, out=outs, where=mask)
        for g, w in zip(got, want):
            assert np.array_equal(bits(g[mask]), bits(w[mask]))
            assert np.all(g[~mask] == -3)


def test_geglu_on_the_halves_of_a_concatenated_projection(dtype):
    """T5's and Gemma's gated FFN: a and g are the two halves of one
    projection along the last axis (rows with a stride of 2d between them);
    gelu_numba.parallel threads over the rows."""
    rng = np.random.default_rng(2)
    h = rng.normal(0, 3, (3, 64, 2 * 1000)).astype(dtype)
    a, g = h[..., :1000], h[..., 1000:]
    dy = rng.normal(0, 1, a.shape).astype(dtype)
    for name in ("geglu", "geglu_tanh", "geglu_backward"):
        args = (a, g) if name != "geglu_backward" else (dy, a, g)
        for module in (gn, gp):
            runtime.reset_paths()
            got = call(getattr(module, name), *args)
            assert_same(name, got, reference(name, *args), module.__name__)
            if module is gp:
                assert runtime.paths()["threaded"] == 1, runtime.paths()


# -- the API -------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUSED)
def test_the_serial_forms_are_ufuncs_and_pickle(name):
    nin, nout = ARITY[parse_fused(name)[0]]
    f = getattr(gn, name)
    assert isinstance(f, np.ufunc) and f.__name__ == name
    assert (f.nin, f.nout) == (nin, nout)
    assert f.types == ["f" * nin + "->" + "f" * nout, "d" * nin + "->" + "d" * nout]
    assert pickle.loads(pickle.dumps(f)) is f
    p = getattr(gp, name)
    assert isinstance(p.ufunc, np.ufunc) and (p.nin, p.nout, p.types) == (f.nin, f.nout, f.types)
    assert pickle.loads(pickle.dumps(p)) is p


def test_bad_input_is_refused_and_out_left_alone():
    x = np.ones((4, 8), np.float32)
    out = np.full((4, 8), 5, np.float32)
    for module in (gn, gp):
        with pytest.raises(TypeError):
            module.bias_gelu(x.astype(np.complex64), np.ones(8, np.float32), out=out)
        with pytest.raises(ValueError):
            module.bias_gelu(x, np.ones(7, np.float32), out=out)
        with pytest.raises(ValueError):
            module.geglu_backward(x, x, np.ones(3, np.float32), out=(out, np.empty_like(out)))
        assert np.all(out == 5)


def test_other_dtypes_follow_numpy_casting():
    """float16 and small integers compute in float32, wider integers in
    float64, as for the single forms; a mix of float32 and float64 in
    float64."""
    x = np.array([-1.5, 0.25, 3.0], np.float16)
    b = np.float16(0.5)
    y = gn.bias_gelu(x, b)
    assert y.dtype == np.float32
    assert np.array_equal(y, gn.gelu(x.astype(np.float32) + np.float32(b)))
    assert gn.bias_gelu(np.arange(3), 1).dtype == np.float64
    assert gp.geglu(np.ones(3, np.float32), np.ones(3)).dtype == np.float64


def test_flags_from_threaded_blocks_reach_the_caller():
    """A subnormal result raises "underflow" in the caller's thread, from
    whichever thread computed it (the threaded fused loop merges its
    blocks' flags, as the single forms' loops do)."""
    n = 100_000
    x = np.zeros(n, np.float32)
    x[-3] = -13.5  # gelu(-13.5) = -1.0e-40: subnormal in float32
    b = np.zeros(n, np.float32)
    runtime.reset_paths()
    with np.errstate(under="raise"):
        with pytest.raises(FloatingPointError):
            gp.bias_gelu(x, b)
    assert runtime.paths()["threaded"] == 1
    with np.errstate(under="raise"):
        gp.bias_gelu(x[:-5], b[:-5])  # no subnormal: nothing raised
