"""`python -m compress.datasets` (or `python -m common.datasets`): check and fetch from a shell."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from common.cliargs import OneLineParser
from common.datasets.catalog import DATASETS, DatasetError, DatasetMissingError, get_dataset
from common.datasets.fetch import fetch_dataset
from common.datasets.verify import ENV_VAR, REPO_LABEL, check_all, data_root


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _explicit_root(label: str, root: Path, must_exist: bool) -> None:
    """DatasetMissingError when a root the user chose is a file (or, `must_exist`, missing)."""
    if label == REPO_LABEL:
        return
    if root.exists() and not root.is_dir():
        raise DatasetMissingError(f"{label} {root} is a file, not a folder; give a data folder")
    if must_exist and not root.exists():
        raise DatasetMissingError(f"{label} {root} does not exist; give a data folder")


def _cmd_check(args: argparse.Namespace) -> int:
    label, root = data_root(args.data_dir)
    _explicit_root(label, root, must_exist=True)
    rows = check_all(args.data_dir, full=args.full)
    # which copy was checked, and how: a table of "verified" means little without it
    how = "every file hashed again" if args.full else "hashes cached by size, mtime, inode, ctime"
    print(f"data root: {root} ({label}; {how})")
    width = max(len(r.name) for r in rows)
    print(f"{'dataset':<{width}}  {'status':<8}  {'size':>9}  folder")
    for r in rows:
        size = _fmt_bytes(r.bytes) if r.bytes else "-"
        print(f"{r.name:<{width}}  {r.status:<8}  {size:>9}  {r.folder or '-'}")
    for r in rows:
        if r.status == "corrupt":
            print(f"  {r.detail}")
    return 1 if any(r.status == "corrupt" for r in rows) else 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    names = args.names or list(DATASETS)
    for n in names + list(args.optional):
        get_dataset(n)
    label, root = data_root(args.data_dir)
    _explicit_root(label, root, must_exist=False)  # fetch creates a missing root
    mirror = Path(args.mirror) if args.mirror and Path(args.mirror).is_dir() else None
    if args.mirror and mirror is None:
        print(f"mirror {args.mirror} not found; downloading from the canonical addresses")
    failed = []
    for n in names:
        try:
            how = fetch_dataset(n, root, mirror=mirror, progress=sys.stderr.isatty())
            print(f"{n:<16} {how:<9} {root / DATASETS[n].folder}")
        except DatasetError as e:
            optional = n in args.optional
            print(f"{n:<16} {'skipped' if optional else 'FAILED':<9} {e}")
            if not optional:
                failed.append(n)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    # The package's docstring (the lookup order, what check and fetch do) is the help text.
    import common.datasets as package

    parser = OneLineParser(prog="python -m compress.datasets", description=package.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check", help="verify every dataset: verified / missing / corrupt")
    p.add_argument(
        "--data-dir",
        default=None,
        help=f"the data root to check (default ${ENV_VAR}, else the repository's data/)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="hash every file again instead of trusting the hash cache (which is keyed by size, "
        "mtime, inode and ctime)",
    )
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("fetch", help="copy from a mirror or download, verified")
    p.add_argument("names", nargs="*", help=f"datasets (default all): {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="target root (default: the resolved root)")
    p.add_argument("--mirror", default=None, help="a local folder laid out like the data root")
    p.add_argument(
        "--optional",
        nargs="*",
        default=[],
        metavar="NAME",
        help="datasets whose failure is reported but does not fail the command",
    )
    p.set_defaults(func=_cmd_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
