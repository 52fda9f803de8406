"""The fused forms of transformer feed-forward blocks: bias-GELU and GeGLU,
forward and backward, for the three forms (issue 29).

For f one of gelu, gelu_tanh, gelu_sigmoid and f_backward(dy, x) = dy f'(x)::

    bias_gelu(x, b)              = f(x + b)
    bias_gelu_backward(dy, x, b) = f_backward(dy, x + b)
    geglu(a, g)                  = f(a) * g
    geglu_backward(dy, a, g)     = (f_backward(dy * g, a), dy * f(a))

with each sum and product rounded in the operands' format first: the same
bits as the unfused NumPy expression.  A NaN sum or product is the first
operand's NaN, quieted, where that is a NaN (as x86 computes it, and so
NumPy's own loops there; on ARM NumPy's may pick a signalling second
operand's instead): the result depends on the input alone, on every CPU.

How: no kernel is written twice.  Each fused loop is a driver that runs its
operands in chunks of 4 KB (1024 float32 or 512 float64 elements): the
sums and products into buffers on the stack, in L1, and f and f_backward by
calling the serial ufunc loops of the single forms (``loops``, and for
float32 the explicit-SIMD loops of ``vector32``) through their addresses,
read at run time from the loop's ``data`` block.  So every variant of the
float32 algorithm (AVX-512, AVX2, scalar) runs in the fused forms with the
same bits, and a fused loop compiles in a fraction of the time of a
kernel's.  The memory traffic is that of one pass: each chunk's
intermediate never leaves the cache.

The order within a chunk reads every input before it writes any output,
so that ``out=`` may be any of the inputs (NumPy copies operands that
overlap partially, and hands exactly aliased ones to the loop as they are).

One compiled driver serves the three forms (the forms differ only in the
addresses in ``data``) and two calling conventions: a ufunc's, one run of
n elements, and a generalized ufunc's ``(n),(n)->(n)``, rows of n elements
with a stride between rows, which ``gelu_numba.parallel`` uses to thread
a bias along the last axis and the two halves of a concatenated GeGLU
projection: there NumPy would call the ufunc loop once per row, too short
for threads.  Threaded calls follow the rules of the single forms' loops
(``loops``: the pool lock, the fallback to serial calls, the flags of
every block).
"""

import ctypes
import functools

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.extending import models, register_model, typeof_impl
from numba.core.imputils import lower_constant
from numba.extending import intrinsic, overload, register_jitable

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
from .names import ARITY, BIAS, BIAS_BACKWARD, FUSED, GEGLU, GEGLU_BACKWARD, parse_fused

KINDS = (BIAS, BIAS_BACKWARD, GEGLU, GEGLU_BACKWARD)
#: The gufunc signature of each kind's rows (``gelu_numba.parallel``).
ROWS_SIGNATURE = {BIAS: "(n),(n)->(n)", BIAS_BACKWARD: "(n),(n),(n)->(n)", GEGLU: "(n),(n)->(n)",
                  GEGLU_BACKWARD: "(n),(n),(n)->(n),(n)"}
#: Operand names, for docstrings and errors.
OPERANDS = {BIAS: ("x", "b"), BIAS_BACKWARD: ("dy", "x", "b"), GEGLU: ("a", "g"), GEGLU_BACKWARD: ("dy", "a", "g")}

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


@intrinsic
def advance(typingctx, pointer, offset):
    """pointer + offset bytes."""
    if not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        at = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.gep(args[0], [at])

    return types.voidptr(pointer, offset), codegen


@intrinsic
def buffer(typingctx, like):
    """CHUNK_BYTES of stack, 64-byte aligned, in the calling function's
    entry block (each thread's own in a threaded loop's block)."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(stack_array(builder, ir.ArrayType(ir.IntType(8), CHUNK_BYTES)), _I8P)

    return types.voidptr(like), codegen


@intrinsic
def itemsize(typingctx, like):
    """The size of like's type in bytes, as a constant in the caller's own
    code: LLVM vectorises a loop whose stride is one before inlining, not a
    loop whose stride is an argument that inlining makes constant."""

    def codegen(context, builder, sig, args):
        return ir.Constant(_I64, context.get_abi_sizeof(context.get_value_type(sig.args[0])))

    return types.int64(like), codegen


#: The helpers that stay functions of their own, called (a copy of a loop
#: inlined at each call site costs seconds of LLVM's time per loop).
_CALLED = {"error_model": CPU_JIT_OPTIONS["error_model"]}


# -- which kernel, as a type ---------------------------------------------------------


class Kernel:
    """A fused kernel and the float32 variant it is emitted for, handed to
    the compiled code as a value whose Numba type carries both: the helpers
    are then compiled once per kernel, without the retries of typing with
    string literals (several seconds a loop)."""

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
#
# Module-level functions with the format, the kind and the kernels as
# arguments, constants once inlined: the loops' closure variables are plain
# values and module-level functions, which Numba's cache finds again in the
# next process (a closure over local functions never hits it).


@register_jitable(**CPU_JIT_OPTIONS)
def _op(multiply, p, q, zero):
    """p * q or p + q, or p's NaN quieted (p + 0) where p is a NaN: the
    first operand's NaN, as x86 gives it, whatever order LLVM puts the
    operands in and whatever the CPU's own rule (vector32._first_nan)."""
    s = p * q if multiply else p + q
    return p + zero if p != p else s


def _compute(kernel, p, m, zero):
    """Fused kernel `kernel` (a Kernel) over m elements of unit-stride operands (inputs,
    then outputs, in p), in the format of zero: float32 by the explicit-SIMD
    loop of vector32, float64 by the scalar formulas, which LLVM vectorises."""


