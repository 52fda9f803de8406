"""The GELU formulas: one scalar function per kernel, compiled for every target.

Each public function here is the single definition of its kernel.  The CPU
ufuncs (serial and parallel) and the CUDA kernels are all compiled from it,
and it runs as plain Python on NumPy scalars too.  It is generic over the
format: ``T = type(x)`` and every constant goes through ``T(...)`` or
:func:`~gelu_numba._fp.pick`, so float32 code stays float32.

How the real line is covered (boundaries in ``_coeffs``)::

    x <= -t_max      saturated: f = -0.0, f' = -0.0
    tail (x < B_LO)  exp(-t^2/2) or exp(-|w|) with the argument in double
                     word, then double-word products and one final rounding
    B [B_LO, A_LO)   around the minimum x_min: f = f_min + d^2 S(d),
                     f' = d V(d), d = x - x_min
    A [A_LO, A_HI]   around zero: f = x/2 + x^2 P(x^2), f' = 1/2 + x Q(x^2)
    tail (x > A_HI)  f = x - (same tail as -x), f' = 1 - (tail of -x)
    x >= t_max       saturated: f = x, f' = 1

Region B is what makes f monotone as computed: near the minimum f changes by
far less than an ulp per step, so a formula whose rounding noise is a fraction
of an ulp of f would wiggle.  There f_min + d^2 S(d) rises strictly in d,
its noise being relative to d^2 S, not to f.

Every region evaluates with its input clamped into its own interval, and NaN
is replaced by zero up front: vectorised loops evaluate all regions for
every element, and no lane may overflow, divide by zero or make a NaN
(NumPy would report it as a floating-point warning).
"""

from . import _coeffs as C
from ._fp import (
    clamp,
    dw_add,
    dw_div,
    dw_mul,
    dw_poly,
    exp_dw,
    fast_two_sum,
    fma,
    horner,
    jitable,
    pick,
    scale2,
    two_prod,
    two_sum,
)

__all__ = [
    "gelu",
    "gelu_tanh",
    "gelu_sigmoid",
    "gelu_grad",
    "gelu_tanh_grad",
    "gelu_sigmoid_grad",
    "gelu_backward",
    "gelu_tanh_backward",
    "gelu_sigmoid_backward",
]


# --------------------------------------------------------------------------
# Region A: x in [A_LO, A_HI], polynomials in s = x^2.


@jitable
def _central(x, lead, coeffs):
    """x/2 + s*P(s), s = x^2, with P = lead + s*poly(s) in double word."""
    T = type(x)
    xa = clamp(x, T(C.A_LO), T(C.A_HI))
    s_hi, s_lo = two_prod(xa, xa)
    p_hi, p_lo = dw_poly(s_hi, lead, coeffs)
    p_lo = fma(T(coeffs[0]), s_lo, p_lo)  # P'(s) * s_lo, to first order
    g_hi, g_lo = dw_mul(s_hi, s_lo, p_hi, p_lo)
    h, h_err = two_sum(xa * T(0.5), g_hi)
    y = h + (h_err + g_lo)
    return xa if xa == T(0) else y  # keeps the sign of -0.0


@jitable
def _central_grad(x, lead, coeffs):
    """1/2 + x*Q(x^2), with Q in double word."""
    T = type(x)
    xa = clamp(x, T(C.A_LO), T(C.A_HI))
    s_hi, s_lo = two_prod(xa, xa)
    q_hi, q_lo = dw_poly(s_hi, lead, coeffs)
    q_lo = fma(T(coeffs[0]), s_lo, q_lo)
    m_hi, m_err = two_prod(xa, q_hi)
    m_lo = fma(xa, q_lo, m_err)
    h, h_err = two_sum(T(0.5), m_hi)
    return h + (h_err + m_lo)


# --------------------------------------------------------------------------
# Region B: x in [B_LO, A_LO), polynomials in d = x - x_min.


@jitable
def _offset_from_minimum(x, xmin):
    """d = x - x_min as a double word; x - xmin[0] is exact on region B."""
    T = type(x)
    xb = clamp(x, T(C.B_LO), T(C.A_LO))
    return two_sum(xb - T(xmin[0]), -T(xmin[1]))


@jitable
def _near_minimum(x, xmin, fmin, lead, coeffs):
    """f_min + d^2 * S(d)."""
    T = type(x)
    d_hi, d_lo = _offset_from_minimum(x, xmin)
    q_hi, q_err = two_prod(d_hi, d_hi)
    q_lo = fma(T(2) * d_hi, d_lo, q_err)
    s_hi, s_lo = dw_poly(d_hi, lead, coeffs)
    s_lo = fma(T(coeffs[0]), d_lo, s_lo)
    g_hi, g_lo = dw_mul(q_hi, q_lo, s_hi, s_lo)
    y_hi, y_lo = dw_add(T(fmin[0]), T(fmin[1]), g_hi, g_lo)
    return y_hi


