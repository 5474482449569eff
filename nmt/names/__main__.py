"""`python -m nmt.names ...`: train and evaluate the surname classifier (see nmt.names.cli)."""

from __future__ import annotations

from nmt.names.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
