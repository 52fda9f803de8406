"""The kernels on CUDA: CuPy arrays, PyTorch CUDA tensors and Numba device arrays.

    import cupy as cp
    import gelu_numba.gpu as gg

    x = cp.random.standard_normal(1 << 20, dtype=cp.float32)
    y = gg.gelu(x)                      # a CuPy array, on x's device and stream
    gg.gelu_backward(dy, x, out=dx)     # into a preallocated array

Same names as :mod:`gelu_numba`, called as ``f(x, out=None, stream=None)``
(``f(dy, x, ...)`` for the backward kernels).  Every kernel is a grid-stride
``@cuda.jit`` loop around the scalar function of ``gelu_numba.core.formulas``, the
one definition the CPU ufuncs are compiled from; on CUDA every format is
computed in itself (float32 in float32 double-word arithmetic, no float64).

- Input: anything with ``__cuda_array_interface__``.  The result is the same
  kind of array (CuPy in, CuPy out; PyTorch in, PyTorch out), allocated on
  the input's device, unless ``out=`` is given: any writable device array of
  the same shape and dtype, the input itself included.
- Any shape and strides; non-contiguous arrays are handled on the device.
  The single forms' operands must have equal shapes; the fused forms
  (``bias_gelu(x, b)``, ``geglu(a, g)`` and their backward) broadcast
  their inputs as NumPy does (a bias along the last axis), on the device.
- float32 and float64; float16 is computed in float32 and stored as float16.
- Stream: ``stream=`` (a Numba, CuPy or PyTorch stream, or a raw handle),
  else the producer's current stream (CuPy's or PyTorch's), else the default
  stream.  Nothing synchronises the host.

``import gelu_numba.gpu`` never needs a GPU; :func:`is_available` says whether
kernels can run, and every check on the arguments (device arrays, dtypes,
shapes, writability) happens before any launch.
"""

import math

import numpy as np

from .core import cuda as _device
from .core.cuda import describe, is_available  # noqa: F401 (public)
from .core.names import ARITY, BINARY, FUSED, NAMES, parse_fused

__all__ = [*NAMES, *FUSED, "is_available", "describe"]

_FLOATS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}

# --------------------------------------------------------------------------
# Operands: what a device array is, whatever library made it.


class _Operand:
    """One array argument, described by its __cuda_array_interface__."""

    def __init__(self, obj, role):
        self.obj = obj
        self.role = role
        self.kind = _kind(obj)
        if self.kind == "simulator":
            ary = obj._ary if hasattr(obj, "_ary") else obj
            self.host = ary
            self.dtype = ary.dtype
            self.shape = tuple(ary.shape)
            self.strides = tuple(ary.strides)
            self.readonly = not ary.flags.writeable
            self.ptr = ary.__array_interface__["data"][0]
            self.device = 0
            self.stream = None
            return
        cai = obj.__cuda_array_interface__
        self.dtype = np.dtype(cai["typestr"])
        self.shape = tuple(cai["shape"])
        itemsize = self.dtype.itemsize
        strides = cai.get("strides")
        self.strides = tuple(strides) if strides is not None else _c_strides(self.shape, itemsize)
        self.ptr, self.readonly = cai["data"]
        self.stream = cai.get("stream")
        self.device = _device_of(obj, self.kind)

    @property
    def size(self):
        return math.prod(self.shape)

    def order(self):
        """'C' or 'F' if dense in that element order, else None."""
        item = self.dtype.itemsize
        if self.strides == _c_strides(self.shape, item) or self.size <= 1:
            return "C"
        if self.strides == _f_strides(self.shape, item):
            return "F"
        return None


def _kind(obj):
    module = type(obj).__module__ or ""
    if module.startswith("cupy"):
        return "cupy"
    if module.startswith("torch"):
        return "torch"
    if _device.simulating() and type(obj).__name__ in ("FakeCUDAArray", "FakeWithinKernelCUDAArray"):
        return "simulator"
    if hasattr(obj, "__cuda_array_interface__"):
        return "numba" if module.startswith("numba") else "other"
    if isinstance(obj, np.ndarray):
        raise TypeError(
            "gelu_numba.gpu kernels take CUDA device arrays (CuPy, PyTorch CUDA tensors, Numba "
            "device arrays), not a NumPy array; use gelu_numba.gelu etc. for host arrays"
            + ("" if is_available() else " (and no CUDA GPU is usable here: "
               + describe().removeprefix("not usable: ") + ")")
        )
    raise TypeError(
        f"expected a CUDA device array (an object with __cuda_array_interface__), "
        f"got {type(obj).__module__}.{type(obj).__name__}"
    )


