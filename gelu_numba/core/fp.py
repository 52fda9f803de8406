"""Floating-point building blocks shared by every kernel and every target.

Primitives that need more than plain arithmetic, each a plain Python function
(exact on NumPy scalars, so the kernels can run as Python, as the CUDA
simulator does) with compiled implementations bound per target by
:func:`register_primitives`:

``fma(a, b, c)``
    a*b + c with a single rounding.
``scale2(y, k)``
    y * 2**k for an integer-valued float k, correctly rounded even when the
    result is subnormal and 2**k itself is not representable.
``scale2_in_range(y, k)``
    the same for k within the format's normal exponents (2**k a normal
    number): one multiplication, a single rounding.
``poly(y, coeffs)``
    sum(coeffs[j] * y**j), unrolled (Estrin's scheme) at the source level.
``pick(x, for_float32, for_float64)``
    the constant (or table) for the format of x, chosen at compile time.
``policy(x)``, ``common(x)``
    the precision policy of x's kernels (DW: every format computed in
    itself, in double word) and their shared constants.
``cpu_float32(x)``, ``cpu_float32_kernel(name, *args)``
    whether x is float32 in CPU code, which has an algorithm of its own
    (``vector32``), and that algorithm's scalar emission.  On CUDA, and in
    plain Python (which stands in for CUDA in the simulator), every format
    follows the formulas.

Everything else here is double-word arithmetic, written once, with a ``dw``
switch: with ``dw`` false each operation is the plain one and its low part
is zero, and LLVM removes the compensation it does not need.  ``formulas``
passes each call the switch its step asks for: ``double_word(p)`` for
ordinary steps, ``exact_splits(p)`` for the critical ones (both true for
DW, the one policy left: the CPU's float32-in-float64 policy and the
experimental float32-in-float32 one were retired when float32 on the CPU
got its own algorithm).  Constants are cast
through the argument's type (``T = type(x); T(0.5)``) so float32 code never
widens to float64 by accident.
"""

import fractions
import functools
import math

import numpy as np
from numba.extending import intrinsic as _cpu_intrinsic
from numba.extending import overload as _cpu_overload
from numba.extending import register_jitable as _cpu_register_jitable

from . import coefficients as C

#: Every function marked jitable, in definition order; ``gelu_numba.gpu``
#: registers them with the CUDA target.
JITABLE = []

# On the CPU every helper is inlined (LLVM alwaysinline): the ufunc loop must
# end up as one straight-line body to vectorise, and Numba's default inliner
# stops at the size of these functions.  The NumPy error model drops the
# ZeroDivisionError branch a float division carries under Python semantics.
CPU_JIT_OPTIONS = {"error_model": "numpy", "forceinline": True}


#: (public function, the formula it calls): ``gelu_numba.scalar``'s checked
#: wrappers, whose compiled calls compile the formula; registered for the
#: CPU when made and for every target set up since (:func:`add_target`).
PUBLIC = []
_TARGETS = []


def overload_public(public, fn, overload, jit_options=None):
    """Compiled calls of `public` compile `fn`, for float arguments only."""
    from numba.core import types

    from .names import BINARY

    def floats(*tys):
        return all(isinstance(t, types.Float) for t in tys)

    options = {} if jit_options is None else {"jit_options": jit_options}
    if fn.__name__ in BINARY:

        @overload(public, **options)
        def _ov(dy, x):
            return fn if floats(dy, x) else None

    else:

        @overload(public, **options)
        def _ov(x):
            return fn if floats(x) else None


def register_public(public, fn):
    """Register a public wrapper of `fn` with the CPU and the set-up targets."""
    PUBLIC.append((public, fn))
    overload_public(public, fn, _cpu_overload, CPU_JIT_OPTIONS)
    for overload in _TARGETS:
        overload_public(public, fn, overload)


def add_target(overload):
    """A target (CUDA) set up: the public wrappers made so far, and those made
    later, compile there too."""
    _TARGETS.append(overload)
    for public, fn in PUBLIC:
        overload_public(public, fn, overload)


def jitable(fn):
    """Make a Python function callable from compiled code on every target."""
    _cpu_register_jitable(**CPU_JIT_OPTIONS)(fn)
    JITABLE.append(fn)
    return fn


# --------------------------------------------------------------------------
# Primitives: Python reference implementations.


def _float_type(v):
    return type(v) if isinstance(v, (np.float32, np.float64)) else np.float64


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
    ty = _float_type(a)
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
    ty = _float_type(y)
    with np.errstate(all="ignore"):
        return ty(np.ldexp(ty(y), int(k)))


