"""`python -m nmt.names`: one whole run of the surname classifier and its flags.

    python -m nmt.names --preset cpu --split stratified --cell gate

`run` loads the data, trains (resuming if runs/names/<run-id>/ holds a checkpoint), evaluates
and writes config.json and metrics.json there.
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

from common.atomic import atomic_write_json
from nmt.names.config import CELLS, PRESETS, READOUTS, SPLITS, NamesConfig, preset_config
from nmt.names.data import load_names, majority_baseline
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
) -> tuple[dict, Path]:
    """Load the data, train (resuming if runs/names/<run-id>/ holds a checkpoint), evaluate,
    and write config.json and metrics.json there. Returns (metrics, run directory)."""
    run_dir = Path(runs_dir) / "names" / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_record(run_dir / "config.json", config.to_dict())
    data = load_names(data_dir, config.split, config.split_seed)
    train_data, test_data, classes = data
    model = build_model(config, len(classes))
    info = train(model, data, config, run_dir=run_dir, device=device, progress=progress)
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
    }
    _write_record(run_dir / "metrics.json", metrics)
    with open(run_dir / "log.txt", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": time.time(), **metrics}) + "\n")
    return metrics, run_dir


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nmt.names",
        description="Train and evaluate the (spiking) LSTM surname classifier.",
    )
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--split", default="stratified", choices=SPLITS)
    p.add_argument("--cell", default="gate", choices=CELLS)
    p.add_argument("--data-dir", default=None, help="data root or the names folder itself")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--hidden-size", type=int, default=None)
    p.add_argument("--surrogate", default=None, choices=["erf", "atan", "spikingparrot"])
    p.add_argument("--readout", default=None, choices=READOUTS)
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: default)")
    p.add_argument("--no-clamp", action="store_true", help="gate cell: pre-2.0 unclamped c")
    p.add_argument("--no-progress", action="store_true")
    return p


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
        config = preset_config(args.preset, **overrides)
        metrics, run_dir = run(config, args.data_dir, args.runs_dir, progress=not args.no_progress)
    except ValueError as err:  # includes DatasetError: a one-line message
        print(f"nmt.names: {err}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in metrics.items() if k not in ("classes", "test_neuron_steps")}
    print(json.dumps(shown, indent=1))
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
