"""The kernels under test, by name, and what each is measured against."""

import gelu_numba as gn
import gelu_numba.parallel as gp

VARIANTS = ("gelu", "gelu_tanh", "gelu_sigmoid")
UNARY = VARIANTS + tuple(v + "_grad" for v in VARIANTS) + tuple(v + "_grad2" for v in VARIANTS)
BINARY = tuple(v + "_backward" for v in VARIANTS)
ALL = UNARY + BINARY

# x_min and f(x_min) of each variant (also checked against mpmath in
# test_reference.py).
MINIMUM = {
    "gelu": (-0.7517915246935645, -0.1699712074799037),
    "gelu_tanh": (-0.7524614220710163, -0.17004075057125405),
    "gelu_sigmoid": (-0.7511542554412890, -0.16361018963635358),
}


def serial(name):
    return getattr(gn, name)


def same_precision(name):
    """The CPU build of the CUDA kernels' arithmetic (float32 in float32)."""
    from gelu_numba.core.build import ufunc

    return ufunc(name, "same-precision")


def parallel(name):
    return getattr(gp, name)


def grad_of(variant):
    return serial(variant + "_grad")


def grad2_of(variant):
    return serial(variant + "_grad2")


def backward_of(variant):
    return serial(variant + "_backward")


def same_precision_values(name, *arrays):
    """The CPU build of the CUDA arithmetic on host arrays; float16 is
    computed in float32 and rounded back, as the CUDA kernels do."""
    import numpy as np

    compute = [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]
    return same_precision(name)(*compute).astype(arrays[-1].dtype)
