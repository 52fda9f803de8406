"""Hypothesis strategies for the inputs where GELU kernels go wrong.

A plain ``floats()`` strategy spends most examples on huge magnitudes, where
every kernel is trivially x or 0.  These mix in the regions that matter:
the minimum, the junctions between a kernel's regions, the tails down to
underflow, and tiny arguments.  Only float32 and float64 are drawn (float16
and byte-swapped dtypes follow NumPy's casting: README, 'Types').
"""

import numpy as np
from hypothesis import strategies as st

from gelu_numba.core.coefficients import A_HI, A_LO, B_LO

from _kernels import MINIMUM

JUNCTIONS = (B_LO, A_LO, A_HI, -A_HI, 0.0)


def width(dtype):
    return 32 if dtype is np.float32 else 64


def exact(v, dtype):
    """v as a Python float representable in dtype (hypothesis needs that)."""
    return float(dtype(v))


def floats(dtype, lo=None, hi=None):
    """Finite floats of `dtype` in [lo, hi], subnormals included."""
    return st.floats(
        None if lo is None else exact(lo, dtype),
        None if hi is None else exact(hi, dtype),
        width=width(dtype),
        allow_nan=False,
        allow_infinity=False,
    ).map(dtype)


def near(x0, dtype, max_offset=1e-2):
    """x0 plus a signed offset spread over many orders of magnitude."""
    exponent = st.floats(-17.0 if dtype is np.float64 else -8.0, np.log10(max_offset))
    sign = st.sampled_from([-1.0, 1.0])
    return st.builds(lambda e, s: dtype(x0 + s * 10.0**e), exponent, sign)


def tail_limit(dtype):
    """|x| beyond which every kernel has saturated."""
    return 40.0 if dtype is np.float64 else 16.0


def interesting(dtype):
    """Finite floats, weighted towards where kernels break."""
    far = tail_limit(dtype)
    return st.one_of(
        floats(dtype),
        floats(dtype, -far, far),
        floats(dtype, -3.0, 3.0),
        st.sampled_from([v for v, _ in MINIMUM.values()]).flatmap(lambda m: near(m, dtype)),
        st.sampled_from(JUNCTIONS).flatmap(lambda j: near(j, dtype)),
        floats(dtype, -1e-3, 1e-3),
    )


def above_minimum(variant, dtype, hi=8.0):
    """Floats of dtype in [x_min, hi], concentrated near x_min and zero."""
    xm = first_above(MINIMUM[variant][0], dtype)
    return st.one_of(
        floats(dtype, xm, hi),
        near(float(xm), dtype, 0.05).filter(lambda v: v >= xm),
        floats(dtype, xm, 0.0),
        st.sampled_from(JUNCTIONS[1:]).flatmap(lambda j: near(j, dtype, 1e-3)).filter(lambda v: v >= xm),
    )


def first_above(x, dtype):
    """The smallest float of dtype that is >= the real number x (a float64)."""
    v = dtype(x)
    if float(v) < x:
        v = np.nextafter(v, dtype(np.inf))
    return v


def arrays_of(elements, max_size=32):
    """1-d arrays of the given element strategy (one ufunc call per example)."""
    return st.lists(elements, min_size=1, max_size=max_size).map(np.array)
