"""CLI: ``python -m reports RUNS_DIR --out OUT``: tables and figures from run records.

Prints the markdown tables and the index path. A missing or malformed record prints one line
(``error: <file>: <what>``) to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", help="folder of run records (runs/ or runs/<model>)")
    p.add_argument("--out", required=True, help="output folder (index.md, tables/, figures/)")
    p.add_argument("--formats", nargs="+", default=["png", "pdf"], choices=["png", "pdf", "svg"])
    p.add_argument("--matrix-run", help="run-id for Figure 4 (default: the best-packed run)")
    p.add_argument("--matrix-layer", help="layer for Figure 4 (default: the first LSTM layer)")
    p.add_argument("--quiet", action="store_true", help="print only the index path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from reports.build import build_report  # pandas/matplotlib load only when the CLI runs
    from reports.tables import to_markdown

    try:
        report = build_report(
            args.runs_dir,
            args.out,
            formats=args.formats,
            matrix_run=args.matrix_run,
            matrix_layer=args.matrix_layer,
        )
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if not args.quiet:
        for g in report.groups:
            print(f"## {g.model}, {g.preset} preset\n")
            print(to_markdown(g.table))
        if report.runs.failed:
            print(f"{len(report.runs.failed)} failed run(s): listed in index.md")
    print(f"report: {report.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
