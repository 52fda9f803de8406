"""Hugging Face activation names, the PyTorch module, Dask and xarray, examples."""

import pathlib
import runpy
import subprocess
import sys

import numpy as np
import pytest

import gelu_numba as gn
from gelu_numba.tools import reference

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


# --- activation names ----------------------------------------------------------

@pytest.mark.parametrize(
    "name, kernel",
    [("gelu", "gelu"), ("gelu_python", "gelu"), ("gelu_new", "gelu_tanh"), ("gelu_fast", "gelu_tanh"),
     ("gelu_pytorch_tanh", "gelu_tanh"), ("gelu_python_tanh", "gelu_tanh"), ("gelu_accurate", "gelu_tanh"),
     ("quick_gelu", "gelu_sigmoid")],
)
def test_activation_names(name, kernel):
    act = gn.activation(name)
    x = np.linspace(-6, 6, 101)
    dy = np.cos(x)
    assert act.kernel == kernel
    assert np.array_equal(act.forward(x), getattr(gn, kernel)(x))
    assert np.array_equal(act.grad(x), getattr(gn, kernel + "_grad")(x))
    assert np.array_equal(act.backward(dy, x), getattr(gn, kernel + "_backward")(dy, x))
    assert np.array_equal(act(x), act.forward(x))


# The GELU family of transformers' ACT2CLS (src/transformers/activations.py)
# in the release named by gelu_numba.activations.TRANSFORMERS_VERSION.
TRANSFORMERS_GELU_NAMES = {
    "5.24.0": {"gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python", "gelu_pytorch_tanh",
               "gelu_python_tanh", "gelu_accurate", "quick_gelu"},
}


def test_activation_names_follow_a_named_transformers_release():
    from gelu_numba import activations

    assert set(activations.NAMES) == TRANSFORMERS_GELU_NAMES[activations.TRANSFORMERS_VERSION]


def test_activation_names_cover_the_installed_transformers():
    pytest.importorskip("torch", reason="transformers' activation table needs torch")
    act = pytest.importorskip("transformers.activations", reason="transformers is not installed")
    from gelu_numba import activations

    theirs = {n for n in act.ACT2CLS if "gelu" in n}
    assert theirs <= set(activations.NAMES), f"new in transformers: {sorted(theirs - set(activations.NAMES))}"


def test_gelu_10_clips_value_and_gradient():
    act = gn.activation("gelu_10")
    x = np.array([-30.0, -1.0, 0.5, 9.0, 10.5, 1e3])
    y = act.forward(x)
    assert np.all((y >= -10) & (y <= 10)) and y[-1] == 10 and y[-2] == 10
    assert np.array_equal(y[:4], gn.gelu(x[:4]))
    g = act.grad(x)
    assert np.array_equal(g[-2:], [0.0, 0.0]) and np.array_equal(g[:4], gn.gelu_grad(x[:4]))
    assert np.array_equal(act.backward(2 * np.ones_like(x), x), 2 * g)
    # On the clip's edge the gradient passes, as torch.clamp's does: gelu(10.0)
    # rounds to 10.0 exactly.
    assert act.forward(10.0) == 10.0 and act.grad(10.0) == 1.0
    assert act.grad(-1e300) == 0.0 and act.grad(12.0) == 0.0


def test_gelu_10_keeps_xarray_dims():
    xr = pytest.importorskip("xarray")
    act = gn.activation("gelu_10")
    a = xr.DataArray(np.array([[-20.0, 0.5], [9.0, 11.0]], np.float32), dims=("batch", "feature"),
                     coords={"batch": [1, 2]})
    for b in (act.forward(a), act.grad(a), act.backward(xr.ones_like(a), a)):
        assert isinstance(b, xr.DataArray) and b.dims == a.dims and b.dtype == np.float32
        assert b.coords.equals(a.coords)
    assert np.array_equal(act.grad(a).values, act.grad(a.values))


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: gelu, gelu_python, gelu_new"):
        gn.activation("relu")


