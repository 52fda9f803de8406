"""Accuracy as a benchmark: the largest error in ulps, so that a regression in
accuracy shows in the history like a slowdown."""

import numpy as np

from .common import DTYPES, UNARY, adversarial_points, ours


RESOLUTION = 2  # decimal places of an ulp kept in the history


class TrackAccuracy:
    """Max |error| in ulps on a fixed adversarial sample, against mpmath,
    rounded to 0.01 ulp.

    Unrounded, the float32 kernels give 0.4994 to 0.50001 ulp: what is left
    is which sample point happened to lie nearest a rounding boundary, not a
    difference in accuracy.  asv prints axis ticks to 3 significant digits,
    so a graph of them read 0.500 on every tick.  Rounded, an unchanged
    accuracy is a flat line (float32 at 0.5), and a change of 0.01 ulp or
    more (losing the float64 intermediate costs about 1 ulp) is a step.

    Every unary kernel, second derivatives included (common.UNARY).  The
    committed results carry the version asv derives from the source of setup
    and track_max_ulp (734c9760...): editing either hides them unless a
    ``version`` attribute pins that value.
    """

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
        return round(float(np.max(np.abs(err))), RESOLUTION)
