"""The scalar kernels, for use inside your own Numba-compiled code.

    from numba import njit
    from gelu_numba.scalar import gelu

    @njit
    def scaled_gelu(x, a):
        return a * gelu(x)

Each is a plain Python function registered with Numba, so it can be called
from ``@njit`` and ``@vectorize`` code, from ``@cuda.jit`` code once
``gelu_numba.gpu`` is imported, and as plain Python on NumPy float32/float64
scalars.  In CPU code it gives the ufuncs' bits: float64 is the formula the
float64 loops are compiled from, float32 the scalar emission of the float32
loops' algorithm (``gelu_numba.core.vector32``).  As plain Python, and on
CUDA, float32 follows the CUDA kernels' arithmetic (float32 double word).
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
