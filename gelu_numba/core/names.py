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

#: The fused forms (``fused``): bias-GELU and GeGLU, forward and backward,
#: for each form.
_FORMS = ("", "_tanh", "_sigmoid")
FUSED = (
    tuple(f"bias_gelu{form}" for form in _FORMS)
    + tuple(f"bias_gelu{form}_backward" for form in _FORMS)
    + tuple(f"geglu{form}" for form in _FORMS)
    + tuple(f"geglu{form}_backward" for form in _FORMS)
)

BIAS, BIAS_BACKWARD, GEGLU, GEGLU_BACKWARD = "bias", "bias_backward", "geglu", "geglu_backward"
#: (inputs, outputs) of each fused kind.
ARITY = {BIAS: (2, 1), BIAS_BACKWARD: (3, 1), GEGLU: (2, 1), GEGLU_BACKWARD: (3, 2)}


def parse_fused(name):
    """(kind, form) of a fused name: ("geglu_backward", "gelu_tanh") for
    "geglu_tanh_backward"."""
    if name not in FUSED:
        raise AttributeError(name)
    backward = name.endswith("_backward")
    stem = name[: -len("_backward")] if backward else name
    if stem.startswith("bias_gelu"):
        kind, form = BIAS, "gelu" + stem[len("bias_gelu"):]
    else:
        kind, form = GEGLU, "gelu" + stem[len("geglu"):]
    return (kind + "_backward" if backward else kind), form
