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

__all__ = ["GELU", "GEGLU", "gelu", "bias_gelu", "geglu", "KERNELS"]

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
# The fused forms: bias-GELU f(x + b) and GeGLU f(a) g, forward and backward
# (gelu_numba.core.fused: the bits of the unfused expressions).


def _fused_name(kind, approximate):
    """"bias_gelu_tanh", "geglu_backward"...: kind is bias_gelu, geglu, or
    either with "_backward"."""
    stem = _kernel(approximate)[len("gelu"):]
    if kind.endswith("_backward"):
        return kind[: -len("_backward")] + stem + "_backward"
    return kind + stem


def _common_dtype(*tensors):
    for t in tensors:
        _check_dtype(t)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _fused_cpu(name, outputs, *tensors):
    import numba

    import gelu_numba.parallel as gp

    dtype = tensors[0].dtype
    if dtype not in _NATIVE:  # float16, bfloat16: compute in float32
        results = _fused_cpu(name, outputs, *(t.float() for t in tensors))
        return tuple(r.to(dtype) for r in results)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    outs = tuple(torch.empty(shape, dtype=dtype) for _ in range(outputs))
    previous = numba.get_num_threads()
    numba.set_num_threads(_threads())
    try:
        getattr(gp, name)(*(t.detach().numpy() for t in tensors), out=tuple(o.numpy() for o in outs))
    finally:
        numba.set_num_threads(previous)
    return outs


def _fused_cuda(name, outputs, *tensors):
    import gelu_numba.gpu as gg

    dtype = tensors[0].dtype
    if dtype == torch.bfloat16:
        results = _fused_cuda(name, outputs, *(t.float() for t in tensors))
        return tuple(r.to(dtype) for r in results)
    result = getattr(gg, name)(*(t.detach() for t in tensors))
    return result if isinstance(result, tuple) else (result,)


def _fused_apply(kind, approximate, outputs, *tensors):
    name = _fused_name(kind, approximate)
    dtype = _common_dtype(*tensors)
    tensors = tuple(t.to(dtype) for t in tensors)
    if any(t.is_cuda for t in tensors):
        return _fused_cuda(name, outputs, *tensors)
    if any(t.device.type != "cpu" for t in tensors):
        raise TypeError(f"gelu_numba has kernels for CPU and CUDA tensors, not {tensors[0].device.type}")
    return _fused_cpu(name, outputs, *tensors)


def _fake(approximate, *tensors):
    _kernel(approximate)
    dtype = _common_dtype(*tensors)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    return tensors[0].new_empty(shape, dtype=dtype)


@torch.library.custom_op("gelu_numba::bias_gelu", mutates_args=())
def _bias_gelu_op(x: torch.Tensor, b: torch.Tensor, approximate: str) -> torch.Tensor:
    return _fused_apply("bias_gelu", approximate, 1, x, b)[0]


@_bias_gelu_op.register_fake
def _(x, b, approximate):
    return _fake(approximate, x, b)


@torch.library.custom_op("gelu_numba::bias_gelu_backward", mutates_args=())
def _bias_gelu_backward_op(grad_output: torch.Tensor, x: torch.Tensor, b: torch.Tensor,
                           approximate: str) -> torch.Tensor:
    return _fused_apply("bias_gelu_backward", approximate, 1, grad_output, x, b)[0]


@_bias_gelu_backward_op.register_fake
def _(grad_output, x, b, approximate):
    return _fake(approximate, grad_output, x, b)


@torch.library.custom_op("gelu_numba::geglu", mutates_args=())
def _geglu_op(a: torch.Tensor, g: torch.Tensor, approximate: str) -> torch.Tensor:
    return _fused_apply("geglu", approximate, 1, a, g)[0]


@_geglu_op.register_fake
def _(a, g, approximate):
    return _fake(approximate, a, g)


