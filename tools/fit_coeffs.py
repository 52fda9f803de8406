"""Fit the polynomial coefficients of the kernels and write gelu_numba/core/coefficients.py.

    python tools/fit_coeffs.py            # rewrite gelu_numba/core/coefficients.py
    python tools/fit_coeffs.py --check    # exit 1 if the file is out of date

Every approximation is a polynomial fitted in the minimax sense (Lawson's
iteratively reweighted least squares on Chebyshev nodes, in 200-bit
arithmetic) against the mpmath formulas of ``gelu_numba.tools.reference``.  The
coefficients are then rounded to the target format one at a time, lowest
order first, refitting the remaining ones after each rounding, so that the
rounding error is absorbed instead of accumulated.  The leading coefficient
of each polynomial is stored as a double-word (hi, lo) pair.

The pieces (see gelu_numba/core/formulas.py for how they are assembled):

  EXP      (e^r - 1 - r) / r^2 on |r| <= ln2/2
  B_F, B_G region B, x in [B_LO, A_LO), d = x - x_min:
           f = f_min + d^2 * B_F(d),  f' = d * B_G(d)
  TAIL_N   exact GELU only, u = (t - c)/(t + c), t = |x| >= 0:
           (t + c) exp(t^2/2) Phi(-t) = m0 + v (m1 + v TAIL_N(v)),
           v = u - u0, u0 the middle of the interval; tail_dn ~ its
           derivative, roughly

Two tables, each with EXP and TAIL_N over all t >= 0 (the tail formulas
serve every x): "float32" and "float64" for kernels computed in their own
format (double word; with the variants' saturation points and the minimum).
float32 on the CPU has its own algorithm and tables (tools/fit_tables32.py).
"""

import argparse
import pathlib
import sys

import mpmath as mp

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gelu_numba.tools import reference  # noqa: E402

mp.mp.prec = 200

# Region B is [B_LO, A_LO); A_HI, the end of the region A of
# an earlier design, stays a junction the accuracy sample probes.
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

TABLES = ("float32", "float64")
#: Tables without variants of their own (none since the float32-in-float64
#: and float32-in-float32 CPU tables were retired).
NO_VARIANTS = ()
#: The floor of the tail formulas' t in the same-precision tables: below it
#: f = x/2 and f' = 1/2 to working precision, and the double-word low parts
#: of t N(t) would underflow (raising the flag for a normal result).
TAIL_FLOOR = {"float32": 2.0**-40, "float64": 2.0**-100}
#: The format a table's coefficients are rounded to.
FORMAT_OF = {"float32": "float32", "float64": "float64"}

