"""The mpmath reference agrees with the published numbers it is judged by."""

import math

import mpmath as mp
import numpy as np
import pytest

from gelu_numba.tools import reference
from _kernels import MINIMUM


def test_seed_values():
    assert float(reference.value("gelu", -1.0)) == pytest.approx(-0.15865525393145707, rel=1e-15)
    assert float(reference.value("gelu", 2.0)) == pytest.approx(1.9544997361036416, rel=1e-15)
    assert float(reference.value("gelu", -6.0)) == pytest.approx(-5.919525870226e-9, rel=1e-12)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_minimum(variant):
    xm, fm = reference.minimum(variant)
    assert float(xm) == pytest.approx(MINIMUM[variant][0], abs=1e-15)
    assert float(fm) == pytest.approx(MINIMUM[variant][1], abs=1e-15)


def test_maximum_differences_of_the_approximations():
    d, at = reference.max_abs_difference("gelu_tanh", "gelu")
    assert float(d) == pytest.approx(4.7324e-4, abs=1e-7) and abs(float(at)) == pytest.approx(2.70, abs=0.01)
    d, at = reference.max_abs_difference("gelu_sigmoid", "gelu")
    assert float(d) == pytest.approx(2.0335e-2, abs=1e-6) and abs(float(at)) == pytest.approx(2.27, abs=0.01)


def test_odd_part_identity_is_exact():
    for variant in reference.VARIANTS:
        for x in (0.3, 1.7, 4.2):
            with mp.workprec(200):
                d = reference.value(variant, x, prec=200) - reference.value(variant, -x, prec=200)
                assert abs(d - x) < mp.mpf(2) ** -190


def test_limits():
    assert reference.value("gelu", math.inf) == math.inf
    v = reference.value("gelu", -math.inf)
    assert v == 0 and math.copysign(1, v) < 0
    assert reference.value("gelu_grad", math.inf) == 1
    assert math.isnan(reference.value("gelu_tanh", math.nan))


def test_rounding_is_correct():
    # float32 ties go to even; subnormals are rounded on their own grid.
    one = np.float32(1)
    halfway = 1 + 2.0**-24  # exactly between 1 and the next float32
    assert reference._round(mp.mpf(halfway), np.float32) == one
    assert reference._round(mp.mpf(2.0**-149) * mp.mpf("0.49"), np.float32) == 0
    assert reference._round(mp.mpf(2.0**-149) * mp.mpf("0.51"), np.float32) == np.float32(2.0**-149)


def test_ulp_error_counts_ulps():
    x = np.array([-1.0, 0.5])
    y = reference.evaluate("gelu", x)
    assert np.all(np.abs(reference.ulp_error("gelu", x, y)) <= 0.5)
    off = np.nextafter(y, np.inf)
    err = reference.ulp_error("gelu", x, off)
    assert np.all((err > 0.5) & (err <= 1.5))


def test_gradient_error_is_measured_against_the_first_term():
    # Near the minimum f' ~ 0; the error unit is an ulp of Phi(x), not of f'.
    xm = MINIMUM["gelu"][0]
    v = float(reference.value("gelu_grad", xm))
    phi = float(reference.first_term("gelu_grad", xm))
    assert abs(v) < 1e-15 < phi
    e = reference.ulp_error("gelu_grad", xm, np.float64(0.0))
    assert e == pytest.approx(-v / np.spacing(phi), rel=1e-6)
