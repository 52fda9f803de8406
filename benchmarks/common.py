"""Shared data and peer imports for the benchmark suites.

Only gelu_numba's public API is used, so the suite also runs against older
commits when asv builds the history.
"""

import functools
import importlib

import numpy as np

# Every kernel, in gelu_numba.core.names' order: the three activations, their
# first and second derivatives (the nine unary kernels), then the fused
# backwards.  The second derivatives (gelu_*_grad2) came after the first
# commits of the history: there `ours` skips them.  Adding values to a
# parameter keeps the committed results (asv matches them value by value);
# renaming or reordering the parameters themselves would not.
KERNELS = (
    "gelu", "gelu_tanh", "gelu_sigmoid",
    "gelu_grad", "gelu_tanh_grad", "gelu_sigmoid_grad",
    "gelu_grad2", "gelu_tanh_grad2", "gelu_sigmoid_grad2",
    "gelu_backward", "gelu_tanh_backward", "gelu_sigmoid_backward",
)
FORWARD = KERNELS[:3]
UNARY = tuple(k for k in KERNELS if not k.endswith("_backward"))
DTYPES = ("float32", "float64")
# Largest first, and parallel before serial in TimeKernels, so that asv's own
# default view (the first values of each parameter, up to 8 curves) shows what
# the history slice (tools/asv_history_slice.txt) measures: 10^7 elements,
# parallel.  The published page opens each graph on the view that
# tools/asv_offline.py (VIEWS) chooses instead.
SIZES = (10_000_000, 100_000, 1_000)


@functools.lru_cache(maxsize=8)
def data(size, dtype, seed=0):
    """Standard normal values, as activations look (cached per process)."""
    return np.random.default_rng(seed).standard_normal(size).astype(dtype)


def ours(name, target="serial"):
    """The kernel, or NotImplementedError (asv then skips the case) where the
    commit being measured has no kernel of that name."""
    module = importlib.import_module("gelu_numba" if target == "serial" else "gelu_numba.parallel")
    try:
        return getattr(module, name)
    except AttributeError:
        raise NotImplementedError(f"{module.__name__}.{name} does not exist at this commit") from None


def arguments(name, size, dtype):
    x = data(size, dtype)
    return (data(size, dtype, seed=1), x) if name.endswith("_backward") else (x,)


def torch_or_skip():
    """torch, or NotImplementedError (asv then skips the benchmark)."""
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    torch.set_num_threads(2)
    return torch


def scipy_special_or_skip():
    try:
        from scipy import special
    except ImportError:
        raise NotImplementedError("scipy is not installed") from None
    return special


def adversarial_points(dtype, n=2000, seed=0):
    """A fixed sample of hard inputs: tails to underflow, the minimum, region
    boundaries, near zero (the same for every commit of the history)."""
    rng = np.random.default_rng(seed)
    far = 40.0 if dtype == "float64" else 16.0
    parts = [
        rng.uniform(-far, far, n),
        -0.7517915246935645 + rng.uniform(-1e-3, 1e-3, n // 4),
        np.concatenate([b + rng.uniform(-1e-6, 1e-6, n // 20) for b in (-1.0, -0.6, 1.0, -1.25)]),
        10.0 ** rng.uniform(-12, 0, n // 4) * rng.choice([-1.0, 1.0], n // 4),
        -rng.uniform(37.2, 38.8, n // 10) if dtype == "float64" else -rng.uniform(12.9, 14.5, n // 10),
    ]
    return np.unique(np.concatenate(parts).astype(dtype))
