"""``gelu_numba.tools.accuracy``, the accuracy sweeps (exhaustive_float32, max_ulp_error, ...), under the name it had before the
package was split into core and tools: ``import gelu_numba.accuracy`` gives
that very module."""

import sys

from .tools import accuracy as _module

sys.modules[__name__] = _module