def _device_of(obj, kind):
    if kind == "cupy":
        return obj.device.id
    if kind == "torch":
        return obj.device.index
    return None  # Numba arrays live in the current context


def _c_strides(shape, item):
    strides, acc = [], item
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


def _f_strides(shape, item):
    strides, acc = [], item
    for n in shape:
        strides.append(acc)
        acc *= n
    return tuple(strides)


def _flat(op, cuda):
    """op's memory as a 1-d array starting at its lowest address, and the
    element strides that index it (offsets are non-negative)."""
    item = op.dtype.itemsize
    if any(s % item for s in op.strides):
        raise ValueError(f"{op.role}: strides {op.strides} are not multiples of the item size {item}")
    low = sum((n - 1) * s for n, s in zip(op.shape, op.strides) if s < 0)
    high = sum((n - 1) * s for n, s in zip(op.shape, op.strides) if s > 0)
    span = (high - low) // item + 1
    estrides = tuple(s // item for s in op.strides)
    base = -low // item  # element offset of index (0, ..., 0) from the lowest address
    if op.kind == "simulator":
        ary = op.host if op.host.ndim else op.host.reshape(1)  # a view, not a scalar
        flip = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in ary.strides)
        lowest = ary[flip]
        flat = np.lib.stride_tricks.as_strided(lowest, shape=(span,), strides=(item,))
    else:
        desc = {"shape": (span,), "strides": None, "typestr": op.dtype.str,
                "data": (op.ptr + low, op.readonly), "version": 3}
        flat = cuda.from_cuda_array_interface(desc, owner=op.obj, sync=False)
    return flat, estrides, base


def _as_stream(stream, cuda):
    if stream is None:
        return None
    if isinstance(stream, int):
        return cuda.default_stream() if stream == 0 else cuda.external_stream(stream)
    if hasattr(stream, "cuda_stream"):  # PyTorch
        return cuda.external_stream(stream.cuda_stream)
    if hasattr(stream, "ptr"):  # CuPy
        return cuda.external_stream(stream.ptr) if stream.ptr else cuda.default_stream()
    if hasattr(stream, "handle") or type(stream).__module__.startswith("numba"):
        return stream
    raise TypeError(f"stream must be a Numba, CuPy or PyTorch stream or an int handle, not {type(stream)}")


def _producer_stream(op, cuda):
    """The stream the producer of `op` is issuing work on."""
    if op.kind == "simulator":
        return cuda.default_stream()
    if op.kind == "cupy":
        import cupy

        with cupy.cuda.Device(op.device):
            ptr = cupy.cuda.get_current_stream().ptr
        return cuda.external_stream(ptr) if ptr else cuda.default_stream()
    if op.kind == "torch":
        import torch

        return cuda.external_stream(torch.cuda.current_stream(op.obj.device).cuda_stream)
    if op.kind == "numba":
        s = getattr(op.obj, "stream", 0)
        return s if s else cuda.default_stream()
    # __cuda_array_interface__ v3: 1 legacy default, 2 per-thread default,
    # larger values a stream handle, None: no ordering needed.
    if op.stream == 2:
        return cuda.per_thread_default_stream()
    if isinstance(op.stream, int) and op.stream > 2:
        return cuda.external_stream(op.stream)
    return cuda.default_stream()


def _empty_like(op, cuda):
    if op.kind == "cupy":
        import cupy

        with cupy.cuda.Device(op.device):
            return cupy.empty_like(op.obj)
    if op.kind == "torch":
        import torch

        return torch.empty_like(op.obj)
    if op.kind == "simulator":
        return cuda.device_array_like(op.host)
    return cuda.device_array(op.shape, dtype=op.dtype, order=op.order() or "C")