# Degrees of the polynomials: the smallest that bring the relative error of
# each approximation below about 2^-29 (float32) and 2^-58 (float64), a
# sixteenth of an ulp; the script prints what each achieves.
DEGREES = {
    "float32": {
        "EXP": 5, "TAIL_N": 11,
        "gelu": {"B_F": 6, "B_G": 7},
        "gelu_tanh": {"B_F": 6, "B_G": 7},
        "gelu_sigmoid": {"B_F": 7, "B_G": 7},
    },
    "float64": {
        "EXP": 10, "TAIL_N": 26,
        "gelu": {"B_F": 12, "B_G": 12},
        "gelu_tanh": {"B_F": 12, "B_G": 13},
        "gelu_sigmoid": {"B_F": 14, "B_G": 14},
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


def fit_tail(table, report):
    """M(t) = (t + c) exp(t^2/2) Phi(-t) as a polynomial in u = (t - c)/(t + c).

    M stays within [0.4, 1.5] on all of [0, inf), so its polynomial does not
    cancel (N = exp(t^2/2) Phi(-t) alone falls like 1/t and would).
    Every table covers t in [0, T_MAX].
    """
    fmt = FORMAT_OF[table]
    c = mp.mpf(TAIL_C)

    def N(u):
        t = c * (1 + u) / (1 - u)
        return (t + c) * mp.exp(t * t / 2) * reference._ncdf(-t)

    t_lo = 0
    t_hi = T_MAX[fmt]["gelu"]
    u_lo = (mp.mpf(t_lo) - c) / (t_lo + c)
    u_hi = (mp.mpf(t_hi) - c) / (t_hi + c)
    # The polynomial is in v = u - u0, u0 the middle of the interval rounded
    # to a multiple of 1/64 (so that u - u0 is exact near u0): a centred
    # variable halves the largest |v| and with it the rounding noise.
    u0 = mp.nint((u_lo + u_hi) / 2 * 64) / 64
    M = lambda v: N(v + u0)  # noqa: E731
    m0 = M(mp.mpf(0))
    m1 = mp.diff(M, mp.mpf(0))
    # M = m0 + v (m1 + v P(v)), m0 and m1 double words: only v^2 P is summed
    # in working precision.
    coeffs, err = fit(
        lambda v: (M(v) - m0 - m1 * v) / v**2, lambda v: v**2 / M(v), u_lo - u0, u_hi - u0,
        DEGREES[table]["TAIL_N"] - 2, fmt,
    )
    report(f"tail M        {table:8} deg {len(coeffs)} rel err 2^{float(mp.log(err, 2)):.1f}")
    # dM/dv, needed only to ~2^-12: it carries the rounding error of u.
    dM = lambda v: mp.diff(M, v)  # noqa: E731
    slope, err = fit(dM, lambda v: 1 / M(v), u_lo - u0, u_hi - u0, 6, "float32")
    report(f"tail dM/du    {table:8} deg 6 err/M 2^{float(mp.log(err, 2)):.1f}")
    return (u0, split(m0, fmt), split(m1, fmt), coeffs, slope)


def fit_exp(table, report):
    h = mp.log(2) / 2 * (1 + mp.mpf(2) ** -10)
    E = lambda r: (mp.exp(r) - 1 - r) / r**2  # noqa: E731
    coeffs, err = fit(
        E, lambda r: r**2 / mp.exp(r), -h, h, DEGREES[table]["EXP"], FORMAT_OF[table],
    )
    report(f"exp           {table:8} deg {len(coeffs) - 1} rel err 2^{float(mp.log(err, 2)):.1f}")
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
        '"""Coefficients and constants of the kernels, per table.',
        "",
        "Generated by tools/fit_coeffs.py; do not edit by hand.  Polynomials are",
        "stored lowest order first; a pair (hi, lo) is a double-word constant.",
        "_F32 and _F64 are for kernels computed in their own format (float32 on",
        "the CPU has its own tables: tables32.py).  Every tail formula serves all",
        "t = |x| from tail_lo (below it f = x/2, f' = 1/2) to the variant's t_max.",
        '"""',
        "",
        "from collections import namedtuple",
        "",
        "# Region B is [B_LO, A_LO); A_HI is a junction of an earlier design.",
        f"A_LO = {A_LO!r}",
        f"A_HI = {A_HI!r}",
        f"B_LO = {B_LO!r}",
        "",
        "Common = namedtuple(",
        '    "Common",',
        '    "ln2 log2e exp inv_sqrt_2pi tanh_b tanh_a tanh_a3 sigmoid_a"',
        '    " tail_c tail_lo tail_u0 tail_n0 tail_n1 tail_n tail_dn",',
        ")",
        "Variant = namedtuple(",
        '    "Variant", "t_max xmin fmin b_f0 b_f b_g0 b_g"',
        ")",
    ]
    suffix = {"float32": "_F32", "float64": "_F64"}
    for table in TABLES:
        t = tables[table]
        lines += ["", f"COMMON{suffix[table]} = Common("]
        for name, v in t["constants"].items():
            lines.append(f"    {name}={tup(v) if isinstance(v, tuple) else num(v)},")
        lines.append(f"    exp={tup(t['EXP'])},")
        lines.append(f"    tail_c={TAIL_C!r},")
        lines.append(f"    tail_lo={TAIL_FLOOR[table]!r},")
        u0, lead0, lead1, c, slope = t["TAIL_N"]
        lines.append(f"    tail_u0={num(u0)},")
        lines.append(f"    tail_n0={tup(lead0)},")
        lines.append(f"    tail_n1={tup(lead1)},")
        lines.append(f"    tail_n={tup(c)},")
        lines.append(f"    tail_dn={tup(slope)},")
        lines.append(")")
        if table in NO_VARIANTS:
            continue
        for variant in reference.VARIANTS:
            v = t[variant]
            lines += ["", f"{variant.upper()}{suffix[table]} = Variant("]
            lines.append(f"    t_max={T_MAX[table][variant]!r},")
            lines.append(f"    xmin={tup(v['XMIN'])},")
            lines.append(f"    fmin={tup(v['FMIN'])},")
            for key in ("B_F", "B_G"):
                (hi, lo), c = v[key]
                lines.append(f"    {key.lower()}0={tup((hi, lo))},")
                lines.append(f"    {key.lower()}={tup(c)},")
            lines.append(")")
    return "\n".join(lines) + "\n"


def build(report=print):
    tables = {}
    for table in TABLES:
        fmt = FORMAT_OF[table]
        t = {"constants": constants(fmt), "EXP": fit_exp(table, report), "TAIL_N": fit_tail(table, report)}
        if table not in NO_VARIANTS:
            for variant in reference.VARIANTS:
                t[variant] = fit_region_b(variant, fmt, report)
        tables[table] = t
    return render(tables)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if gelu_numba/core/coefficients.py is stale")
    args = parser.parse_args()
    text = build()
    target = ROOT / "gelu_numba" / "core" / "coefficients.py"
    if args.check:
        if target.read_text() != text:
            print("gelu_numba/core/coefficients.py is out of date; run tools/fit_coeffs.py")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
