"""The kernels of :mod:`gelu_numba` as multi-threaded ufuncs.

Same names, same scalar code, bit-identical results; the work is split over
Numba's threading layer (``numba.set_num_threads`` controls how many).
"""

from .core.names import NAMES as _KERNELS

__all__ = [*_KERNELS]


def __getattr__(name):
    if name in _KERNELS:
        from .core.build import ufunc

        f = ufunc(name, "parallel")
        globals()[name] = f
        return f
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
