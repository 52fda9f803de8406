"""The vector vocabulary: the few operations the float32 CPU kernels are
written in, each emitted as LLVM IR for one lane width.

A kernel's algorithm (``vector32.py``) is a Python function of a
:class:`Lanes` object and its inputs; it calls only the methods below, so
the same function emits every variant:

- ``Lanes(builder, 8, AVX512)``: eight float64 lanes in a zmm register;
- ``Lanes(builder, 4, AVX2)``: four float64 lanes in a ymm register (AVX2
  with FMA);
- ``Lanes(builder, 1, SCALAR)``: one float64.  It runs on every CPU
  (SSE2-only x86, aarch64), and is what users' own ``@njit`` code gets;
  ``hardware_fma=False`` computes its fused multiply-adds with plain
  arithmetic (``soft_fma``), for CPUs without FMA;
- ``Lanes32(builder, 16 | 8 | 1, ...)``: the same in float32 lanes, with
  32-entry tables (``Lanes32.lookups``: ``vpermi2ps`` on AVX-512, rows
  read and transposed on AVX2, loads in the scalar emission) and a scale
  by 2^k rounded once (``Lanes32.scale``).

The operations are plain IEEE arithmetic (correctly rounded, fused where
named) and bit manipulations, so every variant gives the same bits; no
operation depends on an instruction's implementation-defined rounding
(no ``vrcp14``, no approximate anything; ``vscalefps`` rounds once, as
IEEE's scaleB, and the other emissions reproduce that rounding).

Each method's docstring names the x86 instruction it becomes on AVX-512
(``ymm``/``xmm`` forms on narrower CPUs, scalar ``sd`` forms for one lane).
"""

import hashlib
import struct

from llvmlite import ir

AVX512, AVX2, SCALAR = "avx512", "avx2", "scalar"

#: float64 lanes per vector, and float32 elements per block, by variant.
WIDTH = {AVX512: 8, AVX2: 4, SCALAR: 1}
BLOCK = {AVX512: 16, AVX2: 8, SCALAR: 1}

F32, F64, I64, I32, I1 = ir.FloatType(), ir.DoubleType(), ir.IntType(64), ir.IntType(32), ir.IntType(1)


#: LLVM's function attribute for the widest vectors its loop vectoriser may
#: choose.  Intel's server tuning (``prefer-256-bit``: Skylake-X to Granite
#: Rapids) makes it pick 256-bit vectors on AVX-512 CPUs; these loops are
#: arithmetic-bound, and 512-bit vectors make them 1.3-1.45x faster there
#: (float64, serial and 2 threads, measured on an Intel Xeon), with the same
#: bits.  AMD's tuning already picks 512; AVX2 and SSE2 targets cap the width
#: at what they have.  It goes on the function that holds the loop body,
#: which for ``prange`` is the outlined parfor function.
PREFER_WIDE = '"prefer-vector-width"="512"'


def prefer_wide_vectors(function, bits=512):
    """Let LLVM vectorise `function`'s loops as wide as the CPU allows
    (PREFER_WIDE), or ask for at most `bits`-wide vectors (256: the AVX2
    loops, which on an AVX-512 CPU LLVM would otherwise pair into zmm
    registers, defeating the variant chosen to keep 512-bit code out).
    A function asked for narrower vectors keeps them: the float32 ufunc
    loops hold an AVX2 loop and the strided path's loads in one function,
    and whichever is emitted last must not widen the other."""
    # llvmlite accepts only a fixed list of attribute names; the set under
    # it emits any string as written.  Without it the loops still work,
    # in 256-bit vectors on Intel.
    # Below 512 LLVM also needs the widest vector the code requires (no
    # attribute reads as "any width": zmm registers stay legal).
    try:
        for old in function.attributes:
            if str(old).startswith('"prefer-vector-width"='):
                bits = min(bits, int(str(old).split("=")[1].strip('"')))
        wanted = [PREFER_WIDE.replace("512", str(bits))]
        if bits < 512:
            wanted.append(f'"min-legal-vector-width"="{bits}"')
        for old in [a for a in function.attributes if str(a).startswith(('"prefer-vector-width"', '"min-legal'))]:
            set.discard(function.attributes, old)
        for attribute in wanted:
            set.add(function.attributes, attribute)
    except Exception:  # noqa: BLE001 (a newer llvmlite: keep LLVM's choice)
        pass