class Kernel:
    """A gelu_numba kernel on CUDA device arrays (see the module docstring)."""

    def __init__(self, name):
        self.__name__ = name
        self.__qualname__ = name
        self.arity = 2 if name in BINARY else 1
        from .core import formulas as _scalar

        args = "dy, x" if self.arity == 2 else "x"
        self.__doc__ = f"{name}({args}, out=None, stream=None)\n\n{getattr(_scalar, name).__doc__}"

    def __repr__(self):
        return f"<gelu_numba.gpu kernel {self.__name__!r}>"

    def __reduce__(self):
        return self.__name__

    def __call__(self, *arrays, out=None, stream=None):
        if len(arrays) != self.arity:
            names = "(dy, x)" if self.arity == 2 else "(x)"
            raise TypeError(f"{self.__name__} takes {names}, got {len(arrays)} positional arguments")
        ops = [_Operand(a, role) for a, role in zip(arrays, ("dy", "x") if self.arity == 2 else ("x",))]
        x = ops[-1]
        if x.dtype not in _FLOATS:
            raise TypeError(f"{self.__name__}: unsupported dtype {x.dtype}; supported: float16, float32, float64")
        for op in ops:
            if op.dtype != x.dtype:
                raise TypeError(f"{self.__name__}: {op.role} is {op.dtype} but x is {x.dtype}")
            if op.shape != x.shape:
                raise ValueError(f"{self.__name__}: {op.role} has shape {op.shape}, x has {x.shape}")
            if op.device != x.device and None not in (op.device, x.device):
                raise ValueError(f"{self.__name__}: {op.role} is on device {op.device}, x on {x.device}")
        cuda = _device.numba_cuda()
        if out is not None:
            o = _Operand(out, "out")
            if o.dtype != x.dtype:
                raise TypeError(f"{self.__name__}: out is {o.dtype} but x is {x.dtype}")
            if o.shape != x.shape:
                raise ValueError(f"{self.__name__}: out has shape {o.shape}, x has {x.shape}")
            if o.readonly:
                raise ValueError(f"{self.__name__}: out is read-only")
        s = _as_stream(stream, cuda)
        if s is None:
            s = _producer_stream(x, cuda)
        result = out if out is not None else _empty_like(x, cuda)
        o = _Operand(result, "out")
        n = x.size
        if n:
            self._launch(cuda, ops, o, n, s)
        return result

    def _launch(self, cuda, ops, o, n, stream):
        half = ops[-1].dtype == np.float16
        device = ops[-1].device
        ctx = cuda.gpus[device] if device is not None and not _device.simulating() else None
        if ctx is not None:
            ctx.__enter__()
        try:
            orders = {op.order() for op in (*ops, o)}
            if len(orders) == 1 and None not in orders:
                # Dense and in the same element order: one flat index serves all.
                _device.launch(self.__name__, half, [_flat(op, cuda)[0] for op in (*ops, o)], n, stream)
            else:
                args = []
                for op in (*ops, o):
                    args += _flat(op, cuda)
                _device.launch(self.__name__, half, args, n, stream, shape=o.shape)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)


gelu = Kernel("gelu")
gelu_tanh = Kernel("gelu_tanh")
gelu_sigmoid = Kernel("gelu_sigmoid")
gelu_grad = Kernel("gelu_grad")
gelu_tanh_grad = Kernel("gelu_tanh_grad")
gelu_sigmoid_grad = Kernel("gelu_sigmoid_grad")
gelu_grad2 = Kernel("gelu_grad2")
gelu_tanh_grad2 = Kernel("gelu_tanh_grad2")
gelu_sigmoid_grad2 = Kernel("gelu_sigmoid_grad2")
gelu_backward = Kernel("gelu_backward")
gelu_tanh_backward = Kernel("gelu_tanh_backward")
gelu_sigmoid_backward = Kernel("gelu_sigmoid_backward")


# --------------------------------------------------------------------------
# The fused forms.

_ROLES = {"bias": ("x", "b"), "bias_backward": ("dy", "x", "b"), "geglu": ("a", "g"),
          "geglu_backward": ("dy", "a", "g")}


def _broadcast(op, shape):
    """op seen with `shape` (NumPy's broadcasting: stride 0 along the axes
    it is broadcast on)."""
    lead = len(shape) - len(op.shape)
    strides = [0] * lead
    for n, m, s in zip(shape[lead:], op.shape, op.strides):
        strides.append(s if m == n else 0)
    op.shape, op.strides = tuple(shape), tuple(strides)
    return op


