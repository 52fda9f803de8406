"""GPU bandwidth of the CUDA kernels next to a device copy, PyTorch and CuPy.

    python -m gelu_numba bench --gpu

Bandwidth is bytes read plus bytes written per second (GB/s), timed with
CUDA events around one launch, best of `repeats`, everything in one process
and on the default stream.  An elementwise kernel cannot beat a
device-to-device copy of the same bytes, so the copy is the yardstick: the
goal for float32 ``gelu`` at 2^26 elements on an H100 is 90 % of it.
"""

import numpy as np

KERNELS = ("gelu", "gelu_tanh", "gelu_sigmoid", "gelu_grad", "gelu_backward", "gelu_tanh_backward")
SIZES = tuple(1 << k for k in (20, 22, 24, 26, 28))


def _require_gpu():
    from .. import gpu

    if not gpu.is_available():
        raise RuntimeError(f"no GPU to benchmark here ({gpu.describe()})")
    from numba import cuda

    return gpu, cuda


def _best_ms(cuda, fn, repeats):
    start, end = cuda.event(), cuda.event()
    fn()  # compile, warm caches
    cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, cuda.event_elapsed_time(start, end))
    return best


def bandwidth(kernel, dtype="float32", size=1 << 26, repeats=20):
    """GB/s of one kernel ('copy' for a device-to-device copy) on Numba arrays."""
    gpu, cuda = _require_gpu()
    item = np.dtype(dtype).itemsize
    x = cuda.to_device(np.random.default_rng(0).standard_normal(size).astype(dtype))
    out = cuda.device_array_like(x)
    if kernel == "copy":
        fn, moved = (lambda: out.copy_to_device(x)), 2 * size * item
    elif kernel.endswith("_backward"):
        dy = cuda.to_device(np.ones(size, dtype))
        f = getattr(gpu, kernel)
        fn, moved = (lambda: f(dy, x, out=out)), 3 * size * item
    else:
        f = getattr(gpu, kernel)
        fn, moved = (lambda: f(x, out=out)), 2 * size * item
    return moved / (_best_ms(cuda, fn, repeats) * 1e-3) / 1e9


def _torch_gbps(kernel, dtype, size, repeats, cuda):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available() or kernel not in ("gelu", "gelu_tanh", "gelu_backward", "gelu_tanh_backward"):
        return None
    tdtype = getattr(torch, dtype)
    x = torch.randn(size, device="cuda", dtype=tdtype)
    out = torch.empty_like(x)
    approximate = "tanh" if "tanh" in kernel else "none"
    if kernel.endswith("_backward"):
        dy = torch.ones_like(x)
        fn, moved = (lambda: torch.ops.aten.gelu_backward.grad_input(dy, x, approximate=approximate, grad_input=out)), 3
    else:
        fn, moved = (lambda: torch.ops.aten.gelu.out(x, approximate=approximate, out=out)), 2
    item = np.dtype(dtype).itemsize
    return moved * size * item / (_best_ms(cuda, fn, repeats) * 1e-3) / 1e9


def _cupy_gbps(kernel, dtype, size, repeats, cuda):
    if kernel not in ("gelu", "gelu_tanh"):
        return None
    try:
        import cupy as cp
    except ImportError:
        return None
    body = {
        "gelu": "y = x * normcdf(x)",
        "gelu_tanh": "y = (T)0.5 * x * ((T)1 + tanh((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x)))",
    }[kernel]
    k = cp.ElementwiseKernel("T x", "T y", body, f"cupy_{kernel}")
    x = cp.random.standard_normal(size, dtype=dtype)
    out = cp.empty_like(x)
    item = np.dtype(dtype).itemsize
    return 2 * size * item / (_best_ms(cuda, lambda: k(x, out), repeats) * 1e-3) / 1e9


def run(kernels=KERNELS, dtypes=("float32", "float64"), sizes=SIZES, repeats=20, progress=None):
    """Rows of GB/s: ours, copy, torch, cupy, and ours / copy."""
    gpu, cuda = _require_gpu()
    rows = []
    jobs = [(d, s) for d in dtypes for s in sizes]
    for i, (dtype, size) in enumerate(jobs):
        copy = bandwidth("copy", dtype, size, repeats)
        for kernel in kernels:
            ours = bandwidth(kernel, dtype, size, repeats)
            rows.append({
                "kernel": kernel, "dtype": dtype, "size": size, "ours_gbps": ours, "copy_gbps": copy,
                "torch_gbps": _torch_gbps(kernel, dtype, size, repeats, cuda),
                "cupy_gbps": _cupy_gbps(kernel, dtype, size, repeats, cuda),
                "fraction_of_copy": ours / copy,
            })
        if progress is not None:
            progress((i + 1) / len(jobs))
    return {"device": gpu.describe(), "rows": rows}


def format_table(result):
    def cell(v):
        return f"{v:9.1f}" if v is not None else f"{'-':>9}"

    lines = [f"GB/s on {result['device']} (bytes read + written; CUDA events, best of 20)",
             f"{'kernel':20} {'dtype':8} {'size':>6} {'ours':>9} {'copy':>9} {'torch':>9} {'cupy':>9} {'of copy':>8}"]
    for r in result["rows"]:
        size = f"2^{int(np.log2(r['size']))}"
        lines.append(f"{r['kernel']:20} {r['dtype']:8} {size:>6} {cell(r['ours_gbps'])} {cell(r['copy_gbps'])} "
                     f"{cell(r['torch_gbps'])} {cell(r['cupy_gbps'])} {100 * r['fraction_of_copy']:7.1f}%")
    return "\n".join(lines)
