"""Fit the polynomial coefficients of the kernels and write gelu_numba/_coeffs.py.

    python tools/fit_coeffs.py            # rewrite gelu_numba/_coeffs.py
    python tools/fit_coeffs.py --check    # exit 1 if the file is out of date

Every approximation is a polynomial fitted in the minimax sense (Lawson's
iteratively reweighted least squares on Chebyshev nodes, in 200-bit
arithmetic) against the mpmath formulas of ``gelu_numba.reference``.  The
coefficients are then rounded to the target format one at a time, lowest
order first, refitting the remaining ones after each rounding, so that the
rounding error is absorbed instead of accumulated.  The leading coefficient
of each polynomial is stored as a double-word (hi, lo) pair.

The pieces (see gelu_numba/_scalar.py for how they are assembled):

  EXP      (e^r - 1 - r) / r^2 on |r| <= ln2/2
  A_F, A_G region A, x in [A_LO, A_HI], s = x^2:
           f = x/2 + s * A_F(s),  f' = 1/2 + x * A_G(s)
  B_F, B_G region B, x in [B_LO, A_LO), d = x - x_min:
           f = f_min + d^2 * B_F(d),  f' = d * B_G(d)
  TAIL_R   exact GELU only, t = |x| in [A_HI, T_MAX], u = (t - c)/(t + c):
           exp(t^2/2) * t * Phi(-t) = TAIL_R(u); TAIL_DR ~ dR/du, roughly
"""

import argparse
import pathlib
import sys

import mpmath as mp

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gelu_numba import reference  # noqa: E402

mp.mp.prec = 200

# Region boundaries, shared by every variant and both formats.
A_LO, A_HI = -0.6, 1.0
B_LO = -1.0
TAIL_C = 3.0
# |x| beyond which each kernel is saturated in the format: f(x) = x or -0.0,
# f'(x) = 1 or -0.0.  Kernels clamp to it before any arithmetic.
T_MAX = {
    "float32": {"gelu": 15.0, "gelu_tanh": 12.0, "gelu_sigmoid": 70.0},
    "float64": {"gelu": 39.0, "gelu_tanh": 24.0, "gelu_sigmoid": 450.0},
}

FORMATS = {"float32": 24, "float64": 53}

# Degrees of the polynomials: the smallest that bring the relative error of
# each approximation below about 2^-29 (float32) and 2^-58 (float64), a
# sixteenth of an ulp; the script prints what each achieves.
DEGREES = {
    "float32": {
        "EXP": 5, "TAIL_R": 10,
        "gelu": {"A_F": 6, "A_G": 6, "B_F": 6, "B_G": 7},
        "gelu_tanh": {"A_F": 6, "A_G": 6, "B_F": 6, "B_G": 7},
        "gelu_sigmoid": {"A_F": 8, "A_G": 8, "B_F": 7, "B_G": 7},
    },
    "float64": {
        "EXP": 10, "TAIL_R": 23,
        "gelu": {"A_F": 12, "A_G": 12, "B_F": 12, "B_G": 12},
        "gelu_tanh": {"A_F": 12, "A_G": 12, "B_F": 12, "B_G": 13},
        "gelu_sigmoid": {"A_F": 16, "A_G": 16, "B_F": 14, "B_G": 14},
    },
}


def round_to(v, fmt):
    """Round an mpf to the nearest float of the format (normal range only)."""
    p = FORMATS[fmt]
    if v == 0:
        return mp.mpf(0)
    e = int(mp.floor(mp.log(abs(v), 2)))
    q = e - p + 1
    return mp.ldexp(mp.nint(mp.ldexp(v, -q)), q)


def split(v, fmt):
    """Double-word (hi, lo) of an mpf in the format."""
    hi = round_to(v, fmt)
    return hi, round_to(v - hi, fmt)


def chebyshev_nodes(a, b, n):
    return [
        (a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)
        for k in range(n)
    ]


