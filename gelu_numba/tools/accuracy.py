"""Measuring the kernels: ulp errors against mpmath, exhaustive float32 sweeps.

Used by the tests, by ``python -m gelu_numba accuracy`` and by the asv
``track_`` benchmarks, so all of them measure the same way.

- :func:`adversarial_points` is a fixed, deterministic sample of the inputs
  where kernels go wrong: both tails down to underflow, the minimum, region
  boundaries (plus and minus a few ulps), zero and the subnormals, huge
  values.
- :func:`max_ulp_error` measures a kernel on such a sample against
  :mod:`gelu_numba.tools.reference` (mpmath).
- :func:`exhaustive_float32` runs a float32 kernel on all 2**32 inputs
  against the float64 kernel (itself measured against mpmath at about
  0.5 ulp, i.e. 2**-29 float32 ulp) and checks monotonicity above the minimum.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from . import reference
from ..core.names import UNARY as KERNELS
from ..core.coefficients import A_HI, A_LO, B_LO

__all__ = [
    "KERNELS",
    "Worst",
    "adversarial_points",
    "float64_search_points",
    "max_ulp_error",
    "exhaustive_float32",
]

# x_min of each variant (reference.minimum, to double precision).
MINIMUM = {
    "gelu": -0.7517915246935645,
    "gelu_tanh": -0.7524614220710163,
    "gelu_sigmoid": -0.7511542554412890,
}


def variant_of(name):
    """The forward kernel a name belongs to: 'gelu_tanh_grad' -> 'gelu_tanh'."""
    for suffix in ("_grad2", "_grad", "_backward"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _around(x, dtype, steps):
    """x and its neighbours up to `steps` ulps either side, in dtype."""
    x = np.asarray(x, dtype=dtype)
    out = [x]
    up = down = x
    for _ in range(steps):
        up = np.nextafter(up, dtype(np.inf))
        down = np.nextafter(down, dtype(-np.inf))
        out += [up, down]
    return np.array(out, dtype=dtype)


def adversarial_points(dtype, n_random=2000, seed=0):
    """A deterministic sample of hard inputs (finite only), sorted and unique."""
    dtype = np.dtype(dtype).type
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    pts = [np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5], dtype=dtype)]
    # Region boundaries and saturation points, a few ulps either side.
    big = 39.0 if dtype is np.float64 else 15.0
    for b in (B_LO, A_LO, A_HI, -A_HI, big, -big, 24.0, -24.0, 12.0, -12.0, 70.0, -70.0):
        pts.append(_around(b, dtype, 3))
    # Each minimum, densely.
    for xm in MINIMUM.values():
        pts.append(_around(xm, dtype, 20))
        pts.append(xm + rng.uniform(-1e-3, 1e-3, n_random // 10).astype(dtype))
    # Both tails, linearly, out to where every kernel has underflowed.
    far = 40.0 if dtype is np.float64 else 16.0
    pts.append(rng.uniform(-far, far, n_random).astype(dtype))
    pts.append(np.linspace(-far, far, n_random // 2).astype(dtype))
    # Where the exact GELU's result turns subnormal.
    edge = (37.2, 38.8) if dtype is np.float64 else (12.9, 14.5)
    pts.append(-rng.uniform(*edge, n_random // 10).astype(dtype))
    # The sigmoid form underflows far out.
    pts.append(-rng.uniform(60.0, 70.0 if dtype is np.float32 else 450.0, n_random // 10).astype(dtype))
    # Magnitudes from the subnormals to the largest finite, both signs.
    lo, hi = math.log10(float(info.smallest_subnormal)), math.log10(float(info.max))
    mags = 10.0 ** rng.uniform(lo, hi, n_random)
    pts.append((mags * rng.choice([-1.0, 1.0], n_random)).astype(dtype))
    pts.append(np.array([info.smallest_subnormal, -info.smallest_subnormal,
                         info.tiny, -info.tiny, info.max, -info.max], dtype=dtype))
    # Near zero, where x/2 dominates.
    pts.append((10.0 ** rng.uniform(-12, 0, n_random // 4)).astype(dtype))
    pts.append(-(10.0 ** rng.uniform(-12, 0, n_random // 4)).astype(dtype))
    # Ordinary activations.
    pts.append(rng.standard_normal(n_random).astype(dtype) * dtype(3))
    x = np.unique(np.concatenate([np.ravel(p) for p in pts]).astype(dtype))
    return x[np.isfinite(x)]


def float64_search_points(n=100_000, seed=1):
    """The float64 search of README's accuracy table: the adversarial sample
    at a larger size, uniform draws over [-40, 40] and [-3, 3], log-uniform
    magnitudes and the neighbourhood of each minimum (sorted, unique)."""
    rng = np.random.default_rng(seed)
    pts = [adversarial_points(np.float64, n_random=n // 4, seed=seed),
           rng.uniform(-40, 40, n), rng.uniform(-3, 3, n),
           10.0 ** rng.uniform(-300, 2.6, n // 4) * rng.choice([-1.0, 1.0], n // 4)]
    for xm in MINIMUM.values():
        pts.append(xm + rng.uniform(-1e-2, 1e-2, n // 10))
    x = np.unique(np.concatenate(pts))
    return x[np.isfinite(x)]


@dataclass
class Worst:
    """The largest |error| found, in ulps, and where."""

    name: str
    dtype: str
    max_ulp: float
    at: float
    points: int
    monotonic_violations: list = field(default_factory=list)
    near_zero: dict = field(default_factory=dict)

    def __str__(self):
        return f"{self.name} {self.dtype}: {self.max_ulp:.3f} ulp at x = {self.at!r} ({self.points} points)"


def backward_dy(size, dtype, seed=2):
    """The dy a backward kernel is measured with on a sample: N(0, 1)."""
    return np.random.default_rng(seed).standard_normal(size).astype(dtype)


def max_ulp_error(name, dtype, x=None, target="cpu", prec=reference.DEFAULT_PREC):
    """Worst ulp error of kernel `name` on the points x (default: adversarial).
    A backward kernel is measured at dy = ``backward_dy`` against dy f'(x), in
    ulps of |dy| max(|f'(x)|, first term), as f' is."""
    from ..core.build import ufunc

    dtype = np.dtype(dtype).type
    x = adversarial_points(dtype) if x is None else np.asarray(x, dtype=dtype)
    if name.endswith("_backward"):
        dy = backward_dy(x.size, dtype)
        with np.errstate(under="ignore"):
            y = ufunc(name, target)(dy, x)
        err = np.abs(_backward_ulp_error(variant_of(name) + "_grad", x, dy, y, prec))
        i = int(np.argmax(err))
        return Worst(name, np.dtype(dtype).name, float(err[i]), float(x[i]), int(x.size))
    with np.errstate(under="ignore"):
        y = ufunc(name, target)(x)
    err = np.abs(reference.ulp_error(name, x, y, prec=prec))
    i = int(np.argmax(err))
    return Worst(name, np.dtype(dtype).name, float(err[i]), float(x[i]), int(x.size))


def _backward_ulp_error(grad, x, dy, y, prec):
    """(y - dy f'(x)) in ulps of |dy| max(|f'(x)|, first term), mpmath."""
    import mpmath as mp

    out = np.empty(x.shape, dtype=np.float64)
    for i in range(x.size):
        v, first = reference._pair(grad, x[i], prec)
        yi, d = float(y[i]), float(dy[i])
        if not isinstance(v, mp.mpf) or not math.isfinite(yi):
            want = d * float(v)
            out[i] = 0.0 if (math.isnan(want) and math.isnan(yi)) or want == yi else math.inf
            continue
        with mp.workprec(prec):
            scale = abs(mp.mpf(d)) * max(abs(v), abs(first))
            out[i] = 0.0 if scale == 0 and yi == 0 else float((mp.mpf(yi) - mp.mpf(d) * v) / reference.ulp(scale, y.dtype))
    return out


def _ulp32(v):
    """ulp in float32 of the float64 magnitudes v (subnormals included)."""
    _, e = np.frexp(np.abs(v))
    e = np.where(v == 0, -126, np.maximum(e - 1, -126))
    return np.ldexp(1.0, e - 23)


def _order32(x):
    """Rank of float32 x in increasing order of value: 0 for the negative NaN
    with all bits set, 2**31 - 1 for -0.0, 2**31 for +0.0, 2**32 - 1 for
    the positive NaN with all bits set."""
    b = int(np.float32(x).view(np.uint32))
    return (0xFFFFFFFF - b) if b >> 31 else b + (1 << 31)


def _floats32(rank_lo, rank_hi):
    """The float32 values of ranks [rank_lo, rank_hi), in increasing order."""
    r = np.arange(rank_hi - rank_lo, dtype=np.uint32)
    r += np.uint32(rank_lo)
    half = np.uint32(1 << 31)
    bits = np.where(r < half, np.uint32(0xFFFFFFFF) - r, r - half)
    return bits.view(np.float32)


#: The zeros of each derivative near which ``exhaustive_float32`` also
#: reports the error in ulps of the value itself (within NEAR_ZERO of one).
ZEROS = {
    "gelu_grad": (-0.7517915246935645,),
    "gelu_tanh_grad": (-0.7524614220710163,),
    "gelu_sigmoid_grad": (-0.7511542554412890,),
    "gelu_grad2": (-math.sqrt(2), math.sqrt(2)),
}
NEAR_ZERO = 2.0**-4


def _dy_for(dy, start, size):
    """The dy of a backward sweep's chunk: ones, or N(0, 1) in float32 drawn
    from a seed fixed by the chunk's first rank (the same run to run)."""
    if dy == "ones":
        return np.ones(size, np.float32)
    return np.random.default_rng(start).standard_normal(size).astype(np.float32)


def exhaustive_float32(name, chunk=1 << 22, progress=None, target="parallel", interval=None, kernel=None,
                       dy="ones"):
    """Every float32 input of `name` against its float64 kernel.

    `target` selects the float32 kernel under test: "parallel" (the CPU
    ufuncs, float32 computed in float64) or "same-precision" (float32 in
    float32, the arithmetic of the CUDA kernels); `kernel`, a callable on a
    float32 array, replaces it (to check another implementation).
    `interval` = (lo, hi) restricts the sweep to the float32 values in
    [lo, hi]; the default is all 2**32 bit patterns, NaNs included.

    A backward kernel (``gelu_backward`` ...) is measured as dy f'(x)
    against dy times the float64 f', in ulps of |dy| max(|f'|, first term)
    as f' is: `dy` is "ones" or "random" (N(0, 1) in float32, fixed per
    chunk).

    Inputs run in increasing order of value, so monotonicity above the
    minimum is checked across every adjacent pair (forward kernels only).
    For a derivative, ``near_zero`` holds the worst error in ulps of the
    value itself within NEAR_ZERO of each of its zeros (ZEROS) and where.
    Returns a :class:`Worst` whose ``monotonic_violations`` lists the first
    pairs (a, b, f(a), f(b)), a < b adjacent, with f(a) > f(b).  `progress`
    is called with the fraction done.
    """
    from ..core.build import ufunc

    backward = name.endswith("_backward")
    f32 = kernel if kernel is not None else ufunc(name, target)
    measured = variant_of(name) + "_grad" if backward else name
    f64 = ufunc(measured, "parallel")
    forward = ufunc(variant_of(name), "parallel")
    what = reference.kind(measured)
    zeros = ZEROS.get(measured, ())
    is_grad = what != "value"
    xmin = np.float32(MINIMUM[variant_of(name)])
    if interval is None:
        lo, hi = 0, 1 << 32
    else:
        a, b = (np.float32(v) for v in interval)
        if not a <= b:
            raise ValueError(f"interval must be (lo, hi) with lo <= hi, not {interval!r}")
        lo, hi = _order32(a), _order32(b) + 1
        if a == 0:  # -0.0 and +0.0 both, whichever was written
            lo = min(lo, _order32(-0.0))
        if b == 0:
            hi = max(hi, _order32(0.0) + 1)
    worst = Worst(name, "float32", 0.0, math.nan, 0)
    violations = worst.monotonic_violations
    starts = range(lo, hi, chunk)
    carry = None
    near = {z: [0.0, math.nan] for z in zeros}
    for done, start in enumerate(starts, 1):
        x = _floats32(start, min(start + chunk, hi))
        finite = np.isfinite(x)
        with np.errstate(under="ignore", invalid="ignore", over="ignore"):  # signalling NaNs
            if backward:
                d = _dy_for(dy, start, x.size)
                y = np.asarray(f32(d, x))
            else:
                y = np.asarray(f32(x))
            x64 = x.astype(np.float64)
            ref = f64(x64)
            if backward:
                ref = ref * d
            if zeros:
                own = np.abs(y.astype(np.float64) - ref) / _ulp32(np.abs(ref))
                for z in zeros:
                    by = np.nonzero(np.abs(x64 - z) <= NEAR_ZERO)[0]
                    if by.size:
                        j = by[int(np.argmax(own[by]))]
                        if own[j] > near[z][0]:
                            near[z] = [float(own[j]), float(x[j])]
            scale = np.abs(ref)
            if what == "grad":
                with np.errstate(invalid="ignore", divide="ignore"):
                    first = np.where(x64 == 0, 0.5, forward(x64) / x64)
                scale = np.maximum(scale, np.abs(first) * (np.abs(d) if backward else 1.0))
            elif what == "grad2":
                scale = np.maximum(scale, _grad2_first_term(variant_of(name), x64))
            err = np.abs(y.astype(np.float64) - ref) / _ulp32(scale)
        if y.dtype != np.float32:
            raise TypeError(f"the kernel under test returned {y.dtype}, not float32")
        err = np.where(finite, err, 0.0)
        if backward:  # dy ref = 0 exactly (a zero dy, or a result below float64's range)
            err = np.where(scale == 0, np.where(y == 0, 0.0, np.inf), err)
        err[np.isnan(err)] = np.inf  # a NaN result for a finite input
        limit = _limit(x, what) * (d if backward else 1)
        bad = ~finite & ~((y == limit) | (np.isnan(x) & np.isnan(y)) | (np.isnan(limit) & np.isnan(y)))
        err[bad] = np.inf
        i = int(np.argmax(err))
        if err[i] > worst.max_ulp or worst.points == 0:  # (at: a real input even if all are exact)
            worst.max_ulp, worst.at = float(err[i]), float(x[i])
        worst.points += int(x.size)
        if not is_grad:
            carry = _check_monotone(x, y, xmin, carry, violations)
        if progress is not None:
            progress(done / len(starts))
    worst.near_zero = {z: tuple(v) for z, v in near.items()}
    return worst


def _limit(x, what):
    if what == "grad2":
        return np.zeros_like(x)
    if what == "grad":
        return np.where(x > 0, np.float32(1), np.float32(0))
    return np.where(x > 0, x, np.float32(0))


def _grad2_first_term(variant, x):
    """|first term| of f'' in float64 (the error scale of the second
    derivatives, see gelu_numba.tools.reference): 2 phi(x), or 2 sigma'(w) w'."""
    with np.errstate(all="ignore"):
        if variant == "gelu":
            return 2 * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        if variant == "gelu_tanh":
            k = 2 * math.sqrt(2 / math.pi)
            w, dw = k * (x + 0.044715 * x**3), k * (1 + 3 * 0.044715 * x * x)
        else:
            w, dw = 1.702 * x, np.full_like(x, 1.702)
        e = np.exp(-np.abs(w))
        return np.nan_to_num(2 * dw * e / (1 + e) ** 2)


def _check_monotone(x, y, xmin, carry, violations, keep=20):
    """Record adjacent pairs (x increasing) above x_min where f decreases.

    `carry` is the last (x, y) above x_min of the previous chunk; NaN inputs
    are skipped, so -0.0 joins +0.0 and the largest float joins +inf.
    """
    mask = (x >= xmin) & ~np.isnan(x)
    xs, ys = x[mask], y[mask]
    if carry is not None:
        xs, ys = np.insert(xs, 0, carry[0]), np.insert(ys, 0, carry[1])
    if xs.size == 0:
        return carry
    down = np.nonzero(ys[1:] < ys[:-1])[0]
    for j in down[: max(0, keep - len(violations))]:
        violations.append((float(xs[j]), float(xs[j + 1]), float(ys[j]), float(ys[j + 1])))
    return xs[-1], ys[-1]
