"""`python -m nmt.names`: one whole run of the surname classifier and its flags.

    python -m nmt.names --preset cpu --split stratified --cell gate

`run` loads the data, trains (resuming if runs/names/<run-id>/ holds a checkpoint), evaluates
and writes config.json and metrics.json there. `--device auto|cpu|cuda|cuda:N` and `--precision
fp32|bf16|fp16` say where and how it trains (one process: the classifier has no data-parallel
mode, and refuses torchrun).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from common import distributed
from common.atomic import atomic_write_json
from common.checkfiles import check_torch_file
from common.cliargs import OneLineParser
from common.device import DEVICES_HELP, PRECISION_HELP, PRECISIONS, check_precision, resolve_device
from common.runtime import configure_cpu
from nmt.names.config import CELLS, PRESETS, READOUTS, SPLITS, NamesConfig, preset_config
from nmt.names.data import _names_folder, load_names, majority_baseline
from nmt.names.model import build_model, count_params
from nmt.names.training import evaluate, train

__all__ = ["TUTORIAL_ACCURACY", "main", "run"]

TUTORIAL_ACCURACY = 0.512  # spikingjelly's tutorial, tutorial split, 1M single-name steps


def _write_record(path: Path, obj: dict) -> None:
    atomic_write_json(path, obj, sort_keys=True)


def run(
    config: NamesConfig,
    data_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs",
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    precision: str = "fp32",
) -> tuple[dict, Path]:
    """Load the data, train (resuming if runs/names/<run-id>/ holds a checkpoint), evaluate,
    and write config.json and metrics.json there. Returns (metrics, run directory)."""
    run_dir = Path(runs_dir) / "names" / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_record(run_dir / "config.json", config.to_dict())
    data = load_names(data_dir, config.split, config.split_seed)
    train_data, test_data, classes = data
    model = build_model(config, len(classes))
    info = train(model, data, config, run_dir=run_dir, device=device, progress=progress,
                 precision=precision)  # fmt: skip
    test_eval = evaluate(model, test_data, config.eval_batch_size, device)
    train_eval = evaluate(model, train_data, config.eval_batch_size, device)
    metrics = {
        "model": "names",
        "cell": config.cell,
        "split": config.split,
        "test_accuracy": test_eval["accuracy"],
        "test_balanced_accuracy": test_eval["balanced_accuracy"],
        "test_loss": test_eval["loss"],
        "train_accuracy": train_eval["accuracy"],
        "majority_baseline": majority_baseline(train_data, test_data),
        "tutorial_reference_accuracy": TUTORIAL_ACCURACY,
        "spike_rate": test_eval["spike_rate"],
        "layer_spike_rates": test_eval["layer_spike_rates"],
        "test_spikes": test_eval["spikes"],
        "test_neuron_steps": test_eval["neuron_steps"],
        "params": count_params(model),
        "train_time_s": info["train_time_s"],
        "steps": info["steps"],
        "final_train_loss": info["final_loss"],
        "n_train": len(train_data),
        "n_test": len(test_data),
        "classes": list(classes),
        "torch_threads": torch.get_num_threads(),
        "device": str(torch.device(device)),
        "precision": precision,
    }
    _write_record(run_dir / "metrics.json", metrics)
    with open(run_dir / "log.txt", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": time.time(), **metrics}) + "\n")
    return metrics, run_dir


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m nmt.names",
        description="Train and evaluate the (spiking) LSTM surname classifier.",
    )
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="default cpu")
    p.add_argument("--split", default="stratified", choices=SPLITS, help="train/test split")
    p.add_argument("--cell", default="gate", choices=CELLS, help="the LSTM cell (default gate)")
    p.add_argument("--data-dir", default=None, help="data root or the names folder itself")
    p.add_argument("--runs-dir", default="runs", help="runs go to RUNS_DIR/names/<run-id>")
    p.add_argument("--seed", type=int, default=None, help="default: the preset's (>= 0)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (>= 1)")
    p.add_argument("--batch-size", type=int, default=None, help="names per batch (>= 1)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (> 0)")
    p.add_argument("--hidden-size", type=int, default=None, help="LSTM width (>= 1)")
    p.add_argument(
        "--surrogate",
        default=None,
        choices=["erf", "atan", "spikingparrot"],
        help="spike surrogate gradient (default: the cell's own)",
    )
    p.add_argument("--readout", default=None, choices=READOUTS, help="how logits are read out")
    p.add_argument("--threads", type=int, default=None, help="torch threads, >= 1 (default: all)")
    p.add_argument("--no-clamp", action="store_true", help="gate cell: pre-2.0 unclamped c")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help=f"{DEVICES_HELP}; default cpu")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    return p


def _config(args: argparse.Namespace, overrides: dict) -> NamesConfig:
    """The preset with the flags' overrides; ValueError naming the flag of a refused value."""
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1 (torch threads); got {args.threads}")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be >= 0; got {args.seed}")
    try:
        return preset_config(args.preset, **overrides)
    except ValueError as e:  # NamesConfig names its field: name the flag that set it
        field = next((k for k in overrides if str(e).startswith(k)), None)
        if field is None:
            raise
        raise ValueError(f"--{field.replace('_', '-')} {overrides[field]}: {e}") from None


def _check(config: NamesConfig, args: argparse.Namespace) -> Path:
    """Every refusal of the folders before anything is written (ValueError naming the flag or
    file); returns the data folder the run reads."""
    if args.data_dir is not None and not args.data_dir.strip():  # "" would glob the cwd
        raise ValueError("--data-dir is empty; give a data folder, or leave the flag out")
    runs = Path(args.runs_dir)
    if runs.exists() and not runs.is_dir():
        raise ValueError(f"--runs-dir {runs} is a file, not a folder")
    ckpt = runs / "names" / config.run_id() / "checkpoint.pt"
    if ckpt.exists():  # the run resumes from it: a damaged one fails now, not after loading
        check_torch_file(ckpt, "delete it to train this run from the start")
    return _names_folder(args.data_dir)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {
        k: v
        for k, v in dict(
            split=args.split,
            cell=args.cell,
            seed=args.seed,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            hidden_size=args.hidden_size,
            surrogate=args.surrogate,
            readout=args.readout,
            threads=args.threads,
        ).items()
        if v is not None
    }
    if args.no_clamp:
        overrides["clamp"] = False
    try:
        if distributed.launched().parallel:
            raise ValueError(
                "the surname classifier trains in one process; run it without torchrun"
            )
        device = resolve_device(args.device)
        check_precision(args.precision, device)
        config = _config(args, overrides)
        folder = _check(config, args)
        logging.getLogger("nmt.names").info("data: %s", folder)
        configure_cpu(config.threads or None)
        metrics, run_dir = run(config, args.data_dir, args.runs_dir, device=device,
                               progress=not args.no_progress, precision=args.precision)  # fmt: skip
    except ValueError as err:  # includes DatasetError and DamagedFileError: a one-line message
        print(f"nmt.names: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in metrics.items() if k not in ("classes", "test_neuron_steps")}
    print(json.dumps(shown, indent=1))
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
