"""The peers, in the same suite: PyTorch and the NumPy+SciPy expressions.

A peer that is not installed is skipped (NotImplementedError in setup).
TrackRatio records ours / PyTorch from one process, so the history shows the
ratio itself, not only two curves to compare by eye.
"""

import math
import time

import numpy as np

from .common import DTYPES, SIZES, arguments, ours, scipy_special_or_skip, torch_or_skip

OPERATIONS = ["gelu", "gelu_tanh", "gelu_backward", "gelu_tanh_backward"]
APPROXIMATE = {"gelu": "none", "gelu_tanh": "tanh", "gelu_backward": "none", "gelu_tanh_backward": "tanh"}


def _torch_call(torch, op, args, out):
    t_args = [torch.from_numpy(a) for a in args]
    t_out = torch.from_numpy(out)
    approximate = APPROXIMATE[op]
    if op.endswith("_backward"):
        dy, x = t_args
        return lambda: torch.ops.aten.gelu_backward.grad_input(dy, x, approximate=approximate, grad_input=t_out)
    (x,) = t_args
    return lambda: torch.ops.aten.gelu.out(x, approximate=approximate, out=t_out)


class TimeTorch:
    """PyTorch 2 threads, with a preallocated output (aten .out variants)."""

    params = (OPERATIONS, list(DTYPES), list(SIZES))
    param_names = ["operation", "dtype", "size"]
    repeat = (1, 5, 2.0)
    rounds = 1

    def setup(self, op, dtype, size):
        torch = torch_or_skip()
        args = arguments(op, size, dtype)
        self.call = _torch_call(torch, op, args, np.empty(size, dtype))
        self.call()

    def time_torch(self, op, dtype, size):
        self.call()


class TimeNumpyScipy:
    """What one writes without this package: x * ndtr(x), and friends."""

    params = (["gelu", "gelu_tanh", "gelu_sigmoid"], list(DTYPES), list(SIZES))
    param_names = ["operation", "dtype", "size"]
    repeat = (1, 5, 2.0)
    rounds = 1

    def setup(self, op, dtype, size):
        special = scipy_special_or_skip()
        x = arguments(op, size, dtype)[0]
        t = x.dtype.type
        tmp, out = np.empty_like(x), np.empty_like(x)
        c = t(math.sqrt(2 / math.pi))
        if op == "gelu":
            def call():
                np.multiply(x, special.ndtr(x, out=tmp), out=out)
        elif op == "gelu_tanh":
            def call():
                np.multiply(x, x, out=tmp)
                np.multiply(tmp, t(0.044715), out=tmp)
                np.add(tmp, t(1), out=tmp)
                np.multiply(tmp, x, out=tmp)
                np.multiply(tmp, c, out=tmp)
                np.tanh(tmp, out=tmp)
                np.add(tmp, t(1), out=tmp)
                np.multiply(tmp, x, out=tmp)
                np.multiply(tmp, t(0.5), out=out)
        else:
            def call():
                np.multiply(x, special.expit(np.multiply(x, t(1.702), out=tmp), out=tmp), out=out)
        self.call = call

    def time_numpy_scipy(self, op, dtype, size):
        self.call()


def _best(fn, repeats=7):
    fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


class TrackRatio:
    """gelu_numba.parallel / PyTorch at 1M elements, measured back to back."""

    params = (OPERATIONS, list(DTYPES))
    param_names = ["operation", "dtype"]
    unit = "ratio"
    size = 1 << 20
    rounds = 1

    def setup(self, op, dtype):
        torch = torch_or_skip()
        args = arguments(op, self.size, dtype)
        out = np.empty(self.size, dtype)
        f = ours(op, "parallel")
        self.ours = lambda: f(*args, out=out)
        self.theirs = _torch_call(torch, op, args, np.empty(self.size, dtype))

    def track_parallel_over_torch(self, op, dtype):
        return _best(self.ours) / _best(self.theirs)
