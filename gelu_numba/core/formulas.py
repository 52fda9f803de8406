"""The GELU formulas: one scalar function per kernel, compiled for every target.

Each public function here is the single definition of its kernel.  The CPU
ufuncs (serial and parallel) and the CUDA kernels are all compiled from it,
and it runs as plain Python on NumPy scalars too.  It is generic over the
format: ``T = type(x)`` and every constant goes through ``T(...)`` or a table
chosen by :func:`~gelu_numba.core.fp.pick`/:func:`~gelu_numba.core.fp.common`.

The mathematics
---------------
exact    f(x) = x Phi(x);  t = |x|,  t Phi(-t) = t exp(-t^2/2) N(t)
         with N(t) = exp(t^2/2) Phi(-t) = M(u)/(t+c), M a polynomial in
         u = (t-c)/(t+c) (M stays in [0.4, 1.5], so it does not cancel);
         f(x) = x - t Phi(-t) for x > 0;
         f'(-t) = exp(-t^2/2) (N(t) - t/sqrt(2 pi)),  f'(t) = 1 - f'(-t).
tanh     f(x) = x sigma(w), w = x (b + a x^2) (= 2u of the tanh form)
sigmoid  f(x) = x sigma(w), w = 1.702 x
         with E = exp(-|w|): x sigma(w) = x E/(1+E) (x < 0) or x/(1+E);
         f' = E (1 + E + x w')/(1+E)^2 (x < 0) or (1 + E + E x w')/(1+E)^2.

Second derivatives, even in x (f(x) = x + f(-x)), with t = |x|:
exact    f''(t) = phi(t) (2 - t^2)
tanh,    f''(t) = E [A (1 + E) - B (1 - E)] / (1 + E)^3, E = exp(-w(t)),
sigmoid  A = 2 w' + t w'' (2b + 12a t^2, or 2 * 1.702), B = t w'^2;
         evaluated the same way under every policy (no regions: no
         cancellation beyond what the error scale, 2 phi or 2 sigma' w',
         allows), with exp's argument split exactly and 2^k applied last.

These "tail formulas" are exact everywhere.  float32 on the CPU has an
algorithm of its own (``vector32``: the kernels below hand float32 to it in
CPU code); what follows is how every other target evaluates them:

DW, same precision (float64; float32 on CUDA): the tail formulas for all
x but around the minimum, evaluated in double word (the argument of exp
alone would cost hundreds of ulps if rounded), with M fitted down to t = 0::

    x <= -t_max           saturated: f = -0.0, f' = -0.0
    B [B_LO, A_LO)        around the minimum x_min: f = f_min + d^2 S(d),
                          f' = d V(d), d = x - x_min, in working precision
    |x| < tail_lo         f = x/2, f' = 1/2 (2^-40 in float32, 2^-100 in
                          float64: the low parts of t N(t) would underflow)
    elsewhere             tail formula, double word
    x >= t_max            saturated: f = x, f' = 1

A vector loop computes every branch of a select, so every region costs every
lane: an earlier design also had polynomials around zero in double word,
which with region B in double word cost float64 about a quarter of its
time.  The tail formula serves zero as well (0.8 ulp there in float64
against 0.55), and region B needs no double word: d^2 S(d) is small next
to f_min.

Region B is what makes f monotone as computed:
near the minimum f changes by far less than an ulp per step, so a formula
whose rounding noise is a fraction of an ulp of f would wiggle (DW's tail
formula, its polynomial tails summed in working precision, leaves a few
hundredths of an ulp, enough within a few hundredths of the minimum:
tests/test_properties.py checks consecutive floats there).
There f_min + d^2 S(d) rises strictly in d, its noise being relative to
d^2 S, not to f.

Every region evaluates with its input clamped into its own interval, and NaN
is replaced by zero up front: vectorised loops evaluate all regions for
every element, and no lane may overflow, divide by zero or make a NaN
(NumPy would report it as a floating-point warning), nor underflow unless
the result itself does (np.seterr(under="raise") would): saturated lanes
compute at 0, terms that cannot change a rounded result are bounded at
2^-90, and polynomials see 0 for arguments whose powers would underflow.
"""