def weighted_lstsq(rows, targets, weights):
    A = mp.matrix([[w * c for c in row] for row, w in zip(rows, weights)])
    y = mp.matrix([w * t for t, w in zip(targets, weights)])
    coeffs, _ = mp.qr_solve(A, y)
    return list(coeffs)


def lawson_weights(rows, targets, weights, iterations=40):
    """Node weights under which least squares gives the minimax fit (Lawson)."""
    n = len(rows)
    lw = [mp.mpf(1) / n] * n
    for _ in range(iterations):
        scaled = [w * mp.sqrt(v) for w, v in zip(weights, lw)]
        coeffs = weighted_lstsq(rows, targets, scaled)
        err = [abs(w * (sum(c * b for c, b in zip(coeffs, row)) - t))
               for row, t, w in zip(rows, targets, weights)]
        total = sum(v * e for v, e in zip(lw, err))
        if total == 0:
            break
        lw = [v * e / total for v, e in zip(lw, err)]
    return [w * mp.sqrt(v) for w, v in zip(weights, lw)]


def fit(func, weight, a, b, degree, fmt, fixed=()):
    """Fit sum_j c_j y^j ~ func(y) on [a, b], minimising max |weight * error|.

    `fixed` are leading (low-order) coefficients already decided.  Returns the
    coefficients rounded to `fmt` (after `fixed`) and the max weighted error
    of the rounded polynomial on a dense grid.
    """
    nodes = chebyshev_nodes(mp.mpf(a), mp.mpf(b), 2 * degree + 16)
    values = [func(y) for y in nodes]
    wts = [weight(y) for y in nodes]
    rows = [[y**j for j in range(len(fixed), degree + 1)] for y in nodes]
    rest = [v - sum(c * y**j for j, c in enumerate(fixed)) for v, y in zip(values, nodes)]
    wts = lawson_weights(rows, rest, wts)
    decided = list(fixed)
    while len(decided) <= degree:
        k = len(decided)
        rows = [[y**j for j in range(k, degree + 1)] for y in nodes]
        rest = [v - sum(c * y**j for j, c in enumerate(decided)) for v, y in zip(values, nodes)]
        decided.append(round_to(weighted_lstsq(rows, rest, wts)[0], fmt))
    grid = [mp.mpf(a) + (mp.mpf(b) - a) * i / 1000 for i in range(1001)]
    worst = max(
        abs(weight(y) * (sum(c * y**j for j, c in enumerate(decided)) - func(y)))
        for y in grid
        if y != 0
    )
    return decided[len(fixed):], worst


# --------------------------------------------------------------------------
# The functions being approximated.


def f_of(variant):
    return lambda x: reference._FORMULAS[variant](x)[0]


def g_of(variant):
    return lambda x: reference._FORMULAS[variant + "_grad"](x)[0]


def leading_values(variant):
    """P(0) = lim (f - x/2)/x^2 and Q(0) = 2 P(0) for region A."""
    if variant == "gelu_sigmoid":
        return mp.mpf("1.702") / 4
    return 1 / mp.sqrt(2 * mp.pi)


def fit_region_a(variant, fmt, report):
    f, g = f_of(variant), g_of(variant)
    p0 = leading_values(variant)
    out = {}
    # f = x/2 + s*(p0 + s*P1(s)) ; relative error of P = (f - x/2)/s.
    P = lambda s: (f(mp.sqrt(s)) - mp.sqrt(s) / 2) / s  # noqa: E731
    hi, lo = split(p0, fmt)
    c, err = fit(
        lambda s: (P(s) - p0) / s, lambda s: s / P(s), mp.mpf(0), A_HI**2,
        DEGREES[fmt][variant]["A_F"] - 1, fmt,
    )
    out["A_F"] = ((hi, lo), c)
    report(f"{variant:13s} {fmt} A_F deg {len(c)} rel err 2^{float(mp.log(err, 2)):.1f}")
    # f' = 1/2 + x*(q0 + s*Q1(s)).
    q0 = 2 * p0
    Q = lambda s: (g(mp.sqrt(s)) - mp.mpf(1) / 2) / mp.sqrt(s)  # noqa: E731
    hi, lo = split(q0, fmt)
    c, err = fit(
        lambda s: (Q(s) - q0) / s, lambda s: s / Q(s), mp.mpf(0), A_HI**2,
        DEGREES[fmt][variant]["A_G"] - 1, fmt,
    )
    out["A_G"] = ((hi, lo), c)
    report(f"{variant:13s} {fmt} A_G deg {len(c)} rel err 2^{float(mp.log(err, 2)):.1f}")
    return out


