"""Figures: what the kernels compute, and how accurately.

    python -m gelu_numba plot --out DIR

Needs matplotlib (``pip install ".[plot]"`` in a gelu_numba checkout, or
``pip install matplotlib``); importing this module without it raises
ImportError with that advice.  All nine kernels of the contract are drawn:
the values in ``gelu_vs_relu.png``, the first and second derivatives in
``derivatives.png``, and the float32 ulp error of each in its own panel of
``ulp_error.png``.  PyTorch, where installed, is drawn beside our kernels in
``ulp_error.png``; without it that figure says so.
"""

import os

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import ConnectionPatch
    from matplotlib.path import Path
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'plots need matplotlib: pip install ".[plot]" in a gelu_numba checkout, or pip install matplotlib'
    ) from exc

from . import reference
from ..core.build import ufunc
from .accuracy import _grad2_first_term, variant_of

COLORS = {"gelu": "#1f77b4", "gelu_tanh": "#ff7f0e", "gelu_sigmoid": "#2ca02c", "relu": "#7f7f7f",
          "torch": "#d62728"}
LABELS = {"gelu": "GELU  x·Φ(x)", "gelu_tanh": "tanh approximation", "gelu_sigmoid": "sigmoid approximation x·σ(1.702x)",
          "relu": "ReLU"}
FORMS = ("gelu", "gelu_tanh", "gelu_sigmoid")
# Each form's derivative, in mathtext.  u is the tanh form's argument:
# f(x) = ½x(1 + tanh u); s = σ(1.702x) the sigmoid form's.
_TANH_U = r"$u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$"
_TANH_DU = r"$u' = \sqrt{2/\pi}\,(1 + 0.134145\,x^2)$"
_SIGMOID_S = r"$s = \sigma(1.702\,x)$"
GRAD_LABELS = {
    "gelu": r"GELU$'(x) = \Phi(x) + x\,\varphi(x)$",
    "gelu_tanh": r"tanh approx.$'(x) = \frac{1}{2}\,(1 + \tanh u) + \frac{1}{2}\,x\,u'\,\mathrm{sech}^2 u$"
                 "\n" + _TANH_U + ",  " + _TANH_DU,
    "gelu_sigmoid": r"sigmoid approx.$'(x) = s + 1.702\,x\,s\,(1 - s)$,  " + _SIGMOID_S,
}
GRAD2_LABELS = {
    "gelu": r"GELU$''(x) = \varphi(x)\,(2 - x^2)$",
    "gelu_tanh": r"tanh approx.$''(x) = \mathrm{sech}^2 u\,\left(u'\,(1 - x\,u'\,\tanh u)"
                 r" + \frac{1}{2}\,x\,u''\right)$"
                 "\n" + _TANH_U + ",  " + _TANH_DU + r",  $u'' = \sqrt{2/\pi}\cdot 0.26829\,x$",
    "gelu_sigmoid": r"sigmoid approx.$''(x) = 1.702\,s\,(1 - s)\,(2 + 1.702\,x\,(1 - 2s))$,  " + _SIGMOID_S,
}
# The exact GELU is drawn last, thin and solid, so that it shows on top of the
# approximations, which are wider and broken (dashed, dotted) beneath it.
LINES = {"relu": {"lw": 1.3, "ls": (0, (5, 3)), "zorder": 1},
         "gelu_sigmoid": {"lw": 2.6, "ls": (0, (1, 1.5)), "zorder": 2},
         "gelu_tanh": {"lw": 2.6, "ls": (0, (3, 1.6)), "zorder": 3},
         "gelu": {"lw": 1.3, "ls": "-", "zorder": 4}}
MINIMUM = {"gelu": -0.7517915246935645, "gelu_tanh": -0.7524614220710163, "gelu_sigmoid": -0.7511542554412890}
NO_TORCH = "PyTorch not installed: pip install torch to draw its error beside ours"


def _figure(title, xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig, out_dir, name, rect=None):
    path = os.path.join(out_dir, name)
    fig.tight_layout(rect=rect)
    fig.savefig(path)
    plt.close(fig)
    return path


# --- placing legends and labels where they cover nothing -------------------

def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _obstacles(ax):
    """The lines of ax in display coordinates: (vertices, joined, pad in px)."""
    out = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            continue
        joined = line.get_linestyle() not in ("None", "", " ") and len(xy) > 1
        marker = line.get_marker() not in (None, "None", "", " ")
        pad = line.get_markersize() * ax.figure.dpi / 72 / 2 + 1 if marker else 1.0
        out.append((xy, joined, pad))
    return out