@jitable
def _near_minimum_grad(x, xmin, lead, coeffs):
    """d * V(d)."""
    T = type(x)
    d_hi, d_lo = _offset_from_minimum(x, xmin)
    v_hi, v_lo = dw_poly(d_hi, lead, coeffs)
    v_lo = fma(T(coeffs[0]), d_lo, v_lo)
    y_hi, y_lo = dw_mul(d_hi, d_lo, v_hi, v_lo)
    return y_hi


# --------------------------------------------------------------------------
# Tails, |x| > A_HI (or x < B_LO).


@jitable
def _tail_magnitude(x, t_max):
    """|x| clamped into the tails' interval [A_HI, t_max]."""
    T = type(x)
    return clamp(abs(x), T(C.A_HI), t_max)


@jitable
def _exact_tail_parts(t):
    """The pieces of t*Phi(-t) = exp(-t^2/2) * R(t), t in [A_HI, t_max].

    Returns (k, e_hi, e_lo, r_hi, r_lo, h, l): exp(-t^2/2) = 2^k (e_hi + e_lo),
    R(t) = t exp(t^2/2) Phi(-t) = r_hi + r_lo, t^2 = h + l, all exact to
    about 2^-p-4.  R is a polynomial in u = (t - c)/(t + c); u carries a
    rounding error u_lo, which enters through a rough fit of R'(u).
    """
    T = type(t)
    c = pick(t, C.COMMON_F32, C.COMMON_F64)
    h, l = two_prod(t, t)
    k, e_hi, e_lo = exp_dw(h * T(-0.5), l * T(-0.5))
    n_hi, n_lo = two_sum(t, -T(c.tail_c))
    m_hi, m_lo = two_sum(t, T(c.tail_c))
    u_hi, u_lo = dw_div(n_hi, n_lo, m_hi, m_lo)
    r_hi, r_lo = dw_poly(u_hi, c.tail_r0, c.tail_r)
    r_lo = fma(horner(u_hi, c.tail_dr), u_lo, r_lo)  # R'(u) * u_lo
    return k, e_hi, e_lo, r_hi, r_lo, h, l


@jitable
def _exact_tail(x, t_max):
    """x*Phi(x) for |x| in the tails; x - t*Phi(-t) for x > 0."""
    T = type(x)
    t = _tail_magnitude(x, t_max)
    k, e_hi, e_lo, r_hi, r_lo, h, l = _exact_tail_parts(t)
    g_hi, g_lo = dw_mul(e_hi, e_lo, r_hi, r_lo)  # t*Phi(-t) / 2^k
    if x < T(0):
        return -scale2(g_hi, k)
    s, s_err = two_sum(t, -scale2(g_hi, k))
    return s + (s_err - scale2(g_lo, k))


@jitable
def _exact_tail_grad(x, t_max):
    """(m, k) with f'(x) = m * 2^k; f'(-t) = exp(-t^2/2) (R/t - t/sqrt(2 pi))."""
    T = type(x)
    c = pick(x, C.COMMON_F32, C.COMMON_F64)
    t = _tail_magnitude(x, t_max)
    k, e_hi, e_lo, r_hi, r_lo, h, l = _exact_tail_parts(t)
    v_hi, v_lo = dw_mul(h, l, T(c.inv_sqrt_2pi[0]), T(c.inv_sqrt_2pi[1]))
    n_hi, n_lo = dw_add(r_hi, r_lo, -v_hi, -v_lo)
    n_hi, n_lo = dw_div(n_hi, n_lo, t, T(0))
    g_hi, g_lo = dw_mul(e_hi, e_lo, n_hi, n_lo)  # f'(-t) / 2^k
    if x < T(0):
        return g_hi, k
    s, s_err = two_sum(T(1), -scale2(g_hi, k))
    return s + (s_err - scale2(g_lo, k)), T(0)


@jitable
def _tanh_argument(x):
    """w = 2u = x (b + a x^2) and w' = b + 3a x^2, both as double words."""
    T = type(x)
    c = pick(x, C.COMMON_F32, C.COMMON_F64)
    s_hi, s_lo = two_prod(x, x)
    m_hi, m_lo = dw_mul(T(c.tanh_a[0]), T(c.tanh_a[1]), s_hi, s_lo)
    b_hi, b_lo = dw_add(T(c.tanh_b[0]), T(c.tanh_b[1]), m_hi, m_lo)
    w_hi, w_err = two_prod(x, b_hi)
    w_lo = fma(x, b_lo, w_err)
    n_hi, n_lo = dw_mul(T(c.tanh_a3[0]), T(c.tanh_a3[1]), s_hi, s_lo)
    wp_hi, wp_lo = dw_add(T(c.tanh_b[0]), T(c.tanh_b[1]), n_hi, n_lo)
    return w_hi, w_lo, wp_hi, wp_lo


