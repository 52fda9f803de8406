"""Turn the scalar formulas of ``formulas.py`` into NumPy ufuncs, per target.

Nothing is compiled at import: a ufunc is built the first time its name is
looked up (``gelu_numba.gelu``), from Numba's on-disk cache when it is warm.

The inner loops are compiled in ``loops.py`` and handed to NumPy through
Numba's ``fromfunc``, one loop per format.
"""

import functools

import numpy as np

from .names import BINARY, FUSED, NAMES, UNARY  # noqa: F401 (re-exported)
from .ufunc_object import _plain_outputs, _set_module

#: Formats with a compiled loop, in the order NumPy searches them: float32
#: first, so that float32 input is not promoted.
DTYPES = (np.float32, np.float64)

#: Targets: the two public ones, and the CPU build of the same-precision
#: policy (float32 computed in float32, as on CUDA), kept for verification.
TARGETS = ("cpu", "parallel", "same-precision")


def explicit_kernel(name, policy32, common32):
    """Kernel `name` with float32 computed under `policy32` with the constants
    `common32` (float64 under DW)."""
    from . import coefficients as C
    from . import formulas as S
    from .fp import DW, pick

    form, (v32, v64), what = S.EXPLICIT[name]
    c64 = C.COMMON_F64
    if what == "value":

        def kernel(x):
            return S.evaluate(x, pick(x, v32, v64), form, pick(x, common32, c64), pick(x, policy32, DW))

    elif what == "grad":

        def kernel(x):
            return S.evaluate_grad(x, pick(x, v32, v64), form, pick(x, common32, c64), pick(x, policy32, DW))

    elif what == "grad2":

        def kernel(x):
            return S.evaluate_grad2(x, pick(x, v32, v64), form, pick(x, common32, c64), pick(x, policy32, DW))

    else:

        def kernel(dy, x):
            return S.evaluate_backward(dy, x, pick(x, v32, v64), form, pick(x, common32, c64), pick(x, policy32, DW))

    from numba.extending import register_jitable

    from .fp import CPU_JIT_OPTIONS

    kernel.__name__ = name
    return register_jitable(**CPU_JIT_OPTIONS)(kernel)


def same_precision_kernel(name):
    """Kernel `name` with every format computed in itself (CUDA's policy)."""
    from . import coefficients as C
    from .fp import DW

    return explicit_kernel(name, DW, C.COMMON_F32)


@functools.cache
def ufunc(name, target="cpu"):
    """The np.ufunc for kernel `name` on `target` ('cpu' or 'parallel').

    'same-precision' builds the serial CPU ufunc with float32 computed in
    float32 double-word arithmetic, the policy of the CUDA kernels, so that
    their arithmetic can be verified on the CPU.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; use 'cpu' or 'parallel'")
    if name in FUSED and target in ("cpu", "parallel"):
        from . import fused

        return fused.build(name, target)
    if name not in NAMES:
        raise AttributeError(name)
    from numba.np.ufunc import _internal

    from . import loops as _loops, runtime as _runtime, formulas as _scalar, vector32 as _vector32

    if target == "same-precision":
        kernel, cache = same_precision_kernel(name), False
    else:
        kernel, cache = getattr(_scalar, name), True
    arity = 2 if name in BINARY else 1
    build = _loops.binary if arity == 2 else _loops.unary
    parallel = target == "parallel"
    if parallel:
        _runtime.calibrate()  # the clock the fallback to serial calls reads
    loops = []
    for dtype in DTYPES:
        if dtype is np.float32 and target in ("cpu", "parallel"):  # the float32 algorithm of vector32
            loops.append((_loops.binary32 if arity == 2 else _loops.unary32)(name, parallel, cache))
        else:
            loops.append(build(kernel, dtype, parallel, cache))
    types = [[np.dtype(dtype).num] * (arity + 1) for dtype in DTYPES]
    doc = kernel.__doc__
    f = _internal.fromfunc(
        name, doc, [loop.address for loop in loops], types, arity, 1,
        [_runtime.ADDRESS] * len(loops), tuple(loops), _internal.PyUFunc_None,
    )
    _plain_outputs(f)
    if target in ("cpu", "parallel"):
        _set_module(f, "gelu_numba.parallel" if target == "parallel" else "gelu_numba")
    return f
