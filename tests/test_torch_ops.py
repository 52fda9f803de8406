"""The kernels as PyTorch custom operators: opcheck, torch.compile with
fullgraph=True, torch.export, autocast, threads, and the stride-0 gradient."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

from gelu_numba.core import runtime as _runtime  # noqa: E402
from gelu_numba.torch import GELU, gelu  # noqa: E402

FORMS = ["none", "tanh", "sigmoid"]


def _model(approximate="none", dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), GELU(approximate), torch.nn.Linear(64, 4)).to(dtype)


def _reference(model, approximate):
    """The same model with torch.nn.GELU (and the sigmoid form written out)."""
    import copy

    ref = copy.deepcopy(model)
    if approximate == "sigmoid":
        class Quick(torch.nn.Module):
            def forward(self, x):
                return x * torch.sigmoid(1.702 * x)

        ref[1] = Quick()
    else:
        ref[1] = torch.nn.GELU(approximate=approximate)
    return ref


@pytest.mark.parametrize("approximate", FORMS)
def test_opcheck(approximate):
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        x = (torch.randn(5, 7, dtype=torch.float64) * 3).to(dtype)
        torch.library.opcheck(torch.ops.gelu_numba.gelu, (x.requires_grad_(), approximate))
        dy = torch.randn(5, 7, dtype=dtype)
        torch.library.opcheck(torch.ops.gelu_numba.gelu_backward,
                              (dy.requires_grad_(), x.detach().requires_grad_(), approximate))
        torch.library.opcheck(torch.ops.gelu_numba.gelu_grad2, (x.detach(), approximate))


@pytest.mark.parametrize("approximate", FORMS)
def test_gradcheck_float64(approximate):
    x = (torch.randn(6, 5, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: gelu(v, approximate), (x,))


@pytest.mark.parametrize("approximate", FORMS)
def test_gradgradcheck_float64(approximate):
    x = (torch.randn(6, 5, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda v: gelu(v, approximate), (x,))
    dy = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d, v: torch.ops.gelu_numba.gelu_backward(d, v, approximate), (dy, x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_double_backward_matches_torch(approximate):
    # A gradient penalty: d/dx of |d loss / dx|^2, ours next to torch.nn.GELU.
    x = (torch.randn(200, dtype=torch.float64) * 3).requires_grad_()
    results = []
    for act in (GELU(approximate), torch.nn.GELU(approximate=approximate)):
        (g,) = torch.autograd.grad(act(x).pow(2).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.pow(2).sum(), x)
        results.append(h)
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-12)


def test_third_derivative_is_refused_with_a_clear_error():
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(gelu(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="autograd"):
        torch.autograd.grad(h.sum(), x)


@pytest.mark.parametrize("approximate", FORMS)
def test_compile_fullgraph_matches_torch(approximate):
    model = _model(approximate)
    ref = _reference(model, approximate)
    x = torch.randn(32, 16) * 2
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y_ref = ref(x)
    torch.testing.assert_close(y, y_ref, rtol=2e-6, atol=2e-6)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=2e-5, atol=2e-5)


def test_compile_fullgraph_with_inductor():
    model = _model("tanh")
    x = torch.randn(8, 16)
    try:
        compiled = torch.compile(model, fullgraph=True)
        y = compiled(x)
    except Exception as exc:  # noqa: BLE001
        if "C++ compiler" in str(exc) or "InvalidCxxCompiler" in type(exc).__name__:
            pytest.skip(f"inductor needs a C++ compiler here: {exc}")
        raise
    torch.testing.assert_close(y, model(x))


def test_export_round_trip(tmp_path):
    model = _model("none").eval()
    x = torch.randn(4, 16)
    exported = torch.export.export(model, (x,))
    assert "gelu_numba.gelu" in str(exported.graph)
    path = tmp_path / "model.pt2"
    torch.export.save(exported, path)
    loaded = torch.export.load(path)
    torch.testing.assert_close(loaded.module()(x), model(x), rtol=0, atol=0)


def test_autocast_bfloat16():
    model = _model("none")
    x = torch.randn(16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
        h = model[1](model[0](x))
    assert h.dtype == torch.bfloat16 and y.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h_ref = torch.nn.functional.gelu(model[0](x))
    torch.testing.assert_close(h.float(), h_ref.float(), rtol=1e-2, atol=1e-2)


def test_cpu_ops_use_torchs_threads_and_threaded_stride0_gradient():
    import numba

    n = 1 << 16
    x = torch.randn(n, requires_grad=True)
    _runtime.reset_paths()
    y = gelu(x)
    y.sum().backward()  # grad_output is an expanded scalar: stride 0
    paths = _runtime.paths()
    if min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS) > 1:
        assert paths["threaded"] == 1 and paths["threaded_broadcast"] == 1, paths
    else:
        assert paths["declined"] + paths["threaded"] == 1 and paths["broadcast"] + paths["threaded_broadcast"] == 1
    x64 = x.detach().double().requires_grad_()
    torch.nn.functional.gelu(x64).sum().backward()
    # Two float32 ulps of max(|f'|, Phi(x)) (Phi <= 1): near f's minimum f'
    # crosses zero, and only that scale is meaningful.
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=2**-22, atol=2**-23)


def test_small_tensors_run_serially():
    _runtime.reset_paths()
    gelu(torch.randn(100))
    assert _runtime.paths()["unit"] == 1


def test_non_cpu_non_cuda_device_is_refused():
    x = torch.randn(4, device="meta")
    y = gelu(x)  # the fake implementation: shapes only
    assert y.shape == (4,) and y.device.type == "meta"


@pytest.mark.parametrize("approximate", FORMS)
def test_module_training_matches_torch(approximate):
    model = _model(approximate, dtype=torch.float64)
    ref = _reference(model, approximate)
    x = torch.randn(64, 16, dtype=torch.float64)
    target = torch.randn(64, 4, dtype=torch.float64)
    for m in (model, ref):
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(m(x), target).backward()
            opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_shape_mismatch_in_backward_is_a_value_error():
    with pytest.raises(ValueError, match="grad_output has shape"):
        torch.ops.gelu_numba.gelu_backward(torch.ones(3), torch.ones(4), "none")


def test_bad_approximate_and_special_values():
    with pytest.raises(ValueError, match="approximate must be one of"):
        gelu(torch.ones(3), approximate="erf")
    y = gelu(torch.tensor([-np.inf, np.inf, np.nan, -0.0]))
    assert y[0] == 0 and torch.signbit(y[0]) and y[1] == np.inf and torch.isnan(y[2]) and torch.signbit(y[3])


def test_training_with_a_gradient_penalty_matches_torch():
    # Double backward inside a training loop: loss + |d loss / d x|^2.
    model = _model("none", dtype=torch.float64)
    ref = _reference(model, "none")
    x = torch.randn(32, 16, dtype=torch.float64)
    target = torch.randn(32, 4, dtype=torch.float64)
    for m in (model, ref):
        opt = torch.optim.SGD(m.parameters(), lr=0.02)
        for _ in range(4):
            opt.zero_grad()
            xi = x.clone().requires_grad_()
            loss = torch.nn.functional.mse_loss(m(xi), target)
            (gx,) = torch.autograd.grad(loss, xi, create_graph=True)
            (loss + gx.pow(2).sum()).backward()
            opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU for torch here")
@pytest.mark.parametrize("approximate", FORMS)
def test_cuda_ops_match_the_cpu_ops(approximate):
    pytest.importorskip("numba.cuda", reason="numba-cuda is not installed (pip install '.[cuda]')")
    x = (torch.randn(1 << 16, dtype=torch.float64) * 3).requires_grad_()
    xc = x.detach().cuda().requires_grad_()
    y, yc = gelu(x, approximate), gelu(xc, approximate)
    torch.testing.assert_close(yc.cpu(), y, rtol=4e-16, atol=0)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gc,) = torch.autograd.grad(yc.sum(), xc, create_graph=True)
    torch.testing.assert_close(gc.cpu(), g, rtol=4e-16, atol=0)
    (h,) = torch.autograd.grad(g.sum(), x)
    (hc,) = torch.autograd.grad(gc.sum(), xc)
    torch.testing.assert_close(hc.cpu(), h, rtol=4e-16, atol=1e-300)
    for dt in (torch.float32, torch.float16, torch.bfloat16):
        assert gelu(xc.detach().to(dt), approximate).dtype == dt