from . import coefficients as C
from .names import NAMES
from .fp import (
    clamp,
    common,
    cpu_float32,
    cpu_float32_kernel,
    dw_add,
    dw_div,
    dw_mul,
    dw_mul1,
    dw_poly2,
    exp_dw,
    exp_reduce,
    DW,
    double_word,
    exact_splits,
    fast_two_sum,
    fma,
    jitable,
    pick,
    poly,
    scale2,
    scale2_in_range,
    two_prod,
    two_sum,
    policy,
)

__all__ = list(NAMES)


# --------------------------------------------------------------------------
# Small helpers.


@jitable
def _tiny_to_zero(x):
    """0 where x^2 P(x^2) is far below an ulp of x/2 (|x| < 2^-40 in float32,
    2^-100 in float64), x elsewhere: squaring such an x would raise the
    underflow flag for a normal result."""
    T = type(x)
    return T(0) if abs(x) < T(pick(x, 2.0**-40, 2.0**-100)) else x


# --------------------------------------------------------------------------
# Region B: x in [B_LO, A_LO), polynomials in d = x - x_min (same precision).


@jitable
def _offset_from_minimum(x, xmin):
    """d = x - x_min as a double word; x - xmin[0] is exact on region B."""
    T = type(x)
    xb = clamp(x, T(C.B_LO), T(C.A_LO))
    return two_sum(xb - T(xmin[0]), -T(xmin[1]), True)


@jitable
def _near_minimum(x, xmin, fmin, lead, coeffs):
    """f_min + d^2 * S(d), in working precision but for d (exact): d^2 S(d) is
    below 0.07 |f_min| on region B, so its rounding costs a seventh of an ulp
    of f; it is added to f_min's low part first.  The sum rises strictly in
    |d|: its rounding noise is relative to d^2 S, not to f."""
    T = type(x)
    d_hi, d_lo = _offset_from_minimum(x, xmin)
    s = fma(d_hi, poly(d_hi, coeffs), T(lead[0]))
    return T(fmin[0]) + (T(fmin[1]) + (d_hi * d_hi) * s)


@jitable
def _near_minimum_grad(x, xmin, lead, coeffs):
    """d * V(d) in working precision; its sign is d's (V > 0, d exact)."""
    T = type(x)
    d_hi, d_lo = _offset_from_minimum(x, xmin)
    v = fma(d_hi, poly(d_hi, coeffs), T(lead[0]))
    return fma(d_hi, v, d_lo * v)


# --------------------------------------------------------------------------
# The tail formulas.  c is the table of shared constants, dw the switch to
# double-word arithmetic.


@jitable
def _tail_magnitude(x, c, t_max):
    """|x| clamped into the tail formulas' interval [c.tail_lo, t_max]."""
    T = type(x)
    return clamp(abs(x), T(c.tail_lo), t_max)


@jitable
def _signed_tail_input(x, c, t_max):
    T = type(x)
    t = _tail_magnitude(x, c, t_max)
    return -t if x < T(0) else t


