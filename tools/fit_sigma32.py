"""Fit the float32-lane tables of the tanh and sigmoid forms and write gelu_numba/core/tables_sigma32.py.

    python tools/fit_sigma32.py            # rewrite gelu_numba/core/tables_sigma32.py
    python tools/fit_sigma32.py --check    # exit 1 if the file is out of date

The float32 `gelu_tanh` and `gelu_sigmoid` on the CPU
(``gelu_numba/core/vector32.py``, ``_Sigma``) compute in float32 lanes;
these are their constants.  Both forms are f(x) = x sigma(W(x)) with W odd
(W = 2 sqrt(2/pi) (x + 0.044715 x^3) or 1.702 x, the decimal constants as
the decimal numbers), so f(x) = x + f(-x): one set of pieces serves both
signs.

Middle, |x| < X_MID = 0.78125: as the exact GELU's middle
(tools/fit_exact32.py): quarter binades of y = fl(x + 1) over
[0.21875, 2), 13 pieces, f = fma(d, q(d), fma(H, x, C0)), d = x - XC,
q of degree MIDDLE_DEGREE; |x| < 0.25: XC = 0, H = 1/2, C0 = -0.0
(f = x/2 + x (sigma - 1/2)); elsewhere Gal centres, the two pieces on
either side of the minimum x* sharing one next to x*.

Tail, t = |x| >= X_MID: f(-t) = -M(t) exp(-W(t)), M(t) = t / (1 +
exp(-W(t))), in half-binade pieces of t (``bits(t) >> 22``, offset to the
entries 0.. that the middle leaves free): M = C0 + d q(d), d = t - TC,
Gal centres, q of degree TAIL_DEGREE (the table holds -C0, -H and -q:
H = 0 here); from T_SMALL up, M = t - t exp(-W) within 2^-31 (H = 1, C0 =
0, q = 0, the kernel adding t exp(-W) where H = 1).
exp(-W) = exp(-(p + e)/2) with 2W = p + e in two floats (the kernel's
double-float arithmetic, constants below in two parts), reduced and
evaluated as the exact GELU's exp(-t^2/2) (tables_exact32's LN2X2, EXP_P).
For x > 0, f(x) = x + f(-x); from X_SATURATE up f(x) rounds to x; from
-T_MAX down f(x) rounds to -0.0.

Fits: weighted least squares on Chebyshev nodes against mpmath, rounded to
float32 one coefficient at a time (fit_exact32's ``fit_rounded``).  The
measured errors are an exhaustive sweep's (``gelu-numba accuracy
--exhaustive``), not this script's.
"""

import argparse
import pathlib
import sys

