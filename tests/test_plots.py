"""The figures of ``gelu-numba plot``: every kernel of the contract is drawn,
its ulp error measured as the contract measures it, each form's derivative
formula is in the legend, and each kernel's error can be told apart."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason='the figures need matplotlib: pip install ".[plot]"')

from matplotlib.colors import same_color  # noqa: E402
from matplotlib.mathtext import MathTextParser  # noqa: E402

from gelu_numba.tools import plots, reference  # noqa: E402
from gelu_numba.core.build import ufunc  # noqa: E402
from gelu_numba.core.names import UNARY  # noqa: E402

FORMS = ("gelu", "gelu_tanh", "gelu_sigmoid")


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """The figures that draw the kernels, by file name, as they were saved
    (approximation_error.png draws differences of values only)."""
    out = str(tmp_path_factory.mktemp("plots"))
    saved = {}
    save = plots._save

    def capture(fig, out_dir, name, rect=None):
        saved[name] = fig
        return save(fig, out_dir, name, rect=rect)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "_save", capture)
        for draw in (plots.functions, plots.derivatives, plots.ulp_error):
            draw(out)
    return saved


def _curves(fig):
    return [line for ax in fig.axes for line in ax.get_lines()]


def test_every_kernel_is_drawn(figures):
    """Each of the nine kernels (value, f', f'') is a curve of the value or
    derivative figures: a line whose y is the kernel at its x."""
    curves = _curves(figures["gelu_vs_relu.png"]) + _curves(figures["derivatives.png"])
    for name in UNARY:
        kernel = ufunc(name)
        assert any(
            np.asarray(c.get_xdata()).size > 100
            and np.array_equal(np.asarray(c.get_ydata(), dtype=float), kernel(np.asarray(c.get_xdata(), dtype=float)))
            for c in curves
        ), f"no curve of {name}"


def _ulp_lines(fig):
    """{kernel name: (axes, line)} of ulp_error.png's error lines of ours."""
    found = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            label = line.get_label()
            if label.startswith("gelu_numba."):
                name = label[len("gelu_numba."):].split(" ")[0]
                assert name not in found, f"{name}'s ulp error is drawn twice"
                found[name] = (ax, line)
    return found


def test_each_kernel_has_its_own_ulp_panel(figures):
    """All nine kernels' ulp errors are drawn, each alone in its panel, so
    that none hides another (the three first derivatives once shared one)."""
    found = _ulp_lines(figures["ulp_error.png"])
    assert set(found) == set(UNARY)
    for name, (ax, _) in found.items():
        others = [n for n, (a, _) in found.items() if a is ax and n != name]
        assert not others, f"{name} shares its panel with {others}"
        assert name in ax.get_title(), f"the panel of {name} is titled {ax.get_title()!r}"
        legend = ax.get_legend()
        assert legend is not None and any(t.get_text().startswith(f"gelu_numba.{name} ") for t in legend.get_texts())


# x where the measure matters: deep tails (subnormal results), the minimum of
# f (f' = 0), the inflection points of f' (f'' = 0 near +-sqrt 2), zero.
PROBES = (-15.0, -13.0, -10.0, -6.0, -2.5, -1.4142, -0.7518, -0.3, 0.0, 0.4, 1.4142, 2.5, 5.5)


def test_ulp_error_is_the_contracts_measure(figures):
    """For every kernel, the error drawn at sample points is the error
    gelu_numba.tools.reference (mpmath) measures there, in ulps of the contract's
    scale: for f'' that is max(|f''|, 2 phi or 2 sigma'(w) w'), not |f''|,
    which vanishes at +-sqrt 2."""
    found = _ulp_lines(figures["ulp_error.png"])
    missing = [name for name in UNARY if name not in found]
    assert not missing, f"no ulp error drawn for {missing}"
    for name in UNARY:
        line = found[name][1]
        x = np.asarray(line.get_xdata(), dtype=np.float32)
        drawn = np.asarray(line.get_ydata(), dtype=float)
        idx = np.unique([int(np.argmin(np.abs(x - p))) for p in PROBES])
        y = ufunc(name)(x[idx])
        expected = np.abs(reference.ulp_error(name, x[idx], y))
        np.testing.assert_allclose(drawn[idx], expected, atol=1e-3, err_msg=f"{name} at x = {x[idx]}")
        assert np.all(np.isfinite(drawn)) and drawn.max() <= 2.0, name


def _render(label):
    """Parse each line of a label as Text draws it (mathtext between $s)."""
    parser = MathTextParser("path")
    for line in label.split("\n"):
        parser.parse(line, dpi=72)


# What each form's formula must name (its defining functions and constants).
FORMULA = {"gelu": (("Phi", "Φ", "varphi", "φ"),),
           "gelu_tanh": (("tanh",), ("0.044715",)),
           "gelu_sigmoid": (("sigma", "σ"), ("1.702",))}


@pytest.mark.parametrize("suffix", ["_grad", "_grad2"])
def test_derivative_legend_gives_each_forms_formula(figures, suffix):
    """In derivatives.png each form's f' and f'' curve is labelled, in its
    legend, with a formula (mathtext that renders) for that form."""
    fig = figures["derivatives.png"]
    owner = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            x = np.asarray(line.get_xdata(), dtype=float)
            for form in FORMS:
                if x.size > 100 and np.array_equal(np.asarray(line.get_ydata(), dtype=float),
                                                   ufunc(form + suffix)(x)):
                    owner[form] = (ax, line)
    assert set(owner) == set(FORMS), f"derivatives.png draws {sorted(owner)} of the {suffix} kernels"
    for form, (ax, line) in owner.items():
        label = line.get_label()
        legend = ax.get_legend()
        assert legend is not None and label in [t.get_text() for t in legend.get_texts()]
        assert same_color(line.get_color(), plots.COLORS[form])
        _render(label)
        assert "=" in label and "$" in label, f"{form}{suffix}: no formula in {label!r}"
        formula = label[label.index("="):]
        for alternatives in FORMULA[form]:
            assert any(a in formula for a in alternatives), f"{form}{suffix}: {label!r} lacks {alternatives}"
