"""`python -m nmt.multi30k ...`: train and evaluate the GRU translator (see nmt.multi30k.cli)."""

from __future__ import annotations

from nmt.multi30k.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
