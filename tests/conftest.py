"""Shared fixtures and hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE=...):
  ci       the default: derandomized, so a run is reproducible, 150 examples
  dev      fewer examples, for a quick local loop
  thorough many more examples, for hunting rare failures
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "thorough", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=lambda t: t.__name__)
def dtype(request):
    return request.param


@pytest.fixture(autouse=True)
def _threads_without_fallback():
    """Threaded calls are not judged during the tests (the fallback to
    serial calls of gelu_numba.core.runtime), so that a test that proves a
    call took the threaded path does not depend on how busy the machine is;
    the fallback's own tests turn it on (tests/test_fallback.py)."""
    from gelu_numba.core import runtime

    runtime.set_fallback(False)
    yield
    runtime.set_fallback(False)
    runtime.hold_serial(0)