@jitable
def _sigmoid_argument(x):
    """w = 1.702 x and w' = 1.702 as double words."""
    T = type(x)
    a = pick(x, C.COMMON_F32, C.COMMON_F64).sigmoid_a
    w_hi, w_err = two_prod(T(a[0]), x)
    w_lo = fma(T(a[1]), x, w_err)
    return w_hi, w_lo, T(a[0]), T(a[1])


@jitable
def _exp_minus_abs(x, w_hi, w_lo):
    """exp(-|w|) as (k, p_hi, p_lo) and 1 + exp(-|w|) as a double word."""
    T = type(x)
    if x < T(0):
        k, p_hi, p_lo = exp_dw(w_hi, w_lo)
    else:
        k, p_hi, p_lo = exp_dw(-w_hi, -w_lo)
    e_hi = scale2(p_hi, k)
    d_hi, d_lo = fast_two_sum(T(1), e_hi)
    return k, p_hi, p_lo, e_hi, scale2(p_lo, k), d_hi, d_lo + scale2(p_lo, k)


@jitable
def _sigma_tail(x, w_hi, w_lo):
    """x * sigmoid(w) in the tails: x E/(1 + E) for x < 0, x/(1 + E) for x > 0."""
    T = type(x)
    k, p_hi, p_lo, e_hi, e_lo, d_hi, d_lo = _exp_minus_abs(x, w_hi, w_lo)
    if x < T(0):
        n_hi, n_err = two_prod(x, p_hi)
        q, q_lo = dw_div(n_hi, fma(x, p_lo, n_err), d_hi, d_lo)
        return scale2(q, k)
    q, q_lo = dw_div(x, T(0), d_hi, d_lo)
    return q


@jitable
def _sigma_tail_grad(x, w_hi, w_lo, wp_hi, wp_lo):
    """(m, k) with f'(x) = m * 2^k, f' = (1 + E + x w' [E])/(1 + E)^2 [* E]."""
    T = type(x)
    k, p_hi, p_lo, e_hi, e_lo, d_hi, d_lo = _exp_minus_abs(x, w_hi, w_lo)
    dd_hi, dd_lo = dw_mul(d_hi, d_lo, d_hi, d_lo)
    xw_hi, xw_err = two_prod(x, wp_hi)
    xw_lo = fma(x, wp_lo, xw_err)
    if x < T(0):
        # E (1 + E + x w') / (1 + E)^2, E = 2^k p
        n_hi, n_lo = dw_add(d_hi, d_lo, xw_hi, xw_lo)
        n_hi, n_lo = dw_mul(p_hi, p_lo, n_hi, n_lo)
        q, q_lo = dw_div(n_hi, n_lo, dd_hi, dd_lo)
        return q, k
    # (1 + E + E x w') / (1 + E)^2
    m_hi, m_lo = dw_mul(e_hi, e_lo, xw_hi, xw_lo)
    n_hi, n_lo = dw_add(d_hi, d_lo, m_hi, m_lo)
    q, q_lo = dw_div(n_hi, n_lo, dd_hi, dd_lo)
    return q, T(0)


# --------------------------------------------------------------------------
# Assembly.


@jitable
def _without_nan(x):
    T = type(x)
    return T(0) if x != x else x


@jitable
def _in_tail(x):
    T = type(x)
    return x < T(C.B_LO) or x > T(C.A_HI)


@jitable
def _scaled(m, k):
    """m * 2^k for the grads."""
    return scale2(m, k)


@jitable
def _scaled_product(dy, m, k):
    """dy * m * 2^k without spurious overflow; equals dy * (m * 2^k) rounded
    once whenever m * 2^k is a normal number."""
    T = type(m)
    ka = k if k > T(-64) else T(-64)
    return scale2(dy * scale2(m, ka), k - ka)


# The three forms; callers pass a constant, which LLVM folds after inlining.
EXACT, TANH, SIGMOID = 0, 1, 2


@jitable
def _tail_value(x, t_max, form):
    if form == EXACT:
        return _exact_tail(x, t_max)
    T = type(x)
    xt = _tail_magnitude(x, t_max)
    xt = -xt if x < T(0) else xt
    if form == TANH:
        w_hi, w_lo, wp_hi, wp_lo = _tanh_argument(xt)
    else:
        w_hi, w_lo, wp_hi, wp_lo = _sigmoid_argument(xt)
    return _sigma_tail(xt, w_hi, w_lo)


