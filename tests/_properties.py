"""The properties every GELU kernel must have, as reusable checks.

Each ``check_*`` takes the kernel(s) as arguments and either returns or
raises ``AssertionError`` (through hypothesis, with the shrunk falsifying
example).  test_properties.py runs them on the real kernels; test_mutants.py
runs them on deliberately broken ones and asserts that they fail, so no
property here is a test that cannot fail.

Bounds are derived, not tuned: kernel error <= 2 ulp (the contract), M2 and
M3 the maxima of |f''| and |f'''| over the real line (computed from the mpmath
reference in ``derivative_bounds``), and the step sizes.
"""

import functools
import math
from fractions import Fraction

import mpmath as mp
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gelu_numba.tools import reference

from _kernels import MINIMUM
from _strategies import JUNCTIONS, above_minimum, arrays_of, first_above, floats, interesting, near

CONTRACT_ULP = 2.0


def ulp(v, dtype):
    """ulp of |v| in dtype (elementwise, float64 result)."""
    info = np.finfo(dtype)
    v = np.abs(np.asarray(v, dtype=np.float64))
    _, e = np.frexp(np.maximum(v, float(info.tiny)))
    return np.ldexp(1.0, e - 1 - (info.nmant))


@functools.cache
def derivative_bounds(variant):
    """(M2, M3): max |f''| and max |f'''| on [-12, 12], plus 2% margin.

    Outside that interval both decay like exp(-x^2/2) (or faster), and the
    grid spacing 0.005 locates the smooth maxima to far better than 2%.
    """
    grad = reference._FORMULAS[variant + "_grad"]
    with mp.workprec(80):
        g = lambda t: grad(t)[0]  # noqa: E731
        m2 = m3 = mp.mpf(0)
        for i in range(-2400, 2401):
            t = mp.mpf(i) / 200
            m2 = max(m2, abs(mp.diff(g, t, 1)))
            m3 = max(m3, abs(mp.diff(g, t, 2)))
    return 1.02 * float(m2), 1.02 * float(m3)


@functools.cache
def fourth_derivative_bound(variant):
    """max |f^(4)| on [-12, 12] plus 2% (for the grad2 smoothness check)."""
    grad = reference._FORMULAS[variant + "_grad"]
    with mp.workprec(80):
        g = lambda t: grad(t)[0]  # noqa: E731
        m4 = mp.mpf(0)
        for i in range(-1200, 1201):
            t = mp.mpf(i) / 100
            m4 = max(m4, abs(mp.diff(g, t, 3)))
    return 1.02 * float(m4)


def _run(test):
    """Run a hypothesis test, reporting only the first distinct failure."""
    settings(report_multiple_bugs=False)(test)()


def _call(f, *args):
    with np.errstate(under="ignore"):
        return f(*args)


# --------------------------------------------------------------------------
# Accuracy.


def check_ulp_bound(name, f, dtype):
    """Within CONTRACT_ULP of mpmath at every input hypothesis can find."""

    @given(arrays_of(interesting(dtype)))
    def run(x):
        y = _call(f, x)
        assert y.dtype == dtype
        err = np.abs(reference.ulp_error(name, x, y, prec=120))
        i = int(np.argmax(err))
        assert err[i] <= CONTRACT_ULP, f"{name}({x[i]!r}) = {y[i]!r}: {err[i]:.3g} ulp"

    _run(run)


def check_special_values(variant, f, g, bw, dtype):
    """NaN, +-inf, +-0 and no floating-point warnings."""
    t = dtype
    with np.errstate(all="raise", under="ignore"):
        assert np.isnan(f(t(np.nan))) and np.isnan(g(t(np.nan))) and np.isnan(bw(t(1), t(np.nan)))
        assert f(t(np.inf)) == np.inf
        y = f(t(-np.inf))
        assert y == 0 and np.signbit(y), f"{variant}(-inf) = {y!r}, want -0.0"
        assert g(t(np.inf)) == 1 and g(t(-np.inf)) == 0
        z = f(t(-0.0))
        assert z == 0 and np.signbit(z), f"{variant}(-0.0) = {z!r}"
        z = f(t(0.0))
        assert z == 0 and not np.signbit(z), f"{variant}(+0.0) = {z!r}"
        assert g(t(0.0)) == t(0.5) and g(t(-0.0)) == t(0.5)
        info = np.finfo(dtype)
        edge = np.array([info.max, -info.max, info.tiny, -info.tiny,
                         info.smallest_subnormal, -info.smallest_subnormal], dtype=dtype)
        assert np.all(np.isfinite(f(edge))) and np.all(np.isfinite(g(edge)))
        assert f(t(info.max)) == t(info.max)


