"""The float32 kernels on the CPU: one algorithm per formula, emitted as
AVX-512, AVX2 and scalar code with the same bits.

Two designs live here (docs/design.md, "The float32 loops"):

- float32 lanes (FLOAT32_LANES: the exact GELU's f, f' and backward):
  piecewise polynomials around Gal points in float32 arithmetic, one
  lookup per coefficient with each lane's own piece, a compensated exp
  tail scaled by 2^k with one rounding (``_exact32``, ``_exact32_grad``;
  tables from tools/fit_exact32.py in ``tables_exact32.py``).  Measured
  over all 2^32 inputs: f 1.35 ulp, f' 1.42, dy f' 1.75 (dy ~ N(0, 1)); f
  monotone above its minimum;
- float64 lanes (the other nine kernels): x widened exactly, computed in
  float64, rounded once to float32 at the end.  The value before that
  rounding is within 2^-31 of the exact result, so each result is
  correctly rounded but where the exact value lies within 2^-8 ulp of a
  rounding boundary, and monotone wherever f is.

Shared steps of the float64 lanes::

    t  = min(|x|, t_max)                 (t_max: 15, 12, 70 by form; beyond
                                          it the results are saturated)
    exp(a), a <= 0: k = round(a log2 e); r = a - k ln2 (two FMAs, ln2 in two
         parts); e^r a degree-7 polynomial; 2^k added to the exponent bits

Exact GELU's f'' = E (2 - t^2) / sqrt(2 pi), E = exp(-t^2/2), t^2 exact.

tanh and sigmoid forms (x sigma(w), w = x (b + a x^2) or 1.702 x),
E = exp(-|w|), D = 1 + E, R = 1/D (``Lanes.reciprocal``)::

    f   = x E R (x < 0)  or  x R
    f'  = E (D + x w') R^2 (x < 0)  or  (D + E x w') R^2
    f'' = E [A D - B (1 - E)] R^3,  A = 2 w' + t w'',  B = t w'^2

and every backward is dy f', with f' = -0.0 for x <= -t_max (the saturation
of every other target).

The fused forms (``core/fused.py``: bias-GELU, GeGLU) run loops of their
own (``run_fused``), whose lanes add or multiply and call the same
``_kernel``: the single forms' bits.

Emissions (``emission()``): AVX-512, AVX2 with FMA, the scalar emission,
and ``soft``, the scalar emission whose FMAs are plain arithmetic
(``simd.soft_fma``, ``simd.soft_fma32``) for CPUs without FMA; the same
bits from all four.

NaN: a NaN x is returned unchanged (payload and sign: selected in float32)
and replaced by 0 before any arithmetic, and so is its lane's dy, so that a
quiet NaN raises no flag (a signalling one raises "invalid" in the compare
that finds it, as IEEE 754 asks); a NaN dy propagates through the product,
quieted; a NaN the backward kernel makes itself (dy = inf times f'(x) =
0) is x86's default NaN on every machine (``x86_nan``).  Lanes outside a
masked block compute at x = 0 and dy = 0.  No
lane raises "underflow" but where its result is tiny and inexact.
"""

import functools
import os
import warnings

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import coefficients as C
from .names import ARITY as FUSED_ARITY
from .names import BIAS as FUSED_BIAS
from .names import BIAS_BACKWARD as FUSED_BIAS_BACKWARD
from .names import FUSED, parse_fused
from .names import GEGLU as FUSED_GEGLU
from . import tables32 as T
from . import tables_exact32 as E
from .simd import (
    AVX2,
    AVX512,
    BLOCK,
    F32,
    I64,
    SCALAR,
    WIDTH,
    WIDTH32,
    Lanes,
    Lanes32,
    block_mask,
    halves,
    is_nan,
    join,
    load_block,
    prefer_wide_vectors,
    prefetch,
    splat_block,
    stack_array,
    store_block,
)

#: The kernels computed here, for float32 on the CPU: every one.
FORMS = ("gelu", "gelu_tanh", "gelu_sigmoid")
UNARY = tuple(f + suffix for f in FORMS for suffix in ("", "_grad", "_grad2"))
BINARY = tuple(f + "_backward" for f in FORMS)
KERNELS = UNARY + BINARY

#: |x| from which each form's results are saturated (f = x or -0.0, f' = 1
#: or -0.0, f'' = -0.0), as on every other target; t is clamped below it.
T_MAX = {"gelu": T.T_SATURATE, "gelu_tanh": C.GELU_TANH_F32.t_max, "gelu_sigmoid": C.GELU_SIGMOID_F32.t_max}
_X = C.COMMON_F64  # the float64 values of the forms' constants

#: Names a variant narrower than the CPU's ("avx2" or "scalar"); the variant is
#: part of the cache key (a closure variable of every loop).
ENVIRONMENT = "GELU_NUMBA_SIMD"
VARIANTS = (AVX512, AVX2, SCALAR)
#: The scalar emission with every FMA computed by plain arithmetic
#: (``simd.soft_fma``), the same bits: for CPUs without FMA, where LLVM would
#: call libm's software fma (~150 ns each with glibc).
SOFT = "soft"


# -- the algorithm ---------------------------------------------------------------


def _exp(L, a):
    """exp(a) for -205 < a <= 0 (a normal result)."""
    magic = L.const(1.5 * 2.0**52)  # k lands in the low bits of kd
    kd = L.fma(a, L.const(T.LOG2E), magic)
    k = L.sub(kd, magic)
    r = L.fma(k, L.const(-T.LN2[0]), a)
    r = L.fma(k, L.const(-T.LN2[1]), r)
    p = L.horner(r, [L.const(c) for c in T.EXP])
    # 2^k: k << 52 added to the exponent field (k >= -296: the sum is normal)
    return L.from_bits(L.int_add(L.bits(p), L.shift_left(L.bits(kd), 52)))