def _declare(module, name, ret, args):
    try:
        return module.get_global(name)
    except KeyError:
        return ir.Function(module, ir.FunctionType(ret, args), name=name)


class _Operations:
    """The operations both kinds of lanes share, whatever their element
    type (``self.float_type``, ``self.int_type``: a lane's float and
    integer of the same width).  Each docstring names the AVX-512
    instruction for float64 lanes and, after a slash, for float32 lanes
    (``ymm``/``xmm`` forms on narrower CPUs, scalar forms for one lane)."""

    def _start(self, builder, width, isa, hardware_fma, widths, kind):
        """The set-up both kinds share: `width` must be the ISA's number of
        lanes of this kind (`widths`: WIDTH or WIDTH32), and only the scalar
        emission may compute without hardware FMA.  Returns vec: a type, as
        a vector of `width` lanes (or itself for one lane)."""
        if width != widths[isa]:
            raise ValueError(f"{isa} has {widths[isa]} {kind} lanes")
        if not hardware_fma and isa != SCALAR:
            raise ValueError(f"{isa} has FMA")
        self.builder, self.width, self.isa = builder, width, isa
        self.hardware_fma = hardware_fma
        self.module = builder.module
        return (lambda t: t) if width == 1 else (lambda t: ir.VectorType(t, width))

    # -- arithmetic (correctly rounded) ------------------------------------

    def add(self, a, b):
        """a + b: vaddpd / vaddps."""
        return self.builder.fadd(a, b)

    def sub(self, a, b):
        """a - b: vsubpd / vsubps."""
        return self.builder.fsub(a, b)

    def mul(self, a, b):
        """a * b: vmulpd / vmulps."""
        return self.builder.fmul(a, b)

    def min(self, a, b):
        """a if a < b else b: vminpd / vminps (operands NaN-free)."""
        return self.select(self.less(a, b), a, b)

    def horner(self, s, coefficients):
        """c0 + s (c1 + s (c2 + ...)), coefficients per lane: one
        vfmadd213pd / vfmadd213ps per degree."""
        p = coefficients[-1]
        for c in reversed(coefficients[:-1]):
            p = self.fma(p, s, c)
        return p

    # -- comparisons and selection -----------------------------------------

    def less(self, a, b):
        """a < b per lane: vcmppd / vcmpps into a k-mask (ordered,
        signalling on NaN: the kernels remove NaN before they compare)."""
        return self.builder.fcmp_ordered("<", a, b)

    def less_equal(self, a, b):
        """a <= b per lane: vcmppd / vcmpps into a k-mask."""
        return self.builder.fcmp_ordered("<=", a, b)

    def select(self, mask, a, b):
        """a where mask, else b: vblendmpd / vblendmps (or a masked move)."""
        return self.builder.select(mask, a, b)

    # -- bits ---------------------------------------------------------------

    def bits(self, a):
        """Each lane's bits, as integers (no instruction)."""
        return self.builder.bitcast(a, self.int_type)

    def from_bits(self, a):
        """Integers reinterpreted as floats (no instruction)."""
        return self.builder.bitcast(a, self.float_type)

    def shift_left(self, a, n):
        """a << n: vpsllq / vpslld."""
        return self.builder.shl(a, self.int_const(n))

    def shift_right(self, a, n):
        """a >> n, logical: vpsrlq / vpsrld."""
        return self.builder.lshr(a, self.int_const(n))

    def int_add(self, a, b):
        """a + b as integers (wrapping): vpaddq / vpaddd."""
        return self.builder.add(a, b)


