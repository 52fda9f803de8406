"""CPU benchmarks: every kernel, serial and parallel, with and without out=."""

import numpy as np

from .common import DTYPES, KERNELS, SIZES, arguments, ours


class TimeKernels:
    """ns per call; divide by the size for ns/element.

    Every kernel of gelu_numba (common.KERNELS).  The committed results carry
    the version asv derives from the source of setup and time_kernel
    (1c73cfde...): editing either hides them from the published history
    unless a ``version`` attribute pins that value.
    """

    params = (list(KERNELS), list(DTYPES), list(SIZES), ["parallel", "serial"], [True, False])
    param_names = ["kernel", "dtype", "size", "target", "out"]
    repeat = (1, 5, 2.0)
    rounds = 1
    timeout = 600

    def setup(self, kernel, dtype, size, target, out):
        self.f = ours(kernel, target)
        self.args = arguments(kernel, size, dtype)
        self.out = np.empty(size, dtype) if out else None
        self.f(*self.args)  # compile or load from cache outside the timing

    def time_kernel(self, kernel, dtype, size, target, out):
        if self.out is None:
            self.f(*self.args)
        else:
            self.f(*self.args, out=self.out)


class TimeCopy:
    """The memory-bound floor: np.copyto on the same sizes."""

    params = (list(DTYPES), list(SIZES))
    param_names = ["dtype", "size"]
    rounds = 1

    def setup(self, dtype, size):
        self.x = arguments("gelu", size, dtype)[0]
        self.out = np.empty_like(self.x)

    def time_copyto(self, dtype, size):
        np.copyto(self.out, self.x)


class MemoryKernels:
    """A call with out= allocates nothing proportional to the input."""

    params = ([True, False],)
    param_names = ["out"]
    size = 10_000_000

    def setup(self, out):
        self.f = ours("gelu", "parallel")
        self.x = arguments("gelu", self.size, "float32")[0]
        self.out = np.empty_like(self.x) if out else None
        self.f(self.x[:10])

    def _call(self):
        return self.f(self.x) if self.out is None else self.f(self.x, out=self.out)

    def peakmem_gelu_float32_10M(self, out):
        self._call()

    def track_bytes_allocated_gelu_float32_10M(self, out):
        import tracemalloc

        tracemalloc.start()
        try:
            self._call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    track_bytes_allocated_gelu_float32_10M.unit = "bytes"


def timeraw_import():
    """import gelu_numba in a fresh process (compiles nothing)."""
    return "import gelu_numba"


def timeraw_import_and_first_call():
    """Import, look up a kernel and call it: loading from Numba's cache."""
    return "import gelu_numba; gelu_numba.gelu(1.0)"


def timeraw_first_call_cold_cache():
    """The same with an empty cache: the JIT compile of both loops."""
    return (
        "import os, tempfile; os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp()\n"
        "import gelu_numba; gelu_numba.gelu(1.0)"
    )


timeraw_first_call_cold_cache.timeout = 300
