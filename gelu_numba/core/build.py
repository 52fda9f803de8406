"""Turn the scalar formulas of ``formulas.py`` into NumPy ufuncs, per target.

Nothing is compiled at import: a ufunc is built the first time its name is
looked up (``gelu_numba.gelu``), from Numba's on-disk cache when it is warm.

The inner loops are compiled in ``loops.py`` and handed to NumPy through
Numba's ``fromfunc``, one loop per format.
"""

import ctypes
import functools

import numpy as np

from .names import BINARY, FUSED, NAMES, UNARY  # noqa: F401 (re-exported)

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
    _ADDRESSES[name, target] = {dtype: loop.address for dtype, loop in zip(DTYPES, loops)}
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


#: {(name, target): {dtype: the address of its inner loop}} of the ufuncs built.
_ADDRESSES = {}


def loop_addresses(name, target="cpu"):
    """{np.float32: address, np.float64: address} of the inner loops of
    kernel `name`'s ufunc on `target` (built if it is not yet; it stays
    alive with the process, in ``ufunc``'s cache)."""
    ufunc(name, target)
    return _ADDRESSES[name, target]


def _set_module(f, module):
    """Name the module that pickle finds the ufunc in.

    NumPy pickles a ufunc by name and, without ``__module__``, looks for it
    in every module of ``sys.modules``: slow, and it imports deprecated
    modules (mpmath 1.4's ``rational`` warns).  NumPy 2 ufuncs take the
    attribute; older ones keep the search.  The same-precision target is not
    public: it keeps the search, which finds no module and fails, as it should.
    """
    try:
        f.__module__ = module
    except (AttributeError, TypeError):
        pass


class _UFuncHead(ctypes.Structure):
    """PyUFuncObject (numpy/ufuncobject.h) up to op_flags; the same layout
    in NumPy 1.16 to 2.x, and checked against the object before any write."""

    _fields_ = [
        ("ob_refcnt", ctypes.c_ssize_t),
        ("ob_type", ctypes.c_void_p),
        ("nin", ctypes.c_int),
        ("nout", ctypes.c_int),
        ("nargs", ctypes.c_int),
        ("identity", ctypes.c_int),
        ("functions", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("ntypes", ctypes.c_int),
        ("reserved1", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("types", ctypes.c_void_p),
        ("doc", ctypes.c_char_p),
        ("ptr", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("userloops", ctypes.c_void_p),
        ("core_enabled", ctypes.c_int),
        ("core_num_dim_ix", ctypes.c_int),
        ("core_num_dims", ctypes.c_void_p),
        ("core_dim_ixs", ctypes.c_void_p),
        ("core_offsets", ctypes.c_void_p),
        ("core_signature", ctypes.c_char_p),
        ("type_resolver", ctypes.c_void_p),
        ("dict", ctypes.c_void_p),
        ("vectorcall", ctypes.c_void_p),
        ("reserved3", ctypes.c_void_p),
        ("op_flags", ctypes.POINTER(ctypes.c_uint32)),
    ]


def _plain_outputs(f):
    """Let NumPy treat the outputs as write-only, as for its own ufuncs.

    Numba's ``fromfunc`` flags every ufunc output READWRITE
    (numba/np/ufunc/_ufunc.c), so NumPy refuses ``where=`` ("ARRAYMASK, but
    no WRITEMASKED operands"; numba issue 7373).  An elementwise loop never
    reads its output, so the flags are cleared, once the struct is confirmed
    to be laid out as declared.  If it is not, the ufunc works as before,
    without where=.
    """
    head = _UFuncHead.from_address(id(f))
    expected = (f.nin, f.nout, f.nargs, f.ntypes, f.__name__.encode(), 0)
    found = (head.nin, head.nout, head.nargs, head.ntypes, head.name, head.core_enabled)
    if found != expected or not head.op_flags:
        return
    for i in range(f.nin, f.nargs):
        head.op_flags[i] = 0
