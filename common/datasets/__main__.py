"""`python -m common.datasets`: the same CLI as `python -m compress.datasets`."""

from common.datasets.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
