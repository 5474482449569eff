"""Train and evaluate the spiking translator: data preparation, the training loop, BLEU.

`python -m nmt.train --preset cpu [--run-dir D] [--data-dir D] [--resume] [--set key=value]`
trains, evaluates and writes config.json / metrics.json / log.txt / TensorBoard events /
checkpoint.pt / tokenizers to the run directory; an interrupted run resumes from its last
checkpoint with `--resume` and ends with the same weights as an uninterrupted one.

`--device auto|cpu|cuda|cuda:N` and `--precision fp32|bf16|fp16` say where and how it trains;
under torchrun (`torchrun --nproc_per_node N -m nmt.train ...`) the processes train one model
data-parallel on the preset's batches, and rank 0 alone evaluates, writes and prints.

The library behind it: nmt.data (corpus, tokenizers, batches), nmt.training (model, schedules,
the training loop) and nmt.evaluation (BLEU, chrF, spike activity).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from common import distributed
from common.checkfiles import check_torch_file, json_status
from common.cliargs import OneLineParser
from common.datasets import DatasetError
from common.device import (
    DEVICES_HELP,
    PRECISION_HELP,
    PRECISIONS,
    check_precision,
    check_resumed_precision,
    resolve_device,
)
from common.runtime import configure_cpu
from nmt.data import check_corpus, load_data
from nmt.evaluation import evaluate
from nmt.presets import PRESETS, TranslatorConfig
from nmt.training import CHECKPOINT, build_model, train, write_json

__all__ = ["main"]

log = logging.getLogger("nmt.train")

EVAL_SPLITS = ("valid", "test", "wmt")
# What a --set value of each field type must look like.
KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a word",
         "tuple[float, float]": "two numbers, e.g. 0.9,0.99"}  # fmt: skip


def _coerce(key: str, field_type: Any, text: str) -> Any:
    """`text` as a value of the field's type; ValueError naming the key and the type."""
    t = str(field_type)
    if t == "str":
        return text
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if t == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if t == "tuple[float, float]" and isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",")]
        except ValueError:
            pass
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "bool": isinstance(value, bool),
        "int": number and float(value).is_integer(),
        "float": number,
        "tuple[float, float]": isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
    }.get(t, True)
    if not ok:
        raise ValueError(f"--set {key}={text}: {key} takes {KINDS.get(t, t)}; got {text!r}")
    if t == "int":
        return int(value)
    if t == "float":
        return float(value)
    return tuple(float(v) for v in value) if t.startswith("tuple") else value


def _parse_set(items: Sequence[str]) -> dict:
    """--set KEY=VALUE items as TranslatorConfig overrides; ValueError naming the bad item."""
    types = {f.name: f.type for f in fields(TranslatorConfig)}
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        if key not in types:
            near = difflib.get_close_matches(key, list(types), n=1)
            hint = (
                f"; did you mean {near[0]}?" if near else "; see TranslatorConfig in nmt/presets.py"
            )
            raise ValueError(f"--set {key}: no such setting{hint}")
        out[key] = _coerce(key, types[key], value)
    return out


def _eval_splits(text: str) -> list[str]:
    splits = [s for s in text.split(",") if s]
    bad = [s for s in splits if s not in EVAL_SPLITS]
    if bad or not splits:
        raise ValueError(
            f"--eval-splits takes a comma-separated list of {', '.join(EVAL_SPLITS)}; got {text!r}"
        )
    return splits


