"""Fit the float32-lane tables of the exact GELU and write gelu_numba/core/tables_exact32.py.

    python tools/fit_exact32.py            # rewrite gelu_numba/core/tables_exact32.py
    python tools/fit_exact32.py --check    # exit 1 if the file is out of date

The float32 exact GELU on the CPU (``gelu_numba/core/vector32.py``,
``_exact32``) computes in float32 lanes; these are its constants.

Middle, x >= -0.78125: the piece is the exponent and two top mantissa bits
of y = fl(x + 1) (``bits(y) >> 21``, its low five bits a 32-entry table's
index): quarter binades of y over [0.21875, 7), 20 pieces.  In piece i

    f(x) = fma(x - XC[i], q_i(x - XC[i]), fma(H[i], x, C0[i])),   q_i of degree 5

- for the three pieces with |x| < 0.25: XC = 0, H = 1/2, C0 = -0.0
  (f = x/2 + x (Phi(x) - 1/2), x/2 exact);
- elsewhere H = 0 and XC is a Gal point ("accurate tables"): a float32
  near the piece's middle whose f(XC) lies within 2^-GAL_BITS ulp of its
  float32 rounding C0, so the constant term carries no rounding error;
  the two pieces on either side of the minimum x* share one Gal centre
  next to x*, so that the rounding noise of d q(d) shrinks as (x - x*)^2
  while f's increase shrinks only as (x - x*): monotone there with no
  double-float arithmetic.
From X_SATURATE up, f(x) rounds to x.

Tail, x < -0.78125, t = -x (at most 15): f(x) = -M(t) exp(-t^2/2),
M(t) = t exp(t^2/2) Phi(-t), in 9 half-binade pieces of t
(``bits(t) >> 22``, offset so that they take the table entries no middle
piece uses): M = C0 + d q(d), d = t - TC (Gal centres), q of degree 5
(the table holds -C0 and -q: the kernel computes -M).  One set of
tables, one lookup per coefficient, serves both regions.  exp(-t^2/2) = 2^k (1 + w) with t^2 = p + e exactly,
k = rint(-p log2(e) / 2), s = (p + k 2 ln2_hi) + (e + k 2 ln2_lo) (the
first sum exact), w = s P(s), P of degree 5 on |s| <= ln 2.

Each polynomial is a weighted least-squares fit on Chebyshev nodes (close
to minimax) of the error relative to the result, against mpmath in
100-bit arithmetic, its coefficients rounded to float32 one at a time
(each rounding followed by a refit of the ones after it).  The measured
errors of the kernel itself are an exhaustive sweep's
(``gelu-numba accuracy --exhaustive``), not this script's.
"""

import argparse
import pathlib
import struct
import sys

import mpmath as mp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "gelu_numba" / "core" / "tables_exact32.py"
mp.mp.prec = 100

MIDDLE_DEGREE = 5
TAIL_DEGREE = 6
EXP_DEGREE = 5  # of P in w = s P(s)
GAL_BITS = 12  # |f(XC) - C0| <= 2^-GAL_BITS ulp
X_LOW = -0.78125  # below it the tail
T_MAX = 15.0  # x <= -15: f = -0.0
NODES = 240
SQRT2 = mp.sqrt(2)


def f32(v):
    return float(np.float32(float(v)))


def ulp32(v):
    v = abs(float(v))
    if v < 2.0**-126:
        return 2.0**-149
    e = int(np.floor(np.log2(v)))
    if 2.0 ** (e + 1) <= v:
        e += 1
    return 2.0 ** (e - 23)


def gelu(x):
    x = mp.mpf(x)
    return x * mp.ncdf(x)


def big_m(t):
    """M(t) = t exp(t^2/2) Phi(-t) = t erfcx(t / sqrt 2) / 2."""
    t = mp.mpf(t)
    return t * mp.erfc(t / SQRT2) * mp.exp(t * t / 2) / 2


def gelu_grad(x):
    x = mp.mpf(x)
    return mp.ncdf(x) + x * mp.npdf(x)


def big_g(t):
    """G(t) = t/sqrt(2 pi) - exp(t^2/2) Phi(-t): f'(-t) = -exp(-t^2/2) G(t)."""
    t = mp.mpf(t)
    return t / mp.sqrt(2 * mp.pi) - mp.erfc(t / SQRT2) * mp.exp(t * t / 2) / 2


X_STAR_MP = mp.findroot(lambda x: mp.ncdf(x) + x * mp.npdf(x), -0.75)
X_STAR = float(X_STAR_MP)
GRAD_X_LOW = -0.875  # f': below it the tail
X_SATURATE = None  # the smallest float32 from which fl(f(x)) = x: found below


