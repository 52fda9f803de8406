"""The scalar kernels, for use inside your own Numba-compiled code.

    from numba import njit
    from gelu_numba.scalar import gelu

    @njit
    def scaled_gelu(x, a):
        return a * gelu(x)

Each is the one definition its ufuncs are compiled from: a plain Python
function registered with Numba, so it can be called from ``@njit`` and
``@vectorize`` code, from ``@cuda.jit`` code once ``gelu_numba.gpu`` is
imported, and as plain Python on NumPy float32/float64 scalars.
"""

from .core.formulas import (  # noqa: F401 (re-exported)
    __all__,
    gelu,
    gelu_backward,
    gelu_grad,
    gelu_grad2,
    gelu_sigmoid,
    gelu_sigmoid_backward,
    gelu_sigmoid_grad,
    gelu_sigmoid_grad2,
    gelu_tanh,
    gelu_tanh_backward,
    gelu_tanh_grad,
    gelu_tanh_grad2,
)