@jitable
def _dw_tail_parts(t, c, value):
    """DW: exp(-t^2/2) = 2^k (e_hi + e_lo) and t N(t) (value) or N(t).

    With s = t + c, N = M(u)/s and t N = M(u) w, w = t/s: one division gives
    w (value) or i = 1/s (derivative), and u = 2w - 1 or 1 - 2c i from it,
    so the value pays for no second product.  v = u - u0 is a double word,
    its low part entering through a rough fit of M'.
    """
    T = type(t)
    a_hi, a_lo = _minus_half_square(t, DW)
    k, e_hi, e_lo = exp_dw(a_hi, a_lo, c, True)
    s_hi, s_lo = two_sum(t, T(c.tail_c), True)
    if value:
        z_hi, z_lo = dw_div(t, T(0), s_hi, s_lo, True)  # w = t/(t + c)
        v_hi, v_err = two_sum(T(2) * z_hi, -(T(1) + T(c.tail_u0)), True)
        v_lo = v_err + T(2) * z_lo
    else:
        z_hi, z_lo = dw_div(T(1), T(0), s_hi, s_lo, True)  # i = 1/(t + c)
        m_hi, m_lo = two_prod(T(2) * T(c.tail_c), z_hi, True)
        v_hi, v_err = two_sum(T(1) - T(c.tail_u0), -m_hi, True)
        v_lo = v_err - (m_lo + T(2) * T(c.tail_c) * z_lo)
    q_hi, q_lo = dw_poly2(v_hi, c.tail_n0, c.tail_n1, c.tail_n, True)
    q_lo = fma(poly(v_hi, c.tail_dn), v_lo, q_lo)
    n_hi, n_lo = dw_mul(q_hi, q_lo, z_hi, z_lo, True)
    return k, e_hi, e_lo, n_hi, n_lo


@jitable
def _positive_side_scale(k):
    """max(k, -90), for a term 2^k m that is subtracted from x or 1 (x > 0):
    below 2^-90 it cannot change the rounded result, and a subnormal one
    would raise the underflow flag for a normal result (gelu(50.0) = 50.0
    while exp(-1250) underflows).  Lanes of a vector loop whose x < 0 compute
    this side too, so the low parts' scale is bounded the same way."""
    T = type(k)
    return k if k > T(-90) else T(-90)


@jitable
def _minus_half_square(t, p):
    """-t^2/2 as (a_hi, a_lo), exact (critical: exp(-t^2/2) turns its
    absolute error into the result's relative error).

    t runs down to tail_lo: exp(-t^2/2) is 1 to
    working precision below the floor of t^2, and a smaller argument would
    underflow in the powers of the exp polynomial (raising the flag for
    gelu_grad of a float32 subnormal, 0.5).
    """
    T = type(t)
    h, l = two_prod(t, t, exact_splits(p))
    hc = _exp_argument_floor(h)
    l = l if hc == h else T(0)
    return hc * T(-0.5), l * T(-0.5)


@jitable
def _exact_tail(x, t_max, c, p):
    """x Phi(x): -t Phi(-t) for x < 0, x - t Phi(-t) for x > 0."""
    T = type(x)
    D = double_word(p)
    t = _tail_magnitude(x, c, t_max)
    k, e_hi, e_lo, r_hi, r_lo = _dw_tail_parts(t, c, True)  # t N(t)
    g_hi, g_lo = dw_mul(e_hi, e_lo, r_hi, r_lo, D)  # t Phi(-t) / 2^k
    if D:  # (a pair: its high part is the answer)
        g_hi, g_lo = fast_two_sum(g_hi, g_lo, True)
    k_pos = _positive_side_scale(k)
    g = scale2(g_hi, k if x < T(0) else k_pos)
    if x < T(0):
        return -g
    s, s_err = two_sum(t, -g, D)
    return s + (s_err - scale2_in_range(g_lo, k_pos))


@jitable
def _exact_tail_grad(x, t_max, c, p):
    """(m, k) with f'(x) = m 2^k: f'(-t) = exp(-t^2/2) (N(t) - t/sqrt(2 pi))."""
    T = type(x)
    D = double_word(p)
    t = _tail_magnitude(x, c, t_max)
    k, e_hi, e_lo, n_hi, n_lo = _dw_tail_parts(t, c, False)
    v_hi, v_lo = dw_mul1(t, T(c.inv_sqrt_2pi[0]), T(c.inv_sqrt_2pi[1]), D)
    d_hi, d_lo = dw_add(n_hi, n_lo, -v_hi, -v_lo, D)
    g_hi, g_lo = dw_mul(e_hi, e_lo, d_hi, d_lo, D)  # f'(-t) / 2^k
    if D:  # (a pair: its high part is the answer)
        g_hi, g_lo = fast_two_sum(g_hi, g_lo, True)
    if x < T(0):
        return g_hi, k
    k = _positive_side_scale(k)
    g = scale2_in_range(g_hi, k)
    s, s_err = two_sum(T(1), -g, D)
    return s + (s_err - scale2_in_range(g_lo, k)), T(0)


