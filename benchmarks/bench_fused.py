"""The fused forms (bias-GELU and GeGLU, forward and backward) against the
unfused expression they give the bits of, multi-threaded, out=."""

import numpy as np

from .common import ours


class TimeFused:
    """ns per call on a (rows, 1024) activation, the bias of 1024 along the
    last axis; divide by rows * 1024 for ns/element.  ``unfused`` is NumPy's
    add or multiply into a preallocated temporary and the single form of
    ``gelu_numba.parallel``, out=; commits before the fused forms skip
    ``fused``."""

    params = (["bias_gelu", "bias_gelu_backward", "geglu", "geglu_backward"], ["fused", "unfused"],
              ["float32", "float64"], [1024, 64])
    param_names = ["kernel", "implementation", "dtype", "rows"]
    repeat = (1, 5, 2.0)
    rounds = 1
    timeout = 600

    def setup(self, kernel, implementation, dtype, rows):
        rng = np.random.default_rng(0)
        shape = (rows, 1024)
        x, g, dy = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
        b = rng.standard_normal(1024).astype(dtype)
        o, t = np.empty(shape, dtype), np.empty(shape, dtype)
        if implementation == "fused":
            f = ours(kernel, "parallel")
            args = {"bias_gelu": (x, b), "bias_gelu_backward": (dy, x, b), "geglu": (x, g),
                    "geglu_backward": (dy, x, g)}[kernel]
            out = (o, t) if kernel == "geglu_backward" else o
            self.run = lambda: f(*args, out=out)
        else:
            gelu, backward = ours("gelu", "parallel"), ours("gelu_backward", "parallel")
            self.run = {
                "bias_gelu": lambda: (np.add(x, b, out=t), gelu(t, out=o)),
                "bias_gelu_backward": lambda: (np.add(x, b, out=t), backward(dy, t, out=o)),
                "geglu": lambda: (gelu(x, out=t), np.multiply(t, g, out=o)),
                "geglu_backward": lambda: (np.multiply(dy, g, out=t), backward(t, x, out=o), gelu(x, out=t),
                                           np.multiply(dy, t, out=t)),
            }[kernel]
        self.run()  # compile or load from cache outside the timing

    def time_fused(self, kernel, implementation, dtype, rows):
        self.run()
