"""``gelu_numba.tools.reference``, the mpmath reference of every kernel, under the name it had before the
package was split into core and tools: ``import gelu_numba.reference`` gives
that very module."""

import sys

from .tools import reference as _module

sys.modules[__name__] = _module