def saturation(fn=gelu, limit=lambda x: x):
    # bisection over float32 ranks on "f(x) rounds to its limit" (monotone there)
    lo, hi = int(np.float32(5.0).view(np.int32)), int(np.float32(6.5).view(np.int32))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        x = float(np.int32(mid).view(np.float32))
        if f32(fn(x)) == limit(x):
            hi = mid
        else:
            lo = mid
    return float(np.int32(hi).view(np.float32))


def gal_point(fn, target, bits=GAL_BITS, lo=None, hi=None, steps=1 << 14):
    """The float32 nearest `target` (within [lo, hi], at most `steps` ulps
    away) whose fn value is within 2^-bits ulp of a float32, or None."""
    start = np.float32(target)
    up, down = start, start
    for _ in range(steps):
        for c in (up, down):
            if (lo is not None and c < lo) or (hi is not None and c > hi):
                continue
            v = fn(float(c))
            r = f32(v)
            if abs(v - r) <= mp.mpf(2) ** -bits * ulp32(r):
                return float(c), r
        up = np.nextafter(up, np.float32(np.inf))
        down = np.nextafter(down, np.float32(-np.inf))
    return None


def fit_rounded(d, g, w, degree, fixed=()):
    """Coefficients of q (degree `degree`) minimising max w |q(d) - g| in the
    least-squares sense, rounded to float32 one at a time; `fixed` are
    coefficients already chosen (from the lowest)."""
    coef = list(fixed)
    while len(coef) <= degree:
        k = len(coef)
        known = np.polynomial.polynomial.polyval(d, coef) if coef else np.zeros_like(d)
        a = np.vander(d, degree + 1, increasing=True)[:, k:] * w[:, None]
        sol, *_ = np.linalg.lstsq(a, (g - known) * w, rcond=None)
        coef.append(f32(sol[0]))
    return coef


def fit_piece(d, g, w, degree):
    """A piece's rounded coefficients and the worst weighted error of their fit."""
    coef = fit_rounded(d, g, w, degree)
    return coef, float(np.max(np.abs(np.polynomial.polynomial.polyval(d, coef) - g) * w))


def nodes(lo, hi, n=NODES):
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid + half * np.cos((np.arange(n) + 0.5) * np.pi / n)


def middle_pieces():
    """(index, y_lo, y_hi) of the middle's pieces: quarter binades of y."""
    out = []
    y = 0.21875
    while y < 7.0:
        e = int(np.floor(np.log2(y)))
        step = 2.0**e / 4
        hi = y + step
        index = int(np.float32(y).view(np.uint32)) >> 21
        out.append((index, y, hi))
        y = hi
    return out


#: Added to a tail piece's index (bits(t) >> 22) so that the tail's nine
#: pieces take the entries 7..15 that no middle piece uses: one set of
#: 32-entry tables serves both regions, each lane looking up its own.
TAIL_OFFSET = 10


def tail_pieces():
    """(index, t_lo, t_hi) of the tail's pieces: half binades of t over
    [0.75, 16), index ((bits(t) >> 22) + TAIL_OFFSET) & 31."""
    out = []
    t = 0.75
    while t < T_MAX:
        e = int(np.floor(np.log2(t)))
        hi = t + 2.0**e / 2
        out.append((((int(np.float32(t).view(np.uint32)) >> 22) + TAIL_OFFSET) & 31, t, hi))
        t = hi
    return out


def x_range(y_lo, y_hi):
    """The x whose fl(x + 1) falls in [y_lo, y_hi), widened by an ulp of y."""
    return y_lo - 1 - ulp32(y_hi), y_hi - 1 + ulp32(y_hi)


