"""``python -m ptlab`` is the same as ``ptlab``."""

import sys

from ptlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