@jitable
def _tanh_argument(x, c, p):
    """w = 2u = x (b + a x^2) and w' = b + 3a x^2."""
    T = type(x)
    D, X = double_word(p), exact_splits(p)
    # critical: exp(-|w|) turns w's absolute error into its relative error
    s_hi, s_lo = two_prod(x, x, X)
    m_hi, m_lo = dw_mul(T(c.tanh_a[0]), T(c.tanh_a[1]), s_hi, s_lo, X)
    b_hi, b_lo = dw_add(T(c.tanh_b[0]), T(c.tanh_b[1]), m_hi, m_lo, X)
    w_hi, w_lo = dw_mul1(x, b_hi, b_lo, X)
    n_hi, n_lo = dw_mul(T(c.tanh_a3[0]), T(c.tanh_a3[1]), s_hi, s_lo, D)
    wp_hi, wp_lo = dw_add(T(c.tanh_b[0]), T(c.tanh_b[1]), n_hi, n_lo, D)
    return w_hi, w_lo, wp_hi, wp_lo


@jitable
def _sigmoid_argument(x, c, p):
    """w = 1.702 x and w' = 1.702."""
    T = type(x)
    X = exact_splits(p)
    a = c.sigmoid_a
    w_hi, w_lo = dw_mul1(x, T(a[0]), T(a[1]), X)  # critical, as for tanh
    return w_hi, w_lo, T(a[0]), T(a[1])


@jitable
def _exp_minus_abs(x, w_hi, w_lo, c, p):
    """exp(-|w|) as (k, p_hi, p_lo) and scaled, and 1 + exp(-|w|).

    Operands are selected before the arithmetic, not results after it: a
    vector loop evaluates both sides of every branch.
    """
    T = type(x)
    D, X = double_word(p), exact_splits(p)
    neg = x < T(0)
    # (|w| runs down to the floor; its powers would underflow)
    wa = _exp_argument_floor(abs(w_hi))
    w_lo = w_lo if wa == abs(w_hi) else T(0)
    w_hi = -wa if neg else wa
    k, p_hi, p_lo = exp_dw(w_hi if neg else -w_hi, w_lo if neg else -w_lo, c, X)
    # E serves 1 + E and, for x > 0, E x w' (x w' < 2^12): below 2^-90 it
    # changes neither rounded result, and a smaller E or its low part would
    # be subnormal and raise the underflow flag for a normal result, so it
    # is taken at 2^-90 scale.  (The x < 0 result uses p and k.)
    k_e = _positive_side_scale(k)
    e_hi = scale2_in_range(p_hi, k_e)
    d_hi, d_lo = fast_two_sum(T(1), e_hi, D)
    e_lo = scale2_in_range(p_lo, k_e)
    return k, p_hi, p_lo, e_hi, e_lo, d_hi, d_lo + e_lo


@jitable
def _sigma_tail(x, w_hi, w_lo, c, p):
    """x sigmoid(w): x E/(1 + E) for x < 0, x/(1 + E) for x > 0 (E = 2^k p)."""
    T = type(x)
    X = exact_splits(p)
    neg = x < T(0)
    k, p_hi, p_lo, e_hi, e_lo, d_hi, d_lo = _exp_minus_abs(x, w_hi, w_lo, c, p)
    n_hi, n_lo = dw_mul1(x, p_hi, p_lo, X)
    q, q_lo = dw_div(n_hi if neg else x, n_lo if neg else T(0), d_hi, d_lo, X)
    return scale2(q, k if neg else T(0))