def fit_region_b(variant, fmt, report):
    f, g = f_of(variant), g_of(variant)
    xm, fm = reference.minimum(variant, prec=200)
    lo_d, hi_d = mp.mpf(B_LO) - xm, mp.mpf(A_LO) - xm
    out = {"XMIN": split(xm, fmt), "FMIN": split(fm, fmt)}
    S = lambda d: (f(xm + d) - fm) / d**2  # noqa: E731
    V = lambda d: g(xm + d) / d  # noqa: E731
    s0 = mp.diff(g, xm) / 2
    for key, func, lead in (("B_F", S, s0), ("B_G", V, 2 * s0)):
        c, err = fit(
            lambda d, func=func, lead=lead: (func(d) - lead) / d,
            lambda d, func=func: d / func(d),
            lo_d, hi_d, DEGREES[fmt][variant][key] - 1, fmt,
        )
        out[key] = (split(lead, fmt), c)
        report(f"{variant:13s} {fmt} {key} deg {len(c)} rel err 2^{float(mp.log(err, 2)):.1f}")
    return out


def fit_tail(fmt, report):
    """exp(t^2/2) * t * Phi(-t) as a polynomial in u = (t - c)/(t + c)."""
    c = mp.mpf(TAIL_C)

    def R(u):
        t = c * (1 + u) / (1 - u)
        return mp.exp(t * t / 2) * t * reference._ncdf(-t)

    u_lo = (mp.mpf(A_HI) - c) / (A_HI + c)
    u_hi = (mp.mpf(T_MAX[fmt]["gelu"]) - c) / (T_MAX[fmt]["gelu"] + c)
    r0 = R(mp.mpf(0))
    coeffs, err = fit(
        lambda u: (R(u) - r0) / u, lambda u: u / R(u), u_lo, u_hi,
        DEGREES[fmt]["TAIL_R"] - 1, fmt,
    )
    report(f"tail R        {fmt} deg {len(coeffs)} rel err 2^{float(mp.log(err, 2)):.1f}")
    # dR/du, needed only to ~2^-12: it carries the rounding error of u.
    dR = lambda u: mp.diff(R, u)  # noqa: E731
    slope, err = fit(dR, lambda u: 1 / R(u), u_lo, u_hi, 6, "float32")
    report(f"tail dR/du    {fmt} deg 6 err/R 2^{float(mp.log(err, 2)):.1f}")
    return (split(r0, fmt), coeffs, slope)


def fit_exp(fmt, report):
    h = mp.log(2) / 2 * (1 + mp.mpf(2) ** -10)
    E = lambda r: (mp.exp(r) - 1 - r) / r**2  # noqa: E731
    coeffs, err = fit(
        E, lambda r: r**2 / mp.exp(r), -h, h, DEGREES[fmt]["EXP"], fmt,
    )
    report(f"exp           {fmt} deg {len(coeffs) - 1} rel err 2^{float(mp.log(err, 2)):.1f}")
    return coeffs