def _form(kind):
    for form in sorted(FORMS, key=len, reverse=True):
        if kind.startswith(form):
            return form, kind[len(form):]
    raise ValueError(kind)


def _compute(L, kind, x, dy=None):
    """Kernel `kind` at x (float64 lanes, NaN-free), dy for the backward."""
    form, what = _form(kind)
    t_max = T_MAX[form]
    # Saturated lanes compute at 0 and select -0.0 after: LLVM may narrow
    # before it selects, and a tiny value narrowed to -0.0 would raise
    # "underflow" for an exact result (f(-inf) = -0.0).
    if what == "_grad2":
        saturated = L.less_equal(L.const(t_max), L.abs(x))
    else:
        saturated = L.less_equal(x, L.const(-t_max))
    x = L.select(saturated, L.const(0.0), x)
    t = L.min(L.abs(x), L.const(T.T_CLAMP if form == "gelu" else t_max))
    negative = L.less(x, L.const(0.0))
    if form == "gelu":
        m = _exact(L, what, x, t, negative)
    else:
        m = _sigma(L, form, what, x, t, negative)
    m = L.select(saturated, L.const(-0.0), m)
    if what != "_backward":
        return m
    return L.mul(dy, m)


def _exact(L, what, x, t, negative):
    """x Phi(x)'s f'' in float64 lanes (f and f' are in float32 lanes)."""
    if what != "_grad2":
        raise ValueError(f"gelu{what} is computed in float32 lanes")
    tt = L.mul(t, t)  # exact: t has 24 significant bits
    e = _exp(L, L.mul(tt, L.const(-0.5)))
    return L.mul(L.mul(e, L.const(T.INV_SQRT_2PI)), L.sub(L.const(2.0), tt))


def _sigma(L, form, what, x, t, negative):
    """x sigma(w): f, f' (also for the backward) or f''."""
    if form == "gelu_tanh":
        tt = L.mul(t, t)  # exact
        w = L.mul(t, L.fma(tt, L.const(_X.tanh_a[0]), L.const(_X.tanh_b[0])))  # |w|
        wp = L.fma(tt, L.const(_X.tanh_a3[0]), L.const(_X.tanh_b[0]))  # w'
    else:
        w = L.mul(t, L.const(_X.sigmoid_a[0]))
        wp = L.const(_X.sigmoid_a[0])
    e = _exp(L, L.sub(L.const(0.0), w))
    d = L.add(L.const(1.0), e)
    r = L.reciprocal(d)
    xc = L.select(negative, L.sub(L.const(0.0), t), x)  # x, clamped on the left
    if what == "":
        return L.mul(L.select(negative, L.mul(xc, e), xc), r)
    if what == "_grad2":
        if form == "gelu_tanh":  # 2 w' + t w'' = 2b + 12a t^2
            a = L.fma(tt, L.const(12.0 * _X.tanh_a[0]), L.const(2.0 * _X.tanh_b[0]))
        else:
            a = L.const(2.0 * _X.sigmoid_a[0])
        b = L.mul(t, L.mul(wp, wp))
        n = L.sub(L.mul(a, d), L.mul(b, L.sub(L.const(1.0), e)))
        return L.mul(L.mul(L.mul(e, n), r), L.mul(r, r))
    xg = L.select(negative, xc, t)  # x clamped on both sides: f'(inf) = 1
    xw = L.mul(xg, wp)
    n = L.select(negative, L.mul(e, L.add(d, xw)), L.fma(e, xw, d))
    return L.mul(L.mul(n, r), r)


# -- in float32 lanes ------------------------------------------------------------

#: The kernels computed in float32 lanes (the others in float64 lanes).
FLOAT32_LANES = ("gelu", "gelu_grad", "gelu_backward")

_MAGIC32 = 12582912.0  # 1.5 * 2^23: a float32 in [2^23, 2^24) holds an integer in its low bits