def _hits(bbox, obstacles, boxes=(), pad=3.0):
    """Whether the display box `bbox` (grown by pad px) touches a line or a box."""
    box = bbox.padded(pad)
    for xy, joined, p in obstacles:
        x0, y0, x1, y1 = box.x0 - p, box.y0 - p, box.x1 + p, box.y1 + p
        if ((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).any():
            return True
        if joined and Path(xy).intersects_bbox(box, filled=False):
            return True
    return any(box.overlaps(b) for b in boxes)


def _crosses(a, b, obstacles):
    """Whether the display segment a→b crosses a joined line."""
    seg = Path(np.array([a, b], dtype=float))
    return any(joined and Path(xy).intersects_path(seg, filled=False) for xy, joined, _ in obstacles)


def _legend_clear(ax, obstacles, **kw):
    """A legend at the first standard place where it covers no line; None if
    there is none."""
    renderer = _renderer(ax.figure)
    inside = ax.get_window_extent(renderer)
    for loc in ("upper left", "upper right", "lower left", "lower right", "upper center", "lower center",
                "center left", "center right", "center"):
        leg = ax.legend(loc=loc, **kw)
        box = leg.get_window_extent(renderer)
        if inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1) and not _hits(box, obstacles):
            return leg
        leg.remove()
    return None


def _place_legend(ax, grow=None, **kw):
    """Put ax's legend where it covers no data.  `grow(ax)` (if given) makes
    room, e.g. raises the y limit, and is tried until a place is clear; the
    last resort is below the axes."""
    for _ in range(8):
        leg = _legend_clear(ax, _obstacles(ax), **kw)
        if leg is not None or grow is None:
            break
        grow(ax)
    if leg is None:
        leg = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), **kw)
    return leg


def _annotate_clear(ax, xy, text, color, taken, fontsize=9):
    """Annotate the point xy (data) next to it, with a short arrow, at the
    nearest offset where neither the text nor the arrow crosses a line, a
    marker or a box of `taken` (display boxes, appended to)."""
    renderer = _renderer(ax.figure)
    obstacles = _obstacles(ax)
    inside = ax.get_window_extent(renderer)
    target = ax.transData.transform(xy)
    scale = ax.figure.dpi / 72
    for dist in (10, 16, 24, 34, 46, 60, 80, 100):
        for k in range(16):
            angle = np.pi / 2 - k * np.pi / 8  # from straight up, clockwise
            dx, dy = dist * np.cos(angle), dist * np.sin(angle)
            ha = "left" if dx > 0.3 * dist else "right" if dx < -0.3 * dist else "center"
            va = "bottom" if dy > 0.3 * dist else "top" if dy < -0.3 * dist else "center"
            ann = ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              color=color, fontsize=fontsize)
            box = ann.get_window_extent(renderer)
            centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
            way = target - centre
            end = target - way / np.hypot(*way) * 7 * scale  # the arrow stops short of the marker
            clear = (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
                     and not _hits(box, obstacles, taken) and not _crosses(centre, end, obstacles))
            ann.remove()
            if clear:
                ann = ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                  color=color, fontsize=fontsize,
                                  arrowprops={"arrowstyle": "->", "color": color, "shrinkA": 2, "shrinkB": 5})
                taken.append(box)
                return ann
    return ax.annotate(text, xy, xytext=(0, 12), textcoords="offset points", ha="center", va="bottom",
                       color=color, fontsize=fontsize)  # pragma: no cover - nowhere clear: just above


# --- the figures -------------------------------------------------------------

def _kernel_lines(ax, x, suffix, labels):
    """The three forms' kernels `form + suffix` at x, the exact GELU on top."""
    for form in ("gelu_tanh", "gelu_sigmoid", "gelu"):
        ax.plot(x, ufunc(form + suffix)(x), color=COLORS[form], label=labels[form], **LINES[form])


