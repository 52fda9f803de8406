"""Digests of every kernel's results on a saved sample, to compare machines bit for bit.

    python tools/bits_digest.py --make-sample in.npz     # on one machine (x86): the inputs
    python tools/bits_digest.py in.npz > digests.json     # on each machine, the same file

The sample, per dtype: 2^18 random bit patterns (NaN payloads, subnormals,
infinities), N(0, 3^2), the tails, the minimum's neighbourhood and the
special values; dy for the backward kernels N(0, 1) with random bit
patterns every 7th, and an infinite dy at saturated x (f'(x) = 0); the
fused forms' other input (b or g) is x reversed, with a NaN of x's at each of x's NaNs (``second_operand``).  Every kernel
x dtype x (gelu_numba, gelu_numba.parallel) x (contiguous, strided [::3])
is run on it and its result's SHA-256 printed (first 16 hex digits), as
JSON.  The inputs
are made once and carried over: random generators need not agree across
architectures.  Used for aarch64 under qemu-user (shared/arm64.md;
benchmarks/figures/aarch64_bits.json).
"""

import argparse
import hashlib
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def make_sample(path, n=1 << 18, seed=20261207):
    rng = np.random.default_rng(seed)
    d = {}
    for dt, u in (("float32", np.uint32), ("float64", np.uint64)):
        t = np.dtype(dt).type
        bits = rng.integers(0, np.iinfo(u).max, n, dtype=u, endpoint=True).view(t)
        x = np.concatenate([bits, rng.normal(0, 3, n).astype(t), -rng.uniform(0, 40, n).astype(t),
                            rng.uniform(-1.1, -0.4, n).astype(t), np.array([0, -0.0, np.inf, -np.inf, np.nan], t)])
        dy = rng.normal(0, 1, x.size).astype(t)
        dy[::7] = rng.integers(0, np.iinfo(u).max, dy[::7].size, dtype=u).view(t)
        # an infinite dy where f'(x) = 0 (every form saturated): the
        # backward kernels' own invalid operation, whose NaN is x86's
        low = np.array([-16, -41, -75, -500, -1e5, -1e30, -np.inf], t)
        x = np.concatenate([x, low, low, np.array([np.inf, np.inf, 1.0], t)])
        dy = np.concatenate([dy, np.full(2 * low.size, np.inf, t), np.array([np.inf, -np.inf, np.inf], t)])
        dy[-3 - low.size:-3] *= -1
        d["x_" + dt], d["dy_" + dt] = x, dy
    np.savez(path, **d)


def second_operand(x):
    """The fused forms' other input (b or g), made from x without a random
    generator: x reversed, and at each of x's NaNs another of x's NaNs
    (quiet or signalling, the next one's payload), so that NaN meets NaN
    about a thousand times per dtype."""
    b = x[::-1].copy()
    where = np.flatnonzero(np.isnan(x))
    b[where] = x[np.roll(where, 1)]
    return b


def digests(path, only=None):
    import gelu_numba as gn
    import gelu_numba.parallel as gp
    from gelu_numba.core.names import ARITY, BINARY, FUSED, UNARY, parse_fused

    d = np.load(path)
    out = {}
    with np.errstate(all="ignore"):
        for dt in ("float32", "float64"):
            x, dy = d["x_" + dt], d["dy_" + dt]
            b = second_operand(x)
            for name in FUSED if only != "single" else ():
                inputs = (x, b) if ARITY[parse_fused(name)[0]][0] == 2 else (dy, x, b)
                for mod in (gn, gp):
                    for layout, sl in (("contiguous", slice(None)), ("strided", slice(None, None, 3))):
                        y = getattr(mod, name)(*(a[sl] for a in inputs))
                        y = y if isinstance(y, tuple) else (y,)
                        key = f"{name}/{dt}/{mod.__name__}/{layout}"
                        out[key] = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in y)).hexdigest()[:16]
            for name in UNARY + BINARY if only != "fused" else ():
                for mod in (gn, gp):
                    f = getattr(mod, name)
                    for layout, sl in (("contiguous", slice(None)), ("strided", slice(None, None, 3))):
                        y = f(x[sl]) if name in UNARY else f(dy[sl], x[sl])
                        key = f"{name}/{dt}/{mod.__name__}/{layout}"
                        out[key] = hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()[:16]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sample", help="the .npz of inputs")
    p.add_argument("--make-sample", action="store_true", help="write the sample instead of reading it")
    p.add_argument("--only", choices=("single", "fused"), help="the single forms or the fused ones (default: both)")
    args = p.parse_args(argv)
    if args.make_sample:
        make_sample(args.sample)
        return
    print(json.dumps(digests(args.sample, args.only)))


if __name__ == "__main__":
    main()
