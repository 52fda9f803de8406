"""``gelu_numba.core.runtime``, the loops' process-wide state (paths(), ...), under the name it had before the
package was split into core and tools: ``import gelu_numba._runtime`` gives
that very module."""

import sys

from .core import runtime as _module

sys.modules[__name__] = _module
