"""`python -m nmt ...` is `python -m nmt.train ...`: train and evaluate the spiking translator."""

from __future__ import annotations

from nmt.train import main

if __name__ == "__main__":
    raise SystemExit(main())
