"""The float32 tanh and sigmoid forms' f, f' and backward in float32 lanes (vector32._Sigma, tables_sigma32).

Their contract is measured exhaustively by ``gelu-numba accuracy
--exhaustive`` (all 2^32 inputs; docs/accuracy.md gives the worst errors,
no monotonicity violation above the minimum); these tests guard what that
sweep rests on, quickly:

- every table entry: the Gal property of each centre, the special pieces,
  and the index each piece is looked up by;
- a dense sample of every piece, its ends, both signs of the tail, the
  saturation points and the subnormal results, against the float64
  kernel, within the documented worst error plus a small margin;
- every adjacent pair of floats over [x*, x* + 0.5], and a few thousand on
  either side of each piece boundary above x* (X_MID on both sides, the
  saturation), monotone.

Each check is also pointed at the same algorithm with planted table bugs
(an off-by-one index, two pieces' entries swapped, one table rotated, the
tail's H column lost): one of them must fail on each.
"""

import math
import re
import types

import mpmath as mp
import numpy as np
import pytest
from numba import njit, types as nbtypes
from numba.extending import intrinsic

import gelu_numba as gn
from gelu_numba.core import tables_sigma32 as S
from gelu_numba.core import vector32
from gelu_numba.core.simd import SCALAR, Lanes32
from gelu_numba.tools.accuracy import _ulp32

FORMS = {"gelu_tanh": "TANH", "gelu_sigmoid": "SIGMOID"}
#: The exhaustive sweeps' worst errors (docs/accuracy.md), and the margin a
#: sample may not exceed them by.
WORST_ULP = {"gelu_tanh": 1.441, "gelu_sigmoid": 1.521}
#: f' in ulps of max(|f'|, sigma(W)), dy f' (dy ~ N(0, 1)) in ulps of |dy| times that
WORST_GRAD_ULP = {"gelu_tanh": 1.555, "gelu_sigmoid": 1.502}
#: f' within 2^-4 of x*, in ulps of f' itself (the near-zero column)
WORST_NEAR_ZERO = {"gelu_tanh": 1.553, "gelu_sigmoid": 1.207}
#: the float32-lane backward: the sigmoid form's (the tanh form's is in
#: float64 lanes: as fast, and its float32-lane version reached 1.94 ulp)
WORST_BACKWARD_ULP = {"gelu_sigmoid": 1.825}
MARGIN = 0.01


def _get(form, what, tables=S):
    return getattr(tables, f"{FORMS[form]}_{what}")


def _pieces(form, kind):
    """{index & 31: (lo, hi)} of `form`'s pieces of `kind` ("middle",
    "tail"), from the generated file's comments."""
    out, inside = {}, False
    pattern = re.compile(r"^#   " + kind + r" +(\d+): \w in \[([^,]+), ([^\]]+)\]")
    for line in open(S.__file__).read().splitlines():
        if line.startswith("# gelu"):
            inside = line.startswith((f"# {form}:", f"# {form} f'"))
        m = pattern.match(line)
        if inside and m:
            out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return out


def _f32(v):
    return float(np.float32(v))


def _w(form, t):
    t = mp.mpf(t)
    if form == "gelu_tanh":
        return 2 * mp.sqrt(2 / mp.pi) * (t + mp.mpf("0.044715") * t**3)
    return mp.mpf("1.702") * t


@pytest.mark.parametrize("form", FORMS)
def test_tables_shape(form):
    middle, tail = _pieces(form, "middle"), _pieces(form, "tail")
    assert len(middle) == 13 and len(tail) == {"gelu_tanh": 8, "gelu_sigmoid": 13}[form]
    assert not set(middle) & set(tail)  # one set of tables: the regions' entries do not overlap
    tables = _get(form, "TABLES")
    assert len(tables) == 9 and all(len(t) == 32 for t in tables)
    constants = [_get(form, "A2")] + ([_get(form, "B2")] if form == "gelu_tanh" else [])
    for table in tables + tuple(constants):
        for v in table:
            assert _f32(v) == v, f"{v!r} is not a float32"
    # 2W's constants in two parts, within 2^-48 of the decimal definitions
    mp.mp.prec = 100
    a = mp.mpf(_get(form, "A2")[0]) + mp.mpf(_get(form, "A2")[1])
    if form == "gelu_tanh":
        k = 4 * mp.sqrt(2 / mp.pi)
        b = mp.mpf(_get(form, "B2")[0]) + mp.mpf(_get(form, "B2")[1])
        assert abs(b / k - 1) < mp.mpf(2) ** -46 and abs(a / (k * mp.mpf("0.044715")) - 1) < mp.mpf(2) ** -46
    else:
        assert abs(a / mp.mpf("3.404") - 1) < mp.mpf(2) ** -46


