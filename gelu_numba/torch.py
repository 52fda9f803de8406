"""gelu_numba's kernels as PyTorch custom operators, and a drop-in for
``torch.nn.GELU``.

    from gelu_numba.torch import GELU, gelu
    model.act = GELU(approximate="tanh")        # 'none', 'tanh' or 'sigmoid'
    y = gelu(x, approximate="none")

Three operators are registered with ``torch.library`` (``custom_op``, with
``register_fake`` and ``register_autograd``):

- ``torch.ops.gelu_numba.gelu(x, approximate)``, whose gradient is
- ``torch.ops.gelu_numba.gelu_backward(grad_output, x, approximate)``, the
  fused dy * f'(x), whose gradient uses
- ``torch.ops.gelu_numba.gelu_grad2(x, approximate)``, f''(x)

so ``torch.compile(model, fullgraph=True)`` traces through them (no graph
break) and ``torch.export`` records them; an exported program needs
``import gelu_numba.torch`` before it is loaded, which registers them again.
They are Python operators: there is no C++ kernel for AOTInductor, ONNX or
TorchScript to call.

CPU tensors go through the multi-threaded ufuncs of
:mod:`gelu_numba.parallel`, on views of the tensors' memory (no copies,
strided tensors included), with as many threads as ``torch.get_num_threads()``
(at most Numba's ``NUMBA_NUM_THREADS``); small tensors run serially. CUDA
tensors go through :mod:`gelu_numba.gpu` on PyTorch's current stream.
float16 and bfloat16 are computed in float32 and returned in their own dtype.
The gradient of ``gelu`` is the fused backward kernel, and the backward is
differentiable in both arguments (double backward: Hessian-vector products,
gradient penalties), through the second-derivative kernels; a third
derivative raises an error.

torch stays optional: ``import gelu_numba`` never imports it, only
``import gelu_numba.torch`` does.
"""

import torch

__all__ = ["GELU", "gelu", "KERNELS"]

#: approximate= value -> gelu_numba kernel
KERNELS = {"none": "gelu", "tanh": "gelu_tanh", "sigmoid": "gelu_sigmoid"}

_NATIVE = {torch.float32, torch.float64}
_SUPPORTED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_dtype(x):
    # torch.nn.GELU raises for integer tensors too; computing in float32 and
    # casting back would truncate the result silently.
    if x.dtype not in _SUPPORTED:
        names = ", ".join(str(d).removeprefix("torch.") for d in _SUPPORTED)
        raise TypeError(f"GELU of a {str(x.dtype).removeprefix('torch.')} tensor: supported dtypes are {names}")


def _kernel(approximate):
    try:
        return KERNELS[approximate]
    except (KeyError, TypeError):
        raise ValueError(f"approximate must be one of {', '.join(map(repr, KERNELS))}, not {approximate!r}") from None


def _threads():
    """torch's intra-op thread count, within what Numba started with."""
    import numba

    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def _cpu(name, *tensors):
    import numba

    import gelu_numba.parallel as gp

    dtype = tensors[-1].dtype
    if dtype not in _NATIVE:  # float16, bfloat16: compute in float32
        return _cpu(name, *(t.float() for t in tensors)).to(dtype)
    out = torch.empty_like(tensors[-1])
    arrays = [t.detach().numpy() for t in tensors]
    threads = _threads()
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        getattr(gp, name)(*arrays, out=out.numpy())
    finally:
        numba.set_num_threads(previous)
    return out


def _cuda(name, *tensors):
    import gelu_numba.gpu as gg

    f = getattr(gg, name)
    dtype = tensors[-1].dtype
    if dtype == torch.bfloat16:
        return _cuda(name, *(t.float() for t in tensors)).to(dtype)
    return f(*(t.detach() for t in tensors))


def _apply(name, *tensors):
    if any(t.is_cuda for t in tensors):
        return _cuda(name, *tensors)
    if any(t.device.type != "cpu" for t in tensors):
        raise TypeError(f"gelu_numba has kernels for CPU and CUDA tensors, not {tensors[-1].device.type}")
    return _cpu(name, *tensors)


# --------------------------------------------------------------------------
# The operators.


@torch.library.custom_op("gelu_numba::gelu", mutates_args=())
def _gelu_op(x: torch.Tensor, approximate: str) -> torch.Tensor:
    _check_dtype(x)
    return _apply(_kernel(approximate), x)


@_gelu_op.register_fake
def _(x, approximate):
    _check_dtype(x)
    _kernel(approximate)
    return torch.empty_like(x)


@torch.library.custom_op("gelu_numba::gelu_backward", mutates_args=())
def _gelu_backward_op(grad_output: torch.Tensor, x: torch.Tensor, approximate: str) -> torch.Tensor:
    _check_dtype(x)
    if grad_output.shape != x.shape:
        raise ValueError(f"grad_output has shape {tuple(grad_output.shape)}, x {tuple(x.shape)}")
    # A stride-0 grad_output (y.sum().backward() passes an expanded scalar)
    # reaches the kernels as a broadcast operand, multi-threaded.
    return _apply(_kernel(approximate) + "_backward", grad_output.to(x.dtype), x)


@_gelu_backward_op.register_fake
def _(grad_output, x, approximate):
    _check_dtype(x)
    _kernel(approximate)
    torch._check(grad_output.shape == x.shape, lambda: "grad_output and x must have the same shape")
    return torch.empty_like(x)


@torch.library.custom_op("gelu_numba::gelu_grad2", mutates_args=())
def _gelu_grad2_op(x: torch.Tensor, approximate: str) -> torch.Tensor:
    _check_dtype(x)
    return _apply(_kernel(approximate) + "_grad2", x)


@_gelu_grad2_op.register_fake
def _(x, approximate):
    _check_dtype(x)
    _kernel(approximate)
    return torch.empty_like(x)


def _setup_context(ctx, inputs, output):
    x, approximate = inputs
    ctx.save_for_backward(x)
    ctx.approximate = approximate


def _backward(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return torch.ops.gelu_numba.gelu_backward(grad_output, x, ctx.approximate), None


_gelu_op.register_autograd(_backward, setup_context=_setup_context)


def _setup_backward_context(ctx, inputs, output):
    grad_output, x, approximate = inputs
    ctx.save_for_backward(grad_output, x)
    ctx.approximate = approximate


def _backward_backward(ctx, grad):
    """d(dy f'(x)) = f'(x) d(dy) + dy f''(x) dx."""
    grad_output, x = ctx.saved_tensors
    ops = torch.ops.gelu_numba
    d_grad_output = ops.gelu_backward(grad, x, ctx.approximate)
    d_x = grad * grad_output.to(x.dtype) * ops.gelu_grad2(x, ctx.approximate)
    return d_grad_output.to(grad_output.dtype), d_x, None


_gelu_backward_op.register_autograd(_backward_backward, setup_context=_setup_backward_context)


# --------------------------------------------------------------------------
# The public functions.


def gelu(x, approximate="none"):
    """GELU of a tensor: approximate is 'none' (exact), 'tanh' or 'sigmoid'."""
    _kernel(approximate)
    return torch.ops.gelu_numba.gelu(x, approximate)


class GELU(torch.nn.Module):
    """torch.nn.GELU with gelu_numba's kernels (and approximate='sigmoid')."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.kernel = _kernel(approximate)
        self.approximate = approximate

    def forward(self, x):
        return torch.ops.gelu_numba.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"