def fit_middle(x_sat):
    rows = []
    err_max = 0.0
    for index, y_lo, y_hi in middle_pieces():
        lo, hi = x_range(y_lo, y_hi)
        lo, hi = max(lo, X_LOW), min(hi, x_sat)
        if hi <= lo:
            continue
        if y_hi <= 1.25 and y_lo >= 0.75:  # |x| < 0.25: f = x/2 + x (Phi(x) - 1/2)
            xc, c0, h = 0.0, -0.0, 0.5
            xs = nodes(lo, hi)
            g = np.array([float(mp.ncdf(x) - mp.mpf(1) / 2) for x in xs])
            w = np.array([1 / float(mp.ncdf(x)) for x in xs])  # relative to f = x Phi(x)
        elif y_lo >= 6.0:
            # f(x) = x - x Q(x), Q = 1 - Phi: no Gal point here (f(c) - c
            # moves by a few millionths of an ulp per step of c), and none
            # is needed: f = x + d q(d), c0 = x exact, d = x - XC exact
            # (XC a multiple of x's ulp below the piece), and d q is about
            # an ulp of f, so q's rounding errors hardly reach the result
            xc, c0, h = float(np.floor(lo) - 1), 0.0, 1.0
            xs = nodes(lo, hi)
            g = np.array([float((gelu(x) - mp.mpf(x)) / (mp.mpf(x) - mp.mpf(xc))) for x in xs])
            w = np.array([abs(x - xc) / float(abs(gelu(x))) for x in xs])
        else:
            if y_lo in (0.21875, 0.25):  # the two pieces on either side of the minimum
                xc, c0 = gal_point(gelu, X_STAR, lo=-0.76, hi=-0.74)
            else:
                xc, c0 = gal_point(gelu, (lo + hi) / 2, lo=lo, hi=hi)
            h = 0.0
            xs = nodes(lo, hi)
            xs = xs[np.abs(xs - xc) > 1e-9]
            g = np.array([float((gelu(x) - mp.mpf(c0)) / (mp.mpf(x) - mp.mpf(xc))) for x in xs])
            w = np.array([abs(x - xc) / float(abs(gelu(x))) for x in xs])
        d = xs - xc
        coef, err = fit_piece(d, g, w, MIDDLE_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, xc, c0, h, coef, err, lo, hi))
    return rows, err_max


def fit_tail():
    rows = []
    err_max = 0.0
    for index, t_lo, t_hi in tail_pieces():
        lo, hi = max(t_lo, -X_LOW), min(t_hi, T_MAX)
        tc, c0 = gal_point(big_m, (lo + hi) / 2, lo=lo, hi=hi)
        ts = nodes(lo, hi)
        ts = ts[np.abs(ts - tc) > 1e-9]
        g = np.array([float((big_m(t) - mp.mpf(c0)) / (mp.mpf(t) - mp.mpf(tc))) for t in ts])
        w = np.array([abs(t - tc) / float(big_m(t)) for t in ts])
        d = ts - tc
        coef, err = fit_piece(d, g, w, TAIL_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, tc, c0, coef, err, lo, hi))
    return rows, err_max


GRAD_MIDDLE_DEGREE = 6
GRAD_TAIL_DEGREE = 5


def grad_middle_pieces():
    """The pieces of f''s middle: quarter binades of y = fl(x + 1) over [0.125, 7)."""
    out = []
    y = 0.125
    while y < 7.0:
        e = int(np.floor(np.log2(y)))
        hi = y + 2.0**e / 4
        out.append((int(np.float32(y).view(np.uint32)) >> 21, y, hi))
        y = hi
    return out


def fit_grad_middle(x_sat):
    """f' = fma(d, q(d), fma(A, q(d), C0)), d = x - XC: rows (index, XC, A,
    C0, q, err, lo, hi)."""
    xh = f32(X_STAR_MP)
    xl = f32(X_STAR_MP - mp.mpf(xh))
    rows, err_max = [], 0.0
    for index, y_lo, y_hi in grad_middle_pieces():
        lo, hi = x_range(y_lo, y_hi)
        lo, hi = max(lo, GRAD_X_LOW), min(hi, x_sat)
        if hi <= lo:
            continue
        xs = nodes(lo, hi)
        if y_hi <= 0.3125:
            # by the zero of f' at x*: f' = (x - XH - XL) q, XH + XL = x*
            # in two float32 parts, so f' keeps its relative accuracy there
            xc, a, c0 = xh, -xl, 0.0
            g = np.array([float(gelu_grad(x) / (mp.mpf(x) - X_STAR_MP)) for x in xs])
            w = np.array([float(abs((mp.mpf(x) - X_STAR_MP) / gelu_grad(x))) for x in xs])
            d = xs - xc
        else:
            if y_lo >= 0.75 and y_hi <= 1.25:  # |x| < 0.25: f'(0) = 1/2 exactly
                xc, c0 = 0.0, 0.5
            elif y_lo >= 6.0:  # f' = 1 - (Q(x) - x phi(x)), an ulp or so below 1: as f's last piece
                xc, c0 = float(np.floor(lo) - 1), 1.0
            else:
                xc, c0 = gal_point(gelu_grad, (lo + hi) / 2, lo=lo, hi=hi)
            a = 0.0
            xs = xs[np.abs(xs - xc) > 1e-9]
            g = np.array([float((gelu_grad(x) - mp.mpf(c0)) / (mp.mpf(x) - mp.mpf(xc))) for x in xs])
            w = np.array([abs(x - xc) / float(abs(gelu_grad(x))) for x in xs])
            d = xs - xc
        coef, err = fit_piece(d, g, w, GRAD_MIDDLE_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, xc, a, c0, coef, err, lo, hi))
    return rows, err_max, (xh, xl)


