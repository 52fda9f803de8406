"""Mathematical ground truth for every kernel, computed with mpmath.

This module is the yardstick the package is measured against: the tests,
the accuracy reports of the command line and the asv ``track_`` benchmarks
all call :func:`ulp_error`.  It is slow (tens of microseconds per point) and
exact to the working precision, which defaults to 160 bits.

The approximations are the formulas *as written*, evaluated exactly: the
decimal constants 0.044715 and 1.702 are taken as the decimal numbers they
spell, not as their nearest binary floating-point values.

Error measure
-------------
An error is reported in units in the last place (ulp) of the true value in the
requested floating-point format; subnormal results are measured in units of
the smallest subnormal.  For a gradient ``f'(x) = first_term + ...`` the ulp
is taken of ``max(|f'(x)|, |first_term|)``, where the first term is Phi(x) for
the exact GELU and sigma(.) for the two approximations: f' has a zero at the
minimum of f, where no relative bound on f' itself is meaningful.  Likewise
for a second derivative (``*_grad2``), whose first term is 2 phi(x) for the
exact GELU (f'' = phi(x) (2 - x^2)) and 2 sigma'(w) w' for the
approximations: f'' has zeros at the inflection points of f' (x = +-sqrt 2
for the exact GELU), and its first term is the size of its parts there.
"""

import math

import mpmath as mp
import numpy as np

from ..core.names import UNARY

__all__ = [
    "KERNELS",
    "VARIANTS",
    "value",
    "first_term",
    "evaluate",
    "ulp",
    "ulp_error",
    "minimum",
    "max_abs_difference",
]

#: The functions that carry the accuracy contract (values, first and second
#: derivatives).
KERNELS = UNARY

#: The three GELU variants, by the name of their forward kernel.
VARIANTS = ("gelu", "gelu_tanh", "gelu_sigmoid")

DEFAULT_PREC = 160

_FORMATS = {
    # precision p (bits, with the implicit one), smallest normal exponent
    np.dtype(np.float32): (24, -126),
    np.dtype(np.float64): (53, -1022),
}


def _format(dtype):
    try:
        return _FORMATS[np.dtype(dtype)]
    except KeyError:
        raise TypeError(
            f"reference values exist for float32 and float64, not {np.dtype(dtype)}"
        ) from None


# --------------------------------------------------------------------------
# The formulas, in exact arithmetic.  Every function assumes a finite mpf x
# and the caller's working precision.


