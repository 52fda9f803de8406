"""The scalar kernels, for use inside your own Numba-compiled code.

    from numba import njit
    from gelu_numba.scalar import gelu

    @njit
    def scaled_gelu(x, a):
        return a * gelu(x)

Each can be called from ``@njit`` and ``@vectorize`` code (float32 and
float64 arguments; anything else is a typing error), from ``@cuda.jit`` code
once ``gelu_numba.gpu`` is imported, and as plain Python.  In CPU code it
gives the ufuncs' bits: float64 is the formula the float64 loops are
compiled from, float32 the scalar emission of the float32 loops' algorithm
(``gelu_numba.core.vector32``).

As plain Python:

- a Python float or ``np.float64`` (and, for the backward kernels, ``dy`` of
  the same kind) runs the float64 formula: the ufunc's bits;
- ``np.float32`` (both arguments) follows the CUDA kernels' arithmetic
  (float32 double word), as the CUDA simulator does: within the float32
  contract, not always the CPU ufunc's bits;
- any other real number, or a mix of kinds, gives exactly what the ufunc
  gives for the same arguments, by NumPy's casting: Python ints, int32/64
  and uint32/64 compute in float64; bool, int8/16, uint8/16 and float16 in
  float32.  ``gelu(1)`` is ``gelu_numba.gelu(1)``, ``np.float64(0.841...)``;
- anything else (complex, strings, None, long double) raises ``TypeError``.
"""

import functools

import numpy as np

from .core import fp as _fp
from .core import formulas as _formulas
from .core.names import BINARY as _BINARY

__all__ = list(_formulas.__all__)

#: What a plain-Python call accepts, for the error message.
_ACCEPTED = ("real numbers: Python int, float and bool, NumPy integer, bool and float16/32/64 "
             "scalars (or arrays, computed by the ufunc)")


def _formula_format(*args):
    """np.float32 or float when every argument is of that one kind (the
    formulas run on them as they are), else None."""
    if all(type(a) is np.float32 for a in args):
        return np.float32
    if all(type(a) is float or type(a) is np.float64 for a in args):
        return float
    return None


def _by_the_ufunc(name, args):
    """The ufunc's result for args, or a TypeError that says what is accepted."""
    from .core.build import ufunc

    for a in args:
        if isinstance(a, (complex, np.complexfloating, np.longdouble)) or not isinstance(
                a, (int, float, np.number, np.bool_, np.ndarray)):
            raise TypeError(f"gelu_numba.scalar.{name}: got {type(a).__name__}; it accepts {_ACCEPTED}")
    try:
        return ufunc(name)(*args)
    except (TypeError, OverflowError) as exc:
        raise TypeError(f"gelu_numba.scalar.{name}: {exc}; it accepts {_ACCEPTED}") from None


def _public(fn):
    """fn for plain-Python callers (what the ufunc gives, or TypeError), and
    fn itself in compiled code (``core.fp.register_public``)."""
    name = fn.__name__
    if name in _BINARY:

        def public(dy, x):
            if _formula_format(dy, x) is not None:
                return fn(dy, x)
            return _by_the_ufunc(name, (dy, x))

    else:

        def public(x):
            if _formula_format(x) is not None:
                return fn(x)
            return _by_the_ufunc(name, (x,))

    functools.update_wrapper(public, fn)
    public.__module__ = __name__
    _fp.register_public(public, fn)  # compiled calls (CPU now, CUDA once set up) compile fn
    return public


for _name in __all__:
    globals()[_name] = _public(getattr(_formulas, _name))
del _name