class _Parts:
    """The exact GELU's f, f' or backward in float32 lanes, in two regions
    (tables and algorithm: tools/fit_exact32.py, tables_exact32.py; `E`
    may be a planted variant of the tables in the tests).

    Middle, x >= X_LOW (-0.78125 for f, -0.875 for f'): in the piece of
    y = fl(x + 1), d = x - XC exact, f = fma(d, q(d), fma(H, x, C0)) and
    f' = fma(d, q(d), fma(A, q(d), C0)); by the zero of f' at x* its pieces
    have XC + (-A) = x* in two parts and C0 = 0, so f' = (x - x*) q keeps
    its relative accuracy; the backward there is dy f'.

    Tail, x < X_LOW, t = -x: -M(t) (f) or -G(t) (f') as C0 + u, u = d q(d)
    in t's piece, times exp(-t^2/2) = 2^k (1 + w), the product compensated
    and scaled by 2^k with one rounding (``Lanes32.scale``); the backward
    folds dy into that product: the product as the exact sum of two floats
    (TwoSum), dy times the larger inside the last FMA, so that dy adds no
    rounding of its own; a |dy| > 2^64 is scaled by 2^-64 first (k + 64)
    so that dy C0 cannot overflow where the result does not.  x <= -15
    gives -0.0 (dy -0.0).

    Both regions' pieces share one set of 32-entry tables: ``entry``
    gives each lane its own region's, ``middle_entry`` and ``tail_entry``
    one region's for every lane.  ``middle`` and ``tail`` compute at x
    clamped into their region (and with the other region's dy as 0), so a
    lane of the other region, whose value is selected away, raises no
    flag.  The vector emissions compute both and select (``value``); the
    scalar emission branches and computes one (``value_by_branch``): the
    same bits."""

    def __init__(self, L, kind, x, E=E):
        self.L, self.kind, self.x, self.E = L, kind, x, E
        self.grad = kind != "gelu"
        low = E.GRAD_X_LOW if self.grad else E.X_LOW
        self.tables = E.GRAD_TABLES if self.grad else E.TABLES
        self.tail_degree = E.GRAD_TAIL_DEGREE if self.grad else E.TAIL_DEGREE
        self.x_saturate = E.GRAD_X_SATURATE if self.grad else E.X_SATURATE
        self.saturated = L.less_equal(x, L.const(-E.T_MAX))
        self.in_tail = L.less(x, L.const(low))
        self.xm = L.min(L.max(x, L.const(low)), L.const(self.x_saturate))
        self.t = L.select(self.saturated, L.const(-low), L.max(L.sub(L.const(-0.0), x), L.const(-low)))

    def middle_entry(self):
        L = self.L
        return L.shift_right(L.bits(L.add(self.xm, L.const(1.0))), 21)

    def tail_entry(self):
        """The exponent and top mantissa bit of t (half binades), offset past
        the middle's entries."""
        L = self.L
        return L.int_add(L.shift_right(L.bits(self.t), 22), L.int_const(self.E.TAIL_OFFSET))

    def entry(self):
        return self.L.select(self.in_tail, self.tail_entry(), self.middle_entry())

    def lookups(self, entry):
        return self.L.lookups(self.tables, entry)

    def middle(self, values, dy=None):
        L, x, xm = self.L, self.x, self.xm
        if not self.grad:
            xc, c0, h, *q = values
            d = L.sub(xm, xc)
            f = L.fma(d, L.horner(d, q), L.fma(h, xm, c0))
            return L.select(L.less_equal(L.const(self.x_saturate), x), x, f)
        xc, a, c0, *q = values
        d = L.sub(xm, xc)
        qd = L.horner(d, q)
        g = L.fma(d, qd, L.fma(a, qd, c0))
        saturated = L.less_equal(L.const(self.x_saturate), x)
        if dy is None:
            return L.select(saturated, L.const(1.0), g)
        # dy f' = dy where f' = 1: selected after a product by 0, not as dy
        # times a selected 1.0, which LLVM turns into dy times the value at
        # the clamp (about 1 + 2^-23: "underflow" for a subnormal dy)
        unused = L.select(self.in_tail, L.const(0.0), L.select(saturated, L.const(0.0), dy))
        return L.select(saturated, dy, L.mul(unused, g))

    def tail(self, values, dy=None):
        L, E, t = self.L, self.E, self.t
        tc, m0, *r = values[:2 + self.tail_degree + 1]  # -M's or -G's C0 and q: negated in the table
        k, w = _exp_half_square(L, t, E)
        dt = L.sub(t, tc)
        u = L.mul(dt, L.horner(dt, r))
        rest = L.fma(m0, w, L.fma(u, w, u))  # (C0 + u)(1 + w) = m0 + rest, compensated
        if dy is None:
            return L.select(self.saturated, L.const(-0.0), L.scale(L.add(m0, rest), k))
        zero = L.const(0.0)
        dy_tail = L.select(self.in_tail, dy, zero)
        # |dy| > 2^64, infinite or NaN: read from the bits (a compare of a
        # quiet NaN would raise "invalid").  An infinite or NaN dy computes
        # with 0 (dy C0 + dy rest would be inf - inf, raising "invalid", or
        # two NaNs of opposite signs, of which each emission may pass on
        # either) and is dealt with after.
        magnitude = L.int_and(L.bits(dy_tail), L.int_const(0x7FFFFFFF))
        huge = L.int_greater(magnitude, L.int_const(0x5F800000))  # bits(2^64)
        infinite = L.int_equal(magnitude, L.int_const(0x7F800000))
        special = L.int_greater(magnitude, L.int_const(0x7F7FFFFF))
        scaled = L.select(special, zero, L.select(huge, L.mul(dy_tail, L.const(2.0**-64)), dy_tail))
        k = L.select(huge, L.add(k, L.const(64.0)), k)
        # dy (m0 + rest) rounded once: m0 + rest as an exact sum of two
        # floats (TwoSum), dy times the larger inside the FMA
        high = L.add(m0, rest)
        back = L.sub(high, m0)
        low = L.add(L.sub(m0, L.sub(high, back)), L.sub(rest, back))
        out = L.scale(L.fma(scaled, high, L.mul(scaled, low)), k)
        out = L.select(infinite, L.sub(L.const(-0.0), dy_tail), out)  # dy f'(x) = -dy: f' < 0 here
        return L.select(self.saturated, L.mul(dy, L.const(-0.0)), out)

    def value(self, dy=None):
        values = self.lookups(self.entry())
        y = self.L.select(self.in_tail, self.tail(values, dy), self.middle(values, dy))
        return y if dy is None else _quiet_nan(self.L, dy, y)

    def value_by_branch(self, dy=None):
        """``value`` for one lane (the scalar emission), computing only its
        region's formula: a branch, where a vector computes both and
        selects.  The same bits: each region reads its own entry of the
        same tables (on SSE2-only targets every fused step of the other
        region was a call of libm's fmaf)."""
        L, b = self.L, self.L.builder
        with b.if_else(self.in_tail) as (tail, middle):
            with tail:
                y_tail = self.tail(self.lookups(self.tail_entry()), dy)
                from_tail = b.block
            with middle:
                y_middle = self.middle(self.lookups(self.middle_entry()), dy)
                from_middle = b.block
        y = b.phi(y_tail.type)
        y.add_incoming(y_tail, from_tail)
        y.add_incoming(y_middle, from_middle)
        return y if dy is None else _quiet_nan(L, dy, y)


def _quiet_nan(L, dy, out):
    """out, or dy's NaN quieted where dy is a NaN: the same in every lane and
    emission (LLVM may fold dy times a selected 1.0 into dy, leaving a
    signalling NaN as it is)."""
    nan = L.int_greater(L.int_and(L.bits(dy), L.int_const(0x7FFFFFFF)), L.int_const(0x7F800000))
    return L.select(nan, L.add(dy, L.const(0.0)), out)


