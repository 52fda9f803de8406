"""A drop-in for ``torch.nn.GELU`` backed by gelu_numba.

    from gelu_numba.torch import GELU
    model.act = GELU(approximate="tanh")        # 'none', 'tanh' or 'sigmoid'

CPU tensors go through the NumPy ufuncs without copies (``Tensor.numpy()``
views, including strided ones); CUDA tensors through :mod:`gelu_numba.gpu`
on PyTorch's current stream.  Gradients come from the fused backward
kernels.  float16 and bfloat16 are computed in float32 and returned in
their own dtype.  torch stays optional: ``import gelu_numba`` never imports
it, only ``import gelu_numba.torch`` does.
"""

import torch
from torch.autograd.function import once_differentiable

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


def _cpu(name, *tensors):
    import gelu_numba as gn

    f = getattr(gn, name)
    dtype = tensors[-1].dtype
    if dtype not in _NATIVE:  # float16, bfloat16: compute in float32
        result = _cpu(name, *(t.float() for t in tensors))
        return result.to(dtype)
    arrays = [t.detach().numpy() for t in tensors]
    out = torch.empty_like(tensors[-1])
    f(*arrays, out=out.numpy())
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
    return _cpu(name, *tensors)


class _GELUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel):
        _check_dtype(x)
        ctx.kernel = kernel
        ctx.save_for_backward(x)
        return _apply(kernel, x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if grad_output.shape != x.shape:
            grad_output = grad_output.expand_as(x)
        return _apply(ctx.kernel + "_backward", grad_output.to(x.dtype), x), None


def gelu(x, approximate="none"):
    """GELU of a tensor: approximate is 'none' (exact), 'tanh' or 'sigmoid'."""
    return _GELUFunction.apply(x, _kernel(approximate))


def _kernel(approximate):
    try:
        return KERNELS[approximate]
    except (KeyError, TypeError):
        raise ValueError(f"approximate must be one of {', '.join(map(repr, KERNELS))}, not {approximate!r}") from None


class GELU(torch.nn.Module):
    """torch.nn.GELU with gelu_numba's kernels (and approximate='sigmoid')."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.kernel = _kernel(approximate)
        self.approximate = approximate

    def forward(self, x):
        return _GELUFunction.apply(x, self.kernel)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