def fit_grad_tail():
    rows, err_max = [], 0.0
    for index, t_lo, t_hi in tail_pieces():
        lo, hi = max(t_lo, -GRAD_X_LOW), min(t_hi, T_MAX)
        if hi <= lo:
            continue
        tc, c0 = gal_point(big_g, (lo + hi) / 2, lo=lo, hi=hi)
        ts = nodes(lo, hi)
        ts = ts[np.abs(ts - tc) > 1e-9]
        g = np.array([float((big_g(t) - mp.mpf(c0)) / (mp.mpf(t) - mp.mpf(tc))) for t in ts])
        w = np.array([abs(t - tc) / float(big_g(t)) for t in ts])
        d = ts - tc
        coef, err = fit_piece(d, g, w, GRAD_TAIL_DEGREE)
        err_max = max(err_max, err)
        rows.append((index, tc, c0, coef, err, lo, hi))
    return rows, err_max


def fit_exp():
    """P with exp(-s/2) - 1 = s P(s) on |s| <= ln 2 (slightly wider)."""
    bound = float(mp.log(2)) * 1.001
    s = nodes(-bound, bound)
    s = s[np.abs(s) > 1e-12]
    g = np.array([float(mp.expm1(-mp.mpf(x) / 2) / mp.mpf(x)) for x in s])
    w = np.array([abs(x) / float(mp.exp(-mp.mpf(x) / 2)) for x in s])  # relative to 1 + w
    coef = fit_rounded(s, g, w, EXP_DEGREE, fixed=(-0.5,))
    err = float(np.max(np.abs(np.polynomial.polynomial.polyval(s, coef) - g) * w))
    return coef, err


def two_parts(v, bits):
    """v as hi + lo, hi with `bits` significant bits (float32), lo float32."""
    e = int(np.floor(np.log2(abs(float(v)))))
    scale = mp.mpf(2) ** (bits - 1 - e)
    hi = float(mp.nint(mp.mpf(v) * scale) / scale)
    return hi, f32(mp.mpf(v) - mp.mpf(hi))


def merged_tables(middle, tail, slots):
    """`slots` tables of 32 entries: entry i holds the middle piece's values
    (middle: [(index, values)]) or the tail piece's (tail: the same, values
    padded with zeros); entries no piece uses repeat the first middle
    piece's."""
    rows = {}
    for index, values in list(middle) + list(tail):
        index &= 31
        if index in rows:
            raise RuntimeError(f"two pieces at entry {index}")
        rows[index] = list(values) + [0.0] * (slots - len(values))
    fill = rows[middle[0][0] & 31]
    return [[rows.get(i, fill)[k] for i in range(32)] for k in range(slots)]


def bits_hex(v):
    return hex(struct.unpack("<I", struct.pack("<f", v))[0])


