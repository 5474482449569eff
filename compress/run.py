"""`python -m compress.run`: the documented command for one compression run, whose stages live in
`lstmpack.run` (a layer above compress, hwsim and reports). Kept so users' scripts, the Makefile
and `compress.sweep`'s subprocesses keep working with the same flags."""

from __future__ import annotations

from lstmpack.run.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