class Lanes(_Operations):
    """`width` float64 lanes (1: a scalar) emitted into `builder`."""

    def __init__(self, builder, width, isa, hardware_fma=True):
        vec = self._start(builder, width, isa, hardware_fma, WIDTH, "float64")
        self.f64, self.i64, self.f32, self.mask = vec(F64), vec(I64), vec(F32), vec(I1)
        self.float_type, self.int_type = self.f64, self.i64
        self._suffix = "f64" if width == 1 else f"v{width}f64"

    # -- constants --------------------------------------------------------

    def const(self, value):
        """A float64 constant in every lane (a broadcast from the constant pool)."""
        c = ir.Constant(F64, float(value))
        return c if self.width == 1 else ir.Constant(self.f64, [c] * self.width)

    def int_const(self, value):
        c = ir.Constant(I64, int(value))
        return c if self.width == 1 else ir.Constant(self.i64, [c] * self.width)

    # -- arithmetic (correctly rounded) ------------------------------------

    def fma(self, a, b, c):
        """a * b + c rounded once: vfmadd213pd; where the CPU has no FMA
        (``hardware_fma=False``), the same result from plain arithmetic
        (``soft_fma``), not libm's fma (glibc's takes ~150 ns there)."""
        if not self.hardware_fma:
            return soft_fma(self.builder, a, b, c, guard=False)
        fn = _declare(self.module, f"llvm.fma.{self._suffix}", self.f64, [self.f64] * 3)
        return self.builder.call(fn, [a, b, c])

    def abs(self, a):
        """|a|: vandpd with the sign mask."""
        fn = _declare(self.module, f"llvm.fabs.{self._suffix}", self.f64, [self.f64])
        return self.builder.call(fn, [a])

    def reciprocal(self, d):
        """1/d for 1 <= d <= 2, within 2^-46: a float32 division (correctly
        rounded on every CPU) refined by one Newton step in float64:
        vcvtpd2ps, vdivps, vcvtps2pd, two vfmadd.  A float64 division
        (vdivpd) would cost 16 cycles per 8 lanes on its own."""
        one32 = ir.Constant(F32, 1.0)
        one32 = one32 if self.width == 1 else ir.Constant(self.f32, [one32] * self.width)
        r = self.builder.fpext(self.builder.fdiv(one32, self.builder.fptrunc(d, self.f32)), self.f64)
        e = self.fma(self.sub(self.const(0.0), d), r, self.const(1.0))
        return self.fma(r, e, r)

    # -- float32 in and out ---------------------------------------------------

    def widen(self, a):
        """float32 lanes to float64, exactly: vcvtps2pd."""
        return self.builder.fpext(a, self.f64)

    def narrow(self, a):
        """float64 lanes to float32, rounded once to nearest: vcvtpd2ps."""
        return self.builder.fptrunc(a, self.f32)


# -- blocks of float32 in memory (AVX-512: 16 per zmm; AVX2: 8 per ymm) ---------


