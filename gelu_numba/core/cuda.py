"""The CUDA kernels: the formulas of ``gelu_numba.core.formulas`` compiled
with numba-cuda into grid-stride kernels, and their launch.

Each kernel name has two: ``contiguous`` (one flat index serves every
operand) and ``strided`` (any shape and strides, the offsets computed on the
device).  float16 storage is computed in float32.  Every format is computed
in itself (float32 in float32 double-word arithmetic, no float64).  Which
arrays, streams and devices reach them is ``gelu_numba.gpu``'s business.
"""

import functools

import numpy as np

from .names import BINARY

THREADS_PER_BLOCK = 256
#: numba.cuda once imported; kernels refer to it as a module global, which is
#: what the simulator swaps for its own module.
cuda = None

def _cuda_module():
    try:
        from numba import cuda
    except ImportError:
        return None
    return cuda


def simulating():
    try:
        from numba import config

        return bool(config.ENABLE_CUDASIM)
    except (ImportError, AttributeError):
        return False


def is_available():
    """Whether CUDA kernels can run here (a GPU, a driver and numba-cuda)."""
    cuda = _cuda_module()
    if cuda is None:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 (driver problems mean "no")
        return False


def describe():
    """One line: which GPU the kernels would run on, or why none."""
    cuda = _cuda_module()
    if cuda is None:
        return 'not usable: numba-cuda is not installed (pip install ".[cuda]" in a gelu_numba checkout)'
    if simulating():
        return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): kernels run as Python"
    if not is_available():
        return "not usable: no CUDA GPU or driver found"
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    major, minor = dev.compute_capability
    return f"{name} (compute capability {major}.{minor})"


# --------------------------------------------------------------------------
# Compilation: the scalar functions registered with the CUDA target, and the
# grid-stride kernels built from them on first use.


def _same(v):
    return v


def _half_to_single(v):
    """float16 storage is computed in float32."""
    return np.float32(v)


@functools.cache
def numba_cuda():
    """numba.cuda, with the scalar functions made callable from kernels."""
    global cuda
    cuda = _cuda_module()
    if cuda is None:
        raise RuntimeError(describe())
    if not simulating():  # the simulator runs the Python functions directly
        from numba.cuda.extending import intrinsic, overload, register_jitable

        from . import fp as _fp

        _fp.register_primitives(overload, intrinsic)
        for fn in (*_fp.JITABLE, _same, _half_to_single):
            register_jitable(fn)
        _fp.add_target(overload)  # gelu_numba.scalar's functions, called from user kernels
    return cuda


