"""The kernel names, below every module that builds or defines them
(``formulas`` defines one function per name, ``build`` makes the ufuncs,
``gpu`` the CUDA kernels), so that none of those imports another for them."""

UNARY = (
    "gelu",
    "gelu_tanh",
    "gelu_sigmoid",
    "gelu_grad",
    "gelu_tanh_grad",
    "gelu_sigmoid_grad",
    "gelu_grad2",
    "gelu_tanh_grad2",
    "gelu_sigmoid_grad2",
)
BINARY = ("gelu_backward", "gelu_tanh_backward", "gelu_sigmoid_backward")
NAMES = UNARY + BINARY
