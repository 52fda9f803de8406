"""Plausible wrong kernels, each a mistake a GELU implementation really makes.

They compute in the dtype of their input, like the real kernels, and are used
only to show that the property checks catch them.
"""

import numpy as np
from scipy import special

import gelu_numba as gn


def _in_dtype(fn):
    def wrapped(*args):
        args = [np.asarray(a) for a in args]
        t = np.result_type(*args).type
        with np.errstate(all="ignore"):
            return np.asarray(fn(t, *[a.astype(t) for a in args]), dtype=t)[()]

    wrapped.__name__ = fn.__name__
    return wrapped


@_in_dtype
def erf_form(t, x):
    """0.5 x (1 + erf(x / sqrt 2)), PyTorch's exact GELU: cancels for x < 0."""
    return t(0.5) * x * (t(1) + special.erf(x / t(np.sqrt(2))))


@_in_dtype
def no_special_cases(t, x):
    """x * Phi(x) with Phi = erfc(-x/sqrt2)/2 but -inf * 0 left as NaN."""
    return x * (special.erfc(-x / t(np.sqrt(2))) / t(2))


@_in_dtype
def scaled_erfc_unguarded(t, x):
    """x exp(-x^2/2) erfcx(-x/sqrt2)/2: the scaled erfc without a branch, so
    inf * 0 = NaN once erfcx overflows (x > 13.2 in float32)."""
    return x * np.exp(-x * x / t(2)) * special.erfcx(-x / t(np.sqrt(2))) / t(2)


@_in_dtype
def tanh_without_cubic(t, x):
    """The tanh form with the 0.044715 x^3 term dropped."""
    return t(0.5) * x * (t(1) + np.tanh(t(np.sqrt(2 / np.pi)) * x))


@_in_dtype
def tanh_wrong_constant(t, x):
    """The tanh form with 0.0447 for 0.044715."""
    u = t(np.sqrt(2 / np.pi)) * (x + t(0.0447) * x * x * x)
    return x / (t(1) + np.exp(-t(2) * u))


@_in_dtype
def sigmoid_as_exact(t, x):
    """The exact GELU's tail borrowed from the sigmoid form: x - x sigma(-1.702 x)."""
    return np.where(x > 0, x - x * special.expit(-t(1.702) * x), gn.gelu(x))


@_in_dtype
def sign_error_below_zero(t, x):
    """x Phi(x) with the argument's sign lost on the negative branch."""
    return np.where(x < 0, x * special.ndtr(x * t(1.0001)), gn.gelu(x))


@_in_dtype
def grad_without_density_term(t, x):
    """Phi(x): the x phi(x) term of the exact GELU's derivative forgotten."""
    return special.ndtr(x)


@_in_dtype
def grad_with_seam(t, x):
    """The real gradient with a 1e-3 jump at a region boundary (a wrong table)."""
    g = gn.gelu_grad(x)
    return np.where(x < t(-0.6), g + t(1e-3), g)


@_in_dtype
def backward_swapped(t, dy, x):
    """backward(dy, x) that calls the gradient on dy."""
    return x * gn.gelu_grad(dy)


@_in_dtype
def rounding_noise(t, x):
    """The real kernel plus one ulp of deterministic noise (odd bit patterns)."""
    y = gn.gelu(x)
    ubits = np.uint32 if t is np.float32 else np.uint64
    odd = (np.asarray(x).view(ubits) & ubits(1)).astype(bool)
    return np.where(odd, np.nextafter(y, t(-np.inf)), y)


@_in_dtype
def zero_without_sign(t, x):
    """The real kernel plus a zero correction term: +0.0 where -0.0 is due
    (what x/2 + x^2 P(x^2) gives for the smallest subnormal)."""
    return gn.gelu(x) + t(0)


@_in_dtype
def grad2_without_curvature_term(t, x):
    """2 phi(x): the -x^2 phi(x) term of the exact GELU's second derivative forgotten."""
    return t(2) * np.exp(-x * x / t(2)) / t(np.sqrt(2 * np.pi))


@_in_dtype
def grad2_of_the_wrong_form(t, x):
    """The exact GELU's second derivative given for the tanh form."""
    return gn.gelu_grad2(x)


def tail_formula_near_minimum(variant):
    """The float64 kernel's double-word tail formula used around the minimum
    too (no region B): accurate to 0.6 ulp there, but its rounding noise (the
    polynomial tails summed in working precision) makes f wiggle."""
    import numba

    from gelu_numba.core import coefficients as C
    from gelu_numba.core import formulas as S
    from gelu_numba.core.fp import DW

    form = {"gelu": S.EXACT, "gelu_tanh": S.TANH, "gelu_sigmoid": S.SIGMOID}[variant]
    t_max = {"gelu": C.GELU_F64, "gelu_tanh": C.GELU_TANH_F64, "gelu_sigmoid": C.GELU_SIGMOID_F64}[variant].t_max

    @numba.vectorize(["float64(float64)"])
    def kernel(x):
        return S._tail_value(x, t_max, form, C.COMMON_F64, DW)

    return kernel
