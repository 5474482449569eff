"""Data parallelism on the CPU: 2 processes x 1 thread (torchrun, gloo) against 1 process x 2
threads, training the ptbc cpu preset's AWD-LSTM (global batch 64) with lm.trainer's Trainer.

Both train the same model on the same global batch for --steps optimizer steps (on made data of
the preset's vocabulary: a step's cost does not depend on the text), and report the median time
of a step after --warmup steps; under DDP each process takes 32 columns of the batch and the
gradients are all-reduced over gloo. The ratio is DDP's step time over the threaded one's (below
1: DDP is faster). Run it on a quiet machine: the two configurations run one after the other.

    python -m bench.ddp_cpu [--steps 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.lm_step import VOCAB
from common import distributed
from common.runtime import configure_cpu
from lm.data import Corpus
from lm.model import build_model
from lm.presets import CPU
from lm.trainer import Trainer

MODEL = "ptbc"


def made_corpus(steps: int, seed: int = 0) -> Corpus:
    """Random tokens of the model's vocabulary, enough for `steps` windows of the batch."""
    cfg = CPU[MODEL]
    g = torch.Generator().manual_seed(seed)
    n = cfg.batch_size * (cfg.bptt + 20) * (steps + 2)
    vocab = VOCAB[MODEL]
    draw = lambda k: torch.randint(0, vocab, (k,), generator=g)  # noqa: E731
    return Corpus(draw(n), draw(cfg.bptt * 20 + 1), draw(cfg.bptt * 20 + 1),
                  tuple(str(i) for i in range(vocab)))  # fmt: skip


def step_times(steps: int) -> list[float]:
    """Seconds of each optimizer step of one epoch of `steps` steps (no validation)."""
    cfg = CPU[MODEL].replace(max_steps_per_epoch=steps, epochs=1)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, VOCAB[MODEL])
    stamps: list[float] = []
    trainer = Trainer(model, made_corpus(steps), cfg,
                      step_callback=lambda tr: stamps.append(time.perf_counter()))  # fmt: skip
    start = time.perf_counter()
    trainer.train_epoch()
    return [b - a for a, b in zip([start, *stamps[:-1]], stamps)]


def _median(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:] if len(times) > warmup else times)


def worker(steps: int, out: str) -> None:
    """One process of the DDP configuration (under torchrun): 1 thread; rank 0 writes."""
    world = distributed.launched()
    configure_cpu(1)
    distributed.start(world, "cpu")
    try:
        times = step_times(steps)
        if world.main:
            Path(out).write_text(json.dumps({"times": times, "processes": world.size}))
    finally:
        distributed.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # torchrun's processes
    args = p.parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.steps, args.worker)
        return 0
    cfg = CPU[MODEL]
    print(f"{MODEL} cpu preset (E{cfg.emsize} H{cfg.nhid} B{cfg.batch_size} T{cfg.bptt}), "
          f"{args.steps} steps, median after {args.warmup}\n")  # fmt: skip
    configure_cpu(2)
    threaded = _median(step_times(args.steps), args.warmup)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "2", "-m", "bench.ddp_cpu", "--steps", str(args.steps), "--worker", str(out)]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
            return 1
        ddp = _median(json.loads(out.read_text())["times"], args.warmup)
    tokens = cfg.batch_size * cfg.bptt
    print("| configuration | median step | tokens/s | ratio to 1 x 2 threads |")
    print("|---|---|---|---|")
    print(f"| 1 process x 2 threads | {threaded * 1e3:.0f} ms | {tokens / threaded:.0f} | 1.000 |")
    print(f"| 2 processes x 1 thread (DDP, gloo) | {ddp * 1e3:.0f} ms | {tokens / ddp:.0f} | "
          f"{ddp / threaded:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
