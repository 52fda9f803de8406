"""Figures: what the kernels compute, and how accurately.

    python -m gelu_numba plot --out DIR

Needs matplotlib (``pip install 'gelu-numba[plot]'``); importing this module
without it raises ImportError with that advice.
"""

import os

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("plots need matplotlib: pip install 'gelu-numba[plot]'") from exc

from . import reference
from ._build import ufunc

COLORS = {"gelu": "#1f77b4", "gelu_tanh": "#ff7f0e", "gelu_sigmoid": "#2ca02c", "relu": "#7f7f7f",
          "torch": "#d62728"}
LABELS = {"gelu": "GELU  x·Φ(x)", "gelu_tanh": "tanh approximation", "gelu_sigmoid": "sigmoid approximation x·σ(1.702x)",
          "relu": "ReLU"}
STYLES = {"gelu": "-", "gelu_tanh": "--", "gelu_sigmoid": "-"}  # tanh dashed: it hides GELU otherwise
MINIMUM = {"gelu": -0.7517915246935645, "gelu_tanh": -0.7524614220710163, "gelu_sigmoid": -0.7511542554412890}


def _figure(title, xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def functions(out_dir):
    x = np.linspace(-4, 4, 801)
    fig, ax = _figure("GELU, its two approximations and ReLU", "x", "f(x)")
    ax.plot(x, np.maximum(x, 0), color=COLORS["relu"], lw=1.5, ls="--", label=LABELS["relu"])
    for name in ("gelu", "gelu_tanh", "gelu_sigmoid"):
        ax.plot(x, ufunc(name)(x), color=COLORS[name], lw=2, ls=STYLES[name], label=LABELS[name])
    xm = MINIMUM["gelu"]
    fm = float(ufunc("gelu")(xm))
    ax.plot([xm], [fm], "o", color=COLORS["gelu"])
    ax.annotate(f"minimum ({xm:.4f}, {fm:.4f})", (xm, fm), xytext=(-3.9, 0.9), arrowprops={"arrowstyle": "->"})
    ax.set_ylim(-0.6, 4.1)
    ax.legend(loc="upper left")
    return _save(fig, out_dir, "gelu_vs_relu.png")


def derivatives(out_dir):
    x = np.linspace(-4, 4, 801)
    fig, ax = _figure("Derivatives f′(x)", "x", "f′(x)")
    ax.plot(x, (x > 0).astype(float), color=COLORS["relu"], lw=1.5, ls="--", label="ReLU′ (step)")
    for name in ("gelu", "gelu_tanh", "gelu_sigmoid"):
        ax.plot(x, ufunc(name + "_grad")(x), color=COLORS[name], lw=2, ls=STYLES[name], label=LABELS[name])
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(loc="upper left")
    return _save(fig, out_dir, "derivatives.png")


def approximation_error(out_dir):
    x = np.linspace(-6, 6, 4801)
    exact = ufunc("gelu")(x)
    fig, ax = _figure("Error of the approximations against the exact GELU", "x", "|approximation − GELU|")
    for name in ("gelu_tanh", "gelu_sigmoid"):
        err = np.abs(ufunc(name)(x) - exact)
        ax.semilogy(x, np.maximum(err, 1e-12), color=COLORS[name], lw=1.8, label=LABELS[name])
        d, at = reference.max_abs_difference(name, "gelu", lo=0.0, hi=6.0, prec=80)
        for xp in (float(at), -float(at)):
            ax.plot([xp], [float(d)], "v", color=COLORS[name], ms=8)
        ax.annotate(f"max {float(d):.4g} at |x| = {float(at):.3f}", (-float(at), float(d)),
                    xytext=(-float(at) - 0.25, float(d) * 2.5), color=COLORS[name], ha="right")
    ax.set_ylim(1e-9, 1)
    ax.legend(loc="lower center")
    return _save(fig, out_dir, "approximation_error.png")


def _torch_values(x, name):
    try:
        import torch
    except ImportError:
        return None
    approximate = {"gelu": "none", "gelu_tanh": "tanh"}.get(name)
    if approximate is None:
        return None
    with np.errstate(all="ignore"):
        return torch.nn.functional.gelu(torch.from_numpy(x), approximate=approximate).numpy()


def _ulp32(scale):
    """A float32 ulp of |scale| (the smallest subnormal at least)."""
    ulp = np.spacing(np.abs(scale).astype(np.float32)).astype(np.float64)
    return np.maximum(ulp, float(np.finfo(np.float32).smallest_subnormal))


def _ulp_axes(ax, title):
    ax.set_title(title)
    ax.axhline(2, color="black", lw=0.8, ls=":", label="contract: 2 ulp")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, 1e8)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", markerscale=5, fontsize=8)


def ulp_error(out_dir):
    """float32 ulp error across x, every kernel; PyTorch's beside ours where
    installed.  The truth is the float64 kernel (2^-29 of a float32 ulp off)."""
    x = np.linspace(-16, 6, 8001).astype(np.float32)
    x64 = x.astype(np.float64)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), dpi=110, sharex=True)
    fig.suptitle("float32 kernels: error in ulps across x (y linear below 1, log above)")
    for ax, name in zip(axes.flat, ("gelu", "gelu_tanh", "gelu_sigmoid")):
        truth = ufunc(name)(x64)
        ulp = _ulp32(truth)
        ours = np.abs(ufunc(name)(x).astype(np.float64) - truth) / ulp
        ax.plot(x, ours, ".", ms=2, color=COLORS[name], zorder=3,
                label=f"gelu_numba.{name} (max {ours.max():.2f} ulp)")
        theirs = _torch_values(x, name)
        if theirs is not None:
            err = np.abs(theirs.astype(np.float64) - truth) / ulp
            which = "F.gelu" if name == "gelu" else "F.gelu, approximate='tanh'"
            label = f"PyTorch {which} (max {np.nanmax(err):.3g} ulp"
            wrong_zero = (theirs == 0) & (truth != 0)
            first_nonzero = x[(theirs != 0) & (truth != 0)].min()
            below = x[wrong_zero & (x < first_nonzero)]
            if below.size:  # every sample from the underflow up to here is 0
                label += f"; 0 for all x ≤ {below.max():.2f}"
            ax.plot(x, err, ".", ms=2, color=COLORS["torch"], zorder=2, label=label + ")")
        _ulp_axes(ax, LABELS[name])
    ax = axes[1, 1]
    for name in ("gelu", "gelu_tanh", "gelu_sigmoid"):
        grad = name + "_grad"
        truth = ufunc(grad)(x64)
        with np.errstate(invalid="ignore", divide="ignore"):  # the contract's scale for f'
            first = np.where(x64 == 0, 0.5, ufunc(name)(x64) / x64)
        err = np.abs(ufunc(grad)(x).astype(np.float64) - truth) / _ulp32(np.maximum(np.abs(truth), first))
        ax.plot(x, err, ".", ms=2, color=COLORS[name], label=f"gelu_numba.{grad} (max {err.max():.2f} ulp)")
    _ulp_axes(ax, "derivatives (ulps of max(|f′|, its first term))")
    for ax in axes[1]:
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("|error| in ulps")
    fig.tight_layout()
    path = os.path.join(out_dir, "ulp_error.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def write_all(out_dir="gelu_numba_plots"):
    """Write every figure into out_dir; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    return [functions(out_dir), derivatives(out_dir), approximation_error(out_dir), ulp_error(out_dir)]
