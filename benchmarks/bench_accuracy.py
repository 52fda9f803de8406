"""Accuracy as a benchmark: the largest error in ulps, so that a regression in
accuracy shows in the history like a slowdown."""

import numpy as np

from .common import DTYPES, UNARY, adversarial_points, ours


class TrackAccuracy:
    """Max |error| in ulps on a fixed adversarial sample, against mpmath."""

    params = (list(UNARY), list(DTYPES))
    param_names = ["kernel", "dtype"]
    unit = "ulp"
    rounds = 1
    timeout = 600

    def setup(self, kernel, dtype):
        from gelu_numba import reference

        self.reference = reference
        self.x = adversarial_points(dtype)
        with np.errstate(under="ignore"):
            self.y = ours(kernel)(self.x)

    def track_max_ulp(self, kernel, dtype):
        err = self.reference.ulp_error(kernel, self.x, self.y, prec=110)
        return float(np.max(np.abs(err)))
