"""gelu_numba.parallel gives bit-identical results to the serial ufuncs."""

import numpy as np
import pytest

from _kernels import ALL, BINARY, parallel, serial


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 6).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -50.0, -0.7517915], dtype=dtype)
    x[: min(n, special.size)] = special[: min(n, special.size)]
    return x


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n", [0, 1, 7, 4099, 100_003, (1 << 20) + 5])
def test_bit_identical(name, n, dtype):
    x = data(n, dtype)
    args = (data(n, dtype, seed=1), x) if name in BINARY else (x,)
    with np.errstate(under="ignore", invalid="ignore"):  # dy = -inf times f'(-inf) = -0.0
        a, b = serial(name)(*args), parallel(name)(*args)
    assert np.array_equal(bits(a), bits(b))


@pytest.mark.parametrize("name", ["gelu", "gelu_sigmoid_grad", "gelu_tanh_backward"])
def test_bit_identical_strided(name, dtype):
    x = data(300_000, dtype).reshape(600, 500)[::2, ::-3]
    args = (np.ones_like(x), x) if name in BINARY else (x,)
    assert np.array_equal(bits(serial(name)(*args)), bits(parallel(name)(*args)))