def scale2_in_range(y, k):
    """y * 2**k, correctly rounded, for 2**k a normal number."""
    return scale2(y, k)


def pick(x, for_float32, for_float64):
    """The constant for the format of x: float32 or float64."""
    return for_float32 if isinstance(x, np.float32) else for_float64


#: Precision policies: how a format's kernels are evaluated.
#: DW: in the format itself, double word throughout (below 1 ulp): float64
#: on the CPU, every format on CUDA.
DW = 2


def policy(x):
    """The policy of x's kernels on the target (Python: DW, as CUDA)."""
    return DW


@jitable
def double_word(p):
    """Whether policy p carries low parts through every operation."""
    return p == DW


@jitable
def exact_splits(p):
    """Whether policy p computes the steps marked critical exactly."""
    return p == DW


def common(x):
    """The shared constants for x's kernels under the target's policy."""
    return C.COMMON_F32 if isinstance(x, np.float32) else C.COMMON_F64


_POLY_TEMPLATE = """
def poly_{n}(y, coeffs):
    T = type(y)
{body}
"""


@functools.cache
def _unrolled_poly(n):
    """Estrin's scheme for n coefficients, as straight-line source.

    Pairs c[2i] + c[2i+1] y, then pairs of pairs with y^2, y^4, ...: the
    dependency chain is about 2 log2(n) operations long instead of Horner's
    n, which matters in a loop that is otherwise bound by FMA latency.
    Compiled Horner over a tuple would also need a loop variable index, and
    that compiles to a bounds-checked switch LLVM does not unroll.
    """
    lines = []
    terms = []
    for i in range(0, n, 2):
        if i + 1 < n:
            lines.append(f"    p{i} = fma(T(coeffs[{i + 1}]), y, T(coeffs[{i}]))")
        else:
            lines.append(f"    p{i} = T(coeffs[{i}])")
        terms.append(f"p{i}")
    power, level = "y", 0
    while len(terms) > 1:
        level += 1
        lines.append(f"    y{level} = {power} * {power}")
        power = f"y{level}"
        merged = []
        for j in range(0, len(terms), 2):
            if j + 1 < len(terms):
                name = f"q{level}_{j}"
                lines.append(f"    {name} = fma({terms[j + 1]}, {power}, {terms[j]})")
                merged.append(name)
            else:
                merged.append(terms[j])
        terms = merged
    lines.append(f"    return {terms[0]}")
    namespace = {"fma": fma}
    exec(_POLY_TEMPLATE.format(n=n, body="\n".join(lines)), namespace)  # noqa: S102
    return namespace[f"poly_{n}"]


def poly(y, coeffs):
    """sum(coeffs[j] * y**j), lowest order first (Estrin's scheme, FMA)."""
    return _unrolled_poly(len(coeffs))(y, coeffs)


# --------------------------------------------------------------------------
# Primitives: compiled implementations (llvmlite code generators).


def _fma_codegen(context, builder, sig, args):
    return builder.fma(*args)


def _cpu_fma_codegen(context, builder, sig, args):
    """The CPU's fma: the instruction, or libm's fma where the target has no
    FMA but this CPU does (glibc runs the instruction), or plain arithmetic
    with the same result for float64 where neither has it (``simd.soft_fma``;
    glibc's software fma takes ~150 ns, ~15 us per float64 GELU)."""
    from llvmlite import ir

    from . import simd, vector32

    if isinstance(args[0].type, ir.DoubleType) and vector32.fma_emulated():
        return simd.soft_fma(builder, *args)
    return builder.fma(*args)


def _power_of_two(builder, y, ki):
    """2**ki as a float of y's type, for an integer ki in the normal exponent
    range: the biased exponent shifted into place."""
    from llvmlite import ir

    ity, mant, bias = (ir.IntType(64), 52, 1023) if isinstance(y.type, ir.DoubleType) else (ir.IntType(32), 23, 127)
    return builder.bitcast(builder.shl(builder.add(ki, ity(bias)), ity(mant)), y.type)


def _int_of(builder, y, k):
    from llvmlite import ir

    return builder.fptosi(k, ir.IntType(64) if isinstance(y.type, ir.DoubleType) else ir.IntType(32))


def _scale2_codegen(context, builder, sig, args):
    y, k = args
    ki = _int_of(builder, y, k)
    # 2**k in two factors, each a normal number for |k| < 2 * emax, so
    # y * 2**k1 is exact and the second product rounds once.
    k1 = builder.ashr(ki, ki.type(1))
    k2 = builder.sub(ki, k1)
    return builder.fmul(builder.fmul(y, _power_of_two(builder, y, k1)), _power_of_two(builder, y, k2))


