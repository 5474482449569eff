"""Train an AWD-LSTM language model: `python -m lm.train --model ptbc --preset cpu` (or
`python -m lm`).

The preset's config, with any field overridden by a flag of its name (`--lr 1e-3`, `--when 3 5`),
trains in --run-dir (default runs/<model>/<preset>) through lm.rundir.train_run; the metrics are
printed as JSON. Exit status 1: the loss diverged; 2: a bad flag, config or data folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from common.runtime import configure_cpu
from lm.config import LMConfig
from lm.rundir import train_run
from lm.trainer import TrainingDivergedError


def _parse_value(field_type: Any, text: str) -> Any:
    t = str(field_type)
    if "tuple" in t:
        return tuple(int(v) for v in text.replace(",", " ").split())
    if t in ("int", "<class 'int'>"):
        return int(text)
    if t in ("float", "<class 'float'>"):
        return float(text)
    if t == "float | None":
        return None if text.lower() == "none" else float(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lm.train", description="Train an AWD-LSTM language model."
    )
    p.add_argument("--model", required=True, choices=["ptbc", "ptbw", "enwik8"])
    p.add_argument("--preset", default="cpu", choices=["paper", "cpu", "smoke"])
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<model>/<preset>)")
    p.add_argument("--data-dir", type=Path, help="data root (default $LSTMPACK_DATA, then ./data)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the SHA-256 check of the data (for made or partial copies, e.g. a test enwik8)",
    )
    p.add_argument("--device", default="cpu")
    g = p.add_argument_group("config overrides (default: the preset's value)")
    for f in fields(LMConfig):
        if f.name in ("model", "preset"):
            continue
        nargs = "*" if "tuple" in str(f.type) else None  # `--when` alone: no drops
        g.add_argument(f"--{f.name}", dest=f"cfg_{f.name}", nargs=nargs, default=None)
    return p


def config_from_args(args: argparse.Namespace) -> tuple[LMConfig, dict[str, Any]]:
    from lm.presets import get_preset

    base = get_preset(args.model, args.preset)
    overrides: dict[str, Any] = {}
    for f in fields(LMConfig):
        raw = getattr(args, f"cfg_{f.name}", None)
        if raw is None:
            continue
        overrides[f.name] = _parse_value(f.type, " ".join(raw) if isinstance(raw, list) else raw)
    return base.replace(**overrides), overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, overrides = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path("runs") / args.model / args.preset
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    root.addHandler(console)
    configure_cpu(config.threads or os.cpu_count() or 1)
    try:
        if args.resume:
            # Keep the stored config; only explicitly given overrides are checked against it.
            stored = LMConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
            config = stored.replace(**overrides) if overrides else None
        metrics = train_run(
            config,
            run_dir,
            data_dir=args.data_dir,
            resume=args.resume,
            device=args.device,
            progress=not args.no_progress,
            verify=not args.no_verify,
        )
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        root.removeHandler(handler)
        root.removeHandler(console)
        handler.close()
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
