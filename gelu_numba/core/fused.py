"""The fused forms of transformer feed-forward blocks: bias-GELU and GeGLU,
forward and backward, for the three forms (issue 29).

For f one of gelu, gelu_tanh, gelu_sigmoid and f_backward(dy, x) = dy f'(x)::

    bias_gelu(x, b)              = f(x + b)
    bias_gelu_backward(dy, x, b) = f_backward(dy, x + b)
    geglu(a, g)                  = f(a) * g
    geglu_backward(dy, a, g)     = (f_backward(dy * g, a), dy * f(a))

with each sum and product rounded in the operands' format first: the same
bits as the unfused NumPy expression.  NaNs follow x86's rules on every
CPU: a NaN sum or product is the first operand's NaN, quieted, where that
is a NaN, and a NaN that no operand was (0 * inf, inf - inf, a backward
kernel's dy = inf times f'(x) = 0) is x86's default NaN, the sign bit set
(what x86 computes, and so NumPy's own loops there; on ARM NumPy's may pick
a signalling second operand's, and ARM's default NaN has no sign bit): the
result depends on the input alone, on every CPU.

How: no kernel is written twice.  float32 runs an explicit-SIMD loop of
``vector32`` whose lanes load the operands, add or multiply, and call the
single forms' own ``_kernel`` (the same AVX-512, AVX2 and scalar
emissions, the same tables); float64 the scalar formulas, inlined into a
loop that LLVM vectorises (``_impl64``).  So every variant gives the fused
forms the single forms' bits.

One loop per kernel, format and target (``driver``) serves two calling
conventions: a ufunc's, one run of n elements, and a generalized ufunc's
``(n),(n)->(n)``, rows of n elements with a stride between rows, which
``gelu_numba.parallel`` (``RowsUfunc``) uses to thread a bias along the
last axis and the two halves of a concatenated GeGLU projection: there
NumPy would call the ufunc loop once per row, too short for threads.  Runs
with unit strides go whole; broadcast (stride 0) and strided operands go
through buffers on the stack CHUNK_BYTES at a time (``_emit_span``), every
input read before any output is written, so that ``out=`` may be any of
the inputs (NumPy copies operands that overlap partially, and hands exactly
aliased ones to the loop as they are).  Threaded calls follow the rules of
the single forms' loops (``loops``: the pool lock, the fallback to serial
calls, the flags of every block).
"""

import ctypes
import functools
import math

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.extending import models, register_model, typeof_impl
from numba.core.imputils import lower_constant
from numba.extending import intrinsic, register_jitable

from . import fpenv
from . import runtime as R
from .fp import CPU_JIT_OPTIONS
from .simd import stack_array
from .loops import (
    BLOCK_FLAGS,
    BLOCK_TICKS,
    PARALLEL_MIN_SIZE,
    PATH_STRIDED,
    PATH_THREADED,
    SOURCES_DIGEST,
    THREADED,
    _NEVER,
    _compile,
    _or_all,
    blocks,
    count,
    count_serial,
    get_slot,
    judge,
    load,
    mode,
    now,
    release,
    set_slot_at,
    store,
    vector_width,
)
from . import vector32
from .names import ARITY, BIAS, BIAS_BACKWARD, GEGLU, GEGLU_BACKWARD, parse_fused

KINDS = (BIAS, BIAS_BACKWARD, GEGLU, GEGLU_BACKWARD)
#: The gufunc signature of each kind's rows (``gelu_numba.parallel``).
ROWS_SIGNATURE = {BIAS: "(n),(n)->(n)", BIAS_BACKWARD: "(n),(n),(n)->(n)", GEGLU: "(n),(n)->(n)",
                  GEGLU_BACKWARD: "(n),(n),(n)->(n),(n)"}

#: Bytes per chunk: the buffers of a chunk (three at most) stay in L1.
CHUNK_BYTES = 4096

#: The slots of a fused loop's data block (int64 each): the address of
#: runtime's state block, and 1 for a gufunc's loop over rows.
DATA_STATE, DATA_ROWS = 0, 1
DATA_SLOTS = 2


# -- intrinsics ------------------------------------------------------------------

_I64 = ir.IntType(64)
_I8P = ir.IntType(8).as_pointer()


