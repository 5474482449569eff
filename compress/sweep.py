"""`python -m compress.sweep`: the documented command for a grid of compression runs, whose code
lives in `lstmpack.sweep` (a layer above compress, hwsim and reports). Kept so users' scripts keep
working with the same flags; see lstmpack/sweep/cli.py for what it does."""

from __future__ import annotations

import sys

from lstmpack.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
