"""The ufunc inner loops, compiled with Numba as C callbacks.

They are written here rather than left to ``numba.vectorize``: its wrapper
calls the kernel through Numba's calling convention without inlining it, so
its loop never vectorises, and it has no hook for a parallel loop that falls
back to serial on small arrays.  Each loop is a ``cfunc`` with NumPy's
inner-loop signature ``(char **args, npy_intp *dims, npy_intp *steps, void *)``
and three paths:

- unit stride everywhere: a plain indexed loop that LLVM vectorises (the
  kernel is inlined; see ``fp.CPU_JIT_OPTIONS``), a function of its own
  that the loop calls per run, block or prefetched chunk (``_run``,
  ``software_prefetch``), or for float32 (``unary32``/``binary32``) the
  explicit-SIMD loop of ``vector32``;
- a broadcast ``dy`` (stride 0) for the backward kernels;
- any other strides: an element-by-element loop (float32: gathered into a
  buffer, run through the same explicit-SIMD loop, scattered back).

Every path computes in round-to-nearest without flush-to-zero, whatever the
caller's floating-point environment (``fpenv``), and gives the caller's
control bits back; a threaded loop does so per block, in the thread that
runs it.

One source serves both targets: ``prange`` is a plain ``range`` unless the
cfunc is compiled with ``parallel=True``, and then only unit-stride calls of
at least ``PARALLEL_MIN_SIZE`` elements take it (smaller ones cost more to
hand to threads than they save), and only when the process-wide pool lock
of ``runtime`` is free and the process may use threads (not a forked child
of an OpenMP parent): otherwise the call runs the serial loop in its own
thread.  Every path inlines the same kernel, so paths and targets agree bit
for bit.  Each call counts the path it took in ``runtime`` (one increment
per call), which the tests read.

The loops are closures over the kernel, its type and sizes, which pickle the
same way in every process: Numba keys its cache on them.  Numba also keys it
on the loop's own file and bytecode, but not on the files of the functions it
inlines, so the closures carry a digest of the core's sources as well: an
edit to ``formulas.py``, ``fp.py``, ``coefficients.py`` or any other file of
``gelu_numba.core`` misses the cache instead of loading stale machine code.
"""

import functools
import hashlib
import pathlib
import sys

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import cfunc, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from . import fpenv, vector32
from .simd import prefer_wide_vectors
from . import runtime as R
from .fp import CPU_JIT_OPTIONS

#: Unit-stride calls at least this long run multi-threaded (parallel target),
#: by item size.  Remeasured on the kernels as they are now, with the
#: fallback off (``tools/parallel_threshold.py``, AMD EPYC Zen 4, 2 threads,
#: omp layer, 2026-12-07; serial time / threaded time, gelu and
#: gelu_backward): float32 0.59-0.66 at 1K, 0.81-0.88 at 2K, 1.10-1.16 at
#: 4K, 1.36-1.45 at 8K; float64 1.33-1.35 at 1K, 1.58-1.59 at 2K.  (Intel
#: Xeon, 2026-12-05: float32 1.38-1.63 at 8K, float64 1.30-1.54 at 2K.)  The
#: thresholds stay where threads win by a third or more on both, a margin
#: for slower thread wake-up elsewhere.
PARALLEL_MIN_SIZE = {4: 8192, 8: 2048}

#: Elements per block of a threaded loop (at most).  The loop is a prange
#: over the blocks, which Numba's schedule hands out as a contiguous share
#: per thread (the same stretch of memory call after call, in its own
#: caches); each block sets the floating-point environment in the thread that runs
#: it (fpenv), runs the same vectorised loop as the serial path and is
#: timed, for the fallback's estimate of the serial time (runtime, "Threads
#: that do not pay").  A run shorter than two blocks is split in two halves.
#: Blocks claimed from an atomic counter as threads come, so that the first
#: thread does the work of those that have not started, were tried: the
#: contention figures were no better with the fallback, and idle calls of
#: 16K-64K elements 10-15 % slower (AMD EPYC Zen 4, omp and tbb layers);
#: so was a prange with an iteration per thread, each looping over its
#: share (1.2 us a call at 16K).
BLOCK = 16384
#: At most this many blocks: longer runs take longer blocks (a block's
#: fixed costs are a few clock reads and two MXCSR writes).
MAX_BLOCKS = R.MAX_BLOCKS


