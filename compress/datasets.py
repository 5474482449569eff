"""`python -m compress.datasets`: the documented command for the dataset registry, whose code
lives in `common.datasets` (shared by every package). Kept so users' scripts and the Makefile
keep working; `python -m common.datasets` is the same CLI."""

from __future__ import annotations

from common.datasets.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