def _ncdf(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _npdf(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _sigmoid(z):
    return 1 / (1 + mp.exp(-z))


def _tanh_argument(x):
    """w = 2u for the tanh form: 0.5(1 + tanh(u)) = sigmoid(2u)."""
    c = mp.mpf("0.044715")
    k = mp.sqrt(2 / mp.pi)
    return 2 * k * (x + c * x**3), 2 * k * (1 + 3 * c * x**2)


def _sigmoid_argument(x):
    a = mp.mpf("1.702")
    return a * x, a


def _sigma_form(argument, x, derivative):
    w, dw = argument(x)
    s = _sigmoid(w)
    if not derivative:
        return x * s, x * s
    # sigma'(w) = sigma(w) * sigma(-w); written this way it does not cancel.
    return s + x * s * _sigmoid(-w) * dw, s


def _exact(x, derivative):
    p = _ncdf(x)
    if not derivative:
        return x * p, x * p
    return p + x * _npdf(x), p


def _exact_grad2(x):
    phi = _npdf(x)
    return phi * (2 - x * x), 2 * phi


def _second_derivative(x, w, dw, d2w):
    """(f'', first term) of f = x sigma(w(x))."""
    s = _sigmoid(w)
    sp = s * _sigmoid(-w)  # sigma'(w), without cancellation
    first = 2 * sp * dw
    return first + sp * x * d2w + x * sp * (1 - 2 * s) * dw * dw, first


def _tanh_grad2(x):
    w, dw = _tanh_argument(x)
    d2w = 2 * mp.sqrt(2 / mp.pi) * 6 * mp.mpf("0.044715") * x
    return _second_derivative(x, w, dw, d2w)


def _sigmoid_grad2(x):
    w, dw = _sigmoid_argument(x)
    return _second_derivative(x, w, dw, 0)


_FORMULAS = {
    "gelu": lambda x: _exact(x, False),
    "gelu_grad": lambda x: _exact(x, True),
    "gelu_tanh": lambda x: _sigma_form(_tanh_argument, x, False),
    "gelu_tanh_grad": lambda x: _sigma_form(_tanh_argument, x, True),
    "gelu_sigmoid": lambda x: _sigma_form(_sigmoid_argument, x, False),
    "gelu_sigmoid_grad": lambda x: _sigma_form(_sigmoid_argument, x, True),
    "gelu_grad2": _exact_grad2,
    "gelu_tanh_grad2": _tanh_grad2,
    "gelu_sigmoid_grad2": _sigmoid_grad2,
}

# Limits at +-inf: gelu(+inf) = +inf, gelu(-inf) = -0.0, f'(+inf) = 1 and
# f'(-inf) = 0 (approached from below, so -0.0); f''(+-inf) = 0, from below.
_AT_INFINITY = {
    "value": {+1: math.inf, -1: -0.0},
    "grad": {+1: 1.0, -1: -0.0},
    "grad2": {+1: -0.0, -1: -0.0},
}


def kind(name):
    """'value', 'grad' or 'grad2': what kernel `name` computes."""
    return "grad2" if name.endswith("_grad2") else "grad" if name.endswith("_grad") else "value"


def _check_name(name):
    if name not in _FORMULAS:
        raise ValueError(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")


# Beyond |x| = HUGE every kernel equals its limit to far better than 2**-prec:
# f(x) = x or f'(x) = 1 within a relative e**-(5e7) for x > 0; for x < 0 the
# true value lies below 2**-(10**6), far under the smallest subnormal, and is
# represented by -TINY (mpmath's erfc also fails on such arguments).
HUGE = 1e4
_TINY_EXPONENT = -(10**6)


def _pair(name, x, prec):
    """(f(x), first term) as mpf, or floats for non-finite x."""
    _check_name(name)
    x = float(x)
    if math.isnan(x):
        return math.nan, math.nan
    what = kind(name)
    if math.isinf(x):
        v = _AT_INFINITY[what][1 if x > 0 else -1]
        return v, v
    with mp.workprec(prec):
        if abs(x) > HUGE:
            tiny = -mp.ldexp(1, _TINY_EXPONENT)
            if what == "grad2":  # f'' vanishes like exp(-x^2/2) (or faster), from below
                return tiny, -tiny
            if x > 0:
                v = mp.mpf(1) if what == "grad" else mp.mpf(x)
                return v, v
            return tiny, -tiny if what == "grad" else tiny
        v, first = _FORMULAS[name](mp.mpf(x))
        return +v, +first


def value(name, x, prec=DEFAULT_PREC):
    """The true value of kernel `name` at the float `x`, as an mpf.

    Non-finite `x` gives the float limit (inf, -0.0, 1.0, nan).
    """
    return _pair(name, x, prec)[0]


def first_term(name, x, prec=DEFAULT_PREC):
    """The quantity whose ulp measures the error of `name` at `x`.

    For f itself that is f(x); for f' it is the first term of f' (Phi(x) or
    sigma(.)), see the module docstring.
    """
    return _pair(name, x, prec)[1]


def _round(v, dtype):
    """Round an mpf to the nearest value of `dtype`, ties to even."""
    p, emin = _format(dtype)
    if not isinstance(v, mp.mpf):
        return np.dtype(dtype).type(v)
    if v == 0:
        return np.dtype(dtype).type(0.0)
    with mp.workprec(DEFAULT_PREC):
        e = int(mp.floor(mp.log(abs(v), 2)))
        q = max(e, emin) - p + 1
        m = mp.ldexp(v, -q)
        n = mp.nint(m)  # mpmath rounds half-integers to even
        r = mp.ldexp(n, q)
        if r == 0:
            return np.dtype(dtype).type(-0.0 if v < 0 else 0.0)
    with np.errstate(over="ignore"):
        return np.dtype(dtype).type(float(r))


def evaluate(name, x, dtype=np.float64, prec=DEFAULT_PREC):
    """The true values of `name` at the points `x`, correctly rounded to `dtype`.

    `x` is converted to `dtype` first (so the reference sees exactly the
    points the kernel sees).
    """
    x = np.asarray(x, dtype=dtype)
    out = np.empty_like(x)
    for i, xi in np.ndenumerate(x):
        out[i] = _round(value(name, xi, prec), dtype)
    return out[()] if out.ndim == 0 else out


def ulp(v, dtype):
    """The unit in the last place of |v| in `dtype` (subnormals included)."""
    p, emin = _format(dtype)
    v = abs(mp.mpf(v))
    if v == 0:
        return mp.ldexp(1, emin - p + 1)
    e = int(mp.floor(mp.log(v, 2)))
    return mp.ldexp(1, max(e, emin) - p + 1)


def ulp_error(name, x, y, prec=DEFAULT_PREC):
    """Signed error of the computed values `y` at the points `x`, in ulps.

    `y` fixes the format (float32 or float64); `x` is converted to it.  For
    non-finite expected or computed values the error is 0 when they agree
    exactly (NaN with NaN, inf with inf of the same sign, and a zero of either
    sign for a zero limit) and inf otherwise.
    """
    y = np.asarray(y)
    dtype = y.dtype
    x = np.asarray(x, dtype=dtype)
    x, y = np.broadcast_arrays(x, y)
    out = np.empty(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        v, first = _pair(name, x[i], prec)
        yi = float(y[i])
        if not isinstance(v, mp.mpf) or not math.isfinite(yi):
            same = (math.isnan(v) and math.isnan(yi)) or v == yi
            out[i] = 0.0 if same else math.inf
            continue
        with mp.workprec(prec):
            scale = max(abs(v), abs(first))
            out[i] = float((mp.mpf(yi) - v) / ulp(scale, dtype))
    return out[()] if out.ndim == 0 else out


def minimum(variant, prec=DEFAULT_PREC):
    """(x_min, f(x_min)) of a GELU variant ('gelu', 'gelu_tanh', 'gelu_sigmoid')."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    grad = _FORMULAS[variant + "_grad"]
    with mp.workprec(prec):
        xm = mp.findroot(lambda t: grad(t)[0], mp.mpf(-0.75))
        return +xm, +_FORMULAS[variant](xm)[0]


def max_abs_difference(a, b, lo=-8.0, hi=8.0, prec=DEFAULT_PREC):
    """max |a(x) - b(x)| over [lo, hi] and where it occurs, for two variants.

    Located on a grid then refined with a local maximiser; used to check the
    published bounds |gelu_tanh - gelu| <= 4.74e-4, |gelu_sigmoid - gelu| <= 2.04e-2.
    """
    fa, fb = _FORMULAS[a], _FORMULAS[b]
    with mp.workprec(prec):
        diff = lambda t: abs(fa(t)[0] - fb(t)[0])  # noqa: E731
        grid = [mp.mpf(lo) + (mp.mpf(hi) - lo) * k / 4000 for k in range(4001)]
        best = max(grid, key=diff)
        step = (mp.mpf(hi) - lo) / 4000
        left, right = best - step, best + step
        for _ in range(200):  # golden-section search on the bracketing cell
            m1 = left + (right - left) * mp.mpf("0.382")
            m2 = left + (right - left) * mp.mpf("0.618")
            if diff(m1) < diff(m2):
                left = m1
            else:
                right = m2
        xbest = (left + right) / 2
        return +diff(xbest), +xbest