def _empty(op, shape, cuda):
    """A new array of `shape`, op's dtype, the kind of array op is."""
    if op.kind == "cupy":
        import cupy

        with cupy.cuda.Device(op.device):
            return cupy.empty(shape, dtype=op.dtype)
    if op.kind == "torch":
        import torch

        return torch.empty(shape, dtype=op.obj.dtype, device=op.obj.device)
    return cuda.device_array(shape, dtype=op.dtype)


class FusedKernel:
    """A fused kernel on CUDA device arrays: bias-GELU or GeGLU, forward or
    backward (gelu_numba.core.fused gives the contract; here float16 is
    computed in float32 throughout, the sum or product included)."""

    def __init__(self, name):
        self.__name__ = self.__qualname__ = name
        self.kind, self.form = parse_fused(name)
        self.nin, self.nout = ARITY[self.kind]
        self.roles = _ROLES[self.kind]
        self.__doc__ = (f"{name}({', '.join(self.roles)}, out=None, stream=None)\n\n"
                        f"The fused form of {self.form} (see gelu_numba.{name}); inputs broadcast.")

    def __repr__(self):
        return f"<gelu_numba.gpu kernel {self.__name__!r}>"

    def __reduce__(self):
        return self.__name__

    def __call__(self, *arrays, out=None, stream=None):
        if len(arrays) != self.nin:
            raise TypeError(f"{self.__name__} takes ({', '.join(self.roles)}), got {len(arrays)} positional arguments")
        ops = [_Operand(a, role) for a, role in zip(arrays, self.roles)]
        dtype = ops[0].dtype
        if dtype not in _FLOATS:
            raise TypeError(f"{self.__name__}: unsupported dtype {dtype}; supported: float16, float32, float64")
        for op in ops:
            if op.dtype != dtype:
                raise TypeError(f"{self.__name__}: {op.role} is {op.dtype} but {ops[0].role} is {dtype}")
            if op.device != ops[0].device and None not in (op.device, ops[0].device):
                raise ValueError(f"{self.__name__}: {op.role} is on device {op.device}, {ops[0].role} on "
                                 f"{ops[0].device}")
        try:
            shape = tuple(np.broadcast_shapes(*(op.shape for op in ops)))
        except ValueError:
            raise ValueError(f"{self.__name__}: shapes {', '.join(str(op.shape) for op in ops)} do not "
                             "broadcast") from None
        cuda = _device.numba_cuda()
        outs = out if isinstance(out, tuple) else ((out,) if out is not None else None)
        if outs is not None:
            if len(outs) != self.nout:
                raise TypeError(f"{self.__name__}: out must hold {self.nout} arrays")
            for o in outs:
                o = _Operand(o, "out")
                if o.dtype != dtype:
                    raise TypeError(f"{self.__name__}: out is {o.dtype} but the inputs are {dtype}")
                if o.shape != shape:
                    raise ValueError(f"{self.__name__}: out has shape {o.shape}, the result {shape}")
                if o.readonly:
                    raise ValueError(f"{self.__name__}: out is read-only")
        s = _as_stream(stream, cuda)
        if s is None:
            s = _producer_stream(ops[0], cuda)
        dense = all(op.shape == shape for op in ops)
        results = outs if outs is not None else tuple(
            _empty_like(ops[0], cuda) if dense else _empty(ops[0], shape, cuda) for _ in range(self.nout))
        n = math.prod(shape)
        if n:
            self._launch(cuda, [_broadcast(op, shape) for op in ops], [_Operand(r, "out") for r in results],
                         n, s, shape)
        return results if self.nout > 1 else results[0]

    def _launch(self, cuda, ops, outs, n, stream, shape):
        half = ops[0].dtype == np.float16
        device = ops[0].device
        ctx = cuda.gpus[device] if device is not None and not _device.simulating() else None
        if ctx is not None:
            ctx.__enter__()
        try:
            every = (*ops, *outs)
            orders = {op.order() for op in every}
            if len(orders) == 1 and None not in orders:
                _device.launch_fused(self.__name__, half, [_flat(op, cuda)[0] for op in every], n, stream)
            else:
                args = []
                for op in every:
                    args += _flat(op, cuda)
                _device.launch_fused(self.__name__, half, args, n, stream, shape=shape)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)


for _name in FUSED:
    globals()[_name] = FusedKernel(_name)
del _name