def soft_fma(builder, a, b, c, guard=True):
    """a * b + c rounded once, for float64 without an FMA instruction: about
    45 SSE2 instructions and one branch, no libm on the common path.
    Boldo and Melquiond's emulation ("Emulation of FMA and correctly
    rounded sums: proved algorithms using rounding to odd", IEEE TC 2008):

        (p, e)   = a * b exactly          Veltkamp's splits, Dekker's product
        (s, t)   = c + p exactly          TwoSum
        v        = RO(t + e)              rounded to odd: TwoSum, then the
                                          last bit set where it was inexact
        result   = RN(s + v)

    It is exact while no step overflows or underflows: |a|, |b| < 2^995,
    |c| < 2^1020, |a b| < 2^1000, a b = 0 or 2^-960 <= |a b|, and
    2^-960 <= |result|.
    Outside that (operands at the ends of the exponent range, rare in the
    kernels) a branch calls libm's fma, exact too; ``guard=False`` leaves
    the branch out (twice as fast in the float32 kernels, whose operands
    stay inside the range: tools/identical_variants.py --soft checks every
    input).  Where an operand is
    infinite or NaN, or the result 0, the plain a * b + c is the result (c
    itself where only c is infinite or NaN): it has the infinity, NaN or
    signed zero that one rounding gives (a NaN operand propagates as the
    instruction propagates it)."""
    fmul, fadd, fsub = builder.fmul, builder.fadd, builder.fsub
    const = lambda v: ir.Constant(a.type, v)  # noqa: E731
    split = const(134217729.0)  # 2^27 + 1

    def halves(v):
        g = fmul(split, v)
        hi = fsub(g, fsub(g, v))
        return hi, fsub(v, hi)

    def two_sum(x, y):
        s = fadd(x, y)
        yy = fsub(s, x)
        return s, fadd(fsub(x, fsub(s, yy)), fsub(y, yy))

    def below(v, bound):
        return builder.fcmp_ordered("olt", _fabs(builder, v), const(bound))

    (ah, al), (bh, bl) = halves(a), halves(b)
    p = fmul(a, b)
    e = fadd(fadd(fadd(fsub(fmul(ah, bh), p), fmul(ah, bl)), fmul(al, bh)), fmul(al, bl))
    s, t = two_sum(c, p)
    v, w = two_sum(t, e)
    # round to odd: an inexact v with an even last bit moves one unit
    # towards the lost part (up in magnitude where w has v's sign)
    vi, wi = builder.bitcast(v, I64), builder.bitcast(w, I64)
    one, zero = ir.Constant(I64, 1), ir.Constant(I64, 0)
    even = builder.icmp_unsigned("==", builder.and_(vi, one), zero)
    inexact = builder.fcmp_unordered("une", w, const(0.0))
    same_sign = builder.icmp_signed(">=", builder.xor(vi, wi), zero)
    step = builder.select(same_sign, one, ir.Constant(I64, -1))
    vi = builder.select(builder.and_(even, inexact), builder.add(vi, step), vi)
    result = fadd(s, builder.bitcast(vi, a.type))
    plain = fadd(fmul(a, b), c)
    inf = float("inf")

    def special(plain):
        # an infinite or NaN c with finite a, b is the result (a b may
        # overflow plainly where the exact product does not); else the
        # plain value
        factors_finite = builder.and_(below(a, inf), below(b, inf))
        return builder.select(factors_finite, fadd(c, const(0.0)), plain)

    finite = builder.and_(builder.and_(below(a, inf), below(b, inf)), below(c, inf))
    zero_product = builder.or_(builder.fcmp_ordered("oeq", a, const(0.0)), builder.fcmp_ordered("oeq", b, const(0.0)))
    in_range = builder.and_(
        builder.and_(builder.and_(below(a, 2.0**995), below(b, 2.0**995)), below(c, 2.0**1020)),
        builder.and_(below(p, 2.0**1000), builder.or_(zero_product, builder.not_(below(p, 2.0**-960)))))
    zero_result = builder.fcmp_ordered("oeq", result, const(0.0))
    fast = builder.select(builder.and_(in_range, builder.not_(zero_result)), result, plain)
    tiny_result = builder.and_(builder.not_(zero_result), below(result, 2.0**-960))
    exact_needed = builder.and_(finite, builder.or_(builder.not_(in_range), tiny_result))
    if not guard:
        return builder.select(finite, fast, special(plain))
    origin = builder.block
    with builder.if_then(exact_needed, likely=False):
        # libm's fma by name, not llvm.fma: the intrinsic is "speculatable",
        # and LLVM would hoist the call out of this branch into every element
        fn = _declare(builder.module, "fma", a.type, [a.type] * 3)
        slow = builder.call(fn, [a, b, c])
        slow_block = builder.block
    merged = builder.phi(a.type)
    merged.add_incoming(fast, origin)
    merged.add_incoming(slow, slow_block)
    return builder.select(finite, merged, special(plain))