def test_importing_gelu_numba_does_not_import_torch():
    code = "import sys, gelu_numba; gelu_numba.gelu(1.0); gelu_numba.activation('gelu'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- PyTorch ---------------------------------------------------------------------



def _torch():
    return pytest.importorskip("torch")


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("approximate", ["none", "tanh", "sigmoid"])
def test_torch_gradcheck_float64(approximate):
    t = _torch()
    from gelu_numba.torch import gelu

    x = t.randn(6, 5, dtype=t.float64, requires_grad=True) * 3
    assert t.autograd.gradcheck(lambda v: gelu(v, approximate), (x.detach().requires_grad_(),))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_module_matches_torch_nn_gelu(approximate, dtype):
    """Forward and backward agree with torch.nn.GELU evaluated in float64.

    Not with torch in float32: its tanh backward returns 0 below x ~ -5.06
    (true value ~1e-6) and is 5% off near x = -4.7, where ours is within
    an ulp or two of the float64 result.
    """
    t = _torch()
    from gelu_numba.torch import GELU

    gen = t.Generator().manual_seed(7)
    dt = getattr(t, dtype)
    x = (t.randn(64, 33, generator=gen, dtype=t.float64) * 3).to(dt).requires_grad_()
    x64 = x.detach().double().requires_grad_()
    ours, ref = GELU(approximate)(x), t.nn.GELU(approximate=approximate)(x64)
    assert ours.dtype == dt
    # Two ulps of the dtype, relative. The absolute part allows for torch's
    # own cancellation in 0.5*x*(1 + erf(x/sqrt2)) for x < 0 (about
    # |x|*2**-53 in float64); torch in float32 misses by 1e-6 and fails.
    tol = {"float32": dict(rtol=2**-22, atol=1e-12), "float64": dict(rtol=2**-51, atol=1e-14)}[dtype]
    assert t.allclose(ours.double(), ref.to(dt).double(), **tol)
    g = t.randn(ours.shape, generator=gen, dtype=t.float64).to(dt)
    ours.backward(g)
    ref.backward(g.double())
    assert x.grad.dtype == dt
    assert t.allclose(x.grad.double(), x64.grad.to(dt).double(), **tol)


def test_torch_tail_stays_accurate_where_torch_collapses():
    t = _torch()
    from gelu_numba.torch import gelu

    x = t.tensor([-6.0, -8.0, -12.0])
    theirs = t.nn.functional.gelu(x)
    ours = gelu(x)
    assert t.all(theirs == 0)
    err = reference.ulp_error("gelu", x.numpy(), ours.numpy())
    assert np.all(np.abs(err) <= 1) and t.all(ours < 0)


def test_torch_non_contiguous_half_and_module_repr():
    t = _torch()
    from gelu_numba.torch import GELU, gelu

    x = t.randn(10, 8)[:, ::2]
    assert t.allclose(gelu(x), t.nn.functional.gelu(x), rtol=1e-5, atol=1e-6)
    for dt in (t.float16, t.bfloat16):
        y = gelu(t.randn(7, dtype=dt))
        assert y.dtype == dt
    assert "approximate='sigmoid'" in repr(GELU("sigmoid"))
    for dt in (t.int64, t.int32, t.bool, t.complex64):  # torch.nn.GELU refuses these too
        with pytest.raises(TypeError, match="supported dtypes are float16, bfloat16, float32, float64"):
            gelu(t.ones(3, dtype=dt))
    with pytest.raises(ValueError, match="approximate"):
        GELU("erf")


# --- Dask and xarray --------------------------------------------------------------