# --------------------------------------------------------------------------
# Smoothness.


def _check_central_difference(f, g, dtype, bound, f_error, g_scale, what):
    """g agrees with the central difference of f: with x and x +- h exact
    (x a multiple of h = 2^-k), |(f(x+h) - f(x-h))/2h - f'(x)| <= bound h^2/6
    + (e(x+h) + e(x-h))/2h, bound the maximum of |f'''|, e the kernel error of
    f (f_error(f(x+h), f(x-h)) ulps, times the contract), and g(x) itself
    within the contract of g_scale."""
    h = 2.0**-14 if dtype is np.float64 else 2.0**-6

    @given(floats(dtype, -10.0, 10.0))
    def run(x):
        x = dtype(round(float(x) / h) * h)
        xs = np.array([x - dtype(h), x, x + dtype(h)], dtype=dtype)
        fm, _, fp = _call(f, xs).astype(np.float64)
        fd = (fp - fm) / (2 * h)
        gx = float(_call(g, x))
        tol = (bound * h * h / 6 + CONTRACT_ULP * f_error(fp, fm) / (2 * h)
               + CONTRACT_ULP * ulp(g_scale, dtype))
        assert abs(gx - fd) <= tol, f"x={x!r}: {what}={gx!r}, finite difference {fd!r}, tol {tol:.3g}"

    _run(run)


def check_smoothness(variant, f, g, dtype):
    """g = f' agrees with the central difference of f (M3 = max |f'''|; f's
    error 2 ulp of f, g's 2 ulp of max(|f'|, first term) <= 1.2)."""
    _, m3 = derivative_bounds(variant)
    _check_central_difference(f, g, dtype, m3, lambda fp, fm: ulp(fp, dtype) + ulp(fm, dtype), 1.2, "f'")


def check_lipschitz(variant, g, dtype):
    """|g(a) - g(b)| <= M2 |a - b| + both kernel errors.

    Pairs are drawn anywhere, and also straddling the kernels' region
    boundaries, where a badly joined piecewise implementation would jump.
    """
    m2, _ = derivative_bounds(variant)
    gap = st.floats(-12.0, 0.0).map(lambda e: 10.0**e)
    anywhere = st.tuples(interesting(dtype).filter(lambda v: abs(v) < 50), gap).map(
        lambda p: (p[0], dtype(p[0] + p[1]))
    )
    straddling = st.tuples(st.sampled_from(JUNCTIONS), gap, gap).map(
        lambda p: (dtype(p[0] - p[1]), dtype(p[0] + p[2]))
    )

    @given(st.one_of(anywhere, straddling))
    def run(pair):
        a, b = pair
        assume(np.isfinite(b) and b != a)
        ga, gb = (float(v) for v in _call(g, np.array([a, b], dtype=dtype)))
        tol = m2 * abs(float(b) - float(a)) + 2 * CONTRACT_ULP * ulp(1.2, dtype)
        assert abs(ga - gb) <= tol, f"g({a!r}) = {ga!r}, g({b!r}) = {gb!r}: jump > {tol:.3g}"

    _run(run)


def check_backward(variant, g, bw, dtype):
    """backward(dy, x) is dy * f'(x) up to one rounding.

    f' here is the true derivative, so the kernel may also carry the grad's
    own error: |backward - dy f'| <= ulp(dy f') + |dy| * 2 ulp(max(|f'|,
    first term)); one ulp, i.e. one of the two floats around dy f' (faithful
    rounding), because a product landing among the subnormals may be rounded
    twice.
    """
    name = variant + "_grad"
    dys = st.one_of(floats(dtype, -1e6, 1e6), st.sampled_from([1.0, -1.0, 0.5, 3.0]).map(dtype))

    @given(dys, interesting(dtype))
    def run(dy, x):
        got = _call(bw, dy, x)
        assert got.dtype == dtype
        with mp.workprec(120):
            true_grad, first = (reference._pair(name, x, 120))
            if not isinstance(true_grad, mp.mpf):
                return
            exact = mp.mpf(float(dy)) * true_grad
            assume(abs(exact) <= float(np.finfo(dtype).max) / 2)
            allowance = abs(float(dy)) * CONTRACT_ULP * float(reference.ulp(max(abs(true_grad), abs(first)), dtype))
            rounding = reference.ulp(exact, dtype)
            err = abs(mp.mpf(float(got)) - exact)
            assert err <= rounding + allowance, (
                f"backward({dy!r}, {x!r}) = {got!r}, dy * f' = {float(exact)!r}"
            )

    _run(run)


