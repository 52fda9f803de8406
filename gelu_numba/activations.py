"""Activation names as model configs write them.

``"activation_function"`` / ``"hidden_act"`` in a Hugging Face config names one
of a handful of GELU variants (transformers' ``ACT2CLS``; the GELU family of
transformers 5.24.0, :data:`TRANSFORMERS_VERSION`, all nine of them).  Each
resolves here to an :class:`Activation` built on this package's ufuncs:

==================  ===========================================  ==========
name                what the name means                          kernel
==================  ===========================================  ==========
gelu                x Phi(x)                                     gelu
gelu_python         x Phi(x), written out in Python              gelu
gelu_new            0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))  gelu_tanh
gelu_fast           the same, factored as x*0.79788*(1+0.044715x^2)  gelu_tanh
gelu_pytorch_tanh   torch's approximate='tanh'                   gelu_tanh
gelu_python_tanh    the tanh form, written out in Python         gelu_tanh
gelu_accurate       the tanh form again (an older name)          gelu_tanh
quick_gelu          x sigmoid(1.702 x)                           gelu_sigmoid
gelu_10             x Phi(x) clipped to [-10, 10]                gelu
==================  ===========================================  ==========
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Activation", "activation", "NAMES", "TRANSFORMERS_VERSION"]

_KERNEL = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
    "quick_gelu": "gelu_sigmoid",
    "gelu_10": "gelu",
}
NAMES = tuple(_KERNEL)
#: The transformers release whose activation table NAMES follows.
TRANSFORMERS_VERSION = "5.24.0"
_CLIP = {"gelu_10": (-10.0, 10.0)}


@dataclass(frozen=True)
class Activation:
    """forward(x), grad(x) = forward'(x), backward(dy, x) = dy * grad(x).

    Each is a NumPy ufunc (or, for a clipped variant, a function of ufuncs)
    and accepts what the ufuncs accept: NumPy arrays and scalars, Dask
    arrays, xarray objects.
    """

    name: str
    kernel: str
    forward: Callable
    grad: Callable
    backward: Callable
    clip: tuple = field(default=None)

    def __call__(self, x):
        return self.forward(x)


def _clipped(forward, grad, backward, lo, hi):
    def clipped_forward(x, out=None):
        return np.clip(forward(x, out=out), lo, hi, out=out)

    def inside(x):
        # The clip's derivative is 0 where it bites; on its edges it passes the
        # gradient, as torch.clamp's backward does (gelu(10.0) == 10.0).
        y = forward(x)
        return (y >= lo) & (y <= hi)

    def zero_outside(g, mask):
        if hasattr(g, "dims") and hasattr(g, "where"):  # xarray: keep dims, coords
            return g.where(mask, 0)
        return np.where(mask, g, np.zeros_like(g))  # NumPy, Dask

    def clipped_grad(x):
        return zero_outside(grad(x), inside(x))

    def clipped_backward(dy, x):
        return zero_outside(backward(dy, x), inside(x))

    return clipped_forward, clipped_grad, clipped_backward


def activation(name):
    """The Activation for a config's activation name (see the module table)."""
    try:
        kernel = _KERNEL[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(NAMES)}") from None
    # The ufuncs of gelu_numba itself (ufunc() caches them), from the core:
    # gelu_numba's own __getattr__ imports this module.
    from .core.build import ufunc

    forward, grad, backward = (ufunc(kernel), ufunc(kernel + "_grad"), ufunc(kernel + "_backward"))
    if name in _CLIP:
        lo, hi = _CLIP[name]
        forward, grad, backward = _clipped(forward, grad, backward, lo, hi)
        return Activation(name, kernel, forward, grad, backward, clip=(lo, hi))
    return Activation(name, kernel, forward, grad, backward)
