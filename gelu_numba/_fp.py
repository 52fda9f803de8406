"""Floating-point building blocks shared by every kernel and every target.

Three primitives need more than plain arithmetic:

``fma(a, b, c)``
    a*b + c with a single rounding.
``scale2(y, k)``
    y * 2**k for an integer-valued float k, correctly rounded even when the
    result is subnormal and 2**k itself is not representable.
``pick(x, for_float32, for_float64)``
    the constant (or tuple of constants) for the format of x, chosen at
    compile time.

Each is a plain Python function, exact on NumPy scalars, so the kernels can run
as Python (the CUDA simulator does that).  :func:`register_primitives` binds
compiled implementations for a Numba target: it runs here for the CPU and in
``gelu_numba.gpu`` for CUDA.  The LLVM code generators are shared.

Everything else in this module, and every formula in ``_scalar.py``, is
written once with those primitives and marked :func:`jitable`.  Constants are
cast through the argument's type (``T = type(x); T(0.5)``) so float32 code
never widens to float64.
"""

import fractions
import functools
import math

import numpy as np
from numba import types as _cpu_types
from numba.extending import intrinsic as _cpu_intrinsic
from numba.extending import overload as _cpu_overload
from numba.extending import register_jitable as _cpu_register_jitable

from . import _coeffs as C

#: Every function marked jitable, in definition order; ``gelu_numba.gpu``
#: registers them with the CUDA target.
JITABLE = []

# On the CPU every helper is inlined (LLVM alwaysinline): the ufunc loop must
# end up as one straight-line body to vectorise, and Numba's default inliner
# stops at the size of these functions.  The NumPy error model drops the
# ZeroDivisionError branch a float division carries under Python semantics.
CPU_JIT_OPTIONS = {"error_model": "numpy", "forceinline": True}


def jitable(fn):
    """Make a Python function callable from compiled code on every target."""
    _cpu_register_jitable(**CPU_JIT_OPTIONS)(fn)
    JITABLE.append(fn)
    return fn


# --------------------------------------------------------------------------
# Primitives: Python reference implementations.


def _exact(v):
    return fractions.Fraction(float(v))


def _round_exact(q, ty):
    """Correctly round the rational q to the NumPy float type ty."""
    near = ty(float(q))  # at most one rounding away from the answer
    if not np.isfinite(near):
        return near
    best = near
    for cand in (np.nextafter(near, ty(-np.inf)), np.nextafter(near, ty(np.inf))):
        if not np.isfinite(cand):
            continue
        d_best, d_cand = abs(_exact(best) - q), abs(_exact(cand) - q)
        if d_cand < d_best or (
            d_cand == d_best and int(np.frombuffer(cand.tobytes(), f"u{cand.itemsize}")[0]) % 2 == 0
        ):
            best = cand
    return best


