"""The kernels of :mod:`gelu_numba` as multi-threaded ufuncs.

Same names, same scalar code, bit-identical results; the work is split over
Numba's threading layer (``numba.set_num_threads`` controls how many).

The fused forms (``bias_gelu``, ``geglu`` and their backward) are callables
around a threaded ufunc (``.ufunc``) that share the rows of a bias along the
last axis, or of the halves of a concatenated projection, between the
threads (``gelu_numba.core.fused.RowsUfunc``); NumPy would call the ufunc
once per row there.
"""

from .core.names import FUSED as _FUSED
from .core.names import NAMES as _KERNELS

__all__ = [*_KERNELS, *_FUSED]


def __getattr__(name):
    if name in _KERNELS:
        from .core.build import ufunc

        f = ufunc(name, "parallel")
        globals()[name] = f
        return f
    if name in _FUSED:
        from .core.fused import RowsUfunc

        f = RowsUfunc(name)
        globals()[name] = f
        return f
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
