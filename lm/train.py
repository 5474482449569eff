"""Train an AWD-LSTM language model: `python -m lm.train --model ptbc --preset cpu` (or
`python -m lm`).

The preset's config, with any field overridden by a flag of its name (`--lr 1e-3`, `--when 3 5`),
trains in --run-dir (default runs/<model>/<preset>) through lm.rundir.train_run; the metrics are
printed as JSON. Exit status 1: the loss diverged; 2: a bad flag, config, run directory or data
folder, found before anything is written (one line on stderr).

`--device auto|cpu|cuda|cuda:N` and `--precision fp32|bf16|fp16` say where and how it trains.
Under torchrun (`torchrun --nproc_per_node N -m lm.train ...`) the N processes train one model
data-parallel (gloo on the CPU, NCCL on GPUs, each process its own GPU with --device cuda): the
preset's batch_size is the global batch, split evenly over the processes; only rank 0 writes and
prints.
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

import torch

from common import distributed
from common.checkfiles import DamagedFileError, check_torch_file, read_json_object
from common.cliargs import OneLineParser
from common.datasets import DatasetError, dataset_dir
from common.device import (
    DEVICES_HELP,
    PRECISION_HELP,
    PRECISIONS,
    check_precision,
    check_resumed_precision,
    resolve_device,
)
from common.runtime import configure_cpu
from lm.config import MODELS, LMConfig
from lm.data import DATASET_OF_MODEL
from lm.rundir import BEST, CHECKPOINT, train_run
from lm.trainer import TrainingDivergedError

log = logging.getLogger("lm.train")


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


# What a value of each field type looks like, for the help and the error of a bad value.
KINDS = {"int": "an integer", "float": "a number", "float | None": "a number or none",
         "str": "a word"}  # fmt: skip


def _kind(field_type: Any) -> str:
    t = str(field_type)
    return "integers (space- or comma-separated)" if "tuple" in t else KINDS.get(t, t)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m lm.train", description="Train an AWD-LSTM language model.")
    p.add_argument("--model", required=True, choices=MODELS, help="the language model")
    p.add_argument("--preset", default="cpu", choices=["paper", "cpu", "smoke"], help="default cpu")
    p.add_argument("--run-dir", help="run directory (default runs/<model>/<preset>)")
    p.add_argument(
        "--data-dir", help="data root (default $LSTMPACK_DATA, else the repository's data/)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the SHA-256 check of the data (for made or partial copies, e.g. a test enwik8)",
    )
    p.add_argument("--device", default="cpu", help=f"{DEVICES_HELP}; default cpu")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    g = p.add_argument_group("config overrides (default: the preset's value)")
    for f in fields(LMConfig):
        if f.name in ("model", "preset"):
            continue
        nargs = "*" if "tuple" in str(f.type) else None  # `--when` alone: no drops
        g.add_argument(
            f"--{f.name}",
            dest=f"cfg_{f.name}",
            nargs=nargs,
            default=None,
            metavar=f.name.upper(),
            help=f"the preset's {f.name}, replaced ({_kind(f.type)})",
        )
    return p


def config_from_args(args: argparse.Namespace) -> tuple[LMConfig, dict[str, Any]]:
    """The preset's config with the flags' overrides; ValueError naming the first bad flag."""
    from lm.presets import get_preset

    base = get_preset(args.model, args.preset)
    overrides: dict[str, Any] = {}
    for f in fields(LMConfig):
        raw = getattr(args, f"cfg_{f.name}", None)
        if raw is None:
            continue
        text = " ".join(raw) if isinstance(raw, list) else raw
        try:
            value = _parse_value(f.type, text)
        except ValueError:
            raise ValueError(f"--{f.name} takes {_kind(f.type)}; got {text!r}") from None
        try:
            base.replace(**{f.name: value})  # the field's own checks, with the flag named
        except (TypeError, ValueError) as e:
            raise ValueError(f"--{f.name} {text}: {e}") from None
        overrides[f.name] = value
    return base.replace(**overrides), overrides


def check_run_dir(run_dir: Path, resume: bool, precision: str = "fp32") -> LMConfig | None:
    """Every refusal of the run directory before anything is written: a file where the folder
    should be, a run there without --resume, --resume with no run, a damaged one or one trained
    in another precision. Returns the stored config on --resume."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {run_dir} is a file, not a folder")
    ckpt = run_dir / CHECKPOINT
    if not resume:
        if ckpt.exists():
            raise ValueError(
                f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it, or "
                "choose another --run-dir"
            )
        return None
    if not ckpt.is_file():
        raise ValueError(f"--resume: no {CHECKPOINT} in {run_dir}; leave out --resume to start")
    fix = f"delete it to train this run afresh (or delete {run_dir})"
    for name in (CHECKPOINT, BEST):
        if (run_dir / name).is_file():
            check_torch_file(run_dir / name, fix)
    # memory-mapped: only the entries read are loaded
    state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    check_resumed_precision(state.get("precision"), precision, f"the run in {run_dir}")
    stored = read_json_object(
        run_dir / "config.json", f"fix it, or delete {run_dir} to start afresh"
    )
    try:
        return LMConfig.from_dict(stored)
    except (TypeError, ValueError) as e:
        raise DamagedFileError(
            f"{run_dir / 'config.json'}: not an LM config ({e}); fix it, or delete {run_dir} to "
            "start afresh"
        ) from None


def _setup_logging(run_dir: Path) -> tuple[logging.Handler, logging.Handler]:
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    root.addHandler(console)
    return handler, console


def _error(world: distributed.World, message: str) -> None:
    """One line on stderr, from rank 0 only: every rank meets the same error."""
    if world.main:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / args.model / args.preset
    world = distributed.World()
    try:
        world = distributed.launched()
        config, overrides = config_from_args(args)
        local = world.local_rank if world.parallel else None
        device = resolve_device(args.device, local_rank=local)
        check_precision(args.precision, device)
        stored = check_run_dir(run_dir, args.resume, args.precision)
        if stored is not None:
            # Keep the stored config; only explicitly given overrides are checked against it.
            config = stored.replace(**overrides) if overrides else stored
        distributed.share(config.batch_size, world)  # the global batch splits evenly
        data = dataset_dir(DATASET_OF_MODEL[config.model], args.data_dir, verify=not args.no_verify)
    except (ValueError, DatasetError) as err:
        _error(world, str(err))
        return 2
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        handler, console = _setup_logging(run_dir)
    else:
        handler = console = logging.NullHandler()
    log.info("data: %s", data)
    # the cores are shared between the processes of this machine unless the config says
    configure_cpu(config.threads or max(1, (os.cpu_count() or 1) // world.local_size))
    try:
        distributed.start(world, device)
        metrics = train_run(
            None if args.resume and not overrides else config,
            run_dir,
            data_dir=args.data_dir,
            resume=args.resume,
            device=device,
            precision=args.precision,
            progress=not args.no_progress,
            verify=False,  # verified above, once
        )
    except TrainingDivergedError as err:
        _error(world, str(err))
        return 1
    except (ValueError, FileNotFoundError) as err:
        _error(world, str(err))
        return 2
    finally:
        distributed.stop()
        root = logging.getLogger()
        root.removeHandler(handler)
        root.removeHandler(console)
        handler.close()
    if world.main:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