@jitable
def _sigma_tail_grad(x, w_hi, w_lo, wp_hi, wp_lo, c, p):
    """(m, k) with f'(x) = m 2^k:
    E (1 + E + x w') / (1 + E)^2 for x < 0 (E = 2^k p),
    (1 + E + E x w') / (1 + E)^2 for x > 0.
    """
    T = type(x)
    D = double_word(p)
    neg = x < T(0)
    k, p_hi, p_lo, e_hi, e_lo, d_hi, d_lo = _exp_minus_abs(x, w_hi, w_lo, c, p)
    dd_hi, dd_lo = dw_mul(d_hi, d_lo, d_hi, d_lo, D)
    xw_hi, xw_lo = dw_mul1(x, wp_hi, wp_lo, D)
    # x < 0: p (1 + E + x w');  x > 0: 1 + E + E x w'
    f_hi, f_lo = dw_mul(e_hi, e_lo, xw_hi, xw_lo, D)
    a_hi, a_lo = dw_add(d_hi, d_lo, xw_hi if neg else f_hi, xw_lo if neg else f_lo, D)
    n_hi, n_lo = dw_mul(p_hi, p_lo, a_hi, a_lo, D)
    q, q_lo = dw_div(n_hi if neg else a_hi, n_lo if neg else a_lo, dd_hi, dd_lo, D)
    return q, k if neg else T(0)


# The three forms; callers pass a constant, which LLVM folds after inlining.
EXACT, TANH, SIGMOID = 0, 1, 2


@jitable
def _sigma_argument(x, c, form, p):
    if form == TANH:
        return _tanh_argument(x, c, p)
    return _sigmoid_argument(x, c, p)


@jitable
def _tail_value(x, t_max, form, c, p):
    if form == EXACT:
        return _exact_tail(x, t_max, c, p)
    xt = _signed_tail_input(x, c, t_max)
    w_hi, w_lo, wp_hi, wp_lo = _sigma_argument(xt, c, form, p)
    return _sigma_tail(xt, w_hi, w_lo, c, p)


@jitable
def _tail_grad(x, t_max, form, c, p):
    if form == EXACT:
        return _exact_tail_grad(x, t_max, c, p)
    xt = _signed_tail_input(x, c, t_max)
    w_hi, w_lo, wp_hi, wp_lo = _sigma_argument(xt, c, form, p)
    return _sigma_tail_grad(xt, w_hi, w_lo, wp_hi, wp_lo, c, p)


# --------------------------------------------------------------------------
# Second derivatives: one formula per form for all t = |x| (see the module
# docstring).  Each returns (m, k) with f''(x) = m 2^k.


@jitable
def _exp_argument_floor(h):
    """max(h, floor) for exp(-h): below the floor exp(-h) is 1 to working
    precision, and a smaller argument would underflow in the powers of the
    exp polynomial (2^-27 in float32, 2^-80 in float64)."""
    T = type(h)
    floor = T(pick(h, 2.0**-27, 2.0**-80))
    return h if h > floor else floor


@jitable
def _exact_grad2(t, c, p):
    """phi(t) (2 - t^2)."""
    T = type(t)
    D, X = double_word(p), exact_splits(p)
    tq = _tiny_to_zero(t)
    h, l = two_prod(tq, tq, X)  # t^2 = h + l exactly
    hc = _exp_argument_floor(h)
    lc = l if h > T(0) and hc == h else T(0)
    k, e_hi, e_lo = exp_dw(hc * T(-0.5), lc * T(-0.5), c, X)
    b_hi, b_lo = dw_add(T(2), T(0), -h, -l, D)  # 2 - t^2
    g_hi, g_lo = dw_mul(e_hi, e_lo, b_hi, b_lo, D)
    m_hi, m_lo = dw_mul(g_hi, g_lo, T(c.inv_sqrt_2pi[0]), T(c.inv_sqrt_2pi[1]), D)
    return (m_hi + m_lo if D else m_hi), k


