"""CUDA benchmarks: kernel time and bandwidth (GB/s) next to a device copy.

Skipped (NotImplementedError in setup) where no GPU is usable, so a machine
without one records no result: the published page's thumbnail of each says
so, and its name (pretty_name) says why.
"""

import numpy as np

SIZES = [1 << 20, 1 << 24, 1 << 26]


def _cuda_or_skip():
    try:
        import gelu_numba.gpu as gg
    except ImportError:
        raise NotImplementedError("gelu_numba.gpu is not available in this version") from None
    if not gg.is_available():
        raise NotImplementedError(gg.describe())
    from numba import cuda

    return gg, cuda


class TimeCUDA:
    params = (["gelu", "gelu_tanh", "gelu_backward"], ["float32", "float64"], SIZES)
    param_names = ["kernel", "dtype", "size"]
    rounds = 1

    def setup(self, kernel, dtype, size):
        gg, cuda = _cuda_or_skip()
        self.cuda = cuda
        x = cuda.to_device(np.random.default_rng(0).standard_normal(size).astype(dtype))
        self.out = cuda.device_array_like(x)
        f = getattr(gg, kernel)
        self.args = (cuda.to_device(np.ones(size, dtype)), x) if kernel.endswith("_backward") else (x,)
        self.f = f
        f(*self.args, out=self.out)
        cuda.synchronize()

    def time_kernel(self, kernel, dtype, size):
        self.f(*self.args, out=self.out)
        self.cuda.synchronize()

    time_kernel.pretty_name = "TimeCUDA.time_kernel (needs a GPU)"


class TrackCUDABandwidth:
    """GB/s (bytes read + written per second), CUDA events, best of 20."""

    params = (["copy", "gelu", "gelu_tanh", "gelu_backward"], ["float32"], SIZES)
    param_names = ["kernel", "dtype", "size"]
    unit = "GB/s"
    rounds = 1

    def setup(self, kernel, dtype, size):
        try:
            from gelu_numba.tools.gpu_bench import bandwidth
        except ModuleNotFoundError:  # commits before the split into core and tools
            from gelu_numba.gpu_bench import bandwidth

        _cuda_or_skip()
        self.bandwidth = bandwidth

    def track_gbps(self, kernel, dtype, size):
        return self.bandwidth(kernel, dtype, size)

    track_gbps.pretty_name = "TrackCUDABandwidth.track_gbps (needs a GPU)"