@overload(_compute, jit_options=CPU_JIT_OPTIONS)
def _compute_impl(kernel, p, m, zero):
    if not isinstance(kernel, KernelType):
        return None
    name_, isa_ = kernel.kernel_name, kernel.isa
    if zero == types.float32:

        def impl32(kernel, p, m, zero):
            vector32.run_fused(name_, isa_, p, 0, m)

        return impl32
    from . import formulas

    kind, form = parse_fused(name_)
    code = KINDS.index(kind)
    f, fb = getattr(formulas, form), getattr(formulas, form + "_backward")

    def impl64(kernel, p, m, zero):
        size = itemsize(zero)
        if code == 0:  # bias: x, b -> out
            for i in range(m):
                store(p[2], i * size, f(_op(False, load(p[0], i * size, zero), load(p[1], i * size, zero), zero)))
        elif code == 1:  # bias backward: dy, x, b -> out
            for i in range(m):
                s = _op(False, load(p[1], i * size, zero), load(p[2], i * size, zero), zero)
                store(p[3], i * size, fb(load(p[0], i * size, zero), s))
        elif code == 2:  # geglu: a, g -> out
            for i in range(m):
                store(p[2], i * size, _op(True, f(load(p[0], i * size, zero)), load(p[1], i * size, zero), zero))
        else:  # geglu backward: dy, a, g -> da, dg
            for i in range(m):
                dy = load(p[0], i * size, zero)
                a = load(p[1], i * size, zero)
                t = _op(True, dy, load(p[2], i * size, zero), zero)
                store(p[3], i * size, fb(t, a))
                store(p[4], i * size, _op(True, dy, f(a), zero))

    return impl64


@register_jitable(**_CALLED)
def _gather(p, s, buf, m, zero):
    """buf[i] = p[i] for i < m (stride s in bytes, 0 for a broadcast)."""
    size = itemsize(zero)
    if s == 0:
        c = load(p, 0, zero)
        for i in range(m):
            store(buf, i * size, c)
    else:
        for i in range(m):
            store(buf, i * size, load(p, i * s, zero))


@register_jitable(**_CALLED)
def _scatter(buf, p, s, m, zero):
    """p[i] = buf[i] for i < m (stride s in bytes)."""
    size = itemsize(zero)
    for i in range(m):
        store(p, i * s, load(buf, i * size, zero))


@register_jitable(**CPU_JIT_OPTIONS)
def _staged(q, s, i, nin, buf, m, zero):
    """Operand i of a chunk as a unit-stride run: itself, or buf (an input
    gathered into it; an output is scattered from it after)."""
    if s == itemsize(zero):
        return q
    if i < nin:
        _gather(q, s, buf, m, zero)
    return buf


@register_jitable(**_CALLED)
def _span(kernel, nin, k, p, rs, cs, n, lo, hi, zero):
    """Elements [lo, hi) of the rows of n elements (row strides rs,
    element strides cs): a row's run at a time where every operand has
    unit stride, else CHUNK_BYTES at a time through buffers on the stack
    (inputs gathered, outputs scattered)."""
    size = itemsize(zero)
    chunk = CHUNK_BYTES // size
    direct = True
    for i in range(k):
        if cs[i] != size:
            direct = False
    b0, b1, b2, b3, b4 = buffer(zero), buffer(zero), buffer(zero), buffer(zero), buffer(zero)
    r = lo // n
    c = lo - r * n
    at = lo
    while at < hi:
        m = min(n - c, hi - at)
        if not direct:
            m = min(m, chunk)
        q = (advance(p[0], r * rs[0] + c * cs[0]), advance(p[1], r * rs[1] + c * cs[1]),
             advance(p[2], r * rs[2] + c * cs[2]), advance(p[3], r * rs[3] + c * cs[3]),
             advance(p[4], r * rs[4] + c * cs[4]))
        if not direct:  # every input read into the buffers before any output is written
            q = (_staged(q[0], cs[0], 0, nin, b0, m, zero), _staged(q[1], cs[1], 1, nin, b1, m, zero),
                 _staged(q[2], cs[2], 2, nin, b2, m, zero), _staged(q[3], cs[3], 3, nin, b3, m, zero),
                 _staged(q[4], cs[4], 4, nin, b4, m, zero))
        _compute(kernel, q, m, zero)
        if not direct:
            for i in range(nin, k):
                if cs[i] != size:
                    w = advance(p[i], r * rs[i] + c * cs[i])
                    _scatter(q[i], w, cs[i], m, zero)
        at += m
        c += m
        if c == n:
            c = 0
            r += 1


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
                        _span(kernel, nin, k, p, rs, cs, n, min(total, b * step),
                              min(total, b * step + step), zero)
                        set_slot_at(state, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                        set_slot_at(state, BLOCK_TICKS + b, now() - t0)
                    judge(state, first, now() - start, total, step, nb)
                    flags = _or_all(state, nb)
                    release(state)
                    fpenv.merge(flags)
                else:
                    count_serial(state, how)
                    _span(kernel, nin, k, p, rs, cs, n, 0, total, zero)
            else:
                count(state, PATH_STRIDED)
                _span(kernel, nin, k, p, rs, cs, n, 0, total, zero)
        fpenv.leave(env)

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
            "dtypes follow NumPy's casting (integers and float16 as for the single forms). A NaN sum or "
            "product is its first operand's NaN where that is one. Fused: one pass over memory, the "
            "intermediate in cache (gelu_numba.core.fused)." + rows_note)


def build(name, target, rows=False):
    """The np.ufunc (or, with rows, the gufunc over the last axis) of the
    fused kernel `name` on `target` ('cpu' or 'parallel')."""
    from numba.np.ufunc import _internal

    from .build import _plain_outputs, _set_module

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