@jitable
def _sigma_grad2(t, c, form, p):
    """E [A (1 + E) - B (1 - E)] / (1 + E)^3 for the tanh and sigmoid forms."""
    T = type(t)
    D, X = double_word(p), exact_splits(p)
    tq = _tiny_to_zero(t)
    w_hi, w_lo, wp_hi, wp_lo = _sigma_argument(tq, c, form, p)
    wc = _exp_argument_floor(w_hi)
    k, p_hi, p_lo = exp_dw(-wc, -w_lo if wc == w_hi else T(0), c, X)
    # 1 +- E: below 2^-90, E changes neither (and a smaller E would be
    # subnormal), so it is taken at that scale there.
    k_e = _positive_side_scale(k)
    e_hi, e_lo = scale2_in_range(p_hi, k_e), scale2_in_range(p_lo, k_e)
    op_hi, op_lo = dw_add(T(1), T(0), e_hi, e_lo, D)
    om_hi, om_lo = dw_add(T(1), T(0), -e_hi, -e_lo, D)
    if form == TANH:
        s_hi, s_lo = two_prod(tq, tq, D)
        n_hi, n_lo = dw_mul(T(c.tanh_a3[0]), T(c.tanh_a3[1]), s_hi, s_lo, D)  # 3a t^2
        a_hi, a_lo = dw_add(wp_hi, wp_lo, n_hi, n_lo, D)
        a_hi, a_lo = T(2) * a_hi, T(2) * a_lo  # 2 w' + 6a t^2
    else:
        a_hi, a_lo = T(2) * wp_hi, T(2) * wp_lo  # 2 * 1.702
    q_hi, q_lo = dw_mul(wp_hi, wp_lo, wp_hi, wp_lo, D)
    b_hi, b_lo = dw_mul1(tq, q_hi, q_lo, D)  # t w'^2
    u_hi, u_lo = dw_mul(a_hi, a_lo, op_hi, op_lo, D)
    v_hi, v_lo = dw_mul(b_hi, b_lo, om_hi, om_lo, D)
    n_hi, n_lo = dw_add(u_hi, u_lo, -v_hi, -v_lo, D)
    r_hi, r_lo = dw_mul(p_hi, p_lo, n_hi, n_lo, D)
    d_hi, d_lo = dw_mul(op_hi, op_lo, op_hi, op_lo, D)
    d_hi, d_lo = dw_mul(d_hi, d_lo, op_hi, op_lo, D)
    m_hi, m_lo = dw_div(r_hi, r_lo, d_hi, d_lo, D)
    return m_hi, k


@jitable
def _grad2_parts(x, v, form, c, p):
    """(m, k) with f''(x) = m 2^k; -0.0 beyond t_max, where |f''| lies far
    below the smallest subnormal (and f'' < 0)."""
    T = type(x)
    t_max = T(v.t_max)
    xs = _without_nan(x)
    t = clamp(abs(xs), T(0), t_max)
    if form == EXACT:
        m, k = _exact_grad2(t, c, p)
    else:
        m, k = _sigma_grad2(t, c, form, p)
    saturated = abs(xs) >= t_max
    return (T(-0.0) if saturated else m), (T(0) if saturated else k)


# --------------------------------------------------------------------------
# Assembly.  `p` is the policy (DW).


@jitable
def _without_nan(x):
    T = type(x)
    return T(0) if x != x else x


@jitable
def _admissible(x, t_max):
    """x, or 0 for x <= -t_max, where -0.0 is selected: those lanes then
    compute nothing that could underflow (f(-inf) = -0.0 exactly, with no
    underflow flag).  Same precision only: float32 tails computed in float64
    never underflow."""
    T = type(x)
    return x if x > -t_max else T(0)


@jitable
def _in_b(x):
    T = type(x)
    return x >= T(C.B_LO) and x < T(C.A_LO)


