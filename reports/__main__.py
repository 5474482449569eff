"""CLI: ``python -m reports RUNS_DIR --out OUT``: tables and figures from run records.

Prints the markdown tables and the index path. A malformed or damaged record is skipped with one
warning line (``warning: skipped <run dir>: <file>: <what>``) on stderr and the
report is built from the rest; a runs folder with no readable record, or an --out that is a
file, prints one line (``error: ...``) and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from common.cliargs import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m reports", description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", help="folder of run records (runs/ or runs/<model>)")
    p.add_argument("--out", required=True, help="output folder (index.md, tables/, figures/)")
    p.add_argument(
        "--formats",
        nargs="+",
        default=["png", "pdf"],
        choices=["png", "pdf", "svg"],
        help="figure file formats (default png pdf)",
    )
    p.add_argument("--matrix-run", help="run-id for Figure 4 (default: the best-packed run)")
    p.add_argument("--matrix-layer", help="layer for Figure 4 (default: the first LSTM layer)")
    p.add_argument("--quiet", action="store_true", help="print only the index path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from reports.build import build_report  # pandas/matplotlib load only when the CLI runs
    from reports.tables import to_markdown

    out = Path(args.out)
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        sys.stderr.write(f"error: --out {out}: {blocked} is a file, not a folder\n")
        return 2
    try:
        report = build_report(
            args.runs_dir,
            args.out,
            formats=args.formats,
            matrix_run=args.matrix_run,
            matrix_layer=args.matrix_layer,
        )
    except ValueError as e:
        sys.stderr.write(f"error: {' '.join(str(e).split())}\n")
        return 2
    for run_dir, why in report.runs.skipped:  # one line each, and the report goes on
        sys.stderr.write(f"warning: skipped {run_dir}: {why}\n")
    for why in report.warnings:
        sys.stderr.write(f"warning: not drawn: {why}\n")
    if not args.quiet:
        for g in report.groups:
            print(f"## {g.model}, {g.preset} preset\n")
            print(to_markdown(g.table))
        if report.runs.failed:
            print(f"{len(report.runs.failed)} failed run(s): listed in index.md")
        if report.runs.skipped:
            print(
                f"{len(report.runs.skipped)} unreadable run record(s) skipped: listed in index.md"
            )
    print(f"report: {report.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