@pytest.mark.parametrize("form", FORMS)
def test_every_piece_is_looked_up_by_its_own_index(form):
    """The index of each piece's ends (fl(x + 1) in the middle, t in the
    tail) is the piece's row: an off-by-one shift or a rotated table puts
    some piece's x under another piece's row."""
    for i, (lo, hi) in _pieces(form, "middle").items():
        for x in np.linspace(lo, hi, 257).astype(np.float32)[1:-1]:
            y = np.float32(x) + np.float32(1)
            assert (int(np.float32(y).view(np.uint32)) >> 21) & 31 == i, (i, x)
    for i, (lo, hi) in _pieces(form, "tail").items():
        for t in np.linspace(lo, hi, 257).astype(np.float32)[1:-1]:
            assert ((int(np.float32(t).view(np.uint32)) >> 22) + S.TAIL_OFFSET) & 31 == i, (i, t)
    # the tail's pieces reach the saturations, the middle's X_MID on both sides
    top = max(hi for lo, hi in _pieces(form, "tail").values())
    assert top >= max(_get(form, "T_MAX"), _get(form, "X_SATURATE"))
    ends = [e for lo, hi in _pieces(form, "middle").values() for e in (lo, hi)]
    assert min(ends) == -S.X_MID and max(ends) == S.X_MID


def _assert_sterbenz(c, lo, hi):
    """x - c is exact for every x in [lo, hi] (Sterbenz: c/2 <= x <= 2c)."""
    a, b = sorted((abs(lo), abs(hi)))
    assert (c < 0) == (lo < 0) and abs(c) / 2 <= a and b <= 2 * abs(c), (c, lo, hi)


@pytest.mark.parametrize("form", FORMS)
def test_centres_are_gal_points(form):
    """f(XC) (M(TC) in the tail) lies within 2^-12 ulp of its float32 C0, so
    the constant term adds no rounding error; the pieces by |x| < 0.25 are
    x/2 + x q(x); from T_SMALL up the tail's pieces are M = t - t exp(-W)
    (H = 1, no polynomial); d = x - XC is exact."""
    mp.mp.prec = 80
    tables = _get(form, "TABLES")
    xc, c0, h = tables[0], tables[1], tables[2]
    for i, (lo, hi) in _pieces(form, "middle").items():
        if lo >= -0.2500001 and hi <= 0.2500001:
            assert (xc[i], c0[i], h[i]) == (0.0, 0.0, 0.5) and math.copysign(1, c0[i]) < 0
            continue
        assert h[i] == 0.0
        _assert_sterbenz(xc[i], lo, hi)
        x = mp.mpf(xc[i])
        exact = x / (1 + mp.exp(-_w(form, x)))
        assert abs(exact - c0[i]) <= mp.mpf(2) ** -12 * _ulp32(c0[i]), (i, xc[i])
    for i, (lo, hi) in _pieces(form, "tail").items():
        if lo >= _get(form, "T_SMALL"):
            assert (h[i], c0[i]) == (-1.0, 0.0) and all(t[i] == 0 for t in tables[3:]), i
            continue
        assert h[i] == 0.0
        _assert_sterbenz(xc[i], lo, hi)
        t = mp.mpf(xc[i])
        exact = t / (1 + mp.exp(-_w(form, t)))
        assert abs(exact + c0[i]) <= mp.mpf(2) ** -12 * _ulp32(c0[i]), (i, xc[i])  # the table holds -C0
    # the two pieces by the minimum share one centre, next to it
    by_min = [i for i, (lo, hi) in _pieces(form, "middle").items() if lo < -0.69 and hi > -0.8]
    assert len(by_min) == 2 and xc[by_min[0]] == xc[by_min[1]]
    assert abs(xc[by_min[0]] - _get(form, "X_STAR")) < 1e-3
    # where M = t - t exp(-W) stands, exp(-W)^2 is below 2^-31
    assert mp.exp(-2 * _w(form, _get(form, "T_SMALL"))) < mp.mpf(2) ** -31


