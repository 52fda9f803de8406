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


def tail_pieces(top, shift=22, offset=TAIL_OFFSET, start=0.75):
    """(index, t_lo, t_hi): half binades of t from `start` (shift 22), or
    quarter binades (shift 21), index ((bits(t) >> shift) + offset) & 31."""
    out = []
    t = start
    while t < top:
        e = int(np.floor(np.log2(t)))
        hi = t + 2.0**e / (1 << (23 - shift))
        out.append((((int(np.float32(t).view(np.uint32)) >> shift) + offset) & 31, t, hi))
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


GRAD_MIDDLE_DEGREE = 6
GRAD_TAIL_DEGREE = 6
GRAD_X_MID = 0.875  # f': |x| from it the tail formula
#: f''s tail pieces: quarter binades of t for the tanh form, whose G grows as
#: t^3 (half binades left d q(d) up to 0.6 of C0 over [4, 6), and its
#: roundings reached 2.5 ulp), half binades for the sigmoid form (G ~ t);
#: the offset puts t = 0.875 at entry 0.
GRAD_TAIL_SHIFT = {"gelu_tanh": 21, "gelu_sigmoid": 22}
GRAD_TAIL_OFFSET = {"gelu_tanh": 5, "gelu_sigmoid": 3}


def big_w_prime(form, t):
    t = mp.mpf(t)
    if form == "gelu_tanh":
        return 2 * mp.sqrt(2 / mp.pi) * (1 + 3 * mp.mpf("0.044715") * t**2)
    return mp.mpf("1.702")


def grad(form, x):
    """f'(x) = sigma(W) + x W' sigma(W) sigma(-W)."""
    x = mp.mpf(x)
    e = mp.exp(-big_w(form, x))
    s = 1 / (1 + e)
    return s + x * big_w_prime(form, x) * s * (1 - s)


def big_g(form, t):
    """G(t) = (t W' - 1 - E) / (1 + E)^2, E = exp(-W): f'(-t) = -G(t) E."""
    t = mp.mpf(t)
    e = mp.exp(-big_w(form, t))
    return (t * big_w_prime(form, t) - 1 - e) / (1 + e) ** 2


def big_p(form, t):
    """P(t) = t W' - 1: G = P - E (2P + 1) + O(E^2 P)."""
    t = mp.mpf(t)
    return t * big_w_prime(form, t) - 1


def grad_saturation(form):
    return bisect32(lambda x: f32(grad(form, x)) == 1.0, 1.0, 80.0)


def grad_t_max(form, bits=150):
    """The smallest t from which |f'(-t)| <= 2^-bits: 150 for f' (it rounds
    to -0.0), 160 for the backward (dy f' rounds to 0 for |dy| < 2^10, as
    the exact GELU's backward from x = -15)."""
    return bisect32(lambda t: abs(grad(form, -t)) <= mp.mpf(2) ** -bits, 1.0, 120.0)


def grad_middle_pieces():
    out = []
    y = 0.125
    while y < 1.0 + GRAD_X_MID:
        e = int(np.floor(np.log2(y)))
        hi = y + 2.0**e / 4
        out.append((int(np.float32(y).view(np.uint32)) >> 21, y, hi))
        y = hi
    return out


def fit_grad_middle(form, x_star):
    """f' = fma(d, q, fma(A, q, C0)), d = x - XC: rows (index, XC, A, C0, q,
    err, lo, hi); by x* (x < -0.6875) XC + (-A) = x* in two float32 parts
    and C0 = 0, so f' = (x - x*) q keeps its relative accuracy."""
    fn = lambda x: grad(form, x)  # noqa: E731
    xh = f32(x_star)
    xl = f32(x_star - mp.mpf(xh))
    rows, err_max = [], 0.0
    for index, y_lo, y_hi in grad_middle_pieces():
        lo, hi = x_range(y_lo, y_hi)
        lo, hi = max(lo, -GRAD_X_MID), min(hi, GRAD_X_MID)
        xs = nodes(lo, hi)
        if y_hi <= 0.3125:
            xc, a, c0 = xh, -xl, 0.0
            g = np.array([float(fn(x) / (mp.mpf(x) - x_star)) for x in xs])
            w = np.array([float(abs((mp.mpf(x) - x_star) / fn(x))) for x in xs])
        else:
            if y_lo >= 0.75 and y_hi <= 1.25:  # |x| < 0.25: f'(0) = 1/2 exactly
                xc, c0 = 0.0, 0.5
            else:
                xc, c0 = gal_point(fn, (lo + hi) / 2, lo=lo, hi=hi)
            a = 0.0
            xs = xs[np.abs(xs - xc) > 1e-9]
            g = np.array([float((fn(x) - mp.mpf(c0)) / (mp.mpf(x) - mp.mpf(xc))) for x in xs])
            w = np.array([abs(x - xc) / float(abs(fn(x))) for x in xs])
        coef, err = fit_piece(xs - xc, g, w, GRAD_MIDDLE_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, xc, a, c0, coef, err, lo, hi))
    return rows, err_max, (xh, xl)


