"""GELU activations and their gradients as Numba-compiled NumPy ufuncs.

    >>> import gelu_numba as gn
    >>> gn.gelu(-1.0)                      # x * Phi(x)
    np.float64(-0.15865525393145705)

Kernels (each a real ``numpy.ufunc`` with float32 and float64 loops):

- ``gelu``, ``gelu_tanh``, ``gelu_sigmoid``: the exact GELU x*Phi(x), the tanh
  approximation and the sigmoid approximation x*sigmoid(1.702 x);
- ``gelu_grad``, ``gelu_tanh_grad``, ``gelu_sigmoid_grad``: their derivatives;
- ``gelu_backward(dy, x)`` and friends: the fused dy * f'(x).

``gelu_numba.activation(name)`` resolves the activation names of model configs
(``"gelu_new"``, ``"quick_gelu"``, ...).  Every kernel is within 2 ulp of the true value at every finite input
(float32 ``gelu``, ``gelu_grad`` and ``gelu_backward``: 1.35, 1.42 and
1.75 ulp over all 2^32 inputs; the other float32 kernels 0.50; float64 at
most 1.42), see ``gelu_numba.tools.reference``.  ``gelu_numba.parallel``
has the same names, multi-threaded, bit-identical.  Importing this package
compiles nothing; a kernel is built (or loaded from Numba's cache) the first
time it is looked up.
"""

from .core.names import FUSED as _FUSED
from .core.names import NAMES as _KERNELS

__version__ = "0.1.0"

__all__ = [*_KERNELS, *_FUSED, "activation", "Activation"]


def __getattr__(name):
    if name in _KERNELS or name in _FUSED:
        from .core.build import ufunc

        f = ufunc(name, "cpu")
        globals()[name] = f
        return f
    if name in ("activation", "Activation"):
        from . import activations

        globals().update(activation=activations.activation, Activation=activations.Activation)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
