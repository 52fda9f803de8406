"""A NaN x comes back unchanged: its payload, its sign, quiet or signalling,
from every kernel, in both formats, on every loop path.

The paths: the serial unit-stride loop (the NaNs at every position of a
SIMD block, the masked head and the remainder included), the threaded one,
a strided run, and for the backward kernels a broadcast dy, serial and
threaded.  (A float32 loop that returned the default NaN passed the whole
suite before this file.)
"""

import numpy as np
import pytest

import gelu_numba as gn
import gelu_numba.parallel as gp
from gelu_numba.core.names import BINARY, UNARY

PAYLOADS = {
    np.float32: (np.uint32, [0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFD54321, 0x7F800001, 0xFF812345, 0x7FA00000,
                             0xFFBFFFFF]),
    np.float64: (np.uint64, [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8123456789ABC, 0xFFF80000DEADBEEF,
                             0x7FF0000000000001, 0xFFF0123456789ABC, 0x7FF4000000000000]),
}
#: Long enough to take the threaded path of gelu_numba.parallel in both formats.
N = 40_003


def _with_nans(dtype, n=N, seed=0):
    """N(0, 3^2) with the payloads at the first 40 and last 40 positions
    (every offset in a 16-lane block and in a cache line, head and
    remainder) and spread through the middle; the positions of the NaNs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, n).astype(dtype)
    uint, payloads = PAYLOADS[dtype]
    where = np.unique(np.concatenate([np.arange(40), n - 1 - np.arange(40), rng.choice(n, 400, replace=False)]))
    x.view(uint)[where] = np.resize(np.array(payloads, uint), where.size)
    return x, where


def _assert_kept(x, y, where, what):
    uint = PAYLOADS[x.dtype.type][0]
    got, want = y.view(uint)[where], x.view(uint)[where]
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (f"{what}: {bad.size} NaN inputs changed, e.g. {hex(int(want[bad[0]]))} -> "
                           f"{hex(int(got[bad[0]]))}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", UNARY + BINARY)
def test_nan_payloads_come_back_unchanged(name, dtype):
    x, where = _with_nans(dtype)
    dy = np.random.default_rng(1).normal(0, 1, x.size).astype(dtype)
    strided = np.repeat(x, 2)  # every element twice: x is strided[::2]
    for module in (gn, gp):
        f = getattr(module, name)
        path = module.__name__
        with np.errstate(invalid="ignore"):  # signalling NaNs raise "invalid" where they are found
            if name in UNARY:
                _assert_kept(x, f(x), where, f"{path} contiguous")
                _assert_kept(x, f(strided[::2]), where, f"{path} strided")
                for offset in range(1, 17):  # every alignment of the SIMD blocks
                    _assert_kept(x[offset:], f(x[offset:]), where[where >= offset] - offset, f"{path} offset {offset}")
            else:
                _assert_kept(x, f(dy, x), where, f"{path} contiguous")
                _assert_kept(x, f(np.repeat(dy, 2)[::2], strided[::2]), where, f"{path} strided")
                _assert_kept(x, f(dtype(0.5), x), where, f"{path} broadcast dy")
                for offset in range(1, 17):
                    _assert_kept(x[offset:], f(dy[offset:], x[offset:]), where[where >= offset] - offset,
                                 f"{path} offset {offset}")