@jitable
def _tail_grad(x, t_max, form):
    if form == EXACT:
        return _exact_tail_grad(x, t_max)
    T = type(x)
    xt = _tail_magnitude(x, t_max)
    xt = -xt if x < T(0) else xt
    if form == TANH:
        w_hi, w_lo, wp_hi, wp_lo = _tanh_argument(xt)
    else:
        w_hi, w_lo, wp_hi, wp_lo = _sigmoid_argument(xt)
    return _sigma_tail_grad(xt, w_hi, w_lo, wp_hi, wp_lo)


@jitable
def _forward(x, v, form):
    """f(x) for the variant whose coefficients are v.

    All three regions are evaluated and the answer selected, as a vector unit
    does anyway; written with branches, LLVM's cost model assumes each branch
    is taken half the time and declines to vectorise the float64 loops.
    """
    T = type(x)
    xs = _without_nan(x)
    t_max = T(v.t_max)
    y_tail = _tail_value(xs, t_max, form)
    y_min = _near_minimum(xs, v.xmin, v.fmin, v.b_f0, v.b_f)
    y_mid = _central(xs, v.a_f0, v.a_f)
    y = y_tail if _in_tail(xs) else (y_min if xs < T(C.A_LO) else y_mid)
    y = T(-0.0) if xs <= -t_max else y
    y = xs if xs >= t_max else y
    return x if x != x else y


@jitable
def _grad_parts(x, v, form):
    """(m, k) with f'(x) = m * 2^k (k = 0 outside the left tail)."""
    T = type(x)
    xs = _without_nan(x)
    t_max = T(v.t_max)
    m_tail, k_tail = _tail_grad(xs, t_max, form)
    m_min = _near_minimum_grad(xs, v.xmin, v.b_g0, v.b_g)
    m_mid = _central_grad(xs, v.a_g0, v.a_g)
    tail = _in_tail(xs)
    m = m_tail if tail else (m_min if xs < T(C.A_LO) else m_mid)
    k = k_tail if tail else T(0)
    m = T(-0.0) if xs <= -t_max else m
    m = T(1) if xs >= t_max else m
    k = T(0) if xs >= t_max or xs <= -t_max else k
    return m, k


# --------------------------------------------------------------------------
# The kernels.


@jitable
def gelu(x):
    """Exact GELU, x * Phi(x), Phi the standard normal CDF."""
    return _forward(x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def gelu_tanh(x):
    """tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _forward(x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def gelu_sigmoid(x):
    """Sigmoid approximation ("quick GELU"), x * sigmoid(1.702 x)."""
    return _forward(x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


@jitable
def _gelu_grad_parts(x):
    return _grad_parts(x, pick(x, C.GELU_F32, C.GELU_F64), EXACT)


@jitable
def _gelu_tanh_grad_parts(x):
    return _grad_parts(x, pick(x, C.GELU_TANH_F32, C.GELU_TANH_F64), TANH)


@jitable
def _gelu_sigmoid_grad_parts(x):
    return _grad_parts(x, pick(x, C.GELU_SIGMOID_F32, C.GELU_SIGMOID_F64), SIGMOID)


@jitable
def gelu_grad(x):
    """Derivative of the exact GELU, Phi(x) + x phi(x)."""
    m, k = _gelu_grad_parts(x)
    return x if x != x else _scaled(m, k)


@jitable
def gelu_tanh_grad(x):
    """Derivative of the tanh approximation."""
    m, k = _gelu_tanh_grad_parts(x)
    return x if x != x else _scaled(m, k)


@jitable
def gelu_sigmoid_grad(x):
    """Derivative of the sigmoid approximation."""
    m, k = _gelu_sigmoid_grad_parts(x)
    return x if x != x else _scaled(m, k)


@jitable
def gelu_backward(dy, x):
    """Fused backward of the exact GELU: dy * gelu_grad(x)."""
    m, k = _gelu_grad_parts(x)
    return x if x != x else _scaled_product(dy, m, k)


@jitable
def gelu_tanh_backward(dy, x):
    """Fused backward of the tanh approximation: dy * gelu_tanh_grad(x)."""
    m, k = _gelu_tanh_grad_parts(x)
    return x if x != x else _scaled_product(dy, m, k)


@jitable
def gelu_sigmoid_backward(dy, x):
    """Fused backward of the sigmoid approximation: dy * gelu_sigmoid_grad(x)."""
    m, k = _gelu_sigmoid_grad_parts(x)
    return x if x != x else _scaled_product(dy, m, k)