def fit_grad_tail(form, top):
    """Rows (index, TC, H, C0, q, err, lo, hi): G = C0 + d q(d) (H = 0), or
    from T_SMALL up P = C0 + d q(d) and G = P - E (2P + 1) (H = 1)."""
    rows, err_max = [], 0.0
    for index, t_lo, t_hi in tail_pieces(top, GRAD_TAIL_SHIFT[form], GRAD_TAIL_OFFSET[form]):
        lo, hi = max(t_lo, GRAD_X_MID), t_hi
        if hi <= lo:
            continue
        h = 1.0 if lo >= T_SMALL[form] else 0.0
        fn = (lambda t: big_p(form, t)) if h else (lambda t: big_g(form, t))
        tc, c0 = gal_point(fn, (lo + hi) / 2, lo=lo, hi=hi)
        ts = nodes(lo, hi)
        ts = ts[np.abs(ts - tc) > 1e-9]
        g = np.array([float((fn(t) - mp.mpf(c0)) / (mp.mpf(t) - mp.mpf(tc))) for t in ts])
        w = np.array([abs(t - tc) / float(fn(t)) for t in ts])
        coef, err = fit_piece(ts - tc, g, w, GRAD_TAIL_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, tc, h, c0, coef, err, lo, hi))
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
    g_sat, g_top, b_top = grad_saturation(form), grad_t_max(form), grad_t_max(form, 160)
    g_middle, gm_err, (xh, xl) = fit_grad_middle(form, x_star)
    g_tail, gt_err = fit_grad_tail(form, max(b_top, g_sat))
    g_tables = merged_tables([(r[0], [r[1], r[2], r[3], *r[4]]) for r in g_middle],
                             [(r[0], [r[1], r[2], -r[3], *[-c for c in r[4]]]) for r in g_tail],
                             3 + GRAD_MIDDLE_DEGREE + 1)
    g_pieces = [f"#   grad middle {i & 31:2d}: x in [{lo:+.7f}, {hi:+.7f}], XC {xc!r} A {a!r} (f'(XC) -> {c0!r}), "
                f"fit {err:.1e}" for i, xc, a, c0, coef, err, lo, hi in g_middle]
    g_pieces += [f"#   grad tail   {i & 31:2d}: t in [{lo:.7f}, {hi:.7f}], TC {tc!r} "
                 f"({'P' if h else 'G'}(TC) -> {c0!r}), fit {err:.1e}" for i, tc, h, c0, coef, err, lo, hi in g_tail]
    grad_lines = [
        f"# {form} f': worst weighted fit errors: middle {gm_err:.2e} (2^{np.log2(gm_err):.1f}), "
        f"tail {gt_err:.2e} (2^{np.log2(gt_err):.1f})",
        f"{name}_GRAD_X_SATURATE = {g_sat!r}  # from here up f'(x) = 1 ({bits_hex(g_sat)})",
        f"{name}_GRAD_T_MAX = {g_top!r}  # x <= -GRAD_T_MAX: f' = -0.0 ({bits_hex(g_top)})",
        f"{name}_BACKWARD_T_MAX = {b_top!r}  # x <= -BACKWARD_T_MAX: dy f' = dy (-0.0) "
        f"({bits_hex(b_top)})",
        f"{name}_X_STAR_PARTS = ({xh!r}, {xl!r})  # x* = XH + XL",
        f"{name}_GRAD_TAIL_SHIFT = {GRAD_TAIL_SHIFT[form]!r}  # f''s tail entry: "
        f"((bits(t) >> SHIFT) + OFFSET) & 31",
        f"{name}_GRAD_TAIL_OFFSET = {GRAD_TAIL_OFFSET[form]!r}",
        f"{name}_GRAD_TABLES = (",
        *[f"    {row(t)}," for t in g_tables],
        ")",
        *g_pieces,
    ]
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
        "",
        *grad_lines,
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
        f"GRAD_X_MID = {GRAD_X_MID!r}  # f': |x| from it the tail formula",
        f"GRAD_MIDDLE_DEGREE = {GRAD_MIDDLE_DEGREE!r}",
        f"GRAD_TAIL_DEGREE = {GRAD_TAIL_DEGREE!r}",
        "# f': the middle's entry: XC, A, C0, then q's coefficients (f' = fma(d, q, fma(A, q, C0)),",
        "# d = x - XC; by x*, XC + (-A) = x* and C0 = 0); the tail's: TC, H, -C0, then -q's",
        "# coefficients (-G = -C0 - d q(d), d = t - TC; where H = 1 the polynomial is P = t W' - 1",
        "# and -G = -P + E (2P + 1); f'(-t) = -G(t) exp(-W(t)), f'(t) = 1 - f'(-t))",
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
    print("\n".join(line for line in text.splitlines() if line.startswith("# gelu") or "_X_" in line or "_T_MAX" in line
                    or "grad tail" in line))


if __name__ == "__main__":
    main()