@torch.library.custom_op("gelu_numba::geglu_backward", mutates_args=())
def _geglu_backward_op(grad_output: torch.Tensor, a: torch.Tensor, g: torch.Tensor,
                       approximate: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _fused_apply("geglu_backward", approximate, 2, grad_output, a, g)


@_geglu_backward_op.register_fake
def _(grad_output, a, g, approximate):
    return _fake(approximate, grad_output, a, g), _fake(approximate, grad_output, a, g)


def _to(t, like):
    """t summed over the axes that `like` was broadcast along (autograd
    returns each input's gradient in the input's own shape and dtype)."""
    if t.shape != like.shape:
        t = t.sum_to_size(like.shape)
    return t.to(like.dtype)


def _bias_setup(ctx, inputs, output):
    x, b, approximate = inputs
    ctx.save_for_backward(x, b)
    ctx.approximate = approximate


def _bias_backward(ctx, grad_output):
    """dx = dy f'(x + b); db is dx summed to b's shape."""
    x, b = ctx.saved_tensors
    dx = torch.ops.gelu_numba.bias_gelu_backward(grad_output, x, b, ctx.approximate)
    return _to(dx, x), _to(dx, b), None


_bias_gelu_op.register_autograd(_bias_backward, setup_context=_bias_setup)


def _bias_backward_setup(ctx, inputs, output):
    grad_output, x, b, approximate = inputs
    ctx.save_for_backward(grad_output, x, b)
    ctx.approximate = approximate


def _bias_backward_backward(ctx, grad):
    """d(dy f'(x + b)) = f'(x + b) d(dy) + dy f''(x + b) (dx + db)."""
    grad_output, x, b = ctx.saved_tensors
    ops = torch.ops.gelu_numba
    d_grad_output = ops.bias_gelu_backward(grad, x, b, ctx.approximate)
    h = x + b
    common = grad * grad_output.to(h.dtype) * ops.gelu_grad2(h, ctx.approximate)
    return _to(d_grad_output, grad_output), _to(common, x), _to(common, b), None


_bias_gelu_backward_op.register_autograd(_bias_backward_backward, setup_context=_bias_backward_setup)


def _geglu_setup(ctx, inputs, output):
    a, g, approximate = inputs
    ctx.save_for_backward(a, g)
    ctx.approximate = approximate


def _geglu_backward(ctx, grad_output):
    a, g = ctx.saved_tensors
    da, dg = torch.ops.gelu_numba.geglu_backward(grad_output, a, g, ctx.approximate)
    return _to(da, a), _to(dg, g), None


_geglu_op.register_autograd(_geglu_backward, setup_context=_geglu_setup)


def _geglu_backward_setup(ctx, inputs, output):
    grad_output, a, g, approximate = inputs
    ctx.save_for_backward(grad_output, a, g)
    ctx.approximate = approximate


def _geglu_backward_backward(ctx, grad_da, grad_dg):
    """(da, dg) = (dy g f'(a), dy f(a)); with u, v the gradients of da and
    dg: d(dy) = u g f'(a) + v f(a), d(a) = u dy g f''(a) + v dy f'(a),
    d(g) = u dy f'(a)."""
    dy, a, g = ctx.saved_tensors
    ops = torch.ops.gelu_numba
    approximate = ctx.approximate
    dy_ = dy.to(a.dtype)
    u = torch.zeros_like(a) if grad_da is None else grad_da
    v = torch.zeros_like(a) if grad_dg is None else grad_dg
    d_dy = ops.gelu_backward(*torch.broadcast_tensors(u * g, a), approximate) + v * ops.gelu(a, approximate)
    d_a = (u * dy_ * g * ops.gelu_grad2(a, approximate)
           + ops.gelu_backward(*torch.broadcast_tensors(v * dy_, a), approximate))
    d_g = ops.gelu_backward(*torch.broadcast_tensors(u * dy_, a), approximate)
    return _to(d_dy, dy), _to(d_a, a), _to(d_g, g), None


_geglu_backward_op.register_autograd(_geglu_backward_backward, setup_context=_geglu_backward_setup)


# --------------------------------------------------------------------------
# The public functions.


def bias_gelu(x, b, approximate="none"):
    """GELU of x + b, fused (one pass; x + b rounded first: the bits of
    gelu(x + b)); b broadcasts against x.  Its gradient gives db reduced to
    b's shape."""
    _kernel(approximate)
    return torch.ops.gelu_numba.bias_gelu(x, b, approximate)


def geglu(a, g, approximate="none"):
    """GeGLU: gelu(a) * g, fused (the bits of the unfused expression); a is
    the activated projection, g the linear one."""
    _kernel(approximate)
    return torch.ops.gelu_numba.geglu(a, g, approximate)


class GEGLU(torch.nn.Module):
    """The gated GELU of a feed-forward block: gelu(gate) * up, fused.

    ``forward(h)`` takes one tensor, the concatenated projection, and splits
    its last axis in halves; ``forward(gate, up)`` takes the two
    projections.  Which half is the gate (the one through GELU) differs
    between implementations, so it is a parameter: ``gate="first"`` (the
    default) is ``gelu(h[..., :d]) * h[..., d:]``, as a fused ``gate_up_proj``
    in transformers (Phi-3) and Megatron's ``geglu`` compute it;
    ``gate="second"`` is ``h[..., :d] * gelu(h[..., d:])``, as diffusers'
    ``GEGLU``.  T5 v1.1 (``"gated-gelu"``) and Gemma (``gelu_pytorch_tanh``)
    keep two projections: ``GEGLU("tanh")(wi_0(x), wi_1(x))``.
    """

    def __init__(self, approximate="none", gate="first"):
        super().__init__()
        self.kernel = _kernel(approximate)
        if gate not in ("first", "second"):
            raise ValueError(f"gate must be 'first' or 'second', not {gate!r}")
        self.approximate = approximate
        self.gate = gate

    def forward(self, h, up=None):
        if up is None:
            if h.shape[-1] % 2:
                raise ValueError(f"GEGLU of one tensor splits its last axis in halves; it has {h.shape[-1]} elements")
            first, second = h.chunk(2, dim=-1)
            gate, up = (first, second) if self.gate == "first" else (second, first)
        else:
            gate = h
        return torch.ops.gelu_numba.geglu(gate, up, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}, gate={self.gate!r}"


# --------------------------------------------------------------------------
# The public functions of the single forms.


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
