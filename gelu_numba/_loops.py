"""The ufunc inner loops, compiled with Numba as C callbacks.

They are written here rather than left to ``numba.vectorize``: its wrapper
calls the kernel through Numba's calling convention without inlining it, so
its loop never vectorises, and it has no hook for a parallel loop that falls
back to serial on small arrays.  Each loop is a ``cfunc`` with NumPy's
inner-loop signature ``(char **args, npy_intp *dims, npy_intp *steps, void *)``
and three paths:

- unit stride everywhere: a plain indexed loop that LLVM vectorises (the
  kernel is inlined; see ``_fp.CPU_JIT_OPTIONS``);
- a broadcast ``dy`` (stride 0) for the backward kernels;
- any other strides: an element-by-element loop.

One source serves both targets: ``prange`` is a plain ``range`` unless the
cfunc is compiled with ``parallel=True``, and then only unit-stride calls of
at least ``PARALLEL_MIN_SIZE`` elements take it (smaller ones cost more to
hand to threads than they save).  Both inline the same
kernel, so the two targets agree bit for bit.

The loops are closures over the kernel, its type and sizes, which pickle the
same way in every process: Numba keys its cache on them.  Numba also keys it
on the loop's own file and bytecode, but not on the files of the functions it
inlines, so the closures carry a digest of the formula sources as well: an
edit to ``_scalar.py``, ``_fp.py`` or ``_coeffs.py`` misses the cache instead
of loading stale machine code.
"""

import hashlib
import pathlib

import numpy as np
from numba import cfunc, prange, types
from numba.extending import intrinsic

from ._fp import CPU_JIT_OPTIONS

#: Unit-stride calls at least this long run multi-threaded (parallel target),
#: by item size.  Measured on 2 cores with the OpenMP layer: parallel already
#: wins at 4K elements (1.3-1.8x) and loses at 1K in float32 (0.7x); the
#: thresholds leave a margin for slower thread wake-up elsewhere.
PARALLEL_MIN_SIZE = {4: 8192, 8: 2048}

_NEVER = np.iinfo(np.intp).max


def _sources_digest():
    here = pathlib.Path(__file__).parent
    h = hashlib.sha256()
    for name in ("_scalar.py", "_fp.py", "_coeffs.py", "_loops.py"):
        h.update((here / name).read_bytes())
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
    """The element of like's type at base + offset bytes."""

    def codegen(context, builder, sig, args):
        base, offset, _ = args
        ptr = builder.bitcast(
            builder.gep(base, [offset]), context.get_value_type(sig.return_type).as_pointer()
        )
        return builder.load(ptr)

    return like(base, offset, like), codegen


@intrinsic
def store(typingctx, base, offset, value):
    """Write value at base + offset bytes."""

    def codegen(context, builder, sig, args):
        base, offset, value = args
        ptr = builder.bitcast(builder.gep(base, [offset]), value.type.as_pointer())
        builder.store(value, ptr)
        return context.get_dummy_value()

    return types.none(base, offset, value), codegen


def _compile(loop, parallel, cache):
    return cfunc(
        SIGNATURE, error_model=CPU_JIT_OPTIONS["error_model"], parallel=parallel, cache=cache
    )(loop)


def unary(kernel, dtype, parallel, cache=True):
    """The inner loop of y = kernel(x) for one float type."""
    T = dtype
    size = np.dtype(dtype).itemsize
    threads_from = PARALLEL_MIN_SIZE[size] if parallel else _NEVER
    sources = SOURCES_DIGEST

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        n = dims[0]
        x, out = args[0], args[1]
        sx, so = steps[0], steps[1]
        zero = T(0)
        if sx == size and so == size:
            if n >= threads_from:
                for i in prange(n):
                    store(out, i * size, kernel(load(x, i * size, zero)))
            else:
                for i in range(n):
                    store(out, i * size, kernel(load(x, i * size, zero)))
        else:
            for i in range(n):
                store(out, i * so, kernel(load(x, i * sx, zero)))

    return _compile(loop, parallel, cache)


def binary(kernel, dtype, parallel, cache=True):
    """The inner loop of out = kernel(dy, x) for one float type."""
    T = dtype
    size = np.dtype(dtype).itemsize
    threads_from = PARALLEL_MIN_SIZE[size] if parallel else _NEVER
    sources = SOURCES_DIGEST

    def loop(args, dims, steps, data):
        sources  # noqa: B018 (a closure variable, for the cache key)
        n = dims[0]
        dy, x, out = args[0], args[1], args[2]
        sd, sx, so = steps[0], steps[1], steps[2]
        zero = T(0)
        if sd == size and sx == size and so == size:
            if n >= threads_from:
                for i in prange(n):
                    store(out, i * size, kernel(load(dy, i * size, zero), load(x, i * size, zero)))
            else:
                for i in range(n):
                    store(out, i * size, kernel(load(dy, i * size, zero), load(x, i * size, zero)))
        elif sd == 0 and sx == size and so == size:
            g = load(dy, 0, zero)
            for i in range(n):
                store(out, i * size, kernel(g, load(x, i * size, zero)))
        else:
            for i in range(n):
                store(out, i * so, kernel(load(dy, i * sd, zero), load(x, i * sx, zero)))

    return _compile(loop, parallel, cache)