@jitable
def _forward(x, v, form, c, p):
    """f(x) for the variant whose coefficients are v.

    Special cases are selected after the formula, not branched around, as a
    vector unit does anyway; written with branches, LLVM's cost model
    assumes each branch is taken half the time and declines to vectorise
    the float64 loops.
    """
    T = type(x)
    t_max = T(v.t_max)
    xs = _without_nan(x)  # (first: an ordered compare of a NaN raises "invalid")
    xa = _admissible(xs, t_max)
    y = _tail_value(xa, t_max, form, c, p)
    # the tail formula but around the minimum (see above)
    y_min = _near_minimum(xa, v.xmin, v.fmin, v.b_f0, v.b_f)
    y = y_min if _in_b(xa) else y
    y = xs * T(0.5) if abs(xs) < T(c.tail_lo) else y  # below the formula's floor: f = x/2
    y = xs if xs == T(0) else y  # f(+-0) = +-0
    # f has the sign of x (x Phi(x), Phi > 0): a negative x whose result
    # rounds to zero gives -0.0 (x/2 for the smallest subnormal rounds to
    # -0.0, and so does the tail formula's -2^k g when g underflows).
    y = -abs(y) if xs < T(0) else y
    y = T(-0.0) if xs <= -t_max else y
    return xs if xs >= t_max else y


@jitable
def _grad_parts(x, v, form, c, p):
    """(m, k) with f'(x) = m * 2^k (k = 0 outside the left tail)."""
    T = type(x)
    t_max = T(v.t_max)
    xs = _without_nan(x)
    xa = _admissible(xs, t_max)
    m, k = _tail_grad(xa, t_max, form, c, p)
    m_min = _near_minimum_grad(xa, v.xmin, v.b_g0, v.b_g)
    b = _in_b(xa)
    m = m_min if b else m
    k = T(0) if b else k
    small = abs(xs) < T(c.tail_lo)  # below the floor, f' = 1/2
    m = T(0.5) if small else m
    k = T(0) if small else k
    m = T(-0.0) if xs <= -t_max else m
    m = T(1) if xs >= t_max else m
    k = T(0) if xs >= t_max or xs <= -t_max else k
    return m, k


@jitable
def _scaled_product(dy, m, k):
    """dy * m * 2^k without spurious overflow; equals dy * (m * 2^k) rounded
    once whenever m * 2^k is a normal number."""
    T = type(m)
    ka = k if k > T(-64) else T(-64)
    return scale2(dy * scale2_in_range(m, ka), k - ka)


@jitable
def _narrow(x, y):
    """y in x's format, and NaN for NaN x."""
    return x if x != x else type(x)(y)


@jitable
def evaluate(x, v, form, c, p):
    """f(x) under an explicit policy."""
    return _narrow(x, _forward(x, v, form, c, p))


@jitable
def evaluate_grad(x, v, form, c, p):
    m, k = _grad_parts(x, v, form, c, p)
    return _narrow(x, scale2(m, k))


@jitable
def evaluate_grad2(x, v, form, c, p):
    m, k = _grad2_parts(x, v, form, c, p)
    return _narrow(x, scale2(m, k))


@jitable
def _dy_used(dy, x):
    """dy, or 0 where x is NaN: that lane returns x, and a tiny dy times f'(0)
    would raise "underflow" for a product nobody sees."""
    return dy if x == x else type(dy)(0)


@jitable
def evaluate_backward(dy, x, v, form, c, p):
    m, k = _grad_parts(x, v, form, c, p)
    return _narrow(x, _scaled_product(_dy_used(dy, x), m, k))


@jitable
def _f(x, v, form):
    """f(x) under the target's policy for x's format."""
    return _narrow(x, _forward(x, v, form, common(x), policy(x)))


@jitable
def _df(x, v, form):
    m, k = _grad_parts(x, v, form, common(x), policy(x))
    return _narrow(x, scale2(m, k))


@jitable
def _d2f(x, v, form):
    m, k = _grad2_parts(x, v, form, common(x), policy(x))
    return _narrow(x, scale2(m, k))


@jitable
def _backward(dy, x, v, form):
    m, k = _grad_parts(x, v, form, common(x), policy(x))
    return _narrow(x, _scaled_product(_dy_used(dy, x), m, k))


