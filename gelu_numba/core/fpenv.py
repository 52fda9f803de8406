"""The floating-point environment the loops compute in, whatever the caller's.

The kernels' contract (<= 2 ulp, subnormal results, monotone) holds for
round-to-nearest without flush-to-zero.  Another library in the same
process may have changed the x86 control register MXCSR: PyTorch's
``torch.set_flush_denormal(True)`` sets FTZ and DAZ, some audio and game
libraries do the same, and ``fesetround`` changes the rounding.  With FTZ a
subnormal GELU tail becomes 0; with DAZ a subnormal input becomes 0; with
another rounding the results move by an ulp and monotonicity can break.

So each loop, in each thread that runs part of it, saves MXCSR, clears FTZ,
DAZ and the rounding bits, computes, and then gives back the caller's
control bits while keeping the status flags the loop raised (so that
NumPy's ``seterr`` still reports what it should).  ``enter`` and ``leave``
are one ``stmxcsr`` and one ``ldmxcsr`` each (a few cycles).  On other
architectures they do nothing.

A threaded loop's blocks run in other threads, whose flags NumPy never
reads: each block starts with its thread's flags clear
(``enter_block``), hands back the flags it raised (``leave_block``), and
the calling thread ORs them into its own (``merge``) before it leaves.
"""

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: MXCSR bits: the six exception flags, the exception masks, the rounding
#: control (RC, bits 13-14), flush-to-zero (FTZ, bit 15), denormals-are-zero
#: (DAZ, bit 6).
FLAGS = 0x003F
DAZ = 0x0040
ROUNDING = 0x6000
FTZ = 0x8000
#: What the loops clear: round to nearest, no flushing of subnormals.
CLEARED = DAZ | ROUNDING | FTZ

_I32 = ir.IntType(32)
_X86 = llvm.get_process_triple().split("-")[0] in ("x86_64", "i386", "i686")


def _mxcsr_call(builder, name, slot):
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(slot, ir.IntType(8).as_pointer())])


def _read(builder):
    slot = cgutils.alloca_once(builder, _I32)
    _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
    return builder.load(slot)


def _write(builder, value):
    slot = cgutils.alloca_once(builder, _I32)
    builder.store(value, slot)
    _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)


@intrinsic
def enter(typingctx):
    """Save MXCSR and set round-to-nearest without FTZ or DAZ (``stmxcsr``,
    ``ldmxcsr``); returns the caller's MXCSR for :func:`leave`."""

    def codegen(context, builder, sig, args):
        if not _X86:
            return ir.Constant(_I32, 0)
        saved = _read(builder)
        _write(builder, builder.and_(saved, ir.Constant(_I32, ~CLEARED & 0xFFFFFFFF)))
        return saved

    return types.uint32(), codegen


@intrinsic
def leave(typingctx, saved):
    """Give back the caller's control bits (`saved`, from :func:`enter`),
    keeping the exception flags raised since (``stmxcsr``, ``ldmxcsr``)."""

    def codegen(context, builder, sig, args):
        if not _X86:
            return context.get_dummy_value()
        (saved,) = args
        raised = builder.and_(_read(builder), ir.Constant(_I32, FLAGS))
        _write(builder, builder.or_(builder.and_(saved, ir.Constant(_I32, ~FLAGS & 0xFFFFFFFF)), raised))
        return context.get_dummy_value()

    return types.none(saved), codegen


@intrinsic
def enter_block(typingctx):
    """:func:`enter` for one block of a threaded loop, which also clears
    the thread's exception flags (a pool thread keeps those of earlier
    calls), so that :func:`leave_block` sees only the block's own."""

    def codegen(context, builder, sig, args):
        if not _X86:
            return ir.Constant(_I32, 0)
        saved = _read(builder)
        _write(builder, builder.and_(saved, ir.Constant(_I32, ~(CLEARED | FLAGS) & 0xFFFFFFFF)))
        return saved

    return types.uint32(), codegen


@intrinsic
def leave_block(typingctx, saved):
    """Give back the thread's MXCSR (`saved`, from :func:`enter_block`),
    with the exception flags the block raised added; returns those flags,
    for the calling thread to :func:`merge`."""

    def codegen(context, builder, sig, args):
        if not _X86:
            return ir.Constant(_I32, 0)
        (saved,) = args
        raised = builder.and_(_read(builder), ir.Constant(_I32, FLAGS))
        _write(builder, builder.or_(saved, raised))
        return raised

    return types.uint32(saved), codegen


@intrinsic
def merge(typingctx, raised):
    """Raise `raised` (exception flags, from :func:`leave_block`) in this
    thread's MXCSR, where NumPy reads them."""

    def codegen(context, builder, sig, args):
        if not _X86:
            return context.get_dummy_value()
        (raised,) = args
        flags = builder.and_(builder.trunc(raised, _I32) if raised.type.width > 32 else raised, ir.Constant(_I32, FLAGS))
        _write(builder, builder.or_(_read(builder), flags))
        return context.get_dummy_value()

    return types.none(raised), codegen