def _fabs(builder, v):
    fn = _declare(builder.module, "llvm.fabs.f64", v.type, [v.type])
    return builder.call(fn, [v])


def _v(kind, n):
    return ir.VectorType(kind, n)


def block_mask(builder, count, n):
    """The lanes i < count of an n-lane block (count an i64 in 1..n): a
    compare of the lane numbers with count, into a k-mask (AVX-512) or a
    vector mask (AVX2)."""
    lanes = ir.Constant(_v(I64, n), [ir.Constant(I64, i) for i in range(n)])
    return builder.icmp_unsigned("<", lanes, _splat(builder, count, n))


def _splat(builder, scalar, n):
    v = builder.insert_element(ir.Constant(_v(scalar.type, n), ir.Undefined), scalar, ir.Constant(I32, 0))
    return builder.shuffle_vector(v, ir.Constant(_v(scalar.type, n), ir.Undefined),
                                  ir.Constant(_v(I32, n), [ir.Constant(I32, 0)] * n))


def load_block(builder, pointer, n, mask=None):
    """n float32 from `pointer` (element alignment only): vmovups, masked
    (lanes outside `mask` are neither read nor faulted: vmovups with a
    k-mask, vmaskmovps on AVX2) when a mask is given."""
    kind = _v(F32, n)
    ptr = builder.bitcast(pointer, kind.as_pointer())
    if mask is None:
        return builder.load(ptr, align=4)
    fn = _declare(builder.module, f"llvm.masked.load.v{n}f32.p0", kind,
                  [kind.as_pointer(), I32, _v(I1, n), kind])
    return builder.call(fn, [ptr, ir.Constant(I32, 4), mask, ir.Constant(kind, None)])


def store_block(builder, pointer, value, mask=None):
    """A block of float32 to `pointer`: vmovups, masked (lanes outside
    `mask` are not written) when a mask is given."""
    kind = value.type
    ptr = builder.bitcast(pointer, kind.as_pointer())
    if mask is None:
        builder.store(value, ptr, align=4)
        return
    fn = _declare(builder.module, f"llvm.masked.store.v{kind.count}f32.p0", ir.VoidType(),
                  [kind, kind.as_pointer(), I32, _v(I1, kind.count)])
    builder.call(fn, [value, ptr, ir.Constant(I32, 4), mask])


def stack_array(builder, kind, align=64):
    """Room for a `kind` (an LLVM array type) on the stack, allocated in the
    function's entry block and not initialised.  (``cgutils.alloca_once``
    stores a zero aggregate there, which LLVM's function passes take about
    0.4 s per 4 KB array to digest: seconds per loop.)"""
    with builder.goto_entry_block():
        slot = builder.alloca(kind)
    slot.align = align
    return slot


def prefetch(builder, pointer):
    """Ask for the cache line at `pointer` ahead of its load: prefetcht0
    (never faults, so it may point past the end of an array)."""
    byte = ir.IntType(8).as_pointer()
    fn = _declare(builder.module, "llvm.prefetch.p0", ir.VoidType(), [byte, I32, I32, I32])
    builder.call(fn, [builder.bitcast(pointer, byte), ir.Constant(I32, 0), ir.Constant(I32, 3), ir.Constant(I32, 1)])


def splat_block(builder, scalar, n):
    """One float32 in all n lanes: vbroadcastss."""
    return _splat(builder, scalar, n)


def halves(builder, v):
    """The low and high halves of a block (no instruction for the low half;
    vextractf32x8 or vextractf128 for the high one)."""
    n = v.type.count // 2
    idx = lambda start: ir.Constant(_v(I32, n), [ir.Constant(I32, start + i) for i in range(n)])  # noqa: E731
    undef = ir.Constant(v.type, ir.Undefined)
    return builder.shuffle_vector(v, undef, idx(0)), builder.shuffle_vector(v, undef, idx(n))