def _legend_order(ax):
    """Legend entries in reading order: exact GELU, tanh, sigmoid, then the rest."""
    handles, labels = ax.get_legend_handles_labels()
    rank = {table[form]: k for table in (LABELS, GRAD_LABELS, GRAD2_LABELS) for k, form in enumerate(FORMS)}
    pairs = sorted(zip(handles, labels), key=lambda p: rank.get(p[1], 3))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def functions(out_dir):
    x = np.linspace(-4, 4, 801)
    fig, ax = _figure("GELU, its two approximations and ReLU", "x", "f(x)")
    ax.plot(x, np.maximum(x, 0), color=COLORS["relu"], label=LABELS["relu"], **LINES["relu"])
    _kernel_lines(ax, x, "", LABELS)
    ax.set_xlim(-4.2, 4.2)
    ax.set_ylim(-0.6, 4.1)
    xm = MINIMUM["gelu"]
    fm = float(ufunc("gelu")(xm))
    ax.plot([xm], [fm], "o", color=COLORS["gelu"], ms=4, zorder=5)
    # Where the curves differ: around the minimum and on the negative side.
    zoom = ax.inset_axes([0.11, 0.33, 0.42, 0.40])
    xz = np.linspace(-3.4, 0.2, 721)
    zoom.plot(xz, np.maximum(xz, 0), color=COLORS["relu"], **LINES["relu"])
    _kernel_lines(zoom, xz, "", LABELS)
    zoom.plot([xm], [fm], "o", color=COLORS["gelu"], ms=5, zorder=5)
    zoom.set_xlim(-3.4, 0.2)
    zoom.set_ylim(-0.19, 0.015)
    zoom.grid(True, alpha=0.3)
    zoom.tick_params(labelsize=7)
    zoom.set_title("zoom: x < 0", fontsize=8, pad=3)
    # The box it zooms, and one connector on the left, clear of the curves
    # (those on the right would cross them near the origin).
    ax.indicate_inset((-3.4, -0.19, 3.6, 0.205), edgecolor="0.4")
    fig.add_artist(ConnectionPatch((0, 0), (-3.4, 0.015), coordsA=zoom.transAxes, coordsB=ax.transData,
                                   color="0.4", lw=0.8))
    fig.tight_layout()
    handles, labels = _legend_order(ax)
    _place_legend(ax, handles=handles, labels=labels, fontsize=9, handlelength=3.2)
    _annotate_clear(zoom, (xm, fm), f"GELU minimum\n({xm:.4f}, {fm:.4f})", "black", [], fontsize=7.5)
    return _save(fig, out_dir, "gelu_vs_relu.png")


def _more_above(ax):
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.25 * (hi - lo))


def derivatives(out_dir):
    """The first derivatives (with ReLU's step) above, the second below."""
    x = np.linspace(-4, 4, 801)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 9.5), dpi=110, sharex=True)
    top.set_title("First derivatives f′(x)")
    top.plot(x, (x > 0).astype(float), color=COLORS["relu"], label="ReLU′(x) (step)", **LINES["relu"])
    _kernel_lines(top, x, "_grad", GRAD_LABELS)
    top.set_ylim(-0.25, 1.6)  # room above the curves for the legend
    top.set_ylabel("f′(x)")
    bottom.set_title("Second derivatives f″(x)  (ReLU″ = 0 for x ≠ 0)")
    _kernel_lines(bottom, x, "_grad2", GRAD2_LABELS)
    bottom.set_ylim(-0.2, 1.3)
    bottom.set_ylabel("f″(x)")
    bottom.set_xlabel("x")
    for ax in (top, bottom):
        ax.axhline(0, color="black", lw=0.6, zorder=0)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    for ax in (top, bottom):
        handles, labels = _legend_order(ax)
        _place_legend(ax, grow=_more_above, handles=handles, labels=labels, fontsize=9, handlelength=3.2)
    return _save(fig, out_dir, "derivatives.png")


def approximation_error(out_dir):
    x = np.linspace(-6, 6, 4801)
    exact = ufunc("gelu")(x)
    fig, ax = _figure("Error of the approximations against the exact GELU", "x", "|approximation − GELU|")
    maxima = []
    for name in ("gelu_tanh", "gelu_sigmoid"):
        err = np.abs(ufunc(name)(x) - exact)
        ax.semilogy(x, np.maximum(err, 1e-12), color=COLORS[name], lw=1.8, label=LABELS[name])
        d, at = reference.max_abs_difference(name, "gelu", lo=0.0, hi=6.0, prec=80)
        d, at = float(d), float(at)
        for xp in (at, -at):
            ax.plot([xp], [d], "v", color=COLORS[name], ms=8)
        maxima.append((name, d, at))
    ax.set_ylim(1e-9, 1)
    fig.tight_layout()
    leg = _place_legend(ax, fontsize=9)
    taken = [leg.get_window_extent(_renderer(fig))]
    for name, d, at in maxima:  # on the right-hand marker; its mirror image is the same point
        _annotate_clear(ax, (at, d), f"max {d:.4g}\nat |x| = {at:.3f}", COLORS[name], taken)
    return _save(fig, out_dir, "approximation_error.png")


def _have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


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


def _ulp_axes(ax, title, top):
    """Axes for errors up to `top` ulps: linear when they are all within the
    contract (2 ulp), else linear below 1 and log above."""
    ax.set_title(title)
    ax.axhline(2, color="black", lw=0.8, ls=":", label="contract: 2 ulp")
    if top <= 2:
        ax.set_ylim(0, 2.6)
    else:
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, 10 ** np.ceil(np.log10(top) + 0.01))
    ax.grid(True, alpha=0.3)


def _more_room(ax):
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 10 if ax.get_yscale() == "symlog" else hi + 0.5)