@functools.cache
def kernels(name, half):
    """(contiguous, strided) kernels for `name`; `half`: float16 storage."""
    numba_cuda()
    from . import formulas as _scalar

    f = getattr(_scalar, name)
    load = _half_to_single if half else _same

    if name in BINARY:

        @cuda.jit
        def contiguous(dy, x, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = f(load(dy[i]), load(x[i]))
                i += step

        @cuda.jit
        def strided(dy, sd, bd, x, sx, bx, out, so, bo, shape, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                rem = i
                od = bd
                ox = bx
                oo = bo
                for d in range(len(shape) - 1, -1, -1):
                    q = rem // shape[d]
                    k = rem - q * shape[d]
                    rem = q
                    od += k * sd[d]
                    ox += k * sx[d]
                    oo += k * so[d]
                out[oo] = f(load(dy[od]), load(x[ox]))
                i += step

    else:

        @cuda.jit
        def contiguous(x, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = f(load(x[i]))
                i += step

        @cuda.jit
        def strided(x, sx, bx, out, so, bo, shape, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                rem = i
                ox = bx
                oo = bo
                for d in range(len(shape) - 1, -1, -1):
                    q = rem // shape[d]
                    k = rem - q * shape[d]
                    rem = q
                    ox += k * sx[d]
                    oo += k * so[d]
                out[oo] = f(load(x[ox]))
                i += step

    return contiguous, strided



def _blocks(cuda, n):
    wanted = -(-n // THREADS_PER_BLOCK)
    if simulating():
        return min(wanted, 4)
    sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
    return max(1, min(wanted, sms * 32))


def launch(name, half, args, n, stream, shape=None):
    """Run kernel `name` over `n` elements on `stream`: the contiguous kernel
    on flat device arrays (`args`: dy, x, out or x, out), or with `shape`
    the strided one (`args`: array, strides, base offset for each)."""
    contiguous, strided = kernels(name, half)
    blocks = _blocks(cuda, n)
    if shape is None:
        contiguous[blocks, THREADS_PER_BLOCK, stream](*args, n)
    else:
        strided[blocks, THREADS_PER_BLOCK, stream](*args, tuple(shape), n)


# --------------------------------------------------------------------------
# The fused forms (gelu_numba.core.fused): bias-GELU f(x + b) and GeGLU
# f(a) g, forward and backward, from the same scalar functions.  A sum or
# product's NaN is its first operand's where that is one (what the unfused
# expression gives on the CPU; a GPU's own arithmetic gives its canonical
# NaN either way).


def _first_nan_add(p, q):
    s = p + q
    return p + p if p != p else s


def _first_nan_mul(p, q):
    s = p * q
    return p + p if p != p else s


@functools.cache
def fused_kernels(name, half):
    """(contiguous, strided) kernels for the fused kernel `name`; operands
    broadcast by stride 0 in the strided one."""
    numba_cuda()
    from . import formulas as _scalar
    from .names import parse_fused

    kind, form = parse_fused(name)
    f, fb = getattr(_scalar, form), getattr(_scalar, form + "_backward")
    load = _half_to_single if half else _same
    add = _device_function(_first_nan_add)
    mul = _device_function(_first_nan_mul)

    if kind == "bias":

        def element(x, b):
            return f(add(x, b))

    elif kind == "bias_backward":

        def element(dy, x, b):
            return fb(dy, add(x, b))

    elif kind == "geglu":

        def element(a, g):
            return mul(f(a), g)

    else:

        def element(dy, a, g):
            return fb(mul(dy, g), a), mul(dy, f(a))

    element = _device_function(element)

    if kind in ("bias", "geglu"):

        @cuda.jit
        def contiguous(p, q, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = element(load(p[i]), load(q[i]))
                i += step

        @cuda.jit
        def strided(p, sp, bp, q, sq, bq, out, so, bo, shape, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                rem = i
                op = bp
                oq = bq
                oo = bo
                for d in range(len(shape) - 1, -1, -1):
                    t = rem // shape[d]
                    k = rem - t * shape[d]
                    rem = t
                    op += k * sp[d]
                    oq += k * sq[d]
                    oo += k * so[d]
                out[oo] = element(load(p[op]), load(q[oq]))
                i += step

    elif kind == "bias_backward":

        @cuda.jit
        def contiguous(p, q, r, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = element(load(p[i]), load(q[i]), load(r[i]))
                i += step

        @cuda.jit
        def strided(p, sp, bp, q, sq, bq, r, sr, br, out, so, bo, shape, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                rem = i
                op = bp
                oq = bq
                orr = br
                oo = bo
                for d in range(len(shape) - 1, -1, -1):
                    t = rem // shape[d]
                    k = rem - t * shape[d]
                    rem = t
                    op += k * sp[d]
                    oq += k * sq[d]
                    orr += k * sr[d]
                    oo += k * so[d]
                out[oo] = element(load(p[op]), load(q[oq]), load(r[orr]))
                i += step

    else:

        @cuda.jit
        def contiguous(p, q, r, out, out2, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                u, v = element(load(p[i]), load(q[i]), load(r[i]))
                out[i] = u
                out2[i] = v
                i += step

        @cuda.jit
        def strided(p, sp, bp, q, sq, bq, r, sr, br, out, so, bo, out2, so2, bo2, shape, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                rem = i
                op = bp
                oq = bq
                orr = br
                oo = bo
                oo2 = bo2
                for d in range(len(shape) - 1, -1, -1):
                    t = rem // shape[d]
                    k = rem - t * shape[d]
                    rem = t
                    op += k * sp[d]
                    oq += k * sq[d]
                    orr += k * sr[d]
                    oo += k * so[d]
                    oo2 += k * so2[d]
                u, v = element(load(p[op]), load(q[oq]), load(r[orr]))
                out[oo] = u
                out2[oo2] = v
                i += step

    return contiguous, strided


def _device_function(fn):
    """fn callable from kernels: a device function on CUDA, itself on the
    simulator (which runs kernels as Python)."""
    if simulating():
        return fn
    return cuda.jit(device=True)(fn)


def launch_fused(name, half, args, n, stream, shape=None):
    """``launch`` for a fused kernel: `args` are its inputs then outputs."""
    contiguous, strided = fused_kernels(name, half)
    blocks = _blocks(cuda, n)
    if shape is None:
        contiguous[blocks, THREADS_PER_BLOCK, stream](*args, n)
    else:
        strided[blocks, THREADS_PER_BLOCK, stream](*args, tuple(shape), n)