def _exp_half_square(L, t, E=E):
    """exp(-t^2/2) = 2^k (1 + w) for 0.78 <= t <= 15: (k, w), k an
    integer-valued float in [-163, 0], |w| < 0.42.  t^2 = p + e exactly;
    k = rint(-p log2(e) / 2); s = (p + k 2 ln2_hi) + (e + k 2 ln2_lo), the
    first sum exact, the second kept apart; w = s P(s)."""
    p = L.mul(t, t)
    e = L.fma(t, t, L.sub(L.const(-0.0), p))  # t^2 = p + e exactly
    kd = L.fma(p, L.const(-E.LOG2E_HALF), L.const(_MAGIC32))
    k = L.sub(kd, L.const(_MAGIC32))
    high = L.fma(k, L.const(E.LN2X2[0]), p)  # exact
    low = L.fma(k, L.const(E.LN2X2[1]), e)
    # w = (high + low) P(s), s = fl(high + low): the factor high + low is
    # never rounded (that would cost up to half an ulp of the result); P's
    # argument may be
    poly = L.horner(L.add(high, low), [L.const(c) for c in E.EXP_P])
    return k, L.fma(high, poly, L.mul(low, poly))


def _exact32(L, x, E=E):
    """x Phi(x) in float32 lanes (x NaN-free): ``_Parts``."""
    return _Parts(L, "gelu", x, E).value()


def _exact32_grad(L, x, dy=None, E=E):
    """f'(x) = Phi(x) + x phi(x), or dy f'(x) for the backward, in float32
    lanes (x NaN-free): ``_Parts``."""
    return _Parts(L, "gelu_backward" if dy is not None else "gelu_grad", x, E).value(dy)


def _kernel(builder, kind, isa, x32, dy32=None):
    """The float32 results for the float32 lanes x32 (16 for AVX-512, 8 for
    AVX2, one for the scalar emission)."""
    nan = is_nan(builder, x32)
    zero = ir.Constant(x32.type, None)
    xs = builder.select(nan, zero, x32)
    dy_in = dy32
    if dy32 is not None:  # a NaN x's lane returns x: its dy must raise nothing
        dy32 = builder.select(nan, zero, dy32)
    if kind in FLOAT32_LANES:
        if isa in (SCALAR, SOFT):
            L = Lanes32(builder, 1, SCALAR, hardware_fma=isa != SOFT and _fma_without_emulation())
            y = _Parts(L, kind, xs).value_by_branch(dy32)
        else:
            y = _Parts(Lanes32(builder, WIDTH32[isa], isa), kind, xs).value(dy32)
    elif isa not in (SCALAR, SOFT):
        parts = []
        dys = halves(builder, dy32) if dy32 is not None else (None, None)
        for half, dy_half in zip(halves(builder, xs), dys):
            L = Lanes(builder, WIDTH[isa], isa)
            dy = L.widen(dy_half) if dy_half is not None else None
            parts.append(L.narrow(_compute(L, kind, L.widen(half), dy)))
        y = join(builder, *parts)
    else:
        L = Lanes(builder, 1, SCALAR, hardware_fma=isa != SOFT and _fma_without_emulation())
        dy = L.widen(dy32) if dy32 is not None else None
        y = L.narrow(_compute(L, kind, L.widen(xs), dy))
    if dy_in is not None:
        y = x86_nan(builder, y, x32, dy_in)
    return builder.select(nan, x32, y)


def makes_x86_nan():
    """Whether this machine's own invalid operations give x86's default NaN
    (sign bit set): x86 does; ARM's has no sign bit.  Numba compiles for
    the machine it runs on."""
    from llvmlite import binding as llvm

    return llvm.get_process_triple().startswith(("x86_64", "i386", "i686"))


def x86_nan(builder, result, *inputs):
    """result, with x86's default NaN where it is a NaN that no input was
    (a backward kernel's dy = inf times f'(x) = 0), on machines whose own
    default NaN differs; x86 gives it already, and emits nothing.  So the
    backward kernels give x86's bits on ARM too (tools/bits_digest.py)."""
    return result if makes_x86_nan() else _made_nan(builder, result, *inputs)


# -- which variant this process compiles -------------------------------------------


@functools.cache
def _target_vectors():
    """What the CPU Numba compiles for (NUMBA_CPU_NAME/NUMBA_CPU_FEATURES,
    else the host) does with a 16-float fused multiply-add, compiled to
    assembly for Numba's target machine and read: "avx512" (zmm registers),
    "avx2" (ymm and a packed FMA) or "scalar".  Nothing that needs AVX-512
    or AVX2 is compiled to find out: an x86 intrinsic compiled for a CPU
    without it aborts the process inside LLVM."""
    from llvmlite import binding as llvm
    from numba.core.registry import cpu_target

    try:
        tm = cpu_target.target_context.codegen()._tm
    except Exception:  # noqa: BLE001 (a Numba without it: stay safe)
        return SCALAR
    module = llvm.parse_assembly(
        "declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)\n"
        "define <16 x float> @probe(<16 x float> %a, <16 x float> %b, <16 x float> %c) {\n"
        "  %d = call <16 x float> @llvm.fma.v16f32(<16 x float> %a, <16 x float> %b, <16 x float> %c)\n"
        "  ret <16 x float> %d\n}\n"
    )
    asm = tm.emit_assembly(module)
    if "zmm" in asm:
        return AVX512
    if "ymm" in asm and "vfmadd" in asm:
        return AVX2
    return SCALAR


