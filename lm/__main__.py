"""`python -m lm` is `python -m lm.train`."""

from lm.train import main

if __name__ == "__main__":
    raise SystemExit(main())