def fma(a, b, c):
    """a*b + c rounded once (Python reference; compiled targets use hardware FMA)."""
    ty = type(a) if isinstance(a, (np.float32, np.float64)) else np.float64
    a, b, c = ty(a), ty(b), ty(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        with np.errstate(all="ignore"):
            return ty(a * b + c)
    exact = _exact(a) * _exact(b) + _exact(c)
    if exact == 0:
        # IEEE 754: an exact zero sum is -0 only when both addends are -0.
        product_negative = math.copysign(1.0, a) * math.copysign(1.0, b) < 0
        both_negative_zeros = a * b == 0 and c == 0 and product_negative and math.copysign(1.0, c) < 0
        return ty(-0.0) if both_negative_zeros else ty(0.0)
    return _round_exact(exact, ty)


def scale2(y, k):
    """y * 2**k, correctly rounded; k is an integer-valued float."""
    ty = type(y) if isinstance(y, (np.float32, np.float64)) else np.float64
    with np.errstate(all="ignore"):
        return ty(np.ldexp(ty(y), int(k)))


def pick(x, for_float32, for_float64):
    """The constant for the format of x: float32 or float64."""
    return for_float32 if isinstance(x, np.float32) else for_float64


def horner(y, coeffs):
    """sum(coeffs[j] * y**j), lowest order first, by Horner's rule with FMA."""
    T = type(y) if isinstance(y, (np.float32, np.float64)) else np.float64
    acc = T(coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = fma(acc, y, T(c))
    return acc


# Compiled Horner is unrolled at the source level: a tuple indexed by a loop
# variable compiles to a bounds-checked switch, which LLVM will not unroll
# for the longer polynomials, and a loop that may raise does not vectorise.
_HORNER_TEMPLATE = """
def horner_{n}(y, coeffs):
    T = type(y)
    acc = T(coeffs[{last}])
{steps}
    return acc
"""


@functools.cache
def _unrolled_horner(n):
    steps = "".join(f"    acc = fma(acc, y, T(coeffs[{j}]))\n" for j in range(n - 2, -1, -1))
    namespace = {"fma": fma}
    exec(_HORNER_TEMPLATE.format(n=n, last=n - 1, steps=steps), namespace)  # noqa: S102
    return namespace[f"horner_{n}"]


# --------------------------------------------------------------------------
# Primitives: compiled implementations (llvmlite code generators).


def _fma_codegen(context, builder, sig, args):
    return builder.fma(*args)


def _scale2_codegen(context, builder, sig, args):
    from llvmlite import ir

    y, k = args
    if isinstance(y.type, ir.DoubleType):
        ity, mant, bias = ir.IntType(64), 52, 1023
    else:
        ity, mant, bias = ir.IntType(32), 23, 127
    ki = builder.fptosi(k, ity)
    # 2**k in two factors, each a normal number for |k| < 2 * emax, so
    # y * 2**k1 is exact and the second product rounds once.
    k1 = builder.ashr(ki, ity(1))
    k2 = builder.sub(ki, k1)

    def power_of_two(e):
        bits = builder.shl(builder.add(e, ity(bias)), ity(mant))
        return builder.bitcast(bits, y.type)

    return builder.fmul(builder.fmul(y, power_of_two(k1)), power_of_two(k2))


def _is_float(t):
    return getattr(t, "bitwidth", None) in (32, 64) and "float" in str(t)


def register_primitives(overload, intrinsic, jit_options=None):
    """Bind fma, scale2, horner and pick for the target owning these decorators."""

    @intrinsic
    def _fma(typingctx, a, b, c):
        if _is_float(a) and a == b == c:
            return a(a, b, c), _fma_codegen
        return None

    @intrinsic
    def _scale2(typingctx, y, k):
        if _is_float(y) and y == k:
            return y(y, k), _scale2_codegen
        return None

    @overload(fma, jit_options=jit_options)
    def _ov_fma(a, b, c):
        if _is_float(a) and a == b == c:
            return lambda a, b, c: _fma(a, b, c)
        return None

    @overload(scale2, jit_options=jit_options)
    def _ov_scale2(y, k):
        if _is_float(y) and y == k:
            return lambda y, k: _scale2(y, k)
        return None

    @overload(horner, jit_options=jit_options)
    def _ov_horner(y, coeffs):
        if _is_float(y) and len(coeffs) > 0:
            return _unrolled_horner(len(coeffs))
        return None

    @overload(pick, jit_options=jit_options)
    def _ov_pick(x, for_float32, for_float64):
        if getattr(x, "bitwidth", None) == 32:
            return lambda x, for_float32, for_float64: for_float32
        return lambda x, for_float32, for_float64: for_float64


register_primitives(_cpu_overload, _cpu_intrinsic, CPU_JIT_OPTIONS)
del _cpu_types


# --------------------------------------------------------------------------
# Double-word arithmetic.  A pair (hi, lo) stands for hi + lo with
# |lo| <= ulp(hi)/2; the algorithms are the classical error-free
# transformations (Dekker, Knuth) and their FMA forms.


@jitable
def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@jitable
def fast_two_sum(a, b):
    """two_sum for |a| >= |b| (or a == 0)."""
    s = a + b
    e = b - (s - a)
    return s, e


@jitable
def two_prod(a, b):
    """(p, e) with p = fl(a * b) and p + e = a * b exactly (barring underflow)."""
    p = a * b
    return p, fma(a, b, -p)


@jitable
def dw_mul(a_hi, a_lo, b_hi, b_lo):
    """(a_hi + a_lo) * (b_hi + b_lo) as a double word."""
    p, e = two_prod(a_hi, b_hi)
    e = fma(a_hi, b_lo, fma(a_lo, b_hi, e))
    return fast_two_sum(p, e)


@jitable
def dw_add(a_hi, a_lo, b_hi, b_lo):
    """(a_hi + a_lo) + (b_hi + b_lo) as a double word."""
    s, e = two_sum(a_hi, b_hi)
    e = e + (a_lo + b_lo)
    return fast_two_sum(s, e)


@jitable
def dw_div(a_hi, a_lo, b_hi, b_lo):
    """(a_hi + a_lo) / (b_hi + b_lo) as a double word, one division."""
    T = type(a_hi)
    inv = T(1) / b_hi
    q = a_hi * inv
    # The remainder a_hi - q*b_hi is exact under FMA.
    r = fma(-q, b_hi, a_hi) + fma(-q, b_lo, a_lo)
    return fast_two_sum(q, r * inv)


@jitable
def dw_poly(y, lead, coeffs):
    """lead + y * (c0 + c1 y + ...) as a double word.

    `lead` is a double-word constant; the tail is summed in working precision
    and only its last product and the final sum are carried exactly, which
    keeps the rounding noise to u * |tail| / |result|.
    """
    T = type(y)
    tail = horner(y, coeffs)
    m, m_err = two_prod(y, tail)
    s, s_err = two_sum(T(lead[0]), m)
    return fast_two_sum(s, s_err + (m_err + T(lead[1])))


@jitable
def exp_dw(a_hi, a_lo):
    """exp(a_hi + a_lo) as (k, p_hi, p_lo): 2**k * (p_hi + p_lo).

    For a_hi <= 0 down to -2 * emax * ln 2 (callers clamp).  k is an
    integer-valued float and p lies in [0.70, 1.42]; its relative error is
    about 2**-p-5, so callers can scale products by 2**k at the very end and
    keep full accuracy in the subnormal range.
    """
    T = type(a_hi)
    c = pick(a_hi, C.COMMON_F32, C.COMMON_F64)
    shift = T(pick(a_hi, 12582912.0, 6755399441055744.0))  # 1.5 * 2**(p-1)
    k = (a_hi * T(c.log2e) + shift) - shift  # round to nearest integer
    r_hi = fma(-k, T(c.ln2[0]), a_hi)  # exact: k * ln2[0] has spare bits
    # k * ln2[1] is not small next to ulp(r_hi) (ln2[0] keeps few bits), so
    # renormalise before the polynomial sees r_hi.
    r_hi, r_lo = two_sum(r_hi, fma(-k, T(c.ln2[1]), a_lo))
    t2 = r_hi * r_hi * horner(r_hi, c.exp)
    q, q_err = fast_two_sum(r_hi, t2)
    p_hi, p_err = fast_two_sum(T(1), q)
    p_lo = fma(r_lo, p_hi, p_err + q_err)
    return k, p_hi, p_lo


@jitable
def clamp(x, lo, hi):
    """min(max(x, lo), hi) that lets NaN through."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x