def test_dask_stays_lazy_and_runs_on_a_multiprocess_cluster():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    x = da.random.default_rng(0).standard_normal((2000, 64), chunks=(500, 64)).astype(np.float32)
    y = gn.gelu(x)
    assert isinstance(y, da.Array) and y.dtype == np.float32 and y.chunks == x.chunks
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2  # two worker processes: the ufunc travelled by pickle
        got = y.compute()
        dx = gn.gelu_backward(da.ones_like(x), x).compute()
    host = x.compute()
    assert np.array_equal(got, gn.gelu(host))
    assert np.array_equal(dx, gn.gelu_grad(host))


def test_dask_fused_forms_with_a_bias_and_the_threaded_callables():
    """The fused forms on Dask arrays: the ufunc (gelu_numba) and the
    threaded callable (gelu_numba.parallel, which hands arrays that are not
    NumPy's to its ufunc) both stay lazy, broadcast a bias along the last
    axis block by block, and give the bits of the unfused expression; the
    callable travels to worker processes by reference.  Dask's
    __array_ufunc__ returns NotImplemented for a ufunc with two outputs
    (geglu_backward): da.apply_gufunc computes it."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import gelu_numba.parallel as gp

    x = da.random.default_rng(1).standard_normal((1200, 96), chunks=(300, 48)).astype(np.float32)
    b = np.linspace(-1, 1, 96, dtype=np.float32)
    host = x.compute()
    want = gn.gelu_tanh(host + b)
    for f in (gn.bias_gelu_tanh, gp.bias_gelu_tanh):
        y = f(x, b)
        assert isinstance(y, da.Array) and y.dtype == np.float32 and y.chunks == x.chunks
        assert np.array_equal(y.compute(), want)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        got = da.map_blocks(gp.bias_gelu_tanh, x, b[None, :48], dtype=np.float32).compute()
        # Dask's __array_ufunc__ takes no ufunc with two outputs: apply_gufunc does
        _, dg = da.apply_gufunc(gn.geglu_backward, "(),(),()->(),()", x, x, x,
                                output_dtypes=(np.float32, np.float32))
        dg = dg.compute()
    assert np.array_equal(got[:, :48], want[:, :48])
    assert np.array_equal(dg, host * gn.gelu(host))


def test_xarray_keeps_dims_coords_and_dtype():
    xr = pytest.importorskip("xarray")
    a = xr.DataArray(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), dims=("batch", "feature"),
                     coords={"batch": [10, 20, 30], "feature": list("abcd")})
    for f in (gn.gelu, gn.gelu_tanh_grad):
        b = f(a)
        assert isinstance(b, xr.DataArray) and b.dims == a.dims and b.dtype == np.float32
        assert b.coords.equals(a.coords)
        assert np.array_equal(b.values, f(a.values))


# --- examples ----------------------------------------------------------------------

def _run_example(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")["main"]()


def test_example_transformer_ffn():
    report = _run_example("transformer_ffn")
    assert report["output_shape"] == report["geglu_output_shape"] == (8, 16, 64)
    if "max_abs_diff_output" in report:
        assert report["max_abs_diff_output"] < 1e-12 and report["max_abs_diff_grads"] < 1e-11
        assert report["max_abs_diff_geglu"] < 1e-11


def test_example_seed_shape(capsys):
    assert _run_example("seed_shape")["numpy"] == (32, 10, 64)
    out = capsys.readouterr().out
    assert "NumPy: (32, 10, 64) float32 -> (32, 10, 64) float32" in out
    assert ("PyTorch: (32, 10, 64) -> (32, 10, 64)" in out) == _has_torch()


def test_example_without_torch_says_what_it_needs():
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            f"runpy.run_path({str(EXAMPLES / 'train_small_model.py')!r}, run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("train_small_model.py needs PyTorch, which is not installed: pip install torch")


def test_example_training_matches_torch_nn_gelu():
    _torch()
    reference_losses, our_losses = _run_example("train_small_model")
    assert reference_losses[-1] < 0.5 * reference_losses[0]  # it trains
    np.testing.assert_allclose(our_losses, reference_losses, rtol=1e-10)