import mpmath as mp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fit_exact32 import (  # noqa: E402  (one fitting method for every float32-lane table)
    bits_hex,
    f32,
    fit_piece,
    gal_point,
    merged_tables,
    nodes,
    x_range,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "gelu_numba" / "core" / "tables_sigma32.py"
mp.mp.prec = 100

FORMS = ("gelu_tanh", "gelu_sigmoid")
MIDDLE_DEGREE = 5
TAIL_DEGREE = 5
X_MID = 0.78125  # |x| from it: the tail formula
#: Added to a tail piece's index (bits(t) >> 22): t in [0.75, 1) takes entry 0.
TAIL_OFFSET = 3
#: t from which M = t (1 - exp(-W)) within 2^-31 (exp(-W) < 2^-15.8): no
#: polynomial (M - t is too steep a function of t for one: exp(-W) falls by
#: 10^-6 over [4, 6) in the tanh form), -M = -t + t exp(-W) from the exp the
#: kernel computes anyway.
T_SMALL = {"gelu_tanh": 4.0, "gelu_sigmoid": 8.0}


def big_w(form, t):
    t = mp.mpf(t)
    if form == "gelu_tanh":
        return 2 * mp.sqrt(2 / mp.pi) * (t + mp.mpf("0.044715") * t**3)
    return mp.mpf("1.702") * t


def value(form, x):
    x = mp.mpf(x)
    return x / (1 + mp.exp(-big_w(form, x)))


def big_m(form, t):
    t = mp.mpf(t)
    return t / (1 + mp.exp(-big_w(form, t)))


def sigma_half(form, x):
    """sigma(W(x)) - 1/2 = tanh(W/2)/2."""
    return mp.tanh(big_w(form, x) / 2) / 2


def minimum(form):
    return mp.findroot(lambda x: mp.diff(lambda v: value(form, v), x), -0.75)


def bisect32(predicate, lo, hi):
    """The smallest float32 in (lo, hi] where predicate holds, predicate
    monotone (false at lo, true at hi)."""
    a, b = int(np.float32(lo).view(np.int32)), int(np.float32(hi).view(np.int32))
    while b - a > 1:
        mid = (a + b) // 2
        if predicate(float(np.int32(mid).view(np.float32))):
            b = mid
        else:
            a = mid
    return float(np.int32(b).view(np.float32))


def saturation(form):
    return bisect32(lambda x: f32(value(form, x)) == x, 1.0, 80.0)


def t_max(form):
    """The smallest t from which |f(-t)| <= 2^-150 (rounds to -0.0)."""
    return bisect32(lambda t: abs(value(form, -t)) <= mp.mpf(2) ** -150, 1.0, 120.0)


def middle_pieces():
    out = []
    y = 0.21875
    while y < 1.0 + X_MID:
        e = int(np.floor(np.log2(y)))
        hi = y + 2.0**e / 4
        out.append((int(np.float32(y).view(np.uint32)) >> 21, y, hi))
        y = hi
    return out


def tail_pieces(top):
    out = []
    t = 0.75
    while t < top:
        e = int(np.floor(np.log2(t)))
        hi = t + 2.0**e / 2
        out.append((((int(np.float32(t).view(np.uint32)) >> 22) + TAIL_OFFSET) & 31, t, hi))
        t = hi
    return out


def fit_middle(form, x_star):
    fn = lambda x: value(form, x)  # noqa: E731
    rows, err_max = [], 0.0
    for index, y_lo, y_hi in middle_pieces():
        lo, hi = x_range(y_lo, y_hi)
        lo, hi = max(lo, -X_MID), min(hi, X_MID)
        xs = nodes(lo, hi)
        if y_hi <= 1.25 and y_lo >= 0.75:  # |x| < 0.25: f = x/2 + x (sigma - 1/2)
            xc, c0, h = 0.0, -0.0, 0.5
            g = np.array([float(sigma_half(form, x)) for x in xs])
            w = np.array([float(1 / (sigma_half(form, x) + mp.mpf(1) / 2)) for x in xs])
        else:
            if y_lo in (0.21875, 0.25):  # either side of the minimum: one Gal centre by x*
                xc, c0 = gal_point(fn, x_star, lo=-0.76, hi=-0.74)
            else:
                xc, c0 = gal_point(fn, (lo + hi) / 2, lo=lo, hi=hi)
            h = 0.0
            xs = xs[np.abs(xs - xc) > 1e-9]
            g = np.array([float((fn(x) - mp.mpf(c0)) / (mp.mpf(x) - mp.mpf(xc))) for x in xs])
            w = np.array([abs(x - xc) / float(abs(fn(x))) for x in xs])
        coef, err = fit_piece(xs - xc, g, w, MIDDLE_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, xc, c0, h, coef, err, lo, hi))
    return rows, err_max


def fit_tail(form, top):
    """Rows (index, TC, C0, H, q, err, lo, hi): -M = -(H t + C0 + d q(d)),
    plus t exp(-W) where H = 1 (from T_SMALL up)."""
    fn = lambda t: big_m(form, t)  # noqa: E731
    rows, err_max = [], 0.0
    for index, t_lo, t_hi in tail_pieces(top):
        lo, hi = max(t_lo, X_MID), t_hi
        if lo >= T_SMALL[form]:
            rows.append((index, 0.0, 0.0, 1.0, [0.0] * (TAIL_DEGREE + 1), 0.0, lo, hi))
            continue
        tc, c0 = gal_point(fn, (lo + hi) / 2, lo=lo, hi=hi)
        ts = nodes(lo, hi)
        ts = ts[np.abs(ts - tc) > 1e-9]
        g = np.array([float((fn(t) - mp.mpf(c0)) / (mp.mpf(t) - mp.mpf(tc))) for t in ts])
        w = np.array([abs(t - tc) / float(fn(t)) for t in ts])
        coef, err = fit_piece(ts - tc, g, w, TAIL_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, tc, c0, 0.0, coef, err, lo, hi))
    return rows, err_max


def split(v):
    """v as hi + lo, two float32."""
    hi = f32(v)
    return hi, f32(mp.mpf(v) - mp.mpf(hi))