@functools.cache
def _target_has_fma():
    """Whether the CPU Numba compiles for has a scalar float64 FMA
    instruction (x86 with FMA, aarch64): a scalar fma is compiled to
    assembly and read.  Without one LLVM would call libm's fma, whose
    software fallback (glibc on x86 without FMA) takes ~150 ns; the scalar
    emission then computes it with plain arithmetic (``simd.soft_fma``),
    rounded once all the same."""
    import re

    from llvmlite import binding as llvm
    from numba.core.registry import cpu_target

    try:
        tm = cpu_target.target_context.codegen()._tm
    except Exception:  # noqa: BLE001 (a Numba without it: plain arithmetic is always right)
        return False
    module = llvm.parse_assembly(
        "declare double @llvm.fma.f64(double, double, double)\n"
        "define double @probe(double %a, double %b, double %c) {\n"
        "  %d = call double @llvm.fma.f64(double %a, double %b, double %c)\n"
        "  ret double %d\n}\n"
    )
    asm = tm.emit_assembly(module)
    # a call or jump to the symbol (with Numba's code model: movabsq $fma)
    return re.search(r"[\s$*]_?fma(@\w+)?\b", asm) is None


@functools.cache
def _fma_without_emulation():
    """Whether the scalar emission may leave its FMAs to the compiler: the
    target has the instruction, or this host has it and libm's fma (which
    LLVM calls for a target without it) runs the instruction (glibc picks
    its fma by the CPU it runs on)."""
    if _target_has_fma():
        return True
    from llvmlite import binding as llvm

    return bool(llvm.get_process_triple().startswith("x86_64") and llvm.get_host_cpu_features().get("fma"))


def fma_emulated():
    """Whether this process's CPU code computes FMAs by plain arithmetic
    (``simd.soft_fma``): neither the target nor this CPU has FMA.  The
    loops carry it in their cache key."""
    return not _fma_without_emulation()


def emission():
    """What the loops compile: variant(), or SOFT (the scalar emission
    with ``simd.soft_fma``) where neither the target nor this CPU has FMA.
    It is a closure variable of the loops, so each lands in its own cache
    entry."""
    v = variant()
    return SOFT if v == SCALAR and fma_emulated() else v


@functools.cache
def variant():
    """The variant of the float32 loops in this process: the widest of
    "avx512", "avx2" (with FMA) and "scalar" that the target CPU has;
    GELU_NUMBA_SIMD names a narrower one (a wider one than the CPU has is
    refused, with a warning)."""
    wanted = os.environ.get(ENVIRONMENT, "").strip().lower()
    best = _target_vectors()
    if not wanted:
        return best
    if wanted not in VARIANTS:
        warnings.warn(f"gelu_numba: {ENVIRONMENT}={wanted!r} is not one of {', '.join(VARIANTS)}; using {best}",
                      RuntimeWarning, stacklevel=2)
        return best
    if VARIANTS.index(wanted) < VARIANTS.index(best):
        warnings.warn(f"gelu_numba: {ENVIRONMENT}={wanted} but the CPU Numba compiles for has no {wanted}; "
                      f"using {best}", RuntimeWarning, stacklevel=2)
        return best
    return wanted


def vector_bits():
    """The widest vectors this process's loops may use: 256 bits where the
    AVX2 variant was asked for (on an AVX-512 CPU: to keep 512-bit code,
    and the lower clock some CPUs run it at, out of every loop), else 512
    (capped by LLVM at what the target has)."""
    return 256 if variant() == AVX2 else 512


def _literal(value):
    """A compile-time string's value, or None (Numba types a call without
    literals first, then retries with them)."""
    return value.literal_value if isinstance(value, types.StringLiteral) else None


def _check(kind, isa, kinds):
    if kind not in kinds:
        raise ValueError(f"no float32 vector kernel {kind!r}")
    if isa not in VARIANTS + (SOFT,):
        raise ValueError(f"unknown variant {isa!r}")
    if isa not in (SCALAR, SOFT) and VARIANTS.index(isa) < VARIANTS.index(_target_vectors()):
        # never reaches LLVM: an x86 intrinsic for a CPU without it aborts the process
        raise RuntimeError(f"{isa} loops requested for a CPU without {isa}")


# -- the loops over [lo, hi) of unit-stride arrays -----------------------------------


def _element(builder, pointer, index):
    """The address of float32 element `index` of `pointer` (a pointer or an
    address as an integer)."""
    if isinstance(pointer.type, ir.IntType):
        pointer = builder.inttoptr(pointer, ir.IntType(8).as_pointer())
    return builder.gep(pointer, [builder.mul(index, ir.Constant(I64, 4))])


#: How far ahead of its loads each input is prefetched, in bytes, and the
#: cache line the loop steps by.  Without it this CPU's own prefetchers fall
#: behind once the arrays outgrow the caches: float32 gelu on 16M elements,
#: 2 threads, 1.41 ns per element against 0.58 (0.59 at 1M); gelu_grad2
#: 0.70 against 0.29 (Intel Xeon, AVX-512; 1-4 KB ahead measure alike).
PREFETCH_BYTES = 4096
LINE_BYTES = 64