#: The rows of ulp_error.png: kernel suffix, and what its error is in ulps of.
ULP_ROWS = (("", "f: |error| in ulps of f(x)"),
            ("_grad", "f′: |error| in ulps of\nmax(|f′|, first term Φ(x) or σ(·))"),
            ("_grad2", "f″: |error| in ulps of\nmax(|f″|, first term 2φ(x) or 2σ′(w)w′)"))


def kernel_ulp_error(name, x):
    """|error| of the float32 kernel `name` at the float32 points x, in ulps,
    measured as the contract measures it (gelu_numba.tools.reference): in ulps of
    max(|f′|, Φ(x) or σ(·)) for a first derivative, of max(|f″|, 2φ(x) or
    2σ′(w)w′) for a second.  The truth is the float64 kernel (2^-29 of a
    float32 ulp off), as in the exhaustive sweeps.  Returns (error, truth)."""
    x64 = x.astype(np.float64)
    truth = ufunc(name)(x64)
    scale = np.abs(truth)
    what = reference.kind(name)
    if what == "grad":
        with np.errstate(invalid="ignore", divide="ignore"):
            first = np.where(x64 == 0, 0.5, ufunc(variant_of(name))(x64) / x64)
        scale = np.maximum(scale, np.abs(first))
    elif what == "grad2":
        scale = np.maximum(scale, _grad2_first_term(variant_of(name), x64))
    return np.abs(ufunc(name)(x).astype(np.float64) - truth) / _ulp32(scale), truth


def ulp_error(out_dir):
    """float32 ulp error across x of every kernel, one panel each: a column
    per form, a row per order (f, f′, f″); PyTorch's beside ours where
    installed."""
    x = np.linspace(-16, 6, 8001).astype(np.float32)
    torch = _have_torch()
    fig, axes = plt.subplots(3, 3, figsize=(15, 11.5), dpi=110, sharex=True)
    fig.suptitle("float32 kernels: error in ulps across x, one panel per kernel"
                 + (" (y linear below 1, log above, where PyTorch's error is drawn)" if torch else ""), y=0.995)
    for row, (suffix, ylabel) in zip(axes, ULP_ROWS):
        for ax, form in zip(row, FORMS):
            name = form + suffix
            ours, truth = kernel_ulp_error(name, x)
            theirs = _torch_values(x, name)
            # Beside PyTorch's, every other sample each, interleaved: drawn in
            # full, ours would hide theirs where both are below 1 ulp.
            step = 1 if theirs is None else 2
            ax.plot(x[::step], ours[::step], ".", ms=2, color=COLORS[form], zorder=3,
                    label=f"gelu_numba.{name} (max {ours.max():.2f} ulp)")
            top = ours.max()
            if theirs is not None:
                err = np.abs(theirs.astype(np.float64) - truth) / _ulp32(truth)
                which = "F.gelu" if name == "gelu" else "F.gelu, approximate='tanh'"
                label = f"PyTorch {which}\n(max {np.nanmax(err):.3g} ulp"  # two lines: the panels are narrow
                wrong_zero = (theirs == 0) & (truth != 0)
                first_nonzero = x[(theirs != 0) & (truth != 0)].min()
                below = x[wrong_zero & (x < first_nonzero)]
                if below.size:  # every sample from the underflow up to here is 0
                    label += f"; 0 for all x ≤ {below.max():.2f}"
                ax.plot(x[1::2], err[1::2], ".", ms=2, color=COLORS["torch"], zorder=2, label=label + ")")
                top = max(top, np.nanmax(err))
            title = name
            if not suffix:  # the column's form, above its first panel
                title = LABELS[form] + "\n" + name
                if torch and form == "gelu_sigmoid":
                    title += " (PyTorch has none)"
            _ulp_axes(ax, title, top)
        row[0].set_ylabel(ylabel)
    for ax in axes[-1]:
        ax.set_xlabel("x")
    rect = (0, 0, 1, 0.975)
    if not torch:
        rect = (0, 0, 1, 0.955)
        fig.text(0.5, 0.962, NO_TORCH + " (gelu and gelu_tanh panels)", ha="center", va="center", fontsize=11,
                 color=COLORS["torch"],
                 bbox={"boxstyle": "round", "facecolor": "#fde8e8", "edgecolor": COLORS["torch"]})
    fig.tight_layout(rect=rect)
    for ax in axes.flat:
        leg = _place_legend(ax, grow=_more_room, markerscale=5, fontsize=8)
        renderer = fig.canvas.get_renderer()
        if not ax.get_window_extent(renderer).contains(*leg.get_window_extent(renderer).p0):
            fig.tight_layout(rect=rect)  # placed below its axes: make room (9 layouts take seconds)
    return _save(fig, out_dir, "ulp_error.png", rect=rect)


def write_all(out_dir="gelu_numba_plots"):
    """Write every figure into out_dir; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    return [functions(out_dir), derivatives(out_dir), approximation_error(out_dir), ulp_error(out_dir)]