def render_form(form):
    name = form.split("_")[1].upper()
    x_star = minimum(form)
    x_sat = saturation(form)
    top = t_max(form)
    middle, m_err = fit_middle(form, float(x_star))
    tail, t_err = fit_tail(form, max(top, x_sat))
    tables = merged_tables([(r[0], [r[1], r[2], r[3], *r[4]]) for r in middle],
                           [(r[0], [r[1], -r[2], -r[3], *[-c for c in r[4]]]) for r in tail], 3 + MIDDLE_DEGREE + 1)
    if form == "gelu_tanh":
        k = 4 * mp.sqrt(2 / mp.pi)  # 2W = t (B2 + A2 t^2)
        constants = [f"{name}_B2 = {split(k)!r}  # 4 sqrt(2/pi) in two parts: 2W = t (B2 + A2 t^2)",
                     f"{name}_A2 = {split(k * mp.mpf('0.044715'))!r}  # 4 sqrt(2/pi) 0.044715"]
    else:
        constants = [f"{name}_A2 = {split(2 * mp.mpf('1.702'))!r}  # 3.404 in two parts: 2W = A2 t"]

    def row(values):
        return "(" + ", ".join(repr(float(v)) for v in values) + ")"

    pieces = [f"#   middle {i & 31:2d}: x in [{lo:+.7f}, {hi:+.7f}], XC {xc!r} (f(XC) -> {c0!r}), fit {err:.1e}"
              for i, xc, c0, h, coef, err, lo, hi in middle]
    pieces += [f"#   tail   {i & 31:2d}: t in [{lo:.7f}, {hi:.7f}], " +
               (f"TC {tc!r} (M(TC) -> {c0!r}), fit {err:.1e}" if not h else
                "M = t - t exp(-W)")
               for i, tc, c0, h, coef, err, lo, hi in tail]
    return m_err, t_err, [
        f"# {form}: f(x) = x sigma(W(x)); worst weighted fit errors: middle {m_err:.2e} "
        f"(2^{np.log2(m_err):.1f}), tail {t_err:.2e} (2^{np.log2(t_err):.1f})",
        f"{name}_X_STAR = {float(x_star)!r}  # the minimum (float64)",
        f"{name}_X_SATURATE = {x_sat!r}  # from here up f(x) = x ({bits_hex(x_sat)})",
        f"{name}_T_MAX = {top!r}  # x <= -T_MAX: f = -0.0 ({bits_hex(top)})",
        f"{name}_T_SMALL = {T_SMALL[form]!r}  # from here up M = t - t exp(-W) (H = 1)",
        *constants,
        f"{name}_TABLES = (",
        *[f"    {row(t)}," for t in tables],
        ")",
        *pieces,
    ]


def render():
    lines = [
        '"""Tables of the float32 tanh and sigmoid forms in float32 lanes (core/vector32.py, ``_Sigma``).',
        "",
        "Generated by `python tools/fit_sigma32.py`; do not edit by hand (its",
        "docstring gives the algorithm).  Every value is a float32.  One set of",
        "32-entry tables per form serves both regions: the middle's pieces",
        "(|x| < X_MID) at (bits(fl(x + 1)) >> 21) & 31, the tail's (t = |x|) at",
        "((bits(t) >> 22) + TAIL_OFFSET) & 31; entries no piece uses repeat the",
        "first middle piece's.  The middle's entry: XC, C0, H, then q's",
        "coefficients from the lowest degree (f = fma(d, q, fma(H, x, C0)), d = x -",
        "XC); the tail's: TC, -C0, -H, then -q's coefficients (-M = -H t - C0 -",
        "d q(d), d = t - TC; f(-t) = -M(t) exp(-W(t)), f(t) = t + f(-t)).",
        '"""',
        "",
        f"X_MID = {X_MID!r}  # |x| from it: the tail formula",
        f"TAIL_OFFSET = {TAIL_OFFSET!r}  # a tail piece's entry: ((bits(t) >> 22) + TAIL_OFFSET) & 31",
        f"MIDDLE_DEGREE = {MIDDLE_DEGREE!r}",
        f"TAIL_DEGREE = {TAIL_DEGREE!r}",
    ]
    for form in FORMS:
        lines += [""] + render_form(form)[2]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print("\n".join(line for line in text.splitlines() if line.startswith("# gelu") or "_X_" in line or "_T_MAX" in line))


if __name__ == "__main__":
    main()