@intrinsic
def as_pointer(typingctx, address):
    """The integer `address` as a pointer."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], _I8P)

    return types.voidptr(address), codegen


# -- which kernel, as a type ---------------------------------------------------------


class Kernel:
    """A fused kernel and the float32 variant it is emitted for, handed to
    ``span`` as a value whose Numba type carries both (typing calls with
    string literals instead retries each call without them first: seconds
    a loop when the chunk loop was made of Numba functions)."""

    def __init__(self, name, isa):
        self.name, self.isa = name, isa

    def __eq__(self, other):
        return isinstance(other, Kernel) and (self.name, self.isa) == (other.name, other.isa)

    def __hash__(self):
        return hash((self.name, self.isa))


class KernelType(types.Dummy):
    def __init__(self, name, isa):
        self.kernel_name, self.isa = name, isa
        super().__init__(f"gelu_numba.Kernel({name}, {isa})")


@typeof_impl.register(Kernel)
def _typeof_kernel(value, c):
    return KernelType(value.name, value.isa)


register_model(KernelType)(models.OpaqueModel)


@lower_constant(KernelType)
def _kernel_constant(context, builder, ty, value):
    return context.get_dummy_value()


# -- the computation ---------------------------------------------------------------


#: x86's default NaN in float64 (the sign bit set; vector32.DEFAULT_NAN_BITS).
_X86_NAN = -math.nan


@register_jitable(**CPU_JIT_OPTIONS)
def _op(multiply, p, q, zero):
    """p * q or p + q (float64), with x86's NaNs on every CPU: p's NaN
    quieted (p + 0) where p is a NaN, whatever order LLVM puts the operands
    in and whatever the CPU's own rule, and x86's default NaN where neither
    operand is one (0 * inf; ARM's has no sign bit); vector32._first_nan."""
    s = p * q if multiply else p + q
    if s != s and q == q:
        s = _X86_NAN
    return p + zero if p != p else s


@register_jitable(**CPU_JIT_OPTIONS)
def _made(r, u, v):
    """r, or x86's default NaN where r is a NaN that neither input was (a
    backward kernel's own dy = inf times f'(x) = 0); vector32._made_nan."""
    return _X86_NAN if r != r and u == u and v == v else r


@functools.cache
def _impl64(name):
    """The float64 loop of fused kernel `name` over m elements of
    unit-stride operands (p: inputs, then outputs), by the scalar formulas,
    which LLVM vectorises."""
    from . import formulas

    kind, form = parse_fused(name)
    code = KINDS.index(kind)
    f, fb = getattr(formulas, form), getattr(formulas, form + "_backward")

    def impl64(p, m):
        zero = np.float64(0)
        if code == 0:  # bias: x, b -> out
            for i in range(m):
                store(p[2], i * 8, f(_op(False, load(p[0], i * 8, zero), load(p[1], i * 8, zero), zero)))
        elif code == 1:  # bias backward: dy, x, b -> out
            for i in range(m):
                s = _op(False, load(p[1], i * 8, zero), load(p[2], i * 8, zero), zero)
                dy = load(p[0], i * 8, zero)
                store(p[3], i * 8, _made(fb(dy, s), dy, s))
        elif code == 2:  # geglu: a, g -> out
            for i in range(m):
                store(p[2], i * 8, _op(True, f(load(p[0], i * 8, zero)), load(p[1], i * 8, zero), zero))
        else:  # geglu backward: dy, a, g -> da, dg
            for i in range(m):
                dy = load(p[0], i * 8, zero)
                a = load(p[1], i * 8, zero)
                t = _op(True, dy, load(p[2], i * 8, zero), zero)
                store(p[3], i * 8, _made(fb(t, a), t, a))
                store(p[4], i * 8, _op(True, dy, f(a), zero))

    # Numba keeps the subroutines it compiles by their code objects, and
    # names their symbols by qualified name and a counter of the process
    # that compiled them: one code object and one name per kernel, or the
    # first kernel's would serve them all (in one process), or a cached
    # loop's call would go to another kernel's subroutine compiled with the
    # same counter in another process (its symbol is weak once cached).
    impl64.__code__ = impl64.__code__.replace(co_name=f"impl64_{name}")
    impl64.__qualname__ = impl64.__name__ = f"impl64_{name}"
    return impl64


def _copy_loop(builder, kind, source, source_step, target, target_step, m):
    """target[i] = source[i] for i < m (steps in bytes, 0 for a broadcast
    source), elements of LLVM type `kind`."""
    with cgutils.for_range(builder, m) as loop:
        at = builder.gep(source, [builder.mul(loop.index, source_step)])
        value = builder.load(builder.bitcast(at, kind.as_pointer()), align=1)
        to = builder.gep(target, [builder.mul(loop.index, target_step)])
        builder.store(value, builder.bitcast(to, kind.as_pointer()), align=1)


def _emit_span(context, builder, kernel, size, ps, rs, cs, n, lo, hi):
    """Elements [lo, hi) of rows of n elements (row strides rs, element
    strides cs, in bytes): a row's run at a time where every operand has
    unit stride, else CHUNK_BYTES at a time through buffers on the stack,
    every input gathered into them before any output is written, and
    outputs scattered from them after.  Emitted into the calling loop (an
    intrinsic, not a Numba function of its own: each library Numba nests
    is optimised again in every library above it, the kernel with it)."""
    nin, nout = ARITY[parse_fused(kernel.kernel_name)[0]]
    k = nin + nout
    kind = ir.FloatType() if size == 4 else ir.DoubleType()
    one = ir.Constant(_I64, 1)
    zero = ir.Constant(_I64, 0)
    unit = ir.Constant(_I64, size)
    chunk = ir.Constant(_I64, CHUNK_BYTES // size)
    direct = builder.icmp_signed("==", cs[0], unit)
    for i in range(1, k):
        direct = builder.and_(direct, builder.icmp_signed("==", cs[i], unit))
    buffers = [builder.bitcast(stack_array(builder, ir.ArrayType(ir.IntType(8), CHUNK_BYTES)), _I8P)
               for _ in range(k)]
    r_slot = cgutils.alloca_once_value(builder, builder.sdiv(lo, n))
    c_slot = cgutils.alloca_once_value(builder, builder.sub(lo, builder.mul(builder.load(r_slot), n)))
    at_slot = cgutils.alloca_once_value(builder, lo)
    head = builder.append_basic_block("span.head")
    body = builder.append_basic_block("span.body")
    done = builder.append_basic_block("span.done")
    builder.branch(head)
    builder.position_at_end(head)
    builder.cbranch(builder.icmp_signed("<", builder.load(at_slot), hi), body, done)
    builder.position_at_end(body)
    r, c, at = builder.load(r_slot), builder.load(c_slot), builder.load(at_slot)
    m = _smin(builder, builder.sub(n, c), builder.sub(hi, at))
    m = builder.select(direct, m, _smin(builder, m, chunk))
    starts = [builder.gep(ps[i], [builder.add(builder.mul(r, rs[i]), builder.mul(c, cs[i]))]) for i in range(k)]
    runs = []
    for i in range(k):
        strided = builder.icmp_signed("!=", cs[i], unit)
        if i < nin:  # gathered before anything is written
            with builder.if_then(strided, likely=False):
                _copy_loop(builder, kind, starts[i], cs[i], buffers[i], unit, m)
        runs.append(builder.select(strided, buffers[i], starts[i]))
    if size == 4:
        vector32._fused_loop(builder, kernel.kernel_name, kernel.isa, runs, zero, m)
    else:
        tuple_type = types.UniTuple(types.voidptr, 5)
        packed = context.make_tuple(builder, tuple_type, runs + [runs[0]] * (5 - k))
        context.compile_internal(builder, _impl64(kernel.kernel_name), types.none(tuple_type, types.int64),
                                 [packed, m])
    for i in range(nin, k):
        with builder.if_then(builder.icmp_signed("!=", cs[i], unit), likely=False):
            _copy_loop(builder, kind, buffers[i], unit, starts[i], cs[i], m)
    c = builder.add(c, m)
    wrap = builder.icmp_signed("==", c, n)
    builder.store(builder.select(wrap, zero, c), c_slot)
    builder.store(builder.select(wrap, builder.add(r, one), r), r_slot)
    builder.store(builder.add(at, m), at_slot)
    builder.branch(head)
    builder.position_at_end(done)


def _smin(builder, a, b):
    return builder.select(builder.icmp_signed("<", a, b), a, b)


@intrinsic
def span(typingctx, kernel, zero, ps, rs, cs, n, lo, hi):
    """``_emit_span`` for the fused kernel `kernel` (a Kernel) in the format
    of `zero`; ps, rs, cs: 5-tuples of pointers, row strides and element
    strides (operands past the kernel's are ignored)."""
    if not isinstance(kernel, KernelType):
        return None
    size = 4 if zero == types.float32 else 8

    def codegen(context, builder, sig, args):
        kernel_, _, ps_, rs_, cs_, n_, lo_, hi_ = args
        unpack = [cgutils.unpack_tuple(builder, v, 5) for v in (ps_, rs_, cs_)]
        ints = [context.cast(builder, v, t, types.int64) for v, t in zip((n_, lo_, hi_), sig.args[5:])]
        _emit_span(context, builder, sig.args[0], size, unpack[0],
                   [context.cast(builder, v, sig.args[3].dtype, types.int64) for v in unpack[1]],
                   [context.cast(builder, v, sig.args[4].dtype, types.int64) for v in unpack[2]], *ints)
        return context.get_dummy_value()

    return types.none(kernel, zero, ps, rs, cs, n, lo, hi), codegen


# -- the driver ----------------------------------------------------------------------


@functools.cache
def driver(name, dtype, parallel, cache=True):
    """The compiled inner loop of fused kernel `name` for one float type
    and target: a ufunc's loop, or a gufunc's over rows (data's DATA_ROWS)."""
    T = dtype
    size = np.dtype(dtype).itemsize
    kind, form = parse_fused(name)
    nin, nout = ARITY[kind]
    k = nin + nout
    kernel = Kernel(name, vector32.emission())
    threads_from = PARALLEL_MIN_SIZE[size] if parallel else _NEVER
    first = R.loop_slot(name, size)  # whether its first threaded call has been made
    # (the vector width the variant allows, and whether FMAs are plain
    # arithmetic here: fp._cpu_fma_codegen)
    sources = SOURCES_DIGEST + f":{vector32.vector_bits()}" + (":soft-fma" if vector32.fma_emulated() else "")

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        vector_width()
        env = fpenv.enter()
        zero = T(0)
        state = as_pointer(get_slot(data, DATA_STATE))
        rows = get_slot(data, DATA_ROWS) != 0
        nrows = dims[0] if rows else 1
        n = dims[1] if rows else dims[0]
        e = k if rows else 0  # where the element strides start in steps
        # (unused operand slots repeat operand 0; never read)
        p = (args[0], args[1], args[2], args[3] if k > 3 else args[0], args[4] if k > 4 else args[0])
        rs = (steps[0] if rows else 0, steps[1] if rows else 0, steps[2] if rows else 0,
              steps[3] if rows and k > 3 else 0, steps[4] if rows and k > 4 else 0)
        cs = (steps[e], steps[e + 1], steps[e + 2], steps[e + 3] if k > 3 else size,
              steps[e + 4] if k > 4 else size)
        total = nrows * n
        # threads where every input runs or is broadcast and every output runs
        dense = True
        for i in range(k):
            if not (cs[i] == size or (i < nin and cs[i] == 0)):
                dense = False
        if total > 0:
            if dense:
                how = mode(state, total, threads_from)
                if how == THREADED:
                    count(state, PATH_THREADED)
                    nb, step = blocks(total)
                    start = now()
                    for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                        t0 = now()
                        inner = fpenv.enter_block()
                        span(kernel, zero, p, rs, cs, n, min(total, b * step), min(total, b * step + step))
                        set_slot_at(state, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                        set_slot_at(state, BLOCK_TICKS + b, now() - t0)
                    judge(state, first, now() - start, total, step, nb)
                    flags = _or_all(state, nb)
                    release(state)
                    fpenv.merge(flags)
                else:
                    count_serial(state, how)
                    span(kernel, zero, p, rs, cs, n, 0, total)
            else:
                count(state, PATH_STRIDED)
                span(kernel, zero, p, rs, cs, n, 0, total)
        fpenv.leave(env)

    # a symbol of its own per kernel, format and target (see _impl64)
    loop.__qualname__ = loop.__name__ = f"fused_{name}_{np.dtype(dtype).name}{'_parallel' if parallel else ''}"
    return _compile(loop, parallel, cache)


# -- the ufuncs -----------------------------------------------------------------------

DTYPES = (np.float32, np.float64)
#: The data blocks of the fused loops, kept alive with the process.
_DATA = []


def _data(rows):
    block = (ctypes.c_int64 * DATA_SLOTS)()
    block[DATA_STATE] = R.ADDRESS
    block[DATA_ROWS] = int(rows)
    _DATA.append(block)
    return ctypes.addressof(block)


def _doc(name, kind, form, rows):
    f = form
    what = {
        BIAS: (f"{name}(x, b): {f}(x + b), x + b rounded first: the bits of gelu_numba.{f}(x + b).",
               "b broadcasts as any ufunc operand (a bias along the last axis is the common case)."),
        BIAS_BACKWARD: (f"{name}(dy, x, b): dy * {f}'(x + b): the bits of gelu_numba.{f}_backward(dy, x + b).",
                        "The bias gradient is the sum of the result over the broadcast axes "
                        "(dx.sum(axis=0) for a bias along the last axis of a 2-D x)."),
        GEGLU: (f"{name}(a, g): {f}(a) * g: the bits of gelu_numba.{f}(a) * g.",
                "a is the gated projection, g the gate."),
        GEGLU_BACKWARD: (f"{name}(dy, a, g) -> (da, dg): da = {f}_backward(dy * g, a), dg = dy * {f}(a), "
                         "the bits of those unfused expressions.", "out=(da, dg) writes both."),
    }[kind]
    rows_note = ("\n\nThe rows form of gelu_numba.parallel: a generalized ufunc over the last axis, "
                 "which threads over rows.") if rows else ""
    return (f"{what[0]}\n\n{what[1]} float32 and float64 loops, each computed in its own format; other "
            "dtypes follow NumPy's casting (integers and float16 as for the single forms). NaNs as x86 makes "
            "them on every CPU (a NaN sum or product is its first operand's NaN where that is one, else "
            "x86's default NaN). Fused: one pass over memory, the "
            "intermediate in cache (gelu_numba.core.fused)." + rows_note)


def build(name, target, rows=False):
    """The np.ufunc (or, with rows, the gufunc over the last axis) of the
    fused kernel `name` on `target` ('cpu' or 'parallel')."""
    from numba.np.ufunc import _internal

    from .ufunc_object import _plain_outputs, _set_module

    kind, form = parse_fused(name)
    parallel = target == "parallel"
    if parallel:
        R.calibrate()
    nin, nout = ARITY[kind]
    loops, data = [], []
    for dtype in DTYPES:
        loops.append(driver(name, dtype, parallel))
        data.append(_data(rows))
    types_ = [[np.dtype(dtype).num] * (nin + nout) for dtype in DTYPES]
    doc = _doc(name, kind, form, rows)
    if rows:
        f = _internal.fromfunc(name, doc, [loop.address for loop in loops], types_, nin, nout, data,
                               (tuple(loops), tuple(_DATA)), _internal.PyUFunc_None, ROWS_SIGNATURE[kind], ())
    else:
        f = _internal.fromfunc(name, doc, [loop.address for loop in loops], types_, nin, nout, data,
                               (tuple(loops), tuple(_DATA)), _internal.PyUFunc_None)
        _plain_outputs(f)
    _set_module(f, "gelu_numba.parallel" if parallel else "gelu_numba")
    return f


class RowsUfunc:
    """A fused kernel of ``gelu_numba.parallel``: its multi-threaded ufunc
    (``.ufunc``), called through a generalized ufunc over the last axis
    (``.rows``, ``(n),(n)->(n)``) where every operand's last axis has the
    same length, so that the threads share the whole call.

    Without it NumPy would call the ufunc's loop once per row for a bias
    along the last axis (x + b) and for the two halves of a concatenated
    projection (h[..., :d], h[..., d:]): rows of a few thousand elements,
    each too short for threads.  Both give the same bits (one loop, one
    kernel).  Anything else goes to the ufunc as it is: other keywords
    (``where=``, ``dtype=``, ``casting=``), other array types (their
    ``__array_ufunc__`` sees the ufunc), Python scalars, mixed or other
    dtypes, a bias that broadcasts along the last axis.

    It pickles by reference, like the ufuncs; attributes it does not have
    (``nin``, ``types``, ``reduce``...) are the ufunc's.
    """

    def __init__(self, name):
        self.ufunc = build(name, "parallel")
        self.rows = build(name, "parallel", rows=True)
        self.__name__ = self.__qualname__ = name
        self.__module__ = "gelu_numba.parallel"
        self.__doc__ = self.ufunc.__doc__

    def __getattr__(self, attribute):
        if attribute in ("ufunc", "rows"):  # not yet set (unpickling, copying)
            raise AttributeError(attribute)
        return getattr(self.ufunc, attribute)

    def __reduce__(self):
        return self.__name__

    def __repr__(self):
        return f"<gelu_numba.parallel.{self.__name__}: a threaded ufunc, threaded over rows>"

    def __call__(self, *args, out=None, **kwargs):
        outs = out if isinstance(out, tuple) else (() if out is None else (out,))
        if not kwargs and _rows_apply(args, outs, self.ufunc.nin, self.ufunc.nout):
            return self.rows(*args, **({"out": outs} if outs else {}))
        if out is not None:
            kwargs["out"] = out
        return self.ufunc(*args, **kwargs)


def _rows_apply(args, outs, nin, nout):
    """Whether the rows gufunc computes this call: arrays (not subclasses)
    of one float dtype, every last axis of the same length n > 0, and a
    row to share (two dimensions or more somewhere)."""
    if len(args) != nin or len(outs) not in (0, nout):
        return False
    arrays = (*args, *outs)
    if not all(type(a) is np.ndarray for a in arrays):
        return False
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        return False
    if any(a.ndim == 0 for a in arrays):
        return False
    n = arrays[0].shape[-1]
    return n > 0 and all(a.shape[-1] == n for a in arrays) and any(a.ndim > 1 for a in args)
