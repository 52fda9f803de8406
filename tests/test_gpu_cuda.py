"""The CUDA kernels on a real GPU, with CuPy, PyTorch and Numba arrays.

Skipped, with the reason, where no GPU is usable.  On a GPU the kernels are
the same-precision arithmetic of the simulator tests, compiled by NVVM,
which may contract a*b + c into FMAs the CPU build keeps separate: results
are held to the accuracy contract against mpmath and to within one ulp of
the CPU build of the same arithmetic, not to bit equality.
"""

import numpy as np
import pytest

import gelu_numba.gpu as gg
from gelu_numba.tools import accuracy, reference
from _kernels import same_precision_values
from gelu_numba.core.build import BINARY, NAMES, UNARY

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not gg.is_available(), reason=f"no CUDA GPU: {gg.describe()}"),
]

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, -0.7517915, -40.0, 40.0, -13.2, 1.0, -1.0]


def ulp_distance(a, b):
    """|a - b| in units of the float type, ordered as integers (NaN == NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    it = np.int32 if a.dtype == np.float32 else np.int64 if a.dtype == np.float64 else np.int16
    ia, ib = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    ia = np.where(ia < 0, np.iinfo(it).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(it).min - ib, ib)
    d = np.abs(ia - ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, d)


cpu_same_precision = same_precision_values


def host_sample(dtype, n=4099, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 5).astype(dtype)
    x[: len(SPECIALS)] = np.array(SPECIALS).astype(dtype)
    return x


# --- per-library adapters: to device, to host, the array type ----------------


def _numba():
    from numba import cuda

    return cuda.to_device, lambda d: d.copy_to_host(), type(cuda.device_array(1))


def _cupy():
    cp = pytest.importorskip("cupy")
    return cp.asarray, cp.asnumpy, cp.ndarray


def _torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    return (lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda()), (lambda t: t.cpu().numpy()), torch.Tensor


LIBRARIES = {"numba": _numba, "cupy": _cupy, "torch": _torch}


@pytest.mark.parametrize("lib", list(LIBRARIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_kernels_on_each_library(lib, name, dtype):
    to_dev, to_host, array_type = LIBRARIES[lib]()
    x = host_sample(dtype)
    args = [host_sample(dtype, seed=1), x] if name in BINARY else [x]
    got_dev = getattr(gg, name)(*(to_dev(a) for a in args))
    assert isinstance(got_dev, array_type), type(got_dev)
    got = to_host(got_dev)
    with np.errstate(all="ignore"):
        want = cpu_same_precision(name, *args)
    assert got.dtype == dtype
    assert ulp_distance(got, want).max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", UNARY)
def test_accuracy_contract_on_the_gpu(name, dtype):
    from numba import cuda

    x = accuracy.adversarial_points(dtype, n_random=500)
    got = getattr(gg, name)(cuda.to_device(x)).copy_to_host()
    err = np.abs(reference.ulp_error(name, x, got, prec=120))
    assert err.max() <= 2.0, f"{name} {dtype.__name__}: {err.max():.3f} ulp at {x[np.argmax(err)]!r}"


def test_float16_is_computed_in_float32():
    from numba import cuda

    x = host_sample(np.float16, n=1000)
    got = gg.gelu(cuda.to_device(x)).copy_to_host()
    assert got.dtype == np.float16
    assert ulp_distance(got, cpu_same_precision("gelu", x)).max() <= 1


def test_strided_and_in_place_with_cupy():
    cp = pytest.importorskip("cupy")
    x = cp.asarray(host_sample(np.float32, n=6000).reshape(60, 100))
    view = x[::-2, 3::5]
    want = cpu_same_precision("gelu_tanh", cp.asnumpy(view))
    assert ulp_distance(cp.asnumpy(gg.gelu_tanh(view)), want).max() <= 1
    before = cp.asnumpy(x)
    gg.gelu(x, out=x)
    assert ulp_distance(cp.asnumpy(x), cpu_same_precision("gelu", before)).max() <= 1


def test_runs_on_the_producers_stream_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x = torch.randn(1 << 20, device="cuda")
        y = gg.gelu(x)  # queued on s after randn, no host synchronisation needed
        z = torch.nn.functional.gelu(x)
    s.synchronize()
    assert torch.allclose(y, z, rtol=1e-5, atol=1e-6)
    assert y.device == x.device and y.dtype == x.dtype


def test_explicit_cupy_stream():
    cp = pytest.importorskip("cupy")
    s = cp.cuda.Stream(non_blocking=True)
    x = cp.asarray(host_sample(np.float32))
    out = cp.empty_like(x)
    gg.gelu_sigmoid(x, out=out, stream=s)
    s.synchronize()
    assert ulp_distance(cp.asnumpy(out), cpu_same_precision("gelu_sigmoid", cp.asnumpy(x))).max() <= 1


def test_errors_before_any_launch():
    from numba import cuda

    x = cuda.to_device(np.ones(8, np.float32))
    with pytest.raises(TypeError):
        gg.gelu(np.ones(8, np.float32))
    with pytest.raises(TypeError):
        gg.gelu_backward(cuda.to_device(np.ones(8)), x)
    with pytest.raises(ValueError):
        gg.gelu_backward(cuda.to_device(np.ones(9, np.float32)), x)
