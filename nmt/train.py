"""Train and evaluate the spiking translator: data preparation, the training loop, BLEU.

`python -m nmt.train --preset cpu [--run-dir D] [--data-dir D] [--resume] [--set key=value]`
trains, evaluates and writes config.json / metrics.json / log.txt / TensorBoard events /
checkpoint.pt / tokenizers to the run directory; an interrupted run resumes from its last
checkpoint with `--resume` and ends with the same weights as an uninterrupted one.

The library behind it: nmt.data (corpus, tokenizers, batches), nmt.training (model, schedules,
the training loop) and nmt.evaluation (BLEU, chrF, spike activity).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common.runtime import configure_cpu
from nmt.data import load_data
from nmt.evaluation import evaluate
from nmt.presets import PRESETS
from nmt.training import build_model, train, write_json

__all__ = ["main"]


def _parse_set(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nmt.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smoke", choices=sorted(PRESETS))
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--eval-splits", default="valid,test,wmt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    configure_cpu()
    run_dir = None
    try:
        config = PRESETS[args.preset].replace(**_parse_set(args.set))
        run_dir = Path(args.run_dir or f"runs/nmt/{config.preset}-{config.kind}-s{config.seed}")
        t0 = time.perf_counter()
        data = load_data(config, args.data_dir)
        prep_s = time.perf_counter() - t0
        print(f"data: {json.dumps(data.info)} ({prep_s:.1f} s)")
        model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config.to_dict())
        write_json(run_dir / "metrics.json", {"status": "running", "error": None})
        tr = train(model, data, config, run_dir, resume=args.resume, device=args.device,
                   progress=not args.no_progress)  # fmt: skip
        t0 = time.perf_counter()
        ev = evaluate(model, data, config, args.device, splits=args.eval_splits.split(","))
        ev_s = time.perf_counter() - t0
    except Exception as e:
        if run_dir is not None and run_dir.is_dir():
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            write_json(run_dir / "metrics.json", {"status": "failed", "error": msg})
        if not isinstance(e, ValueError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
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
