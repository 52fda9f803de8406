"""The float32 exact GELU in float32 lanes (vector32._exact32, tables_exact32).

Its contract is measured exhaustively by ``gelu-numba accuracy --exhaustive``
(all 2^32 inputs: 1.348 ulp worst, no monotonicity violation above the
minimum); these tests guard what that sweep rests on, quickly:

- every table entry: the Gal property of each centre, the special pieces,
  and the index each piece is looked up by;
- a dense sample of every piece, its boundaries and the tail, against the
  float64 kernel, within the documented worst error plus a small margin;
- every adjacent pair of floats over [x*, x* + 0.5], and a few thousand on
  either side of each piece boundary above x*, monotone.

Each check is also pointed at the same algorithm with planted table bugs
(an off-by-one index, two pieces' entries swapped, one table rotated): it
must fail on each.
"""

import math
import re
import types

import mpmath as mp
import numpy as np
import pytest
from llvmlite import ir
from numba import njit, types as nbtypes
from numba.extending import intrinsic

import gelu_numba as gn
from gelu_numba.core import tables_exact32 as E
from gelu_numba.core import vector32
from gelu_numba.core.simd import SCALAR, Lanes32
from gelu_numba.tools.accuracy import _ulp32

#: The exhaustive sweeps' worst errors (docs/accuracy.md), and the margin a
#: sample may not exceed them by: f, f' and dy f' (dy ~ N(0, 1)), f' and
#: dy f' in ulps of max(|f'|, Phi(x)) (times |dy|).
WORST_ULP = 1.348
WORST_GRAD_ULP = 1.417
WORST_BACKWARD_ULP = 1.746
BOUND = WORST_ULP + 0.01
X_STAR = np.float32(E.X_STAR)


def _f32(v):
    return float(np.float32(v))


def _pieces(kind):
    """{index & 31: (lo, hi)} of the pieces of `kind` ("middle", "tail",
    "grad middle", "grad tail"), from the generated file's comments."""
    out = {}
    pattern = re.compile(r"^#   " + kind + r" +(\d+): \w in \[([^,]+), ([^\]]+)\]")
    for line in open(E.__file__).read().splitlines():
        m = pattern.match(line)
        if m:
            out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return out


MIDDLE = _pieces("middle")
TAIL = _pieces("tail")
GRAD_MIDDLE = _pieces("grad middle")
GRAD_TAIL = _pieces("grad tail")


def test_tables_shape():
    assert len(MIDDLE) == 20 and len(TAIL) == 9 and len(GRAD_MIDDLE) == 23 and len(GRAD_TAIL) == 9
    # one set of tables a kernel: the regions' entries do not overlap
    assert not set(MIDDLE) & set(TAIL) and not set(GRAD_MIDDLE) & set(GRAD_TAIL)
    assert len(E.TABLES) == 9 and len(E.GRAD_TABLES) == 10
    assert all(len(t) == 32 for t in E.TABLES + E.GRAD_TABLES)
    for table in E.TABLES + E.GRAD_TABLES + (E.EXP_P, E.LN2X2, E.X_STAR_PARTS):
        for v in table:
            assert _f32(v) == v, f"{v!r} is not a float32"


def test_every_piece_is_looked_up_by_its_own_index():
    """The index of each piece's ends (fl(x + 1) in the middle, t in the
    tail) is the piece's row: an off-by-one shift or a rotated table puts
    some piece's x under another piece's row."""
    for pieces in (MIDDLE, GRAD_MIDDLE):
        for i, (lo, hi) in pieces.items():
            for x in np.linspace(lo, hi, 257).astype(np.float32)[1:-1]:
                y = np.float32(x) + np.float32(1)
                assert (int(np.float32(y).view(np.uint32)) >> 21) & 31 == i, (i, x)
    for pieces in (TAIL, GRAD_TAIL):
        for i, (lo, hi) in pieces.items():
            for t in np.linspace(lo, hi, 257).astype(np.float32)[1:-1]:
                assert ((int(np.float32(t).view(np.uint32)) >> 22) + E.TAIL_OFFSET) & 31 == i, (i, t)


