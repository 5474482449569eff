"""`python -m nmt.multi30k`: train and evaluate the GRU translator on Multi30k (German to English).

    python -m nmt.multi30k --preset cpu [--attention none] [--run-dir D] [--data-dir D] [--resume]

`run` loads the data, trains (from the checkpoint in the run directory with `resume`), scores the
validation and test_2016_flickr splits (greedy and beam BLEU, sacreBLEU's signature) and writes
config.json, train.json, metrics.json, checkpoint.pt, log.txt and TensorBoard events there.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.checkfiles import check_trainer_run_dir
from common.cliargs import OneLineParser
from nmt.multi30k.config import ATTENTIONS, PRESETS, Multi30kConfig, preset_config

__all__ = ["main", "run"]

log = logging.getLogger("nmt.multi30k")


def _write(path: Path, obj: Any) -> None:
    # non-ASCII kept as is: the sample sentences are German
    atomic_write_json(path, obj, sort_keys=True, ensure_ascii=False)


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("nmt.multi30k").addHandler(handler)
    return handler


def run(
    cfg: Multi30kConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """One whole run into `run_dir`; returns its metrics (also in metrics.json)."""
    from nmt.multi30k.data import load_multi30k
    from nmt.multi30k.evaluation import evaluate
    from nmt.multi30k.model import build_model
    from nmt.multi30k.training import train

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _file_logger(run_dir)
    try:
        t0 = time.perf_counter()
        data = load_multi30k(cfg, data_dir, verify=verify)
        prep_s = time.perf_counter() - t0
        log.info("data: %s (%.1f s)", json.dumps(data.info), prep_s)
        model = build_model(cfg, len(data.src_vocab), len(data.tgt_vocab))
        _write(run_dir / "config.json", cfg.to_dict())
        _write(run_dir / "metrics.json", {"status": "running", "error": None})
        try:
            tr = train(model, data, cfg, run_dir, resume=resume, progress=progress)
            t0 = time.perf_counter()
            ev = evaluate(model, data, cfg)
            eval_s = time.perf_counter() - t0
        except Exception as e:
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            _write(run_dir / "metrics.json", {"status": "failed", "error": msg})
            raise
        metrics = {"status": "finished", "error": None, "data": data.info, "prep_time_s": prep_s,
                   "eval_time_s": eval_s, "train": tr, **ev}  # fmt: skip
        _write(run_dir / "metrics.json", metrics)
        return metrics
    finally:
        logging.getLogger("nmt.multi30k").removeHandler(handler)
        handler.close()


# --------------------------------------------------------------------------- CLI


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """--set KEY=VALUE items as Multi30kConfig overrides, each value read as its field's type;
    ValueError naming the item."""
    types = {f.name: f.type for f in dataclasses.fields(Multi30kConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if key not in types:
            near = difflib.get_close_matches(key, list(types), n=1)
            hint = f"; did you mean {near[0]}?" if near else "; see nmt/multi30k/config.py"
            raise ValueError(f"--set {key}: no such setting{hint}")
        kind = str(types[key])
        try:
            out[key] = {"int": int, "float": float}.get(kind, str)(text)
        except ValueError:
            what = "an integer" if kind == "int" else "a number"
            raise ValueError(f"--set {item}: {key} takes {what}") from None
    return out


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m nmt.multi30k", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="smoke (seconds), cpu (at most 30 minutes on 2 cores) or paper (the "
                        "seed's model); default cpu")  # fmt: skip
    p.add_argument("--attention", default=None, choices=ATTENTIONS,
                   help="bahdanau (additive) or none (the seed's model: no context); default: "
                        "the preset's")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="random seed, >= 0 (default 0)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override a preset field (Multi30kConfig in nmt/multi30k/config.py), "
                        "e.g. epochs=5 beam=1")  # fmt: skip
    p.add_argument(
        "--run-dir",
        default=None,
        help="run directory (default runs/multi30k/<preset>-<attention>-s<seed>)",
    )
    p.add_argument("--data-dir", default=None,
                   help="data root holding multi30k/ (default $LSTMPACK_DATA, else the "
                        "repository's data/)")  # fmt: skip
    p.add_argument(
        "--no-verify", action="store_true", help="skip the SHA-256 check of the data files"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir from its checkpoint"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads, >= 1 (default: torch's own choice)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _config(args: argparse.Namespace) -> Multi30kConfig:
    overrides = _parse_set(args.set)
    for name in ("attention", "seed", "threads"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}")
    try:
        return preset_config(args.preset, **overrides)
    except ValueError as e:  # the config names its field: name the flag too
        raise ValueError(f"{' '.join(args.set) or args.preset}: {e}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from common.datasets import DatasetError, dataset_dir

    try:
        cfg = _config(args)
        run_dir = Path(args.run_dir or f"runs/multi30k/{cfg.run_id()}")
        check_trainer_run_dir(run_dir, args.resume)
        folder = dataset_dir("multi30k", args.data_dir, verify=not args.no_verify)
    except (ValueError, DatasetError) as e:
        print(f"python -m nmt.multi30k: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    from common.runtime import configure_cpu

    configure_cpu(cfg.threads or None)
    log.info("data: %s", folder)
    try:
        m = run(cfg, run_dir, args.data_dir, resume=args.resume, verify=not args.no_verify,
                progress=not args.no_progress)  # fmt: skip
    except ValueError as e:  # a bad data file: one line, as every user error
        print(f"python -m nmt.multi30k: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    for split in ("valid", "test"):
        r = m[split]
        print(f"{split}: greedy {r['bleu_greedy_text']}")
        if "bleu_beam_text" in r:
            print(f"{split}: beam {cfg.beam} {r['bleu_beam_text']}")
        print(f"{split}: loss {r['loss']:.4f}")
    print(f"sacreBLEU signature: {m['test']['bleu_signature']}")
    tr = m["train"]
    print(f"train time {tr['train_time_s']:.1f} s, {tr['steps']} steps, run dir {run_dir}")
    return 0