# --------------------------------------------------------------------------
# Shape of the function.


def step_up(a, k, dtype):
    """The float k steps above a (through -0.0 to +0.0 if need be)."""
    ubits = np.uint32 if dtype is np.float32 else np.uint64
    sign = 1 << (np.dtype(dtype).itemsize * 8 - 1)
    u = int(np.array([a], dtype=dtype).view(ubits)[0])
    if u >= sign:  # negative: the magnitude shrinks as the bits go down
        u = u - k if u - k >= sign else 0
    else:
        u = u + k
    return np.array([u], dtype=ubits).view(dtype)[0]


def check_monotone(variant, f, dtype):
    """For x_min <= a <= b, f(a) <= f(b) as computed, adjacent floats too."""
    steps = st.one_of(st.just(1), st.integers(1, 64), st.integers(1, 10**6))

    @given(above_minimum(variant, dtype), steps, above_minimum(variant, dtype))
    def run(a, k, c):
        b = step_up(a, k, dtype)
        lo, hi = min(a, c), max(a, c)
        ya, yb, ylo, yhi = _call(f, np.array([a, b, lo, hi], dtype=dtype))
        assert ya <= yb, f"{variant}({a!r}) = {ya!r} > {variant}({b!r}) = {yb!r}"
        assert ylo <= yhi, f"{variant}({lo!r}) = {ylo!r} > {variant}({hi!r}) = {yhi!r}"

    _run(run)