@register_jitable
def blocks(n):
    """(count, step) of the threaded loop's blocks over n elements: at least
    two, at most BLOCK elements each, a multiple of 16 (whole SIMD blocks)."""
    count = min(MAX_BLOCKS, max(2, (n + BLOCK - 1) // BLOCK))
    step = ((n + count - 1) // count + 15) // 16 * 16
    return count, step


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def decide(wall, estimate, strikes, loss, failures, ms):
    """The fallback's rule, after a threaded call that took `wall` clock
    ticks where serial would have taken about `estimate` (`ms`: ticks per
    millisecond): returns (strikes, loss, failures, hold), hold > 0 being
    the ticks to run serially from now (see runtime, "Threads that do not
    pay")."""
    if wall * R.SLOW_DEN <= estimate * R.SLOW_NUM:
        return 0, 0, 0, 0
    strikes += 1
    loss += wall - estimate
    if strikes < R.STRIKES_TO_ENGAGE:
        return strikes, loss, failures, 0
    hold = R.FALLBACK_FACTOR * loss << min(failures, R.MAX_DOUBLINGS)
    return 0, 0, failures + 1, max(1, min(R.FALLBACK_CAP_MS * ms, hold))


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def serial_estimate(n, step, spent):
    """n times the fastest whole block's clock ticks per element (`spent`:
    the blocks' ticks): the serial call's time, about (0 where the clock
    reads nothing).  The last block may be short, and a short block's fixed
    costs say little of the rate."""
    best = np.inf
    for b in range(len(spent)):
        if min(n, b * step + step) - b * step == step and spent[b] > 0:  # whole blocks only
            best = min(best, spent[b] / step)
    return 0 if best == np.inf else int(best * n)


@register_jitable(**CPU_JIT_OPTIONS)
def block_ticks(data, nb):
    """The threaded call's blocks' clock ticks, from the state block (a
    negative count, a clock gone backwards, ends the copy; the early exit
    also keeps LLVM from vectorising it 512 bits wide where the AVX2
    variant asked for no zmm register)."""
    spent = np.zeros(nb, np.int64)
    for b in range(nb):
        ticks = slot_at(data, BLOCK_TICKS + b)
        if ticks < 0:
            break
        spent[b] = ticks
    return spent


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def judge(data, first, wall, n, step, nb):
    """After a threaded call (holding the pool lock): update the fallback.
    A loop's first threaded call (its slot `first` still 0) is not judged:
    it started the pool, or ran code just loaded."""
    if slot_at(data, first) == 0 or get_slot(data, FALLBACK_OFF) != 0:
        set_slot_at(data, first, 1)
        return
    estimate = serial_estimate(n, step, block_ticks(data, nb))
    ms = get_slot(data, TICKS_PER_MS)
    if estimate == 0 or ms == 0:
        return
    strikes, loss, failures, hold = decide(wall, estimate, get_slot(data, STRIKES), get_slot(data, LOSS),
                                           get_slot(data, FAILURES), ms)
    set_slot(data, STRIKES, strikes)
    set_slot(data, LOSS, loss)
    set_slot(data, FAILURES, failures)
    if hold > 0:
        set_slot(data, SERIAL_UNTIL, now() + hold)
        count(data, ENGAGED)


#: How a call runs (:func:`mode`).
SERIAL, THREADED, DECLINED, FALLBACK = 0, 1, 2, 3


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def mode(data, n, threads_from):
    """SERIAL (too short for threads), THREADED (the pool lock taken: give it
    back with release), DECLINED (the lock taken by another call, or a
    serial-only process) or FALLBACK (threads have not paid lately)."""
    if n < threads_from:
        return SERIAL
    if not try_acquire(data):
        return DECLINED
    until = get_slot(data, SERIAL_UNTIL)
    if until != 0:
        if now() < until:
            release(data)
            return FALLBACK
        set_slot(data, SERIAL_UNTIL, 0)
    return THREADED

@register_jitable
def _or_all(data, nb):
    """The bitwise OR of the exception flags of the threaded call's nb
    blocks (the early exit also keeps LLVM from vectorising it, 512 bits
    wide where the AVX2 variant asked for no zmm register)."""
    acc = np.uint32(0)
    for b in range(nb):
        acc |= np.uint32(slot_at(data, BLOCK_FLAGS + b))
        if acc == np.uint32(fpenv.FLAGS):
            break
    return acc


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def count_serial(data, how):
    """Count a unit-stride call that ran serially, by why (:func:`mode`)."""
    if how == SERIAL:
        count(data, PATH_UNIT)
    elif how == FALLBACK:
        count(data, PATH_FALLBACK)
    else:
        count(data, PATH_DECLINED)


@register_jitable(**CPU_JIT_OPTIONS)  # inlined: the loop's vector width applies
def count_broadcast(data, how):
    """Count a broadcast-dy call that ran serially (fallback counted apart)."""
    if how == FALLBACK:
        count(data, PATH_FALLBACK)
    else:
        count(data, PATH_BROADCAST)


_NEVER = np.iinfo(np.intp).max
PATH_UNIT, PATH_THREADED, PATH_BROADCAST = R.PATH_UNIT, R.PATH_THREADED, R.PATH_BROADCAST
PATH_STRIDED, PATH_DECLINED, PATH_THREADED_BROADCAST = R.PATH_STRIDED, R.PATH_DECLINED, R.PATH_THREADED_BROADCAST
PATH_FALLBACK = R.PATH_FALLBACK
SERIAL_UNTIL, STRIKES, LOSS, ENGAGED = R.SERIAL_UNTIL, R.STRIKES, R.LOSS, R.ENGAGED
FAILURES, FALLBACK_OFF, TICKS_PER_MS = R.FAILURES, R.FALLBACK_OFF, R.TICKS_PER_MS
BLOCK_FLAGS, BLOCK_TICKS = R.BLOCK_FLAGS, R.BLOCK_TICKS


def _sources_digest():
    """A digest of every file of the core: the loops inline the formulas,
    the floating-point helpers and the coefficients, and take the runtime's
    slots and their own intrinsics from here."""
    here = pathlib.Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


SOURCES_DIGEST = _sources_digest()

SIGNATURE = types.void(
    types.CPointer(types.voidptr),
    types.CPointer(types.intp),
    types.CPointer(types.intp),
    types.voidptr,
)


@intrinsic
def load(typingctx, base, offset, like):
    """The element of like's type at base + offset bytes (and the loop that
    loads it is vectorised as wide as the CPU allows, simd.PREFER_WIDE, or
    256 bits wide where the process asked for the AVX2 variant: no zmm
    register in any loop then)."""

    def codegen(context, builder, sig, args):
        prefer_wide_vectors(builder.function, vector32.vector_bits())
        base, offset, _ = args
        ptr = builder.bitcast(
            builder.gep(base, [offset]), context.get_value_type(sig.return_type).as_pointer()
        )
        return builder.load(ptr)

    return like(base, offset, like), codegen


@intrinsic
def vector_width(typingctx):
    """Give the calling loop the vector width of this process's variant (as
    :func:`load` does): no zmm register anywhere in a loop where the process
    asked for the AVX2 variant, not even LLVM zeroing 64 bytes of stack."""

    def codegen(context, builder, sig, args):
        prefer_wide_vectors(builder.function, vector32.vector_bits())
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def store(typingctx, base, offset, value):
    """Write value at base + offset bytes."""

    def codegen(context, builder, sig, args):
        base, offset, value = args
        ptr = builder.bitcast(builder.gep(base, [offset]), value.type.as_pointer())
        builder.store(value, ptr)
        return context.get_dummy_value()

    return types.none(base, offset, value), codegen


@functools.cache
def software_prefetch():
    """Whether the float64 loops prefetch their inputs: on every CPU but
    AMD's Zen (LLVM's names znver1 to znver5), judged by the CPU Numba
    compiles for (NUMBA_CPU_NAME, else the host; the loops carry the
    answer in their cache key).  The same bits either way: only the
    loop's shape changes (``_run``).

    Measured side by side, float64, 2 threads:
    - Intel Xeon (AVX-512), 16M elements, with it against without:
      gelu_tanh 6.9 -> 3.8 ns serial, gelu_sigmoid 2.55 -> 1.7-1.8 ns: the
      CPU's prefetchers fall behind when input and output share their
      offset within a cache line (vector32.PREFETCH_BYTES);
    - AMD EPYC Zen 4: without it (and so with the flat loop) 1.05-1.12x
      faster than with it in 4 KB chunks at 16M, and 1.01-1.04x at 1M;
      with it in 512-byte chunks (the Intel shape), 0.87-0.98x of
      155dc76's flat loops at 1M.
    float32's explicit-SIMD loops prefetch a line at a time on every CPU:
    on Zen 4 that is neutral at 1M and up to 9 % faster at 16M."""
    from numba.core import config

    name = config.CPU_NAME
    if not name or name == "host":
        name = llvm_binding.get_host_cpu_name()
    return not name.startswith("znver")


@intrinsic
def prefetch_ahead(typingctx, base, offset):
    """Prefetch the CHUNK_BYTES that start PREFETCH_BYTES past base +
    offset (prefetcht0 a line), before the float64 loop runs the chunk at
    base + offset; nothing where ``software_prefetch()`` says no.  (A
    prefetch inside the element loop would stop LLVM from vectorising
    it.)"""
    from .simd import prefetch
    from .vector32 import PREFETCH_BYTES

    lines = CHUNK_BYTES // 64 if software_prefetch() else 0

    def codegen(context, builder, sig, args):
        base, offset = args
        for line in range(lines):
            at = builder.add(offset, ir.Constant(offset.type, PREFETCH_BYTES + 64 * line))
            prefetch(builder, builder.gep(base, [at]))
        return context.get_dummy_value()

    return types.none(base, offset), codegen


#: Where the float64 loops prefetch: a chunk of eight cache lines, each
#: chunk's inputs prefetched before it runs (calls of a flat loop per
#: chunk instead cost 6-20 % at 512 bytes, 2-5 % at 4 KB, and 4 KB bursts
#: of prefetches were up to 8 % slower at 16M than 512-byte ones: AMD
#: EPYC Zen 4, side by side).
CHUNK_BYTES = 512
#: Where they do not: one call per run or threaded block.
WHOLE = 1 << 62

#: The flat loops the float64 paths run (``_run``), by key: (kernel,
#: dtype, how), for the intrinsic ``run``.
_RUNS = {}


def _run(kernel, dtype, how):
    """The key of the flat loop over elements [lo, hi) of `kernel` for one
    float type: how = "unary" (x, out), "binary" (dy, x, out) or
    "broadcast" (dy's one value, x, out).  Its two shapes, chosen by
    ``software_prefetch()``:

    - inlined into the calling chunk loop, CHUNK_BYTES at a time, each
      chunk's inputs prefetched first (Intel and every other CPU);
    - a function of its own, never inlined, called once per run or
      threaded block (AMD's Zen).  LLVM treats a vectorised loop nested in
      another badly: in the chunk loop or a threaded block it reloads
      every constant of the kernel in every vector iteration, each a
      constant-pool address set by movabsq (the JIT's large code model)
      and a broadcast (gelu_sigmoid: 192 instructions per 8 elements
      against 142 flat, gelu 336 against 245, compiled for znver4 and
      sapphirerapids alike).  A flat loop of its own keeps them in
      registers or on the stack.  On Intel the prefetch pays for that
      many times over at 16M.

    The key is a closure variable of the loops (so part of their cache
    key): deterministic for the kernels of ``formulas``."""
    key = f"run_{how}_{np.dtype(dtype).name}_{kernel.__module__}_{kernel.__qualname__}"
    if getattr(sys.modules.get(kernel.__module__), kernel.__qualname__, None) is not kernel:
        key += f"_{len(_RUNS)}"  # a kernel built at run time (not cached): one key each
    _RUNS.setdefault(key, (kernel, np.dtype(dtype), how))
    return key


def _compiled_kernel(context, builder, key):
    """(fndesc, signature) of the kernel of flat loop `key`, compiled once
    per process (``compile_subroutine`` keeps it) for the flat loop and the
    strided path alike, as the loops always compile it: error model
    "numpy", inlined."""
    from numba.core import compiler

    kernel, dtype, how = _RUNS[key]
    real = types.float64 if dtype == np.float64 else types.float32
    sig = real(*[real] * (1 if how == "unary" else 2))
    flags = compiler.Flags()
    flags.error_model = CPU_JIT_OPTIONS["error_model"]
    flags.forceinline = True
    return context.compile_subroutine(builder, kernel, sig, flags=flags).fndesc, sig


@intrinsic
def call_kernel(typingctx, key, a, b):
    """The kernel of flat loop `key` at (a, b), or at b alone for a unary
    kernel (the strided paths): the one compiled function the flat loop
    calls too (``_compiled_kernel``)."""
    if not isinstance(key, types.StringLiteral):
        return None
    unary = _RUNS[key.literal_value][2] == "unary"

    def codegen(context, builder, sig, args):
        fndesc, inner = _compiled_kernel(context, builder, key.literal_value)
        return context.call_internal(builder, fndesc, inner, [args[2]] if unary else list(args[1:]))

    return b(key, a, b), codegen


def _emit_run(context, builder, key, args):
    """Emit (once per module) the flat loop `key` as an LLVM function of
    the loop's own module, and call it.  The kernel is compiled as the
    loops always compile it (error model "numpy", inlined), and the loop
    around it is written here, not as a Numba function: a Numba function's
    library would be optimised again by every library above it (the first
    try, bbe9e54, took 7.0 s per kernel instead of 4.2)."""
    kernel, dtype, how = _RUNS[key]
    module = builder.module
    name = "gelu_numba_" + "".join(c if c.isalnum() else "_" for c in key)
    real = context.get_value_type(types.float64 if dtype == np.float64 else types.float32)
    i8p = ir.IntType(8).as_pointer()
    first = real if how == "broadcast" else i8p
    try:
        fn = module.get_global(name)
    except KeyError:
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [first, i8p, i8p, _I64, _I64]), name=name)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline" if software_prefetch() else "noinline")
        prefer_wide_vectors(fn, vector32.vector_bits())
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        fndesc, sig = _compiled_kernel(context, b, key)
        callee = context.declare_function(module, fndesc)
        a0, x, out, lo, hi = fn.args
        if how == "unary":  # (x, out, unused)
            x, out = a0, x
        size = ir.Constant(_I64, dtype.itemsize)

        def element(base, i):
            return b.bitcast(b.gep(base, [b.mul(i, size)]), real.as_pointer())

        with cgutils.for_range_slice(b, lo, hi, ir.Constant(_I64, 1)) as (i, _):
            operands = [b.load(element(x, i))]
            if how == "binary":
                operands.insert(0, b.load(element(a0, i)))
            elif how == "broadcast":
                operands.insert(0, a0)
            # the kernels cannot raise (error model "numpy"): no status to pass on
            _, y = context.call_conv.call_function(b, callee, sig.return_type, sig.args, operands)
            if how != "unary":
                y = vector32.x86_nan(b, y, *operands)
            b.store(y, element(out, i))
        b.ret_void()
    a0 = args[0] if how == "broadcast" else builder.bitcast(args[0], i8p)
    builder.call(fn, [a0, builder.bitcast(args[1], i8p), builder.bitcast(args[2], i8p)] + list(args[3:]))


@intrinsic
def x86_nan(typingctx, result, dy, x):
    """result, or x86's default NaN where it is a NaN that neither dy nor x
    was (``vector32.x86_nan``: nothing on x86)."""

    def codegen(context, builder, sig, args):
        return vector32.x86_nan(builder, *args)

    return result(result, dy, x), codegen


@intrinsic
def run(typingctx, key, a, b, c, lo, hi):
    """Run the flat loop ``_RUNS[key]`` on (a, b, c, lo, hi) (``_emit_run``)."""
    if not isinstance(key, types.StringLiteral):
        return None

    def codegen(context, builder, sig, args):
        ints = [context.cast(builder, v, t, types.int64) for v, t in zip(args[4:], sig.args[4:])]
        _emit_run(context, builder, key.literal_value, list(args[1:4]) + ints)
        return context.get_dummy_value()

    return types.none(key, a, b, c, lo, hi), codegen


_I64 = ir.IntType(64)


def _slot(builder, base, slot):
    return builder.gep(builder.bitcast(base, _I64.as_pointer()), [ir.Constant(_I64, slot)])


@intrinsic
def get_slot(typingctx, state, slot):
    """Slot `slot` (a compile-time constant) of the state block (a plain load)."""
    if not isinstance(slot, types.IntegerLiteral):
        return None
    index = slot.literal_value

    def codegen(context, builder, sig, args):
        return builder.load(_slot(builder, args[0], index))

    return types.int64(state, slot), codegen


@intrinsic
def set_slot(typingctx, state, slot, value):
    """Write `value` to slot `slot` (a compile-time constant) of the state block."""
    if not isinstance(slot, types.IntegerLiteral) or not isinstance(value, types.Integer):
        return None
    index = slot.literal_value

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store(value, _slot(builder, args[0], index))
        return context.get_dummy_value()

    return types.none(state, slot, value), codegen


@intrinsic
def slot_at(typingctx, state, index):
    """Slot `index` (a run-time integer) of the state block."""
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        at = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.load(builder.gep(builder.bitcast(args[0], _I64.as_pointer()), [at]))

    return types.int64(state, index), codegen


@intrinsic
def set_slot_at(typingctx, state, index, value):
    """Write `value` to slot `index` (a run-time integer) of the state block."""
    if not isinstance(index, types.Integer) or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        at = context.cast(builder, args[1], sig.args[1], types.int64)
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store(value, builder.gep(builder.bitcast(args[0], _I64.as_pointer()), [at]))
        return context.get_dummy_value()

    return types.none(state, index, value), codegen


_TRIPLE = llvm_binding.get_process_triple().split("-")[0]


@intrinsic
def now(typingctx):
    """A clock for timing calls: the time-stamp counter on x86 (rdtsc), the
    generic timer's virtual count on AArch64 (cntvct_el0, readable from user
    space; LLVM's cycle counter there reads PMCCNTR, which traps); 0 on other
    CPUs, where the fallback never engages.  Ticks of an unknown rate: only
    ratios and FALLBACK_CAP use them."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_I64, [])
        if _TRIPLE in ("x86_64", "i386", "i686"):
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
            return builder.call(fn, [])
        if _TRIPLE in ("aarch64", "arm64"):
            # What clang emits for __builtin_arm_rsr64("cntvct_el0"): inline
            # asm would abort the process (Numba's LLVM has no AArch64 asm
            # parser; checked under qemu-aarch64).
            reader = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_I64, [ir.MetaDataType()]), "llvm.read_volatile_register.i64")
            register = builder.module.add_metadata([ir.MetaDataString(builder.module, "cntvct_el0")])
            return builder.call(reader, [register])
        return ir.Constant(_I64, 0)

    return types.int64(), codegen


@intrinsic
def try_acquire(typingctx, state):
    """Take the pool lock of the state block at `state`: True if this call
    got it (an atomic compare-and-swap 0 -> 1, acquire ordering), False if
    another call holds it or the process is serial-only."""

    def codegen(context, builder, sig, args):
        (base,) = args
        allowed = builder.icmp_signed("==", builder.load(_slot(builder, base, R.SERIAL_ONLY)), ir.Constant(_I64, 0))
        result = cgutils.alloca_once(builder, ir.IntType(1))  # in the entry block
        builder.store(ir.Constant(ir.IntType(1), 0), result)
        with builder.if_then(allowed):
            pair = builder.cmpxchg(_slot(builder, base, R.LOCK), ir.Constant(_I64, 0), ir.Constant(_I64, 1),
                                   "acquire", "monotonic")
            builder.store(builder.extract_value(pair, 1), result)
        return builder.load(result)

    return types.boolean(state), codegen


@intrinsic
def release(typingctx, state):
    """Give the pool lock back (an atomic store of 0, release ordering)."""

    def codegen(context, builder, sig, args):
        (base,) = args
        builder.store_atomic(ir.Constant(_I64, 0), _slot(builder, base, R.LOCK), "release", 8)
        return context.get_dummy_value()

    return types.none(state), codegen


@intrinsic
def count(typingctx, state, slot):
    """Add one to the counter `slot` (a compile-time constant) of the state
    block, atomically: calls from several Python threads at once count
    every call (a plain add lost one of 480 in tests/test_reliability.py's
    eight threads, the fallback's serial calls racing)."""
    if not isinstance(slot, types.IntegerLiteral):
        return None
    index = slot.literal_value

    def codegen(context, builder, sig, args):
        ptr = _slot(builder, args[0], index)
        builder.atomic_rmw("add", ptr, ir.Constant(_I64, 1), "monotonic")
        return context.get_dummy_value()

    return types.none(state, slot), codegen


def _caller_level():
    """The stacklevel of the first frame outside this package (and the
    import machinery), so that a warning names the user's line."""
    here = str(pathlib.Path(__file__).parents[1])  # the whole package, not only the core
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith(here)
                                 or frame.f_code.co_filename.startswith("<frozen")):
        frame, level = frame.f_back, level + 1
    return level


class CacheUnavailableWarning(RuntimeWarning):
    """No writable cache location: kernels are compiled in memory, in every
    process (about 4 s a kernel on 2 cores)."""


_warned_about_cache = False


def _compile(loop, parallel, cache):
    """The cfunc of `loop`; cached on disk where Numba finds a writable
    location (NUMBA_CACHE_DIR, the package's __pycache__, the user-wide
    cache), else compiled in memory with one warning per process."""
    global _warned_about_cache
    options = dict(error_model=CPU_JIT_OPTIONS["error_model"], parallel=parallel)
    if cache:
        try:
            compiled = cfunc(SIGNATURE, cache=True, **options)(loop)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            if not _warned_about_cache:
                _warned_about_cache = True
                import warnings

                warnings.warn(
                    "gelu_numba: no writable cache location (Numba needs NUMBA_CACHE_DIR, the package's "
                    "__pycache__ or ~/.cache to be writable); compiling kernels in memory, about 4 s each "
                    "in every process. Set NUMBA_CACHE_DIR to a writable directory to cache them.",
                    CacheUnavailableWarning, stacklevel=_caller_level())
        else:
            path = getattr(getattr(compiled, "_cache", None), "_cache_path", None)
            if path:
                CACHE_PATHS.add(path)
            LOADED_FROM_CACHE[0 if getattr(compiled, "cache_hits", 0) else 1] += 1
            return compiled
    return cfunc(SIGNATURE, **options)(loop)


def _clock():
    return now()


_clock_cfunc = []


def clock():
    """The loops' clock (:func:`now`), read from Python."""
    if not _clock_cfunc:
        _clock_cfunc.append(_compile_plain(_clock, types.int64()))
    return _clock_cfunc[0].ctypes()


def _compile_plain(fn, signature):
    try:
        return cfunc(signature, cache=True)(fn)
    except RuntimeError as exc:  # no writable cache location
        if "cannot cache" not in str(exc):
            raise
        return cfunc(signature)(fn)


R.CLOCK.append(clock)

#: The directories this process's loops are cached in, and how many loops
#: were [loaded from there, compiled] (for ``gelu-numba compile``).
CACHE_PATHS = set()
LOADED_FROM_CACHE = [0, 0]


def unary(kernel, dtype, parallel, cache=True):
    """The inner loop of y = kernel(x) for one float type."""
    T = dtype
    size = np.dtype(dtype).itemsize
    threads_from = PARALLEL_MIN_SIZE[size] if parallel else _NEVER
    first = R.loop_slot(kernel.__name__, size)  # whether its first threaded call has been made
    # (the vector width the variant allows, and whether FMAs are plain
    # arithmetic here: fp._cpu_fma_codegen)
    sources = SOURCES_DIGEST + f":{vector32.vector_bits()}" + (":soft-fma" if vector32.fma_emulated() else "")
    sources += ":prefetch" if software_prefetch() else ""
    chunk = CHUNK_BYTES // size if software_prefetch() else WHOLE
    flat = _run(kernel, dtype, "unary")

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        vector_width()
        env = fpenv.enter()
        n = dims[0]
        x, out = args[0], args[1]
        sx, so = steps[0], steps[1]
        zero = T(0)
        if sx == size and so == size:
            how = mode(data, n, threads_from)
            if how == THREADED:
                count(data, PATH_THREADED)
                nb, step = blocks(n)
                start = now()
                for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                    t = now()
                    inner = fpenv.enter_block()  # in the thread that runs this block
                    end = min(n, b * step + step)
                    for c in range(b * step, end, chunk):
                        prefetch_ahead(x, c * size)
                        run(flat, x, out, out, c, min(end, c + chunk))
                    set_slot_at(data, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                    set_slot_at(data, BLOCK_TICKS + b, now() - t)
                judge(data, first, now() - start, n, step, nb)
                flags = _or_all(data, nb)
                release(data)
                fpenv.merge(flags)
            else:
                count_serial(data, how)
                for c in range(0, n, chunk):
                    prefetch_ahead(x, c * size)
                    run(flat, x, out, out, c, min(n, c + chunk))
        else:
            count(data, PATH_STRIDED)
            for i in range(n):
                v = load(x, i * sx, zero)
                store(out, i * so, call_kernel(flat, v, v))
        fpenv.leave(env)

    return _compile(loop, parallel, cache)


def binary(kernel, dtype, parallel, cache=True):
    """The inner loop of out = kernel(dy, x) for one float type."""
    T = dtype
    size = np.dtype(dtype).itemsize
    threads_from = PARALLEL_MIN_SIZE[size] if parallel else _NEVER
    first = R.loop_slot(kernel.__name__, size)  # whether its first threaded call has been made
    # (the vector width the variant allows, and whether FMAs are plain
    # arithmetic here: fp._cpu_fma_codegen)
    sources = SOURCES_DIGEST + f":{vector32.vector_bits()}" + (":soft-fma" if vector32.fma_emulated() else "")
    sources += ":prefetch" if software_prefetch() else ""
    chunk = CHUNK_BYTES // size if software_prefetch() else WHOLE
    flat, flat_broadcast = _run(kernel, dtype, "binary"), _run(kernel, dtype, "broadcast")

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        vector_width()
        env = fpenv.enter()
        n = dims[0]
        dy, x, out = args[0], args[1], args[2]
        sd, sx, so = steps[0], steps[1], steps[2]
        zero = T(0)
        if sd == size and sx == size and so == size:
            how = mode(data, n, threads_from)
            if how == THREADED:
                count(data, PATH_THREADED)
                nb, step = blocks(n)
                start = now()
                for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                    t = now()
                    inner = fpenv.enter_block()  # in the thread that runs this block
                    end = min(n, b * step + step)
                    for c in range(b * step, end, chunk):
                        prefetch_ahead(dy, c * size)
                        prefetch_ahead(x, c * size)
                        run(flat, dy, x, out, c, min(end, c + chunk))
                    set_slot_at(data, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                    set_slot_at(data, BLOCK_TICKS + b, now() - t)
                judge(data, first, now() - start, n, step, nb)
                flags = _or_all(data, nb)
                release(data)
                fpenv.merge(flags)
            else:
                count_serial(data, how)
                for c in range(0, n, chunk):
                    prefetch_ahead(dy, c * size)
                    prefetch_ahead(x, c * size)
                    run(flat, dy, x, out, c, min(n, c + chunk))
        elif sd == 0 and sx == size and so == size:
            # A broadcast dy (what y.sum().backward() passes): threaded too.
            g = load(dy, 0, zero)
            how = mode(data, n, threads_from)
            if how == THREADED:
                count(data, PATH_THREADED_BROADCAST)
                nb, step = blocks(n)
                start = now()
                for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                    t = now()
                    inner = fpenv.enter_block()  # in the thread that runs this block
                    end = min(n, b * step + step)
                    for c in range(b * step, end, chunk):
                        prefetch_ahead(x, c * size)
                        run(flat_broadcast, g, x, out, c, min(end, c + chunk))
                    set_slot_at(data, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                    set_slot_at(data, BLOCK_TICKS + b, now() - t)
                judge(data, first, now() - start, n, step, nb)
                flags = _or_all(data, nb)
                release(data)
                fpenv.merge(flags)
            else:
                count_broadcast(data, how)
                for c in range(0, n, chunk):
                    prefetch_ahead(x, c * size)
                    run(flat_broadcast, g, x, out, c, min(n, c + chunk))
        else:
            count(data, PATH_STRIDED)
            for i in range(n):
                d, v = load(dy, i * sd, zero), load(x, i * sx, zero)
                store(out, i * so, x86_nan(call_kernel(flat, d, v), d, v))
        fpenv.leave(env)

    return _compile(loop, parallel, cache)


def unary32(name, parallel, cache=True):
    """The float32 inner loop of y = name(x) by the explicit-SIMD algorithm of
    ``vector32`` (its variant for this process), unit-stride runs whole, other
    strides gathered into a buffer and run through the same loop."""
    isa = vector32.emission()
    threads_from = PARALLEL_MIN_SIZE[4] if parallel else _NEVER
    first = R.loop_slot(name, 4)  # whether its first threaded call has been made
    sources = SOURCES_DIGEST

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        vector_width()
        env = fpenv.enter()
        n = dims[0]
        x, out = args[0], args[1]
        sx, so = steps[0], steps[1]
        if sx == 4 and so == 4:
            how = mode(data, n, threads_from)
            if how == THREADED:
                count(data, PATH_THREADED)
                nb, step = blocks(n)
                start = now()
                for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                    t = now()
                    inner = fpenv.enter_block()  # in the thread that runs this block
                    vector32.run_unary(name, isa, x, out, min(n, b * step), min(n, b * step + step))
                    set_slot_at(data, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                    set_slot_at(data, BLOCK_TICKS + b, now() - t)
                judge(data, first, now() - start, n, step, nb)
                flags = _or_all(data, nb)
                release(data)
                fpenv.merge(flags)
            else:
                count_serial(data, how)
                vector32.run_unary(name, isa, x, out, 0, n)
        else:
            count(data, PATH_STRIDED)
            vector32.run_strided(name, isa, (x, out), (sx, so), n)
        fpenv.leave(env)

    return _compile(loop, parallel, cache)


def binary32(name, parallel, cache=True):
    """The float32 inner loop of out = name(dy, x) by ``vector32``, as
    :func:`unary32`; a broadcast dy (stride 0) runs whole too."""
    isa = vector32.emission()
    threads_from = PARALLEL_MIN_SIZE[4] if parallel else _NEVER
    first = R.loop_slot(name, 4)  # whether its first threaded call has been made
    sources = SOURCES_DIGEST

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        vector_width()
        env = fpenv.enter()
        n = dims[0]
        dy, x, out = args[0], args[1], args[2]
        sd, sx, so = steps[0], steps[1], steps[2]
        if (sd == 4 or sd == 0) and sx == 4 and so == 4:
            how = mode(data, n, threads_from)
            threaded = how == THREADED
            if sd == 0:
                if threaded:
                    count(data, PATH_THREADED_BROADCAST)
                else:
                    count_broadcast(data, how)
            elif threaded:
                count(data, PATH_THREADED)
            else:
                count_serial(data, how)
            if threaded:
                nb, step = blocks(n)
                start = now()
                for b in prange(nb):  # Numba's schedule: a contiguous share per thread
                    t = now()
                    inner = fpenv.enter_block()  # in the thread that runs this block
                    lo, hi = min(n, b * step), min(n, b * step + step)
                    if sd == 0:
                        vector32.run_binary(name, isa, dy, x, out, lo, hi, True)
                    else:
                        vector32.run_binary(name, isa, dy, x, out, lo, hi, False)
                    set_slot_at(data, BLOCK_FLAGS + b, fpenv.leave_block(inner))
                    set_slot_at(data, BLOCK_TICKS + b, now() - t)
                judge(data, first, now() - start, n, step, nb)
                flags = _or_all(data, nb)
                release(data)
                fpenv.merge(flags)
            elif sd == 0:
                vector32.run_binary(name, isa, dy, x, out, 0, n, True)
            else:
                vector32.run_binary(name, isa, dy, x, out, 0, n, False)
        else:
            count(data, PATH_STRIDED)
            vector32.run_strided(name, isa, (dy, x, out), (sd, sx, so), n)
        fpenv.leave(env)

    return _compile(loop, parallel, cache)