def _assert_sterbenz(c, lo, hi):
    """x - c is exact for every x in [lo, hi] (Sterbenz: c/2 <= x <= 2c)."""
    a, b = sorted((abs(lo), abs(hi)))
    assert (c < 0) == (lo < 0) and abs(c) / 2 <= a and b <= 2 * abs(c), (c, lo, hi)


def test_centres_are_gal_points():
    """f(XC) (M(TC) in the tail) lies within 2^-12 ulp of its float32 C0, so
    the constant term adds no rounding error; the pieces by |x| < 0.25 are
    x/2 + x q(x), the last one x + d q(d); d = x - XC is exact (XC within a
    factor 2 of every x of its piece, or a multiple of its ulp below it)."""
    mp.mp.prec = 80
    xc, c0, h = E.TABLES[0], E.TABLES[1], E.TABLES[2]
    for i, (lo, hi) in MIDDLE.items():
        if lo >= -0.2500001 and hi <= 0.2500001:
            assert (xc[i], c0[i], h[i]) == (0.0, 0.0, 0.5) and math.copysign(1, c0[i]) < 0
            continue
        if h[i] == 1.0:
            assert c0[i] == 0.0 and lo > 4 and 0 < xc[i] < lo and xc[i] == int(xc[i])
            continue
        assert h[i] == 0.0
        _assert_sterbenz(xc[i], lo, hi)
        exact = mp.mpf(xc[i]) * mp.ncdf(xc[i])
        assert abs(exact - c0[i]) <= mp.mpf(2) ** -12 * _ulp32(c0[i]), (i, xc[i])
    tc, m0 = E.TABLES[0], E.TABLES[1]
    for i, (lo, hi) in TAIL.items():
        _assert_sterbenz(tc[i], lo, hi)
        t = mp.mpf(tc[i])
        exact = t * mp.erfc(t / mp.sqrt(2)) * mp.exp(t * t / 2) / 2
        assert abs(exact + m0[i]) <= mp.mpf(2) ** -12 * _ulp32(m0[i]), (i, tc[i])  # the table holds -C0
    # the two pieces by the minimum share one centre, next to it
    by_min = [i for i, (lo, hi) in MIDDLE.items() if lo < -0.69 and hi > -0.8]
    assert len(by_min) == 2 and xc[by_min[0]] == xc[by_min[1]] and abs(xc[by_min[0]] - E.X_STAR) < 1e-3


def test_grad_centres():
    """f''s centres as f's: Gal points (f'(XC), G(TC) within 2^-12 ulp of
    C0), f'(0) = 1/2, the last piece 1 + d q(d), and the pieces by x*
    centred on it in two float32 parts (XH + XL within 2^-48 of x*)."""
    mp.mp.prec = 80
    xc, a, c0 = E.GRAD_TABLES[:3]
    x_star = mp.findroot(lambda x: mp.ncdf(x) + x * mp.npdf(x), -0.75)
    xh, xl = E.X_STAR_PARTS
    assert abs(mp.mpf(xh) + mp.mpf(xl) - x_star) < mp.mpf(2) ** -48
    for i, (lo, hi) in GRAD_MIDDLE.items():
        if hi <= -0.6874:
            assert (xc[i], a[i], c0[i]) == (xh, -xl, 0.0), i
            _assert_sterbenz(xc[i], lo, hi)
        elif lo >= -0.2500001 and hi <= 0.2500001:
            assert (xc[i], a[i], c0[i]) == (0.0, 0.0, 0.5)
        elif c0[i] == 1.0:
            assert a[i] == 0.0 and lo > 4.9 and 0 < xc[i] < lo and xc[i] == int(xc[i])
        else:
            assert a[i] == 0.0
            _assert_sterbenz(xc[i], lo, hi)
            x = mp.mpf(xc[i])
            exact = mp.ncdf(x) + x * mp.npdf(x)
            assert abs(exact - c0[i]) <= mp.mpf(2) ** -12 * _ulp32(c0[i]), (i, xc[i])
    tc, m0 = E.GRAD_TABLES[:2]
    for i, (lo, hi) in GRAD_TAIL.items():
        _assert_sterbenz(tc[i], lo, hi)
        t = mp.mpf(tc[i])
        exact = t / mp.sqrt(2 * mp.pi) - mp.erfc(t / mp.sqrt(2)) * mp.exp(t * t / 2) / 2
        assert abs(exact + m0[i]) <= mp.mpf(2) ** -12 * _ulp32(m0[i]), (i, tc[i])  # the table holds -C0