# -- the algorithm with other tables: the scalar emission, element by element ------


def _compile(form, tables):
    @intrinsic
    def one(typingctx, x):
        def codegen(context, builder, sig, args):
            return vector32._Sigma(Lanes32(builder, 1, SCALAR), form, args[0], tables).value_by_branch()

        return nbtypes.float32(nbtypes.float32), codegen

    @njit
    def run(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = one(x[i])
        return out

    return run


def _planted(form, change):
    t = types.SimpleNamespace(**{k: getattr(S, k) for k in dir(S) if k.isupper()})
    name = f"{FORMS[form]}_TABLES"
    setattr(t, name, change(getattr(S, name)))
    return t


def _rotate(table, by=1):
    return tuple(table[by:] + table[:by])


def _swap(table, i, j):
    t = list(table)
    t[i], t[j] = t[j], t[i]
    return tuple(t)


def _with(tables, k, table):
    return tables[:k] + (table,) + tables[k + 1:]


MUTANTS = {
    "off-by-one index": lambda T: tuple(_rotate(t) for t in T),
    "swapped middle entry": lambda T: _with(T, 4, _swap(T[4], 29, 30)),
    "swapped tail entry": lambda T: _with(T, 4, _swap(T[4], 1, 2)),
    "rotated C0": lambda T: _with(T, 1, _rotate(T[1], 31)),
    "no t exp(-W) term": lambda T: _with(T, 2, tuple(0.0 if v == -1.0 else v for v in T[2])),
}


def _sample(form):
    """Every piece densely, on both sides of 0 for the tail, each piece's
    ends +-64 ulps, the saturation points, the subnormal results."""
    rng = np.random.default_rng(29)
    parts = []
    spans = list(_pieces(form, "middle").values())
    for lo, hi in _pieces(form, "tail").values():
        spans += [(-hi, -lo), (lo, hi)]
    for lo, hi in spans:
        parts.append(rng.uniform(lo, hi, 3000).astype(np.float32))
        for end in (lo, hi):
            e = np.float32(end)
            parts.append(e + np.arange(-64, 65, dtype=np.float32) * np.spacing(e))
    for s in (_get(form, "X_SATURATE"), -_get(form, "T_MAX")):
        s = np.float32(s)
        parts.append(s + np.arange(-64, 65, dtype=np.float32) * np.spacing(s))
    top = _get(form, "T_MAX")
    parts.append(-rng.uniform(top - 2, top + 1, 3000).astype(np.float32))  # subnormal results
    return np.unique(np.concatenate(parts))


def _check_accuracy(form, kernel):
    x = _sample(form)
    with np.errstate(under="ignore"):
        y = kernel(x)
        ref = getattr(gn, form)(x.astype(np.float64))
    err = np.abs(y.astype(np.float64) - ref) / _ulp32(ref)
    i = int(np.argmax(err))
    assert err[i] <= WORST_ULP[form] + MARGIN, f"{err[i]:.3f} ulp at x = {x[i]!r}"


def _monotone_sample(form):
    """Every float32 in [x*, x* + 0.5], and 4096 on either side of each
    piece boundary above x* (the tail's on the positive side) and of the
    saturation."""
    x_star = np.float32(_get(form, "X_STAR"))
    lo = int(x_star.view(np.int32))  # negative floats: larger bits, larger magnitude
    hi = int(np.float32(x_star + np.float32(0.5)).view(np.int32))
    parts = [np.arange(lo, hi - 1, -1, dtype=np.int32).view(np.float32)]
    ends = {e for lo_, hi_ in _pieces(form, "middle").values() for e in (lo_, hi_)}
    ends |= {e for lo_, hi_ in _pieces(form, "tail").values() for e in (lo_, hi_)}
    for end in sorted(e for e in ends | {_get(form, "X_SATURATE")} if e > x_star):
        e = np.float32(end)
        parts.append(e + np.arange(-4096, 4097, dtype=np.float32) * np.spacing(e))
    x = np.unique(np.concatenate(parts))
    return x[x >= x_star]


def _check_monotone(form, kernel):
    x = _monotone_sample(form)
    y = kernel(x)
    down = np.nonzero(y[1:] < y[:-1])[0]
    assert down.size == 0, f"{down.size} decreasing steps, the first at x = {x[down[0]]!r}"


@pytest.mark.parametrize("form", FORMS)
def test_dense_sample_within_documented_bound(form):
    _check_accuracy(form, getattr(gn, form))


@pytest.mark.parametrize("form", FORMS)
def test_monotone_above_the_minimum(form):
    _check_monotone(form, getattr(gn, form))


@pytest.mark.parametrize("form", FORMS)
def test_scalar_emission_with_the_real_tables_gives_the_ufunc_bits(form):
    run = _compile(form, S)
    x = _sample(form)
    with np.errstate(under="ignore"):
        assert np.array_equal(run(x).view(np.uint32), getattr(gn, form)(x).view(np.uint32))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_checks_catch_planted_table_bugs(form, mutant):
    kernel = _compile(form, _planted(form, MUTANTS[mutant]))
    failures = 0
    for check in (_check_accuracy, _check_monotone):
        try:
            check(form, kernel)
        except AssertionError:
            failures += 1
    assert failures, f"neither check caught the {mutant}"


@pytest.mark.parametrize("form", FORMS)
def test_saturations(form):
    """From X_SATURATE up f(x) = x, from -T_MAX down -0.0, and just inside
    each the value is not yet saturated (the thresholds are the tightest)."""
    f = getattr(gn, form)
    sat, top = np.float32(_get(form, "X_SATURATE")), np.float32(_get(form, "T_MAX"))
    x = np.array([sat, np.nextafter(sat, np.float32(np.inf)), np.float32(1e30)], np.float32)
    assert np.array_equal(f(x), x)
    assert f(np.nextafter(sat, np.float32(0)))[()] < np.nextafter(sat, np.float32(0))
    with np.errstate(under="ignore"):
        low = f(np.array([-top, -np.float32(1e30), -np.inf], np.float32))
        inside = f(np.nextafter(-top, np.float32(0)))
    assert np.all(low == 0) and np.all(np.signbit(low))
    assert inside[()] < 0


# -- f' and the backward ----------------------------------------------------------


def _w_prime(form, x):
    x = mp.mpf(x)
    return 2 * mp.sqrt(2 / mp.pi) * (1 + 3 * mp.mpf("0.044715") * x * x) if form == "gelu_tanh" else mp.mpf("1.702")


def _grad(form, x):
    x = mp.mpf(x)
    sig = 1 / (1 + mp.exp(-_w(form, x)))
    return sig + x * _w_prime(form, x) * sig * (1 - sig)


@pytest.mark.parametrize("form", FORMS)
def test_grad_tables(form):
    """Shape, indices and centres of f''s tables: the middle's pieces by x*
    are centred on it in two float32 parts (XH + XL within 2^-48 of x*, C0 =
    0), f'(0) = 1/2, Gal points elsewhere; the tail's pieces are looked up
    by their own index (quarter binades for the tanh form) and hold Gal
    points of G (H = 0) or, from T_SMALL up, of P = t W' - 1 (H = 1)."""
    mp.mp.prec = 80
    middle, tail = _pieces(form, "grad middle"), _pieces(form, "grad tail")
    tables = _get(form, "GRAD_TABLES")
    assert len(tables) == 10 and all(len(t) == 32 for t in tables)
    assert len(middle) == 16 and not set(middle) & set(tail)
    assert all(_f32(v) == v for t in tables for v in t)
    shift, offset = _get(form, "GRAD_TAIL_SHIFT"), _get(form, "GRAD_TAIL_OFFSET")
    for i, (lo, hi) in middle.items():
        for x in np.linspace(lo, hi, 129).astype(np.float32)[1:-1]:
            assert (int((x + np.float32(1)).view(np.uint32)) >> 21) & 31 == i, (i, x)
    for i, (lo, hi) in tail.items():
        for t in np.linspace(lo, hi, 129).astype(np.float32)[1:-1]:
            assert ((int(t.view(np.uint32)) >> shift) + offset) & 31 == i, (i, t)
    assert max(hi for lo, hi in tail.values()) >= max(_get(form, "GRAD_T_MAX"), _get(form, "GRAD_X_SATURATE"))
    x_star = mp.findroot(lambda v: _grad(form, v), -0.75)
    xh, xl = _get(form, "X_STAR_PARTS")
    assert abs(mp.mpf(xh) + mp.mpf(xl) - x_star) < mp.mpf(2) ** -48
    xc, a, c0 = tables[:3]
    for i, (lo, hi) in middle.items():
        if hi <= -0.6874:
            assert (xc[i], a[i], c0[i]) == (xh, -xl, 0.0), i
        elif lo >= -0.2500001 and hi <= 0.2500001:
            assert (xc[i], a[i], c0[i]) == (0.0, 0.0, 0.5), i
        else:
            assert a[i] == 0.0
            _assert_sterbenz(xc[i], lo, hi)
            assert abs(_grad(form, xc[i]) - c0[i]) <= mp.mpf(2) ** -12 * _ulp32(c0[i]), (i, xc[i])
    tc, h, m0 = tables[:3]
    for i, (lo, hi) in tail.items():
        _assert_sterbenz(tc[i], lo, hi)
        t = mp.mpf(tc[i])
        assert h[i] == (1.0 if lo >= _get(form, "T_SMALL") else 0.0), i
        if h[i]:
            exact = t * _w_prime(form, t) - 1
        else:
            exact = -_grad(form, -t) / mp.exp(-_w(form, t))
        assert abs(exact + m0[i]) <= mp.mpf(2) ** -12 * _ulp32(m0[i]), (i, tc[i])  # the table holds -C0


def _grad_sample(form):
    rng = np.random.default_rng(31)
    parts = []
    spans = list(_pieces(form, "grad middle").values())
    for lo, hi in _pieces(form, "grad tail").values():
        spans += [(-hi, -lo), (lo, hi)]
    for lo, hi in spans:
        parts.append(rng.uniform(lo, hi, 3000).astype(np.float32))
        for end in (lo, hi):
            e = np.float32(end)
            parts.append(e + np.arange(-64, 65, dtype=np.float32) * np.spacing(e))
    for v in (_get(form, "GRAD_X_SATURATE"), -_get(form, "GRAD_T_MAX")):
        v = np.float32(v)
        parts.append(v + np.arange(-64, 65, dtype=np.float32) * np.spacing(v))
    return np.unique(np.concatenate(parts))


def _grad_errors(form, x, y, dy=None):
    """|y - dy f'(x)| in ulps of |dy| max(|f'(x)|, sigma(W(x))) (dy = 1 if None)."""
    x64 = x.astype(np.float64)
    ref = getattr(gn, form + "_grad")(x64)
    first = np.where(x64 == 0, 0.5, getattr(gn, form)(x64) / np.where(x64 == 0, 1, x64))
    scale = np.maximum(np.abs(ref), first)
    if dy is not None:
        ref, scale = ref * dy, scale * np.abs(dy)
    return np.abs(y.astype(np.float64) - ref) / _ulp32(scale)


def _check_grad_accuracy(form, kernel):
    x = _grad_sample(form)
    with np.errstate(under="ignore"):
        err = _grad_errors(form, x, kernel(x))
    i = int(np.argmax(err))
    assert err[i] <= WORST_GRAD_ULP[form] + MARGIN, f"{err[i]:.3f} ulp at x = {x[i]!r}"


def _check_near_zero(form, kernel):
    """Around x*, f' = (x - XH - XL) q keeps its relative accuracy: every
    float32 within about 2^-10 of x*, in ulps of f' itself."""
    xs = np.float32(_get(form, "X_STAR"))
    x = xs + np.arange(-20000, 20001, dtype=np.float32) * np.spacing(xs)
    ref = getattr(gn, form + "_grad")(x.astype(np.float64))
    own = np.abs(kernel(x).astype(np.float64) - ref) / _ulp32(np.abs(ref))
    assert own.max() <= WORST_NEAR_ZERO[form] + MARGIN, f"{own.max():.2f} ulp of f' at x = {x[int(np.argmax(own))]!r}"


@pytest.mark.parametrize("form", FORMS)
def test_grad_dense_sample_within_documented_bound(form):
    _check_grad_accuracy(form, getattr(gn, form + "_grad"))
    _check_near_zero(form, getattr(gn, form + "_grad"))


@pytest.mark.parametrize("form", WORST_BACKWARD_ULP)
def test_backward_dense_sample_within_documented_bound(form):
    x = _grad_sample(form)
    dy = np.random.default_rng(5).standard_normal(x.size).astype(np.float32)
    with np.errstate(under="ignore"):
        err = _grad_errors(form, x, getattr(gn, form + "_backward")(dy, x), dy.astype(np.float64))
    i = int(np.argmax(err))
    assert err[i] <= WORST_BACKWARD_ULP[form] + MARGIN, f"{err[i]:.3f} ulp at x = {x[i]!r}, dy = {dy[i]!r}"


@pytest.mark.parametrize("form", WORST_BACKWARD_ULP)
def test_backward_of_one_is_grad_bit_for_bit(form):
    x = _grad_sample(form)
    with np.errstate(under="ignore"):
        one = getattr(gn, form + "_backward")(np.float32(1), x)
        assert np.array_equal(one.view(np.uint32), getattr(gn, form + "_grad")(x).view(np.uint32))


@pytest.mark.parametrize("form", FORMS)
def test_backward_huge_and_infinite_dy(form):
    """A huge dy gives the product's value, not inf, on both signs of the
    tail and in the middle; an infinite dy gives +-inf where f' is not zero,
    raising nothing."""
    x = np.array([-1.0, -3.0, -6.0, -9.0, -0.5, 0.0, 0.5, 2.0, 4.0, 30.0], np.float32)
    dy = np.float32(3e38)
    with np.errstate(under="ignore"):
        y = getattr(gn, form + "_backward")(dy, x)
    ref = getattr(gn, form + "_grad")(x.astype(np.float64)) * float(dy)
    finite = np.abs(ref) < 3.4028234663852886e38
    assert np.array_equal(np.isfinite(y), finite)
    assert np.all(_grad_errors(form, x[finite], y[finite], np.float64(dy)) <= 2)
    with np.errstate(all="raise"):
        inf = getattr(gn, form + "_backward")(np.float32(np.inf), x)
    assert np.array_equal(inf, np.where(ref > 0, np.inf, -np.inf).astype(np.float32))


def _compile_grad(form, tables):
    @intrinsic
    def one(typingctx, x):
        def codegen(context, builder, sig, args):
            return vector32._Sigma(Lanes32(builder, 1, SCALAR), form + "_grad", args[0], tables).value_by_branch()

        return nbtypes.float32(nbtypes.float32), codegen

    @njit
    def run(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = one(x[i])
        return out

    return run


GRAD_MUTANTS = {
    "off-by-one index": lambda T: tuple(_rotate(t) for t in T),
    "swapped middle entry": lambda T: _with(T, 4, _swap(T[4], 29, 30)),
    "swapped tail C0": lambda T: _with(T, 2, _swap(T[2], 3, 4)),
    "x* in one part": lambda T: _with(T, 1, tuple(0.0 if i >= 16 else v for i, v in enumerate(T[1]))),
    "no exp(-W) (2P + 1) term": lambda T: _with(T, 1, tuple(0.0 if (i < 16 and v == 1.0) else v
                                                               for i, v in enumerate(T[1]))),
}


def _planted_grad(form, change):
    t = types.SimpleNamespace(**{k: getattr(S, k) for k in dir(S) if k.isupper()})
    name = f"{FORMS[form]}_GRAD_TABLES"
    setattr(t, name, change(getattr(S, name)))
    return t


@pytest.mark.parametrize("form", FORMS)
def test_grad_scalar_emission_gives_the_ufunc_bits(form):
    run = _compile_grad(form, S)
    x = _grad_sample(form)
    with np.errstate(under="ignore"):
        assert np.array_equal(run(x).view(np.uint32), getattr(gn, form + "_grad")(x).view(np.uint32))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mutant", list(GRAD_MUTANTS))
def test_grad_checks_catch_planted_table_bugs(form, mutant):
    kernel = _compile_grad(form, _planted_grad(form, GRAD_MUTANTS[mutant]))
    failures = 0
    for check in (_check_grad_accuracy, _check_near_zero):
        try:
            check(form, kernel)
        except AssertionError:
            failures += 1
    assert failures, f"no check caught the {mutant}"