def _check_run_dir(run_dir: Path, resume: bool, precision: str = "fp32") -> None:
    """Refuse, before anything is written: a file where the folder should be, a run there
    without --resume (its checkpoint and metrics would be overwritten), a damaged checkpoint, or
    one trained in another precision."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {run_dir} is a file, not a folder")
    ckpt = run_dir / CHECKPOINT
    if not resume:
        if ckpt.exists() or json_status(run_dir / "metrics.json") == "finished":
            raise ValueError(
                f"{run_dir} already holds a run; pass --resume to continue it, or choose "
                "another --run-dir"
            )
        return
    if ckpt.exists():
        check_torch_file(ckpt, "delete it to train this run from the start")
        import torch  # memory-mapped: only the entries read are loaded

        stored = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
        check_resumed_precision(stored.get("precision"), precision, f"the run in {run_dir}")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m nmt.train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--preset", default="smoke", choices=sorted(PRESETS), help="the preset (default smoke)"
    )
    parser.add_argument(
        "--run-dir", default=None, help="run directory (default runs/nmt/<preset>-<kind>-s<seed>)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root (default $LSTMPACK_DATA, else the repository's data/)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir from its checkpoint"
    )
    parser.add_argument("--device", default="cpu", help=f"{DEVICES_HELP}; default cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field (TranslatorConfig in nmt/presets.py), e.g. lr=1e-3 "
        "epochs=2; values are checked against the field's type",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--eval-splits",
        default="valid,test,wmt",
        help=f"comma-separated splits to score after training, of {', '.join(EVAL_SPLITS)} "
        "(wmt only when the preset evaluates it; default all)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    world = distributed.World()
    try:
        world = distributed.launched()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        distributed.quiet_unless_main(world)
        overrides = _parse_set(args.set)
        try:
            config = PRESETS[args.preset].replace(**overrides)
        except (TypeError, ValueError) as e:  # the config's own checks: name the flag too
            raise ValueError(f"--set {' '.join(args.set)}: {e}") from None
        splits = _eval_splits(args.eval_splits)
        device = resolve_device(
            args.device, local_rank=world.local_rank if world.parallel else None
        )
        check_precision(args.precision, device)
        run_dir = Path(args.run_dir or f"runs/nmt/{config.preset}-{config.kind}-s{config.seed}")
        _check_run_dir(run_dir, args.resume, args.precision)
        folder = check_corpus(config, args.data_dir)
    except (ValueError, TypeError, DatasetError) as e:
        if world.main:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    log.info("data: %s", folder)
    # the preset's threads, else each torchrun process its share of the cores, else torch's own
    share = max(1, (os.cpu_count() or 1) // world.local_size) if world.parallel else None
    configure_cpu(config.threads or share)
    main = world.main
    try:
        distributed.start(world, device)
        t0 = time.perf_counter()
        data = load_data(config, args.data_dir)
        prep_s = time.perf_counter() - t0
        if main:
            print(f"data: {json.dumps(data.info)} ({prep_s:.1f} s)")
        model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "config.json", config.to_dict())
            write_json(run_dir / "metrics.json", {"status": "running", "error": None})
        tr = train(model, data, config, run_dir, resume=args.resume, device=device,
                   progress=not args.no_progress, precision=args.precision)  # fmt: skip
        if not main:  # rank 0 evaluates and writes the records; training needed every rank
            return 0
        t0 = time.perf_counter()
        ev = evaluate(model, data, config, device, splits=splits)
        ev_s = time.perf_counter() - t0
    except Exception as e:
        if main and run_dir.is_dir():
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            write_json(run_dir / "metrics.json", {"status": "failed", "error": msg})
        if not isinstance(e, ValueError):
            raise
        if main:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    finally:
        distributed.stop()
    metrics = {"status": "finished", "error": None, "data": data.info, "prep_time_s": prep_s,
               "eval_time_s": ev_s, **tr, **ev}  # fmt: skip
    metrics["wall_time_s"] = prep_s + tr["train_time_s"] + ev_s
    write_json(run_dir / "metrics.json", metrics)
    for name in ("valid", "test", "wmt"):
        if name in ev:
            r = ev[name]
            print(f"{name}: greedy {r['bleu_greedy_text']}")
            if "bleu_beam_text" in r:
                print(f"{name}: beam{config.beam} {r['bleu_beam_text']}")
            print(
                f"{name}: chrF greedy {r['chrf_greedy']:.2f} beam {r.get('chrf_beam', float('nan')):.2f}"
            )
    if "length_alpha" in ev:
        print(f"length penalty alpha {ev['length_alpha']} (valid beam BLEU by alpha: "
              f"{json.dumps(ev['length_alpha_valid_bleu'])})")  # fmt: skip
    print(f"spike rates: {json.dumps(ev['spike_rates'])}")
    print(f"MACs/token {ev['macs_per_token']:.4g}  ACs/token {ev['acs_per_token']:.4g}")
    print(f"train time {tr['train_time_s']:.1f} s, {tr['steps']} steps, run dir {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