def _scale2_in_range_codegen(context, builder, sig, args):
    y, k = args
    return builder.fmul(y, _power_of_two(builder, y, _int_of(builder, y, k)))


def cpu_float32(x):
    """Whether x is computed by the CPU's float32 algorithm (``vector32``):
    float32 in CPU code (Python: no, as on CUDA)."""
    return False


def cpu_float32_kernel(name, *args):
    """Kernel `name` of ``vector32`` at float32 args, by its scalar emission:
    compiled CPU code only (Python never asks: cpu_float32 is False there)."""
    raise TypeError(f"{name}: the CPU's float32 algorithm runs in compiled code only")


def _is_float(t):
    return getattr(t, "bitwidth", None) in (32, 64) and "float" in str(t)


def register_primitives(overload, intrinsic, jit_options=None, cpu=False):
    """Bind the primitives for the target that owns these decorators;
    `cpu`: float32 kernels take the CPU's float32 algorithm (``vector32``)."""

    @intrinsic
    def _fma(typingctx, a, b, c):
        if _is_float(a) and a == b == c:
            return a(a, b, c), (_cpu_fma_codegen if cpu else _fma_codegen)
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

    @intrinsic
    def _scale2_in_range(typingctx, y, k):
        if _is_float(y) and y == k:
            return y(y, k), _scale2_in_range_codegen
        return None

    @overload(scale2_in_range, jit_options=jit_options)
    def _ov_scale2_in_range(y, k):
        if _is_float(y) and y == k:
            return lambda y, k: _scale2_in_range(y, k)
        return None

    @overload(poly, jit_options=jit_options)
    def _ov_poly(y, coeffs):
        if _is_float(y) and len(coeffs) > 0:
            return _unrolled_poly(len(coeffs))
        return None

    @overload(pick, jit_options=jit_options)
    def _ov_pick(x, for_float32, for_float64):
        if getattr(x, "bitwidth", None) == 32:
            return lambda x, for_float32, for_float64: for_float32
        return lambda x, for_float32, for_float64: for_float64

    wide = cpu

    @overload(policy, jit_options=jit_options)
    def _ov_policy(x):
        return lambda x: DW

    @overload(cpu_float32, jit_options=jit_options)
    def _ov_cpu_float32(x):
        value = wide and getattr(x, "bitwidth", None) == 32
        return lambda x: value

    @overload(cpu_float32_kernel, jit_options=jit_options, prefer_literal=True)
    def _ov_cpu_float32_kernel(name, *args):
        from numba import types

        if not isinstance(name, types.StringLiteral):
            return None
        kind = name.literal_value
        if not (wide and all(getattr(a, "bitwidth", None) == 32 for a in args)):
            return lambda name, *args: args[-1]  # never called (cpu_float32 is False)
        from . import vector32

        if len(args) == 1:
            return lambda name, *args: vector32.unary(kind, args[0])
        return lambda name, *args: vector32.binary(kind, args[0], args[1])

    @overload(common, jit_options=jit_options)
    def _ov_common(x):
        if getattr(x, "bitwidth", None) == 32:
            table = C.COMMON_F32
        else:
            table = C.COMMON_F64
        return lambda x: table


register_primitives(_cpu_overload, _cpu_intrinsic, CPU_JIT_OPTIONS, cpu=True)


# --------------------------------------------------------------------------
# Double-word arithmetic.  A pair (hi, lo) stands for hi + lo with |lo|
# about ulp(hi)/2 or less (dw_mul and dw_add do not renormalise); the
# algorithms are the classical error-free transformations (Dekker, Knuth)
# and their FMA forms.  With dw false each is the plain operation and
# returns a zero low part.


