"""``python -m gelu_numba``: the command line of ``gelu_numba.tools.cli``."""

import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