def consecutive_floats(x, n, dtype):
    """The n consecutive floats of dtype centred on x (x not zero), ascending."""
    itype = np.int32 if dtype == np.float32 else np.int64
    bits = np.asarray(x, dtype=dtype).view(itype)
    steps = np.arange(-(n // 2), n - n // 2, dtype=itype)
    return np.sort((bits + steps if x > 0 else bits - steps).view(dtype))


def _minimum_windows(variant):
    """Offsets from x_min: every 0.02 from -0.3 to +0.5, and each seam of
    the kernels' regions (B_LO and A_LO) that falls there, where one formula
    hands over to another."""
    from gelu_numba.core import coefficients as C

    xm = MINIMUM[variant][0]
    grid = [round(k * 0.02, 2) for k in range(-15, 26) if k]
    return grid + [seam - xm for seam in (C.B_LO, C.A_LO) if -0.3 <= seam - xm <= 0.5]


def check_monotone_near_minimum(variant, f, dtype, offsets=None, n=1 << 16):
    """In windows of n consecutive floats at x_min + offset, f never steps
    the wrong way (up below the minimum, down above it).  There f changes by
    a fraction of an ulp per step, so rounding noise of a few hundredths of
    an ulp shows as flip-flops between adjacent results, which sampled
    pairs seldom hit.  By default the windows reach from x_min - 0.3 to
    x_min + 0.5 and sit on every seam (_minimum_windows)."""
    xm = MINIMUM[variant][0]
    for offset in (_minimum_windows(variant) if offsets is None else offsets):
        x = consecutive_floats(xm + offset, n, dtype)
        y = _call(f, x)
        d = np.diff(y)
        wrong = (d < 0) & (x[:-1] >= xm) if offset > 0 else (d > 0) & (x[1:] <= xm)
        i = np.flatnonzero(wrong)
        assert i.size == 0, (f"{variant}: {i.size} wrong steps near x_min {offset:+}, e.g. "
                             f"f({x[i[0]]!r}) = {y[i[0]]!r}, f({x[i[0] + 1]!r}) = {y[i[0] + 1]!r}")


def check_difference_bound(f_approx, f_exact, bound, dtype):
    """|approximation - exact GELU| <= bound everywhere."""

    @given(arrays_of(st.one_of(interesting(dtype), near(2.7, dtype, 0.1), near(-2.7, dtype, 0.1),
                               near(2.27, dtype, 0.1), near(-2.27, dtype, 0.1))))
    def run(x):
        d = np.abs(_call(f_approx, x).astype(np.float64) - _call(f_exact, x).astype(np.float64))
        i = int(np.argmax(d))
        assert d[i] <= bound, f"x={x[i]!r}: difference {d[i]:.6g} > {bound}"

    _run(run)


def check_odd_identity(variant, f, dtype):
    """f(x) - f(-x) = x, within the two kernel errors and one rounding."""

    @given(arrays_of(interesting(dtype)))
    def run(x):
        yp = _call(f, x).astype(np.float64)
        ym = _call(f, -x).astype(np.float64)
        for xi, a, b in zip(x, yp, ym):
            diff = Fraction(float(a)) - Fraction(float(b))
            tol = CONTRACT_ULP * (ulp(a, dtype) + ulp(b, dtype))
            assert abs(diff - Fraction(float(xi))) <= Fraction(float(tol)), (
                f"{variant}({xi!r}) - {variant}({-xi!r}) = {float(diff)!r}"
            )

    _run(run)


@functools.cache
def saturation_point(variant, dtype):
    """Smallest x where the variant's Phi(x) or sigmoid(w(x)) rounds to 1 in dtype."""
    p = np.finfo(dtype).nmant + 1
    half_ulp_below_one = mp.ldexp(1, -p - 1)
    formula = reference._FORMULAS[variant + "_grad"]
    with mp.workprec(200):
        lo, hi = mp.mpf(0), mp.mpf(64)
        for _ in range(90):  # bisection: 1 - P(t) decreases in t
            mid = (lo + hi) / 2
            if 1 - formula(mid)[1] > half_ulp_below_one:
                lo = mid
            else:
                hi = mid
        x = hi
    return first_above(float(x), dtype)


def check_saturation(variant, f, dtype):
    """f(x) == x exactly once Phi(x) (or sigmoid) rounds to 1."""
    x1 = saturation_point(variant, dtype)

    @given(st.one_of(floats(dtype, x1, None), near(float(x1), dtype, 1.0).filter(lambda v: v >= x1),
                     st.just(dtype(np.inf))))
    def run(x):
        y = _call(f, x)
        assert y == x, f"{variant}({x!r}) = {y!r}, want x (Phi rounds to 1 beyond {x1!r})"

    _run(run)


__all__ = [name for name in dir() if name.startswith("check_")] + [
    "derivative_bounds",
    "saturation_point",
    "ulp",
    "math",
]


# --------------------------------------------------------------------------
# Sign.


def negative_floats(dtype):
    """Every negative float of `dtype`, -0.0 and -inf included, drawn
    uniformly over the bit patterns (so about half are subnormal or tiny
    enough that f rounds to zero), with the subnormals drawn apart too."""
    bits = np.uint32 if dtype is np.float32 else np.uint64
    sign = 1 << (np.dtype(dtype).itemsize * 8 - 1)
    inf = int(np.array(np.inf, dtype=dtype).view(bits))
    smallest_normal = int(np.array(np.finfo(dtype).tiny, dtype=dtype).view(bits))
    as_float = lambda u: np.array(u | sign, dtype=bits).view(dtype)[()]  # noqa: E731
    return st.one_of(st.integers(0, inf), st.integers(0, smallest_normal)).map(as_float)


def check_negative_sign(variant, f, dtype):
    """f(x) has its sign bit set for every x < 0 (and -0.0): -0.0 where the
    result rounds to zero.  x Phi(x) is negative there, and so are both
    approximations."""

    @given(st.lists(negative_floats(dtype), min_size=1, max_size=64))
    def run(xs):
        x = np.array(xs, dtype=dtype)
        y = _call(f, x)
        bad = ~np.signbit(y)
        assert not bad.any(), f"{variant}({x[bad][0]!r}) = {y[bad][0]!r}: sign bit not set"

    _run(run)


# --------------------------------------------------------------------------
# Second derivatives.


def check_grad2_smoothness(variant, g, g2, dtype):
    """g2 agrees with the central difference of g = f' (M4 = max |f''''|;
    g's error 2 ulp of at most 1.2, g2's 2 ulp of its scale, at most 1)."""
    _check_central_difference(g, g2, dtype, fourth_derivative_bound(variant),
                              lambda gp, gm: 2 * ulp(1.2, dtype), 1.0, "f''")


def check_grad2_special_values(variant, g2, dtype):
    """f2(NaN) = NaN, f2(+-inf) = -0.0, f2 even, f2(0) = f2(-0.0) > 0,
    finite at the edges, no floating-point warning but underflow."""
    t = dtype
    with np.errstate(all="raise", under="ignore"):
        assert np.isnan(g2(t(np.nan)))
        for v in (np.inf, -np.inf):
            y = g2(t(v))
            assert y == 0 and np.signbit(y), f"{variant} second derivative at {v} = {y!r}, want -0.0"
        assert g2(t(0.0)) == g2(t(-0.0)) > 0
        x = np.linspace(-30, 30, 1001).astype(dtype)
        assert np.array_equal(g2(x), g2(-x)), "the second derivative is even"
        info = np.finfo(dtype)
        edge = np.array([info.max, -info.max, info.tiny, -info.tiny,
                         info.smallest_subnormal, -info.smallest_subnormal], dtype=dtype)
        assert np.all(np.isfinite(g2(edge)))