def join(builder, lo, hi):
    """Two halves as one block: vinsertf32x8 or vinsertf128."""
    n = 2 * lo.type.count
    return builder.shuffle_vector(lo, hi, ir.Constant(_v(I32, n), [ir.Constant(I32, i) for i in range(n)]))


def is_nan(builder, v):
    """Lanes that are NaN: vcmpps with the unordered predicate (no flag for
    a quiet NaN; a signalling NaN raises "invalid", as IEEE 754 asks of any
    operation on one)."""
    return builder.fcmp_unordered("uno", v, v)


# -- float32 lanes ----------------------------------------------------------------

#: float32 lanes per vector, by variant (a block is one vector).
WIDTH32 = {AVX512: 16, AVX2: 8, SCALAR: 1}


class Lanes32(_Operations):
    """`width` float32 lanes (1: a scalar) emitted into `builder`: the
    vocabulary of the kernels computed in float32 lanes.  Tables have 32
    float32 entries, indexed by the low five bits of a lane's integer.

    - AVX-512 (16 lanes): a lookup is one ``vpermi2ps`` over the table's two
      zmm registers;
    - AVX2 (8 lanes): each lane's row of all the tables, read four entries
      at a time and transposed (``lookups``);
    - scalar: a load from a constant array.

    As with :class:`Lanes`, every operation is plain IEEE arithmetic
    (correctly rounded, fused where named) or bit manipulation, so each
    emission gives the same bits.  ``hardware_fma=False`` computes fused
    multiply-adds by ``soft_fma32`` (the scalar emission for CPUs without
    FMA).
    """

    def __init__(self, builder, width, isa, hardware_fma=True):
        vec = self._start(builder, width, isa, hardware_fma, WIDTH32, "float32")
        self.f32, self.i32, self.mask = vec(F32), vec(I32), vec(I1)
        self.float_type, self.int_type = self.f32, self.i32
        self._suffix = "f32" if width == 1 else f"v{width}f32"

    # -- constants --------------------------------------------------------

    def const(self, value):
        """A float32 constant in every lane (`value` must be a float32)."""
        v = float(value)
        if float(struct.unpack("<f", struct.pack("<f", v))[0]) != v and v == v:
            raise ValueError(f"{value!r} is not a float32")
        c = ir.Constant(F32, v)
        return c if self.width == 1 else ir.Constant(self.f32, [c] * self.width)

    def int_const(self, value):
        c = ir.Constant(I32, int(value))
        return c if self.width == 1 else ir.Constant(self.i32, [c] * self.width)

    # -- arithmetic ----------------------------------------------------------

    def fma(self, a, b, c):
        """a * b + c rounded once: vfmadd213ps (``soft_fma32`` without FMA)."""
        if not self.hardware_fma:
            return soft_fma32(self.builder, a, b, c)
        fn = _declare(self.module, f"llvm.fma.{self._suffix}", self.f32, [self.f32] * 3)
        return self.builder.call(fn, [a, b, c])

    def max(self, a, b):
        """a if b < a else b: vmaxps (operands NaN-free)."""
        return self.select(self.less(b, a), a, b)

    # -- integers -------------------------------------------------------------

    def int_sub(self, a, b):
        """a - b as 32-bit integers: vpsubd."""
        return self.builder.sub(a, b)

    def int_and(self, a, b):
        """a & b: vpandd."""
        return self.builder.and_(a, b)

    def int_greater(self, a, b):
        """a > b per lane, signed: vpcmpgtd (no floating-point flag, whatever
        the bits: a NaN's included)."""
        return self.builder.icmp_signed(">", a, b)

    def int_equal(self, a, b):
        """a == b per lane: vpcmpeqd."""
        return self.builder.icmp_signed("==", a, b)

    def int_max(self, a, b):
        """max(a, b), signed: vpmaxsd."""
        return self.builder.select(self.builder.icmp_signed(">", a, b), a, b)

    def scale(self, m, k):
        """m 2^k rounded once (into the subnormals where it is that small),
        for normal m with 1/8 <= |m| < 2 and k an integer-valued float in
        [-163, 0]: vscalefps on AVX-512 (one rounding, as IEEE's scaleB);
        elsewhere two multiplies by powers of two, the first exact
        (2^(k - b), -37 <= k - b <= 0) and the second rounding once
        (2^b, b = max(k, -126)): vcvttps2dq, vpmaxsd, vpsubd, two vpaddd,
        two vpslld, two vmulps.  The same bits either way."""
        b = self.builder
        if self.isa == AVX512:
            v16 = ir.VectorType(F32, 16)
            fn = _declare(self.module, "llvm.x86.avx512.mask.scalef.ps.512", v16,
                          [v16, v16, v16, ir.IntType(16), I32])
            return b.call(fn, [m, k, ir.Constant(v16, ir.Undefined), ir.Constant(ir.IntType(16), -1),
                               ir.Constant(I32, 4)])  # 4: the rounding of MXCSR (the loops: to nearest)
        ki = b.fptosi(k, self.i32)
        high = self.int_max(ki, self.int_const(-126))
        first = self.from_bits(self.shift_left(self.int_add(self.int_sub(ki, high), self.int_const(127)), 23))
        second = self.from_bits(self.shift_left(self.int_add(high, self.int_const(127)), 23))
        return self.mul(self.mul(m, first), second)

    # -- tables -------------------------------------------------------------

    def lookups(self, tables, index):
        """[table[index & 31] for table in tables], per lane, for up to 16
        tables of 32 float32 constants.

        AVX-512: one vpermi2ps per table.  AVX2 reads each lane's own row of
        a row-major copy of the tables (32 rows of 16 entries, 64 bytes),
        four tables at a time: lane j's 16 bytes loaded with lane j + 4's
        inserted above them (vmovups, vinsertf128 from memory), then a 4 x 4
        transpose in each 128-bit half (vunpcklps, vunpckhps, vshufps): 16
        instructions for four tables of eight lanes, where four vpermps and
        three blends a table take 28.  Scalar: a load per table."""
        if len(tables) > 16 or any(len(t) != 32 for t in tables):
            raise ValueError("at most 16 tables of 32 entries")
        if self.isa != AVX2:
            return [self._lookup(table, index) for table in tables]
        b = self.builder
        rows = [[float(t[i]) for t in tables] + [0.0] * (16 - len(tables)) for i in range(32)]
        array = self._constant_array([v for row in rows for v in row], align=64)
        offsets = b.shl(b.and_(index, self.int_const(31)), self.int_const(6))  # 64 bytes a row
        base = b.bitcast(array, ir.IntType(8).as_pointer())
        at = [b.gep(base, [b.extract_element(offsets, ir.Constant(I32, lane))], inbounds=True) for lane in range(8)]
        quad = ir.VectorType(F32, 4)

        def mask(values):
            return ir.Constant(ir.VectorType(I32, len(values)), values)

        def load(lane, group):
            at_ = b.gep(at[lane], [ir.Constant(I32, 16 * group)], inbounds=True)
            return b.load(b.bitcast(at_, quad.as_pointer()), align=16)

        out = []
        for g in range((len(tables) + 3) // 4):
            r = [b.shuffle_vector(load(j, g), load(j + 4, g), mask(list(range(8)))) for j in range(4)]
            t0 = b.shuffle_vector(r[0], r[1], mask([0, 8, 1, 9, 4, 12, 5, 13]))
            t1 = b.shuffle_vector(r[0], r[1], mask([2, 10, 3, 11, 6, 14, 7, 15]))
            t2 = b.shuffle_vector(r[2], r[3], mask([0, 8, 1, 9, 4, 12, 5, 13]))
            t3 = b.shuffle_vector(r[2], r[3], mask([2, 10, 3, 11, 6, 14, 7, 15]))
            out.append(b.shuffle_vector(t0, t2, mask([0, 1, 8, 9, 4, 5, 12, 13])))
            out.append(b.shuffle_vector(t0, t2, mask([2, 3, 10, 11, 6, 7, 14, 15])))
            out.append(b.shuffle_vector(t1, t3, mask([0, 1, 8, 9, 4, 5, 12, 13])))
            out.append(b.shuffle_vector(t1, t3, mask([2, 3, 10, 11, 6, 7, 14, 15])))
        return out[:len(tables)]

    def _lookup(self, table, index):
        if len(table) != 32:
            raise ValueError("tables have 32 entries")
        values = [ir.Constant(F32, float(v)) for v in table]
        b = self.builder
        if self.isa == AVX512:
            half = ir.VectorType(F32, 16)
            fn = _declare(self.module, "llvm.x86.avx512.vpermi2var.ps.512", half,
                          [half, ir.VectorType(I32, 16), half])
            return b.call(fn, [ir.Constant(half, values[:16]), index, ir.Constant(half, values[16:])])
        array = self._constant_array(table)
        i = b.and_(index, self.int_const(31))
        return b.load(b.gep(array, [ir.Constant(I32, 0), i], inbounds=True))

    def _constant_array(self, table, align=16):
        data = b"".join(struct.pack("<f", float(v)) for v in table)
        name = "gelu_numba.table32." + hashlib.sha256(data).hexdigest()[:16]
        try:
            return self.module.get_global(name)
        except KeyError:
            pass
        kind = ir.ArrayType(F32, len(table))
        g = ir.GlobalVariable(self.module, kind, name=name)
        g.linkage = "internal"
        g.global_constant = True
        g.align = align
        g.initializer = ir.Constant(kind, [ir.Constant(F32, float(v)) for v in table])
        return g


def soft_fma32(builder, a, b, c):
    """a * b + c rounded once to float32, without an FMA instruction: the
    product is exact in float64 (24 + 24 bits), the sum is rounded to odd
    in float64 (TwoSum, then the last bit set where it was inexact), and
    rounding that to float32 rounds the exact sum once (53 >= 24 + 2 bits).
    About 15 SSE2 instructions.  For finite operands whose exact product
    and sum stay within float64's range (every float32 operand does)."""
    f64 = ir.DoubleType() if not isinstance(a.type, ir.VectorType) else ir.VectorType(F64, a.type.count)
    i64 = I64 if not isinstance(a.type, ir.VectorType) else ir.VectorType(I64, a.type.count)
    const = lambda t, v: ir.Constant(t, v) if not isinstance(t, ir.VectorType) else ir.Constant(t, [ir.Constant(t.element, v)] * t.count)  # noqa: E731
    p = builder.fmul(builder.fpext(a, f64), builder.fpext(b, f64))
    cc = builder.fpext(c, f64)
    s = builder.fadd(cc, p)
    pp = builder.fsub(s, cc)
    err = builder.fadd(builder.fsub(cc, builder.fsub(s, pp)), builder.fsub(p, pp))
    si, ei = builder.bitcast(s, i64), builder.bitcast(err, i64)
    even = builder.icmp_unsigned("==", builder.and_(si, const(i64, 1)), const(i64, 0))
    inexact = builder.fcmp_unordered("une", err, const(f64, 0.0))
    same_sign = builder.icmp_signed(">=", builder.xor(si, ei), const(i64, 0))
    step = builder.select(same_sign, const(i64, 1), const(i64, -1))
    odd = builder.select(builder.and_(even, inexact), builder.add(si, step), si)
    return builder.fptrunc(builder.bitcast(odd, f64), a.type)
