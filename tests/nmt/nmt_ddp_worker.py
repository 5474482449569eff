"""One rank of tests/nmt/test_ddp.py (and the reference run in one process).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/nmt/nmt_ddp_worker.py \\
        --out DIR [--config JSON]

prepares the made pairs of tests/nmt/test_nmt_train.py, trains the tiny translator with
nmt.training.train (data-parallel under torchrun, on gloo) and saves rank<R>.pt in --out: the
training record and the final state dict (rank 0 also writes TensorBoard's per-step losses).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from nmt.data import prepare_data
from nmt.presets import TranslatorConfig
from nmt.training import build_model, train

SUBJ = [("I", "我"), ("You", "你"), ("He", "他"), ("She", "她"), ("We", "我们"), ("They", "他们")]
VERB = [("like", "喜欢"), ("see", "看见"), ("want", "想要")]
OBJ = [("cats", "猫"), ("dogs", "狗"), ("books", "书"), ("tea", "茶"), ("apples", "苹果")]


def made_pairs() -> list[tuple[str, str]]:
    return [
        (f"{s} {v} {o}.", f"{sz}{vz}{oz}。") for s, sz in SUBJ for v, vz in VERB for o, oz in OBJ
    ]


def run(cfg: TranslatorConfig, run_dir: Path) -> dict[str, Any]:
    """Train `cfg` on the made pairs in `run_dir` (TensorBoard's train/loss at every step)."""
    data = prepare_data(cfg, made_pairs())
    model = build_model(cfg, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    result = train(model, data, cfg.replace(log_interval=1), run_dir, progress=False)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"result": result, "state": state}


def main() -> None:
    from common import distributed

    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--config", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    world = distributed.launched()
    distributed.start(world, "cpu")
    try:
        cfg = TranslatorConfig.from_dict(json.loads(args.config))
        record = run(cfg, Path(args.out) / "run")
        torch.save(record, Path(args.out) / f"rank{world.rank}.pt")
    finally:
        distributed.stop()


if __name__ == "__main__":
    main()