def render():
    x_sat = saturation()
    middle, m_err = fit_middle(x_sat)
    tail, t_err = fit_tail()
    exp_coef, e_err = fit_exp()
    g_sat = saturation(gelu_grad, lambda x: 1.0)
    g_middle, gm_err, (xh, xl) = fit_grad_middle(g_sat)
    g_tail, gt_err = fit_grad_tail()
    ln2x2_hi, ln2x2_lo = two_parts(2 * mp.log(2), 16)
    log2e_half = f32(1 / mp.log(2) / 2)

    def row(values):
        return "(" + ", ".join(repr(float(v)) for v in values) + ")"

    # one set of tables for both regions; the tail's C0 and q are negated
    # (the kernel computes -M and -G, and scales them by 2^k)
    f_tables = merged_tables([(r[0], [r[1], r[2], r[3], *r[4]]) for r in middle],
                             [(r[0], [r[1], -r[2], *[-c for c in r[3]]]) for r in tail], 3 + MIDDLE_DEGREE + 1)
    g_tables = merged_tables([(r[0], [r[1], r[2], r[3], *r[4]]) for r in g_middle],
                             [(r[0], [r[1], -r[2], *[-c for c in r[3]]]) for r in g_tail], 3 + GRAD_MIDDLE_DEGREE + 1)
    pieces = [f"#   middle {i & 31:2d}: x in [{lo:+.7f}, {hi:+.7f}], XC {xc!r} (f(XC) -> {c0!r}), fit {err:.1e}"
              for i, xc, c0, h, coef, err, lo, hi in middle]
    pieces += [f"#   tail   {i & 31:2d}: t in [{lo:.7f}, {hi:.7f}], TC {tc!r} (M(TC) -> {c0!r}), fit {err:.1e}"
               for i, tc, c0, coef, err, lo, hi in tail]
    pieces += [f"#   grad middle {i & 31:2d}: x in [{lo:+.7f}, {hi:+.7f}], XC {xc!r} A {a!r} (f'(XC) -> {c0!r}), "
               f"fit {err:.1e}" for i, xc, a, c0, coef, err, lo, hi in g_middle]
    pieces += [f"#   grad tail   {i & 31:2d}: t in [{lo:.7f}, {hi:.7f}], TC {tc!r} (G(TC) -> {c0!r}), fit {err:.1e}"
               for i, tc, c0, coef, err, lo, hi in g_tail]
    lines = [
        '"""Tables of the float32 exact GELU in float32 lanes (core/vector32.py, ``_exact32``).',
        "",
        "Generated by `python tools/fit_exact32.py`; do not edit by hand (its",
        "docstring gives the algorithm).  Every value is a float32.  One set of",
        "32-entry tables per kernel serves both regions: the middle's pieces at",
        "(bits(fl(x + 1)) >> 21) & 31, the tail's at ((bits(t) >> 22) + TAIL_OFFSET) & 31;",
        "entries no piece uses repeat the first middle piece's.",
        "Worst weighted errors of the fits (relative to the result, before",
        f"float32 evaluation): middle {m_err:.2e} (2^{np.log2(m_err):.1f}), tail {t_err:.2e} "
        f"(2^{np.log2(t_err):.1f}), exp {e_err:.2e} (2^{np.log2(e_err):.1f}); f': middle",
        f"{gm_err:.2e} (2^{np.log2(gm_err):.1f}), tail {gt_err:.2e} (2^{np.log2(gt_err):.1f}).",
        '"""',
        "",
        f"X_LOW = {X_LOW!r}  # x below it: the tail",
        f"X_SATURATE = {x_sat!r}  # from here up f(x) = x ({bits_hex(x_sat)})",
        f"T_MAX = {T_MAX!r}  # x <= -T_MAX: f = -0.0",
        f"X_STAR = {X_STAR!r}  # the minimum of x Phi(x) (float64)",
        f"LOG2E_HALF = {log2e_half!r}  # log2(e) / 2",
        f"LN2X2 = ({ln2x2_hi!r}, {ln2x2_lo!r})  # 2 ln 2: 16 significant bits, and the rest",
        f"EXP_P = {row(exp_coef)}  # exp(-s/2) - 1 = s P(s), |s| <= ln 2",
        f"TAIL_DEGREE = {TAIL_DEGREE!r}  # of the tail's q (f)",
        f"GRAD_TAIL_DEGREE = {GRAD_TAIL_DEGREE!r}  # of the tail's q (f')",
        f"TAIL_OFFSET = {TAIL_OFFSET!r}  # a tail piece's entry: ((bits(t) >> 22) + TAIL_OFFSET) & 31",
        "# f: entry (bits(fl(x + 1)) >> 21) & 31 for the middle, XC, C0, H, then q's coefficients",
        "# from the lowest degree (f = fma(d, q, fma(H, x, C0)), d = x - XC); the tail's entry: TC, -C0,",
        "# then -q's coefficients (-M = -C0 - d q(d), d = t - TC)",
        "TABLES = (",
        *[f"    {row(t)}," for t in f_tables],
        ")",
        f"GRAD_X_LOW = {GRAD_X_LOW!r}  # f': x below it the tail",
        f"GRAD_X_SATURATE = {g_sat!r}  # f': from here up f'(x) = 1 ({bits_hex(g_sat)})",
        f"X_STAR_PARTS = ({xh!r}, {xl!r})  # x* = XH + XL",
        "# f': the middle's entry: XC, A, C0, then q's coefficients (f' = fma(d, q, fma(A, q, C0)),",
        "# d = x - XC); the tail's: TC, -C0, then -q's coefficients (-G = -C0 - d q(d); f'(-t) =",
        "# -exp(-t^2/2) G(t))",
        "GRAD_TABLES = (",
        *[f"    {row(t)}," for t in g_tables],
        ")",
        "# the pieces:",
        *pieces,
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(text.split('"""')[1])


if __name__ == "__main__":
    main()