def _emit_range(builder, isa, lo, hi, body, out, reads):
    """Call body(index, mask) for blocks covering [lo, hi): first, under a
    mask, the few elements before `out` + lo reaches a cache line (where
    the output is float32-aligned at all); then a cache line of each array
    at a time (one block of 16 on AVX-512, two of 8 on AVX2) with no mask,
    each input prefetched PREFETCH_BYTES ahead (`reads`: their base
    pointers); then the whole blocks left, and the remainder under a mask.
    Or body(index, None) per element (scalar).  The head matters: NumPy
    aligns large arrays to 16 bytes, and a loop whose 64-byte stores each
    straddle two cache lines runs at half speed or worse once the arrays
    outgrow the caches (measured: 1.38 against 3.07 ns per element,
    gelu_tanh on 16M float32, one thread)."""
    prefer_wide_vectors(builder.function, 256 if isa == AVX2 else 512)
    if isa in (SCALAR, SOFT):
        with cgutils.for_range_slice(builder, lo, hi, ir.Constant(I64, 1), inc=True) as (index, _):
            body(index, None)
        return
    n, line = BLOCK[isa], LINE_BYTES // 4
    zero = ir.Constant(I64, 0)
    address = builder.ptrtoint(_element(builder, out, lo), I64)
    misaligned = builder.and_(address, ir.Constant(I64, LINE_BYTES - 1))
    head = builder.lshr(builder.and_(builder.sub(zero, address), ir.Constant(I64, LINE_BYTES - 1)), ir.Constant(I64, 2))
    head = builder.select(builder.icmp_unsigned("==", builder.and_(misaligned, ir.Constant(I64, 3)), zero),
                          head, zero)  # (an output not even float32-aligned: no head)
    count = builder.sub(hi, lo)
    head = builder.select(builder.icmp_signed("<", count, head), count, head)
    _whole_and_masked(builder, body, lo, head, n)
    lo = builder.add(lo, head)
    count = builder.sub(count, head)
    lines = builder.udiv(count, ir.Constant(I64, line))
    ahead = ir.Constant(I64, PREFETCH_BYTES // 4)
    with cgutils.for_range(builder, lines) as loop:
        index = builder.add(lo, builder.mul(loop.index, ir.Constant(I64, line)))
        for pointer in reads:
            prefetch(builder, _element(builder, pointer, builder.add(index, ahead)))
        for k in range(0, line, n):
            body(builder.add(index, ir.Constant(I64, k)), None)
    done = builder.mul(lines, ir.Constant(I64, line))
    _whole_and_masked(builder, body, builder.add(lo, done), builder.sub(count, done), n)


def _whole_and_masked(builder, body, lo, count, n):
    """Less than a cache line, `count` elements from `lo`: a whole block
    where a block is shorter than a line (AVX2), then a masked one."""
    zero = ir.Constant(I64, 0)
    if n < LINE_BYTES // 4:
        assert LINE_BYTES // 4 == 2 * n
        whole = builder.icmp_signed(">=", count, ir.Constant(I64, n))
        with builder.if_then(whole):
            body(lo, None)
        step = builder.select(whole, ir.Constant(I64, n), zero)
        lo, count = builder.add(lo, step), builder.sub(count, step)
    with builder.if_then(builder.icmp_signed(">", count, zero), likely=False):
        body(lo, block_mask(builder, count, n))


def _own_function(builder, name, pointers, integers, emit):
    """Emit a loop as a function of its own (internal, never inlined) and
    call it: emit(builder, pointers, integers) fills its body (the
    pointers as i8*, the integers as i64).  The function carries the
    variant's vector-width attributes (``prefer_wide_vectors``), which
    LLVM drops from a caller whose other callees lack them when it inlines
    those (it keeps "min-legal-vector-width" only where every inlined
    function agrees): an AVX2 loop inlined into a ufunc loop went back to
    zmm registers on an AVX-512 CPU.  One call per run of elements."""
    module = builder.module
    i8p = ir.IntType(8).as_pointer()
    try:
        fn = module.get_global(name)
    except KeyError:
        kind = ir.FunctionType(ir.VoidType(), [i8p] * len(pointers) + [I64] * len(integers))
        fn = ir.Function(module, kind, name=name)
        fn.linkage = "internal"
        fn.attributes.add("noinline")
        inner = ir.IRBuilder(fn.append_basic_block("entry"))
        emit(inner, list(fn.args[:len(pointers)]), list(fn.args[len(pointers):]))
        inner.ret_void()
    args = [builder.inttoptr(q, i8p) if isinstance(q.type, ir.IntType) else builder.bitcast(q, i8p) for q in pointers]
    builder.call(fn, args + list(integers))


def _unary_loop(builder, kind, isa, xp, op, lo, hi):
    """A call of the unit-stride loop out[i] = kind(x[i]), i in [lo, hi)."""

    def emit(builder, pointers, integers):
        (xp, op), (lo, hi) = pointers, integers

        def body(i, mask):
            if isa in (SCALAR, SOFT):
                xv = builder.load(builder.bitcast(_element(builder, xp, i), F32.as_pointer()))
                builder.store(_kernel(builder, kind, isa, xv), builder.bitcast(_element(builder, op, i), F32.as_pointer()))
            else:
                xv = load_block(builder, _element(builder, xp, i), BLOCK[isa], mask)
                store_block(builder, _element(builder, op, i), _kernel(builder, kind, isa, xv), mask)

        _emit_range(builder, isa, lo, hi, body, op, [xp])

    _own_function(builder, f"gelu_numba.loop.{kind}.{isa}", [xp, op], [lo, hi], emit)


def _binary_loop(builder, kind, isa, dyp, xp, op, lo, hi, bcast):
    """A call of the unit-stride loop out[i] = kind(dy[i] or dy[0], x[i])."""

    def emit(builder, pointers, integers):
        (dyp, xp, op), (lo, hi) = pointers, integers
        g = builder.load(builder.bitcast(_element(builder, dyp, ir.Constant(I64, 0)), F32.as_pointer())) if bcast else None

        def body(i, mask):
            if isa in (SCALAR, SOFT):
                xv = builder.load(builder.bitcast(_element(builder, xp, i), F32.as_pointer()))
                dv = g if bcast else builder.load(builder.bitcast(_element(builder, dyp, i), F32.as_pointer()))
                builder.store(_kernel(builder, kind, isa, xv, dv), builder.bitcast(_element(builder, op, i), F32.as_pointer()))
            else:
                n = BLOCK[isa]
                xv = load_block(builder, _element(builder, xp, i), n, mask)
                if bcast:  # lanes outside the mask get 0, as masked loads give them
                    dv = splat_block(builder, g, n)
                    dv = dv if mask is None else builder.select(mask, dv, ir.Constant(dv.type, None))
                else:
                    dv = load_block(builder, _element(builder, dyp, i), n, mask)
                store_block(builder, _element(builder, op, i), _kernel(builder, kind, isa, xv, dv), mask)

        _emit_range(builder, isa, lo, hi, body, op, [xp] if bcast else [xp, dyp])

    name = f"gelu_numba.loop.{kind}.{isa}" + (".broadcast" if bcast else "")
    _own_function(builder, name, [dyp, xp, op], [lo, hi], emit)


#: Elements per chunk of a strided run (``run_strided``).
STRIDED_CHUNK = 512


@intrinsic
def run_strided(typingctx, kind, isa, pointers, steps, n):
    """out[i] = kind(x[i]) or kind(dy[i], x[i]) for i in [0, n), float32,
    any strides (in bytes; 0 for a broadcast): `pointers` and `steps` are
    (x, out) or (dy, x, out).  The run is gathered STRIDED_CHUNK elements
    at a time into buffers on the stack, run through the unit-stride loop
    and scattered back: the same bits as element by element, which took
    20 ns per element for gelu_tanh on an Intel AVX-512 CPU (LLVM's scalar
    code with AVX-512 masks; 6.9 ns with AVX-512 turned off), against 1.4.
    The gathers and scatters are in a function of their own, so that a
    process held to 256-bit vectors gets none in zmm registers."""
    kind_, isa_ = _literal(kind), _literal(isa)
    if kind_ is None or isa_ is None:
        return None
    count = len(pointers)
    _check(kind_, isa_, UNARY if count == 2 else BINARY)

    def emit(builder, ps, integers):
        n_, *strides = integers
        prefer_wide_vectors(builder.function, vector_bits())
        chunk = ir.Constant(I64, STRIDED_CHUNK)
        buffers = [stack_array(builder, ir.ArrayType(F32, STRIDED_CHUNK)) for _ in ps]
        slots = [builder.bitcast(b, F32.as_pointer()) for b in buffers]
        chunks = builder.udiv(builder.add(n_, ir.Constant(I64, STRIDED_CHUNK - 1)), chunk)
        with cgutils.for_range(builder, chunks) as outer:
            start = builder.mul(outer.index, chunk)
            left = builder.sub(n_, start)
            m = builder.select(builder.icmp_signed("<", left, chunk), left, chunk)
            with cgutils.for_range(builder, m) as inner:
                k = builder.add(start, inner.index)
                for p, s, slot in zip(ps[:-1], strides[:-1], slots[:-1]):
                    v = builder.load(builder.bitcast(builder.gep(p, [builder.mul(k, s)]), F32.as_pointer()), align=1)
                    builder.store(v, builder.gep(slot, [inner.index]))
            zero = ir.Constant(I64, 0)
            if count == 2:
                _unary_loop(builder, kind_, isa_, slots[0], slots[1], zero, m)
            else:
                _binary_loop(builder, kind_, isa_, slots[0], slots[1], slots[2], zero, m, False)
            with cgutils.for_range(builder, m) as inner:
                k = builder.add(start, inner.index)
                v = builder.load(builder.gep(slots[-1], [inner.index]))
                builder.store(v, builder.bitcast(builder.gep(ps[-1], [builder.mul(k, strides[-1])]), F32.as_pointer()), align=1)

    def codegen(context, builder, sig, args):
        _, _, ps, ss, n_ = args
        ptrs = [builder.extract_value(ps, i) for i in range(count)]
        strides = [builder.extract_value(ss, i) for i in range(count)]
        _own_function(builder, f"gelu_numba.strided.{kind_}.{isa_}.{count}", ptrs, [n_] + strides, emit)
        return context.get_dummy_value()

    return types.none(kind, isa, pointers, steps, types.intp), codegen


@intrinsic
def run_unary(typingctx, kind, isa, x, out, lo, hi):
    """out[i] = kind(x[i]) for i in [lo, hi), float32, unit stride
    (x and out are the arrays' base addresses)."""
    kind_, isa_ = _literal(kind), _literal(isa)
    if kind_ is None or isa_ is None:
        return None
    _check(kind_, isa_, UNARY)

    def codegen(context, builder, sig, args):
        _, _, xp, op, lo, hi = args
        _unary_loop(builder, kind_, isa_, xp, op, lo, hi)
        return context.get_dummy_value()

    return types.none(kind, isa, x, out, types.intp, types.intp), codegen


@intrinsic
def run_binary(typingctx, kind, isa, dy, x, out, lo, hi, broadcast):
    """out[i] = kind(dy[i], x[i]) for i in [lo, hi), float32, unit stride;
    dy[0] for every i when `broadcast` (a compile-time bool)."""
    kind_, isa_ = _literal(kind), _literal(isa)
    if kind_ is None or isa_ is None or not isinstance(broadcast, types.BooleanLiteral):
        return None
    _check(kind_, isa_, BINARY)
    bcast = broadcast.literal_value

    def codegen(context, builder, sig, args):
        _, _, dyp, xp, op, lo, hi, _ = args
        _binary_loop(builder, kind_, isa_, dyp, xp, op, lo, hi, bcast)
        return context.get_dummy_value()

    return types.none(kind, isa, dy, x, out, types.intp, types.intp, broadcast), codegen


# -- the fused forms (core/fused.py) ---------------------------------------------------


#: x86's default NaN (what an invalid operation such as 0 * inf gives there:
#: the sign bit set), by float type.
DEFAULT_NAN_BITS = {32: 0xFFC00000, 64: 0xFFF8000000000000}


def _default_nan(builder, like):
    """x86's default NaN in the shape and type of `like`."""
    kind = like.type.element if isinstance(like.type, ir.VectorType) else like.type
    width = 32 if isinstance(kind, ir.FloatType) else 64
    integer = ir.IntType(width)
    value = ir.Constant(integer, DEFAULT_NAN_BITS[width])
    if isinstance(like.type, ir.VectorType):
        value = ir.Constant(ir.VectorType(integer, like.type.count), [value] * like.type.count)
    return builder.bitcast(value, like.type)


def _first_nan(builder, p, result, q=None):
    """result, or p's NaN quieted (p + 0) where p is a NaN: a sum's or a
    product's NaN is its first operand's, as x86 gives it, whatever order
    LLVM puts the operands in and whatever the CPU's own rule.  With the
    second operand q: a NaN that neither made (0 * inf, inf - inf) is
    x86's default NaN, which ARM makes without the sign bit."""
    if q is not None:
        made = builder.and_(is_nan(builder, result), builder.not_(is_nan(builder, q)))
        result = builder.select(made, _default_nan(builder, result), result)
    quiet = builder.fadd(p, ir.Constant(p.type, None))
    return builder.select(is_nan(builder, p), quiet, result)


def _made_nan(builder, result, *inputs):
    """result, or x86's default NaN where result is a NaN that no input
    was (a kernel's own invalid operation: dy = inf times f'(x) = 0)."""
    made = is_nan(builder, result)
    for v in inputs:
        made = builder.and_(made, builder.not_(is_nan(builder, v)))
    return builder.select(made, _default_nan(builder, result), result)


def _fused_lanes(builder, name, isa, inputs):
    """The outputs of fused kernel `name` for the float32 lanes `inputs`
    (names.parse_fused): the single forms' ``_kernel``, so the same bits.
    GeGLU's backward computes f and f' in one loop, for the exact GELU too
    (19 tables in float32 lanes): two loops over each 4 KB chunk, each with
    one kernel's tables, measured 5-8 % slower (1.38 against 1.28-1.32 ns
    per element, 4096 x 4096, 2 threads, AMD EPYC Zen 4)."""
    kind, form = parse_fused(name)
    if kind == FUSED_BIAS:
        x, b = inputs
        return [_kernel(builder, form, isa, _first_nan(builder, x, builder.fadd(x, b), b))]
    if kind == FUSED_BIAS_BACKWARD:
        dy, x, b = inputs
        h = _first_nan(builder, x, builder.fadd(x, b), b)
        return [_made_nan(builder, _kernel(builder, form + "_backward", isa, h, dy), h, dy)]
    if kind == FUSED_GEGLU:
        a, g = inputs
        y = _kernel(builder, form, isa, a)
        return [_first_nan(builder, y, builder.fmul(y, g), g)]
    dy, a, g = inputs
    t = _first_nan(builder, dy, builder.fmul(dy, g), g)
    y = _kernel(builder, form, isa, a)
    return [_made_nan(builder, _kernel(builder, form + "_backward", isa, a, t), a, t),
            _first_nan(builder, dy, builder.fmul(dy, y), y)]


def _fused_loop(builder, name, isa, pointers, lo, hi):
    """A call of the unit-stride loop of fused kernel `name` over [lo, hi):
    `pointers` are its inputs then its outputs."""
    nin, nout = FUSED_ARITY[parse_fused(name)[0]]

    def emit(builder, ps, integers):
        lo, hi = integers
        ins, outs = ps[:nin], ps[nin:]

        def body(i, mask):
            if isa in (SCALAR, SOFT):
                values = [builder.load(builder.bitcast(_element(builder, p, i), F32.as_pointer())) for p in ins]
                for p, v in zip(outs, _fused_lanes(builder, name, isa, values)):
                    builder.store(v, builder.bitcast(_element(builder, p, i), F32.as_pointer()))
            else:
                values = [load_block(builder, _element(builder, p, i), BLOCK[isa], mask) for p in ins]
                for p, v in zip(outs, _fused_lanes(builder, name, isa, values)):
                    store_block(builder, _element(builder, p, i), v, mask)

        _emit_range(builder, isa, lo, hi, body, outs[0], ins)

    _own_function(builder, f"gelu_numba.fused.{name}.{isa}", pointers[:nin + nout], [lo, hi], emit)


@intrinsic
def run_fused(typingctx, name, isa, pointers, lo, hi):
    """Fused kernel `name` over elements [lo, hi) of unit-stride float32
    operands: `pointers` holds its inputs, then its outputs (more entries
    are ignored)."""
    name_, isa_ = _literal(name), _literal(isa)
    if name_ is None or isa_ is None:
        return None
    _check(name_, isa_, FUSED)
    nin, nout = FUSED_ARITY[parse_fused(name_)[0]]
    if len(pointers) < nin + nout:
        return None

    def codegen(context, builder, sig, args):
        _, _, ps, lo, hi = args
        ptrs = [builder.extract_value(ps, i) for i in range(nin + nout)]
        lo = context.cast(builder, lo, sig.args[3], types.int64)
        hi = context.cast(builder, hi, sig.args[4], types.int64)
        _fused_loop(builder, name_, isa_, ptrs, lo, hi)
        return context.get_dummy_value()

    return types.none(name, isa, pointers, lo, hi), codegen


# -- one element: the scalar emission, for strided loops and users' own code ----------


@intrinsic
def unary(typingctx, kind, x):
    """kind(x) for one float32, by the scalar emission."""
    kind_ = _literal(kind)
    if kind_ not in UNARY or x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _kernel(builder, kind_, SCALAR, args[1])

    return types.float32(kind, x), codegen


@intrinsic
def binary(typingctx, kind, dy, x):
    """kind(dy, x) for one float32 pair, by the scalar emission."""
    kind_ = _literal(kind)
    if kind_ not in BINARY or x != types.float32 or dy != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _kernel(builder, kind_, SCALAR, args[2], args[1])

    return types.float32(kind, dy, x), codegen