# --------------------------------------------------------------------------
# The kernels.


@jitable
def gelu(x):
    """Exact GELU, x * Phi(x), Phi the standard normal CDF.

    Worst error: float32 1.35 ulp (x = -1.8397154), monotone above the
    minimum, over all 2^32 inputs; float64 1.42 ulp (x = -37.321), searched
    (docs/accuracy.md).
    """
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu", x)
    return _f(x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def gelu_tanh(x):
    """tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_tanh", x)
    return _f(x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def gelu_sigmoid(x):
    """Sigmoid approximation ("quick GELU"), x * sigmoid(1.702 x)."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_sigmoid", x)
    return _f(x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


@jitable
def gelu_grad(x):
    """Derivative of the exact GELU, Phi(x) + x phi(x).

    Worst error, in ulps of max(|f'(x)|, Phi(x)): float32 1.42 ulp
    (x = -12.091142) over all 2^32 inputs, 1.39 ulp of f' itself within
    2^-4 of its zero; float64 1.04 ulp (x = -0.048), searched.
    """
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_grad", x)
    return _df(x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def gelu_tanh_grad(x):
    """Derivative of the tanh approximation."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_tanh_grad", x)
    return _df(x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def gelu_sigmoid_grad(x):
    """Derivative of the sigmoid approximation."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_sigmoid_grad", x)
    return _df(x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


@jitable
def gelu_grad2(x):
    """Second derivative of the exact GELU, phi(x) (2 - x^2)."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_grad2", x)
    return _d2f(x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def gelu_tanh_grad2(x):
    """Second derivative of the tanh approximation."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_tanh_grad2", x)
    return _d2f(x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def gelu_sigmoid_grad2(x):
    """Second derivative of the sigmoid approximation."""
    if cpu_float32(x):  # the CPU's float32 algorithm (vector32)
        return cpu_float32_kernel("gelu_sigmoid_grad2", x)
    return _d2f(x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


@jitable
def gelu_backward(dy, x):
    """Fused backward of the exact GELU: dy * gelu_grad(x).

    Worst error, in ulps of |dy| max(|f'(x)|, Phi(x)): float32 1.75 ulp
    (x = -1.0053464) over all 2^32 x with dy ~ N(0, 1); with dy = 1 the
    bits of gelu_grad.  float64: dy times f' (mantissa and power of two
    kept apart) scaled once, as gelu_grad is computed.
    """
    if cpu_float32(x):
        return cpu_float32_kernel("gelu_backward", dy, x)
    return _backward(dy, x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def gelu_tanh_backward(dy, x):
    """Fused backward of the tanh approximation: dy * gelu_tanh_grad(x)."""
    if cpu_float32(x):
        return cpu_float32_kernel("gelu_tanh_backward", dy, x)
    return _backward(dy, x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def gelu_sigmoid_backward(dy, x):
    """Fused backward of the sigmoid approximation: dy * gelu_sigmoid_grad(x)."""
    if cpu_float32(x):
        return cpu_float32_kernel("gelu_sigmoid_backward", dy, x)
    return _backward(dy, x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


#: variant -> (form, its float32 and float64 tables); with it, EXPLICIT maps
#: every kernel name to (form, tables, "value" | "grad" | "backward"), to
#: build kernels under an explicit policy (the same-precision float32 path on
#: the CPU, for tests).
VARIANTS = {
    "gelu": (EXACT, (C.GELU_F32, C.GELU_F64)),
    "gelu_tanh": (TANH, (C.GELU_TANH_F32, C.GELU_TANH_F64)),
    "gelu_sigmoid": (SIGMOID, (C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64)),
}
EXPLICIT = {
    variant + suffix: (form, tables, what)
    for variant, (form, tables) in VARIANTS.items()
    for suffix, what in (("", "value"), ("_grad", "grad"), ("_grad2", "grad2"), ("_backward", "backward"))
}