@jitable
def two_sum(a, b, dw):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly."""
    s = a + b
    if not dw:
        return s, type(a)(0)
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@jitable
def fast_two_sum(a, b, dw):
    """two_sum for |a| >= |b| (or a == 0)."""
    s = a + b
    if not dw:
        return s, type(a)(0)
    e = b - (s - a)
    return s, e


@jitable
def two_prod(a, b, dw):
    """(p, e) with p = fl(a * b) and p + e = a * b exactly (barring underflow)."""
    p = a * b
    if not dw:
        return p, type(a)(0)
    return p, fma(a, b, -p)


@jitable
def dw_mul(a_hi, a_lo, b_hi, b_lo, dw):
    """(a_hi + a_lo) * (b_hi + b_lo) as a pair, not renormalised.

    Pair arithmetic (Lange and Rump): the low part may exceed half an ulp
    of the high part by a little, which the next operation absorbs at a
    cost of a few u^2; a result whose high part is the answer is
    renormalised by its caller (fast_two_sum).  Renormalising every step
    would cost two operations more each.
    """
    p, e = two_prod(a_hi, b_hi, dw)
    if not dw:
        return p, e
    return p, fma(a_hi, b_lo, fma(a_lo, b_hi, e))


@jitable
def dw_mul1(a, b_hi, b_lo, dw):
    """a * (b_hi + b_lo) for a plain a, as a pair (dw_mul with a_lo = 0,
    without the product a_lo * b_hi that LLVM may not drop: 0 * inf is NaN)."""
    p, e = two_prod(a, b_hi, dw)
    if not dw:
        return p, e
    return p, fma(a, b_lo, e)


@jitable
def dw_add(a_hi, a_lo, b_hi, b_lo, dw):
    """(a_hi + a_lo) + (b_hi + b_lo) as a pair, not renormalised (as dw_mul)."""
    s, e = two_sum(a_hi, b_hi, dw)
    if not dw:
        return s, e
    return s, e + (a_lo + b_lo)


@jitable
def dw_div(a_hi, a_lo, b_hi, b_lo, dw):
    """(a_hi + a_lo) / (b_hi + b_lo) as a double word, one division."""
    T = type(a_hi)
    if not dw:
        return a_hi / b_hi, T(0)
    inv = T(1) / b_hi
    q = a_hi * inv
    # The remainder a_hi - q*b_hi is exact under FMA.
    r = fma(-q, b_hi, a_hi) + fma(-q, b_lo, a_lo)
    return fast_two_sum(q, r * inv, dw)


@jitable
def dw_poly(y, lead, coeffs, dw):
    """lead + y * (c0 + c1 y + ...) as a double word.

    `lead` is a double-word constant; the tail is summed in working precision
    and only its last product and the final sum are carried exactly, which
    keeps the rounding noise to u * |tail| / |result|.
    """
    T = type(y)
    tail = poly(y, coeffs)
    if not dw:
        return fma(y, tail, T(lead[0])), T(0)
    m, m_err = two_prod(y, tail, dw)
    s, s_err = two_sum(T(lead[0]), m, dw)
    return fast_two_sum(s, s_err + (m_err + T(lead[1])), dw)


@jitable
def dw_poly2(y, lead0, lead1, coeffs, dw):
    """lead0 + y * (lead1 + y * (c0 + c1 y + ...)) as a double word.

    Two double-word leading coefficients, for a polynomial whose linear
    term is too large a part of the result to sum in working precision.
    """
    T = type(y)
    a_hi, a_lo = dw_poly(y, lead1, coeffs, dw)
    b_hi, b_lo = dw_mul1(y, a_hi, a_lo, dw)
    return dw_add(T(lead0[0]), T(lead0[1]), b_hi, b_lo, dw)


@jitable
def exp_reduce(a_hi, a_lo, c):
    """(k, r_hi, r_lo) with a_hi + a_lo = k ln2 + r_hi + r_lo: k the nearest
    integer to a_hi / ln2 (an integer-valued float), r_hi = a_hi - k ln2[0]
    exactly (Cody-Waite: k * ln2[0] has spare bits), r_lo = a_lo - k ln2[1]
    rounded once (not renormalised against r_hi)."""
    T = type(a_hi)
    shift = T(pick(a_hi, 12582912.0, 6755399441055744.0))  # 1.5 * 2**(p-1)
    k = (a_hi * T(c.log2e) + shift) - shift  # round to nearest integer
    return k, fma(-k, T(c.ln2[0]), a_hi), fma(-k, T(c.ln2[1]), a_lo)


@jitable
def exp_dw(a_hi, a_lo, c, dw):
    """exp(a_hi + a_lo) as (k, p_hi, p_lo): 2**k * (p_hi + p_lo).

    For a_hi <= 0 down to -2 * emax * ln 2 (callers clamp); c is the table
    of constants.  k is an integer-valued float and p lies in [0.70, 1.42];
    its relative error is about 2**-p-5, so callers can scale products by
    2**k at the very end and keep full accuracy in the subnormal range.
    """
    T = type(a_hi)
    k, r_hi, r_lo = exp_reduce(a_hi, a_lo, c)
    # k * ln2[1] is not small next to ulp(r_hi) (ln2[0] keeps few bits), so
    # renormalise before the polynomial sees r_hi.
    r_hi, r_lo = two_sum(r_hi, r_lo, dw)
    t2 = r_hi * r_hi * poly(r_hi, c.exp)
    if not dw:
        return k, T(1) + (r_hi + t2), T(0)
    q, q_err = fast_two_sum(r_hi, t2, dw)
    p_hi, p_err = fast_two_sum(T(1), q, dw)
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
