"""`python -m elmo`: train ELMo's biLM and score it (perplexity forward, backward, their mean).

    python -m elmo --preset cpu [--corpus ptb|lm1b] [--run-dir D] [--data-dir D] [--resume]

`run` loads the data, trains (from the checkpoint in the run directory with `resume`), scores the
validation and test splits with the full softmax and writes config.json, train.json,
metrics.json, checkpoint.pt, log.txt and TensorBoard events there.
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
from elmo.config import CORPORA, PRESETS, ELMoConfig, preset_config

__all__ = ["main", "run"]

log = logging.getLogger("elmo")
PROG = "python -m elmo"


def _write(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, sort_keys=True)


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("elmo").addHandler(handler)
    return handler


def run(
    cfg: ELMoConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """One whole run into `run_dir`; returns its metrics (also in metrics.json)."""
    from elmo.data import check_sizes, load_data
    from elmo.evaluation import evaluate
    from elmo.model import build_model
    from elmo.training import train

    # the data first: a file that cannot be read, or a split too short for its streams, fails
    # before anything is written
    t0 = time.perf_counter()
    data = load_data(cfg, data_dir, verify=verify)
    check_sizes(data, cfg)
    prep_s = time.perf_counter() - t0
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _file_logger(run_dir)
    try:
        log.info("data: %s (%.1f s)", json.dumps(data.info), prep_s)
        model = build_model(cfg, data.vocab_size)
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
        logging.getLogger("elmo").removeHandler(handler)
        handler.close()


# --------------------------------------------------------------------------- CLI

_KINDS = {"int": int, "float": float, "str": str}


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """--set KEY=VALUE items as ELMoConfig overrides, each value read as its field's type
    (filters as JSON, e.g. filters=[[1,32],[2,64]]); ValueError naming the item."""
    types = {f.name: str(f.type) for f in dataclasses.fields(ELMoConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if key not in types:
            near = difflib.get_close_matches(key, list(types), n=1)
            hint = f"; did you mean {near[0]}?" if near else "; see elmo/config.py"
            raise ValueError(f"--set {key}: no such setting{hint}")
        kind = types[key]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                out[key] = text.lower() == "true"
            elif kind in _KINDS:
                out[key] = _KINDS[kind](text)
            else:  # filters: JSON pairs
                out[key] = json.loads(text)
        except ValueError:
            what = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
                kind, "JSON, e.g. [[1,32],[2,64]]"
            )
            raise ValueError(f"--set {item}: {key} takes {what}") from None
    return out


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="smoke (seconds), cpu (word PTB; 76 minutes on 2 shared cores) or "
                        "paper (the published ELMo on the 1B Word Benchmark); default cpu")  # fmt: skip
    p.add_argument("--corpus", default=None, choices=CORPORA,
                   help="ptb (word PTB) or lm1b (the 1B Word Benchmark, your own download); "
                        "default: the preset's")  # fmt: skip
    p.add_argument("--sampled-softmax", type=int, default=None, metavar="N",
                   help="train with a sampled softmax of N candidates per direction and step "
                        "(0: the full softmax); default: the preset's (paper: 8192)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="random seed, >= 0 (default 0)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override a preset field (ELMoConfig in elmo/config.py), e.g. "
                        "epochs=2 dropout=0.3")  # fmt: skip
    p.add_argument("--run-dir", default=None,
                   help="run directory (default runs/elmo/<preset>-<corpus>-s<seed>)")  # fmt: skip
    p.add_argument("--data-dir", default=None,
                   help="data root holding ptb_word/ or lm1b/ (default $LSTMPACK_DATA, else the "
                        "repository's data/)")  # fmt: skip
    p.add_argument("--no-verify", action="store_true",
                   help="skip the SHA-256 check of the data files")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its checkpoint")  # fmt: skip
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads, >= 1 (default: the preset's, cpu 2)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _config(args: argparse.Namespace) -> ELMoConfig:
    overrides = _parse_set(args.set)
    for name in ("corpus", "sampled_softmax", "seed", "threads"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}")
    if args.sampled_softmax is not None and args.sampled_softmax < 0:
        raise ValueError(f"--sampled-softmax must be >= 0; got {args.sampled_softmax}")
    try:
        return preset_config(args.preset, **overrides)
    except ValueError as e:  # the config names its field: name the flag too
        raise ValueError(f"{' '.join(args.set) or args.preset}: {e}") from None


def _check_data(cfg: ELMoConfig, data_dir: str | None, verify: bool) -> Path:
    """The folder of the data `cfg` reads, found (and for PTB verified) before anything is
    written; a DatasetError naming what is missing otherwise."""
    from common.datasets import dataset_dir

    if cfg.corpus == "ptb":
        from elmo.data import PTB_DATASET

        return dataset_dir(PTB_DATASET, data_dir, verify=verify)
    from common.datasets.catalog import LM1B
    from common.datasets.verify import user_text_files
    from elmo.data import lm1b_files

    train, valid, test = lm1b_files(cfg)
    return user_text_files(LM1B, data_dir, (*train, valid, test))[0].parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from common.datasets import DatasetError

    def fail(e: Exception) -> int:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

    try:
        cfg = _config(args)
        run_dir = Path(args.run_dir or f"runs/elmo/{cfg.run_id()}")
        check_trainer_run_dir(run_dir, args.resume)
        folder = _check_data(cfg, args.data_dir, not args.no_verify)
    except (ValueError, DatasetError) as e:
        return fail(e)
    from common.runtime import configure_cpu

    configure_cpu(cfg.threads or None)
    log.info("data: %s", folder)
    try:
        m = run(cfg, run_dir, args.data_dir, resume=args.resume, verify=not args.no_verify,
                progress=not args.no_progress)  # fmt: skip
    except ValueError as e:  # a bad data file (or too little of it): one line, as every user error
        return fail(e)
    for split in ("valid", "test"):
        r = m[split]
        print(f"{split}: ppl forward {r['ppl_forward']:.2f} backward {r['ppl_backward']:.2f} "
              f"mean {r['ppl']:.2f}")  # fmt: skip
    tr = m["train"]
    print(f"train time {tr['train_time_s']:.1f} s, {tr['steps']} steps, {tr['params']} "
          f"parameters, run dir {run_dir}")  # fmt: skip
    return 0