def constants(fmt):
    """Double-word constants of the formulas."""
    p = FORMATS[fmt]
    k = mp.sqrt(2 / mp.pi)
    c = mp.mpf("0.044715")
    ln2 = mp.log(2)
    # Cody-Waite: LN2_HI keeps few enough bits that k * LN2_HI is exact for
    # every |k| < 2^11 (float64) or 2^8 (float32).
    kbits = 11 if fmt == "float64" else 8
    q = -(p - kbits)
    ln2_hi = mp.ldexp(mp.floor(mp.ldexp(ln2, -q)), q)
    return {
        "ln2": (ln2_hi, round_to(ln2 - ln2_hi, fmt)),
        "log2e": round_to(1 / ln2, fmt),
        "inv_sqrt_2pi": split(1 / mp.sqrt(2 * mp.pi), fmt),
        # tanh form: w = 2u = x * (tanh_b + tanh_a * x^2); w' = tanh_b + tanh_a3 * x^2
        "tanh_b": split(2 * k, fmt),
        "tanh_a": split(2 * k * c, fmt),
        "tanh_a3": split(6 * k * c, fmt),
        "sigmoid_a": split(mp.mpf("1.702"), fmt),
    }


def render(tables):
    def num(v):
        return repr(float(v))

    def tup(vals):
        return "(" + ", ".join(num(v) for v in vals) + ("," if len(vals) == 1 else "") + ")"

    lines = [
        '"""Coefficients and constants of the kernels, per format.',
        "",
        "Generated by tools/fit_coeffs.py; do not edit by hand.  Polynomials are",
        "stored lowest order first; a pair (hi, lo) is a double-word constant.",
        '"""',
        "",
        "from collections import namedtuple",
        "",
        "# Region boundaries: A is [A_LO, A_HI], B is [B_LO, A_LO), the tails are the rest.",
        f"A_LO = {A_LO!r}",
        f"A_HI = {A_HI!r}",
        f"B_LO = {B_LO!r}",
        "",
        "Common = namedtuple(",
        '    "Common",',
        '    "ln2 log2e exp inv_sqrt_2pi tanh_b tanh_a tanh_a3 sigmoid_a tail_c tail_r0 tail_r tail_dr",',
        ")",
        "Variant = namedtuple(",
        '    "Variant", "t_max xmin fmin a_f0 a_f a_g0 a_g b_f0 b_f b_g0 b_g"',
        ")",
    ]
    for fmt in FORMATS:
        suffix = "_F32" if fmt == "float32" else "_F64"
        t = tables[fmt]
        lines += ["", f"COMMON{suffix} = Common("]
        for name, v in t["constants"].items():
            lines.append(f"    {name}={tup(v) if isinstance(v, tuple) else num(v)},")
        lines.append(f"    exp={tup(t['EXP'])},")
        lines.append(f"    tail_c={TAIL_C!r},")
        (hi, lo), c, slope = t["TAIL_R"]
        lines.append(f"    tail_r0={tup((hi, lo))},")
        lines.append(f"    tail_r={tup(c)},")
        lines.append(f"    tail_dr={tup(slope)},")
        lines.append(")")
        for variant in reference.VARIANTS:
            v = t[variant]
            lines += ["", f"{variant.upper()}{suffix} = Variant("]
            lines.append(f"    t_max={T_MAX[fmt][variant]!r},")
            lines.append(f"    xmin={tup(v['XMIN'])},")
            lines.append(f"    fmin={tup(v['FMIN'])},")
            for key in ("A_F", "A_G", "B_F", "B_G"):
                (hi, lo), c = v[key]
                lines.append(f"    {key.lower()}0={tup((hi, lo))},")
                lines.append(f"    {key.lower()}={tup(c)},")
            lines.append(")")
    return "\n".join(lines) + "\n"


def build(report=print):
    tables = {}
    for fmt in FORMATS:
        t = {"constants": constants(fmt), "EXP": fit_exp(fmt, report), "TAIL_R": fit_tail(fmt, report)}
        for variant in reference.VARIANTS:
            t[variant] = {**fit_region_a(variant, fmt, report), **fit_region_b(variant, fmt, report)}
        tables[fmt] = t
    return render(tables)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if _coeffs.py is stale")
    args = parser.parse_args()
    text = build()
    target = ROOT / "gelu_numba" / "_coeffs.py"
    if args.check:
        if target.read_text() != text:
            print("gelu_numba/_coeffs.py is out of date; run tools/fit_coeffs.py")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
