"""Every property check fails on a plausible wrong kernel.

A property that passes whatever kernel it is given proves nothing; each test
here points one check at a deliberately broken kernel (see _mutants.py) and
requires the check to fail.
"""

import numpy as np
import pytest
from hypothesis.errors import Flaky

import _mutants as M
import _properties as P
from _kernels import backward_of, grad_of, serial

FAILS = pytest.raises((AssertionError, Flaky))


def test_ulp_bound_catches_erf_form(dtype):
    with FAILS:
        P.check_ulp_bound("gelu", M.erf_form, dtype)


def test_ulp_bound_catches_wrong_constant(dtype):
    with FAILS:
        P.check_ulp_bound("gelu_tanh", M.tanh_wrong_constant, dtype)


def test_special_values_catch_missing_cases(dtype):
    with FAILS:
        P.check_special_values("gelu", M.no_special_cases, grad_of("gelu"), backward_of("gelu"), dtype)


def test_finite_difference_catches_wrong_grad(dtype):
    with FAILS:
        P.check_smoothness("gelu", serial("gelu"), M.grad_without_density_term, dtype)


def test_lipschitz_catches_seam(dtype):
    with FAILS:
        P.check_lipschitz("gelu", M.grad_with_seam, dtype)


def test_backward_check_catches_swapped_arguments(dtype):
    with FAILS:
        P.check_backward("gelu", grad_of("gelu"), M.backward_swapped, dtype)


def test_monotone_catches_erf_form(dtype):
    with FAILS:
        P.check_monotone("gelu", M.erf_form, dtype)


def test_monotone_windows_catch_the_tail_formula_near_the_minimum():
    # (the exact form's: its M polynomial makes the most noise; the tanh and
    # sigmoid forms' wiggles are rarer, 5 in 2M consecutive floats)
    with FAILS:
        P.check_monotone_near_minimum("gelu", M.tail_formula_near_minimum("gelu"), np.float64)


def test_monotone_catches_rounding_noise(dtype):
    with FAILS:
        P.check_monotone("gelu", M.rounding_noise, dtype)


def test_difference_bound_catches_missing_cubic(dtype):
    with FAILS:
        P.check_difference_bound(M.tanh_without_cubic, serial("gelu"), 4.74e-4, dtype)


def test_odd_identity_catches_sign_error(dtype):
    with FAILS:
        P.check_odd_identity("gelu", M.sign_error_below_zero, dtype)


def test_negative_sign_catches_unsigned_zero(dtype):
    with FAILS:
        P.check_negative_sign("gelu", M.zero_without_sign, dtype)


def test_grad2_smoothness_catches_missing_term(dtype):
    with FAILS:
        P.check_grad2_smoothness("gelu", grad_of("gelu"), M.grad2_without_curvature_term, dtype)


def test_ulp_bound_catches_grad2_of_the_wrong_form(dtype):
    with FAILS:
        P.check_ulp_bound("gelu_tanh_grad2", M.grad2_of_the_wrong_form, dtype)


def test_grad2_special_values_catch_a_positive_zero_at_infinity(dtype):
    # 2 phi(x) is +0.0 at +-inf: the limit is approached from below, -0.0.
    with FAILS:
        P.check_grad2_special_values("gelu", M.grad2_without_curvature_term, dtype)


def test_saturation_catches_slow_tail():
    # In float32 sigma(-1.702 x) drops below half an ulp about where Phi does,
    # so the mistake shows in float64 only.
    with FAILS:
        P.check_saturation("gelu", M.sigmoid_as_exact, np.float64)


# The exhaustive float32 sweep, on slices of the line: each way a float32
# kernel can be wrong shows in its result.


def _sweep(name, kernel, interval):
    from gelu_numba.tools.accuracy import exhaustive_float32

    return exhaustive_float32(name, kernel=kernel, interval=interval)


def test_sweep_catches_erf_form_in_the_tail():
    assert _sweep("gelu", M.erf_form, (-8.0, -5.0)).max_ulp > 1e6


def test_sweep_catches_erf_form_wiggling_at_the_minimum():
    # Its error there is about 2 ulp; what gives it away is f going down.
    w = _sweep("gelu", M.erf_form, (-0.76, -0.74))
    assert w.monotonic_violations, str(w)


def test_sweep_catches_nan_at_finite_inputs():
    w = _sweep("gelu", M.scaled_erfc_unguarded, (10.0, 30.0))
    assert w.max_ulp == np.inf and 13 < w.at < 14, str(w)


def test_sweep_catches_missing_special_cases():
    w = _sweep("gelu", M.no_special_cases, (-np.inf, -3e38))
    assert w.max_ulp == np.inf and w.at == -np.inf, str(w)


def test_sweep_catches_wrong_constant():
    assert _sweep("gelu_tanh", M.tanh_wrong_constant, (-3.0, -2.5)).max_ulp > 100


def test_sweep_refuses_a_float64_result():
    with pytest.raises(TypeError, match="float64"):
        _sweep("gelu", lambda x: serial("gelu")(x.astype(np.float64)), (1.0, 1.5))