# -- the algorithm with other tables: the scalar emission, element by element ------


def _compile(tables, grad=False):
    @intrinsic
    def one(typingctx, x):
        def codegen(context, builder, sig, args):
            if grad:
                return vector32._exact32_grad(Lanes32(builder, 1, SCALAR), args[0], None, tables)
            return vector32._exact32(Lanes32(builder, 1, SCALAR), args[0], tables)

        return nbtypes.float32(nbtypes.float32), codegen

    @njit
    def run(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = one(x[i])
        return out

    return run


def _planted(**changes):
    t = types.SimpleNamespace(**{k: getattr(E, k) for k in dir(E) if k.isupper()})
    for k, v in changes.items():
        setattr(t, k, v)
    return t


def _rotate(table, by=1):
    return tuple(table[by:] + table[:by])


def _swap(table, i, j):
    t = list(table)
    t[i], t[j] = t[j], t[i]
    return tuple(t)


def _with(tables, k, table):
    return tables[:k] + (table,) + tables[k + 1:]


GRAD_MUTANTS = {
    "off-by-one index": _planted(GRAD_TABLES=tuple(_rotate(t) for t in E.GRAD_TABLES)),
    "swapped middle entry": _planted(GRAD_TABLES=_with(E.GRAD_TABLES, 4, _swap(E.GRAD_TABLES[4], 29, 30))),
    "swapped tail C0": _planted(GRAD_TABLES=_with(E.GRAD_TABLES, 1, _swap(E.GRAD_TABLES[1], 8, 9))),
    "x* in one part": _planted(X_STAR_PARTS=(E.X_STAR_PARTS[0], 0.0),
                               GRAD_TABLES=_with(E.GRAD_TABLES, 1, tuple(0.0 if v == -E.X_STAR_PARTS[1] else v
                                                                         for v in E.GRAD_TABLES[1]))),
}

MUTANTS = {
    # the index off by one: every table rotated
    "off-by-one index": _planted(TABLES=tuple(_rotate(t) for t in E.TABLES)),
    # two neighbouring pieces' q1 swapped (in the middle), two tail pieces' second coefficient
    "swapped middle entry": _planted(TABLES=_with(E.TABLES, 4, _swap(E.TABLES[4], 29, 30))),
    "swapped tail entry": _planted(TABLES=_with(E.TABLES, 3, _swap(E.TABLES[3], 8, 9))),
    # one table rotated (C0)
    "rotated C0": _planted(TABLES=_with(E.TABLES, 1, _rotate(E.TABLES[1], 31))),
}


def _sample(middle=MIDDLE, tail=TAIL, saturate=E.X_SATURATE):
    """Every piece densely, each piece's ends and the tail's pieces' ends
    +-64 ulps, the subnormal results, the saturation point."""
    rng = np.random.default_rng(27)
    parts = []
    for lo, hi in list(middle.values()) + [(-h, -l) for l, h in tail.values()]:
        parts.append(rng.uniform(lo, hi, 4000).astype(np.float32))
        for end in (lo, hi):
            e = np.float32(end)
            parts.append(e + np.arange(-64, 65, dtype=np.float32) * np.spacing(e))
    parts.append(-rng.uniform(12.5, 15.5, 4000).astype(np.float32))  # subnormal results
    s = np.float32(saturate)
    parts.append(s + np.arange(-64, 65, dtype=np.float32) * np.spacing(s))
    return np.unique(np.concatenate(parts))


def _grad_errors(x, y, dy=None):
    """|y - dy f'(x)| in ulps of |dy| max(|f'(x)|, Phi(x)) (dy = 1 if None)."""
    x64 = x.astype(np.float64)
    ref = gn.gelu_grad(x64)
    phi = np.where(x64 == 0, 0.5, gn.gelu(x64) / np.where(x64 == 0, 1, x64))
    scale = np.maximum(np.abs(ref), phi)
    if dy is not None:
        ref, scale = ref * dy, scale * np.abs(dy)
    return np.abs(y.astype(np.float64) - ref) / _ulp32(scale)


def _check_grad_accuracy(kernel):
    x = _sample(GRAD_MIDDLE, GRAD_TAIL, E.GRAD_X_SATURATE)
    with np.errstate(under="ignore"):
        err = _grad_errors(x, kernel(x))
    i = int(np.argmax(err))
    assert err[i] <= WORST_GRAD_ULP + 0.01, f"{err[i]:.3f} ulp at x = {x[i]!r}"


def _check_accuracy(kernel):
    x = _sample()
    with np.errstate(under="ignore"):
        y = kernel(x)
        ref = gn.gelu(x.astype(np.float64))
    err = np.abs(y.astype(np.float64) - ref) / _ulp32(ref)
    i = int(np.argmax(err))
    assert err[i] <= BOUND, f"{err[i]:.3f} ulp at x = {x[i]!r}"


def _monotone_sample():
    """Every float32 in [x*, x* + 0.5], and 4096 on either side of each
    piece boundary above x*."""
    lo = int(X_STAR.view(np.int32))  # negative floats: larger bits, larger magnitude
    hi = int(np.float32(X_STAR + np.float32(0.5)).view(np.int32))
    parts = [np.arange(lo, hi - 1, -1, dtype=np.int32).view(np.float32)]
    ends = sorted({e for lo_, hi_ in MIDDLE.values() for e in (lo_, hi_) if e > X_STAR}) + [E.X_SATURATE]
    for end in ends:
        e = np.float32(end)
        parts.append(e + np.arange(-4096, 4097, dtype=np.float32) * np.spacing(e))
    x = np.unique(np.concatenate(parts))
    return x[x >= X_STAR]


def _check_monotone(kernel):
    x = _monotone_sample()
    y = kernel(x)
    down = np.nonzero(y[1:] < y[:-1])[0]
    assert down.size == 0, f"{down.size} decreasing steps, the first at x = {x[down[0]]!r}"


def test_dense_sample_within_documented_bound():
    _check_accuracy(gn.gelu)


def test_monotone_above_the_minimum():
    _check_monotone(gn.gelu)


def test_scalar_emission_with_the_real_tables_passes_the_same_checks():
    run = _compile(E)
    _check_accuracy(run)
    x = _sample()
    assert np.array_equal(run(x).view(np.uint32), gn.gelu(x).view(np.uint32))


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_checks_catch_planted_table_bugs(mutant):
    assert _failures(_compile(MUTANTS[mutant]), (_check_accuracy, _check_monotone)), \
        f"neither check caught the {mutant}"


def _failures(kernel, checks):
    """How many of `checks` fail on `kernel`."""
    failures = 0
    for check in checks:
        try:
            check(kernel)
        except AssertionError:
            failures += 1
    return failures


def test_grad_dense_sample_within_documented_bound():
    _check_grad_accuracy(gn.gelu_grad)


def test_backward_dense_sample_within_documented_bound():
    x = _sample(GRAD_MIDDLE, GRAD_TAIL, E.GRAD_X_SATURATE)
    dy = np.random.default_rng(5).standard_normal(x.size).astype(np.float32)
    with np.errstate(under="ignore"):
        err = _grad_errors(x, gn.gelu_backward(dy, x), dy.astype(np.float64))
    i = int(np.argmax(err))
    assert err[i] <= WORST_BACKWARD_ULP + 0.01, f"{err[i]:.3f} ulp at x = {x[i]!r}, dy = {dy[i]!r}"


def test_backward_of_one_is_grad_bit_for_bit():
    x = _sample(GRAD_MIDDLE, GRAD_TAIL, E.GRAD_X_SATURATE)
    with np.errstate(under="ignore"):
        assert np.array_equal(gn.gelu_backward(np.float32(1), x).view(np.uint32), gn.gelu_grad(x).view(np.uint32))


def test_backward_huge_and_infinite_dy():
    """dy C0 is formed after dy is scaled by 2^-64 where |dy| > 2^64, so a
    huge dy gives the product's value, not inf; an infinite dy gives +-inf
    where f' is not zero."""
    x = np.array([-1.0, -3.0, -10.0, -14.0, -0.5, 0.0, 2.0], np.float32)
    dy = np.float32(3e38)
    with np.errstate(under="ignore"):
        y = gn.gelu_backward(dy, x)
    ref = gn.gelu_grad(x.astype(np.float64)) * float(dy)
    assert np.all(np.isfinite(y))
    assert np.all(_grad_errors(x, y, np.float64(dy)) <= 2)
    with np.errstate(all="raise"):  # inf times a nonzero f' raises nothing
        inf = gn.gelu_backward(np.float32(np.inf), x)
    assert np.array_equal(inf, np.where(ref > 0, np.inf, -np.inf).astype(np.float32))


def _check_near_zero(kernel):
    """Around x*, f' = (x - XH - XL) q keeps its relative accuracy: every
    float32 within about 2^-10 of x*, in ulps of f' itself."""
    xs = np.float32(E.X_STAR)
    x = xs + np.arange(-20000, 20001, dtype=np.float32) * np.spacing(xs)
    ref = gn.gelu_grad(x.astype(np.float64))
    own = np.abs(kernel(x).astype(np.float64) - ref) / _ulp32(np.abs(ref))
    assert own.max() <= 1.5, f"{own.max():.2f} ulp of f' at x = {x[int(np.argmax(own))]!r}"


def test_near_the_zero_of_the_derivative():
    _check_near_zero(gn.gelu_grad)


def test_grad_scalar_emission_matches():
    run = _compile(E, grad=True)
    x = _sample(GRAD_MIDDLE, GRAD_TAIL, E.GRAD_X_SATURATE)
    with np.errstate(under="ignore"):
        assert np.array_equal(run(x).view(np.uint32), gn.gelu_grad(x).view(np.uint32))


@pytest.mark.parametrize("mutant", list(GRAD_MUTANTS))
def test_grad_checks_catch_planted_table_bugs(mutant):
    assert _failures(_compile(GRAD_MUTANTS[mutant], grad=True), (_check_grad_accuracy, _check_near_zero)), \
        f"no check caught the {mutant}"


def test_the_backward_sweep_measures_dy_times_f_prime():
    """exhaustive_float32 on a backward kernel: with dy = 1 it finds
    gelu_grad's worst case (the same bits), with random dy a bound under 2
    ulp, and it fails a backward that is not dy f' (the tanh form's f')."""
    from gelu_numba.tools.accuracy import exhaustive_float32

    interval = (-1.01, -1.0)
    ones = exhaustive_float32("gelu_backward", interval=interval, dy="ones")
    grad = exhaustive_float32("gelu_grad", interval=interval)
    assert (ones.max_ulp, ones.at) == (grad.max_ulp, grad.at)
    assert exhaustive_float32("gelu_backward", interval=interval, dy="random").max_ulp <= WORST_BACKWARD_ULP
    wrong = exhaustive_float32("gelu_backward", interval=interval, dy="random",
                               kernel=lambda dy, x: (dy * gn.gelu_tanh_grad(x)).astype(np.float32))
    assert wrong.max_ulp > 100
