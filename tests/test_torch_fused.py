"""The fused forms as PyTorch operators: the bits of the unfused expression,
autograd (first and second order, db reduced to b's shape), opcheck,
torch.compile(fullgraph=True), torch.export, and the GEGLU module."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

import gelu_numba as gn  # noqa: E402
from gelu_numba.torch import GEGLU, bias_gelu, geglu, gelu  # noqa: E402

FORMS = ["none", "tanh", "sigmoid"]
NAME = {"none": "gelu", "tanh": "gelu_tanh", "sigmoid": "gelu_sigmoid"}


def _bits(t):
    a = t.detach().numpy()
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("approximate", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_bits_of_the_unfused_expression(approximate, dtype):
    torch.manual_seed(0)
    x = torch.randn(64, 300, dtype=dtype) * 3
    b = torch.randn(300, dtype=dtype)
    g = torch.randn(64, 300, dtype=dtype)
    dy = torch.randn(64, 300, dtype=dtype)
    ops = torch.ops.gelu_numba
    f, fb = getattr(gn, NAME[approximate]), getattr(gn, NAME[approximate] + "_backward")
    xn, bn, gn_, dyn = (t.numpy() for t in (x, b, g, dy))
    assert np.array_equal(_bits(bias_gelu(x, b, approximate)), f(xn + bn).view(_bits(x).dtype))
    assert np.array_equal(_bits(ops.bias_gelu_backward(dy, x, b, approximate)), fb(dyn, xn + bn).view(_bits(x).dtype))
    assert np.array_equal(_bits(geglu(x, g, approximate)), (f(xn) * gn_).view(_bits(x).dtype))
    da, dg = ops.geglu_backward(dy, x, g, approximate)
    assert np.array_equal(_bits(da), fb(dyn * gn_, xn).view(_bits(x).dtype))
    assert np.array_equal(_bits(dg), (dyn * f(xn)).view(_bits(x).dtype))


@pytest.mark.parametrize("approximate", FORMS)
def test_opcheck(approximate):
    ops = torch.ops.gelu_numba
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = (torch.randn(5, 7, dtype=torch.float64) * 3).to(dtype).requires_grad_()
        b = torch.randn(7, dtype=dtype).requires_grad_()
        g = torch.randn(5, 7, dtype=dtype).requires_grad_()
        dy = torch.randn(5, 7, dtype=dtype).requires_grad_()
        torch.library.opcheck(ops.bias_gelu, (x, b, approximate))
        torch.library.opcheck(ops.bias_gelu_backward, (dy, x, b, approximate))
        torch.library.opcheck(ops.geglu, (x, g, approximate))
        torch.library.opcheck(ops.geglu_backward, (dy, x, g, approximate))


@pytest.mark.parametrize("approximate", FORMS)
def test_gradients_first_and_second_order(approximate):
    """gradcheck and gradgradcheck in float64; the bias's gradient has b's
    shape (a bias along the last axis, and one over the channels of
    (batch, channel, time))."""
    torch.manual_seed(1)
    x = (torch.randn(4, 3, 5, dtype=torch.float64) * 2).requires_grad_()
    for b in (torch.randn(5, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)):
        b.requires_grad_()
        assert torch.autograd.gradcheck(lambda x_, b_: bias_gelu(x_, b_, approximate), (x, b))
        assert torch.autograd.gradgradcheck(lambda x_, b_: bias_gelu(x_, b_, approximate), (x, b))
        (db,) = torch.autograd.grad(bias_gelu(x, b, approximate).sum(), b)
        assert db.shape == b.shape
    g = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a_, g_: geglu(a_, g_, approximate), (x, g))
    assert torch.autograd.gradgradcheck(lambda a_, g_: geglu(a_, g_, approximate), (x, g))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gradients_match_torch(approximate):
    torch.manual_seed(2)
    x = (torch.randn(32, 40, dtype=torch.float64) * 3).requires_grad_()
    b = torch.randn(40, dtype=torch.float64, requires_grad=True)
    g = torch.randn(32, 40, dtype=torch.float64, requires_grad=True)
    w = torch.randn(32, 40, dtype=torch.float64)
    F = torch.nn.functional
    ours = torch.autograd.grad((bias_gelu(x, b, approximate) * w).sum() + (geglu(x, g, approximate) * w).sum(),
                               (x, b, g))
    theirs = torch.autograd.grad((F.gelu(x + b, approximate=approximate) * w).sum()
                                 + (F.gelu(x, approximate=approximate) * g * w).sum(), (x, b, g))
    for o, t in zip(ours, theirs):
        torch.testing.assert_close(o, t, rtol=1e-12, atol=1e-14)


def test_compile_fullgraph_and_export():
    class FFN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wi = torch.nn.Linear(8, 32)
            self.wo = torch.nn.Linear(16, 8)
            self.act = GEGLU("tanh")

        def forward(self, x):
            h = self.wi(x)
            return self.wo(self.act(h)) + bias_gelu(x, self.wo.bias, "none")

    torch.manual_seed(3)
    model = FFN()
    x = torch.randn(4, 8)
    expected = model(x)
    expected.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    try:  # aot_eager: the backward graph is traced too, through the operators' autograd
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        got = compiled(x)
        got.square().sum().backward()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"torch.compile(fullgraph=True) broke the graph: {exc}")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-6, atol=1e-6)
    exported = torch.export.export(model, (x,))
    names = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert "gelu_numba.geglu.default" in names and "gelu_numba.bias_gelu.default" in names, names
    torch.testing.assert_close(exported.module()(x), expected, rtol=0, atol=0)


def test_geglu_module_halves():
    torch.manual_seed(4)
    h = torch.randn(3, 10, 2 * 12)
    first, second = h[..., :12], h[..., 12:]
    F = torch.nn.functional
    assert torch.equal(GEGLU()(h), geglu(first, second))
    assert torch.equal(GEGLU(gate="second")(h), geglu(second, first))
    assert torch.equal(GEGLU("tanh")(first, second), geglu(first, second, "tanh"))
    torch.testing.assert_close(GEGLU("tanh", gate="second")(h), first * F.gelu(second, approximate="tanh"))
    with pytest.raises(ValueError, match="halves"):
        GEGLU()(torch.randn(3, 5))
    with pytest.raises(ValueError, match="gate"):
        GEGLU(gate="middle")
    assert "gate='first'" in repr(GEGLU())


def test_bad_input():
    with pytest.raises(TypeError):
        bias_gelu(torch.ones(3, dtype=torch.int32), torch.ones(3, dtype=torch.int32))
    with pytest.raises(ValueError):
        geglu(torch.ones(3), torch.ones(3), "exact")
    with pytest.raises(RuntimeError):
        bias_gelu(torch.ones(3, 4), torch.ones(5))
    assert torch.equal(gelu(torch.ones(3)), bias_gelu(torch.ones(3), torch.zeros(())))
