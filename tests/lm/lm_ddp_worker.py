"""One rank of tests/lm/test_ddp.py (and the reference run in one process).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/lm/lm_ddp_worker.py \\
        --corpus DIR --config JSON --out DIR [--compress] [--skew]

trains the tiny AWD-LSTM of --config on the PTB-char style folder --corpus with lm.trainer's
Trainer (data-parallel under torchrun, on gloo) and saves rank<R>.pt in --out: the per-step
training losses, the per-epoch validation losses and the final state dict (masks included).
`--compress` hangs a column-combining pipeline on it whose one event fires at the third step;
`--skew` gives the ranks other than 0 another alpha, so that only a broadcast of rank 0's
masks can make every rank end with the same model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from lm.config import LMConfig
from lm.data import Corpus, load_text_folder
from lm.model import build_model
from lm.trainer import Trainer

EVENT_STEP = 2  # 0-based: after the third optimizer step


def train(
    cfg: LMConfig, corpus: Corpus, *, compress: bool = False, alpha: int = 2
) -> dict[str, Any]:
    """Train `cfg.epochs` epochs; the record each rank saves."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, corpus.vocab_size)
    pipe = None
    if compress:
        from compress.config import CombineConfig
        from compress.passes.combine import CombinePass
        from compress.pipeline import Pipeline
        from compress.schedule import Schedule

        one_shot = Schedule(kind="one-shot", n_events=1, start_step=EVENT_STEP, end_step=EVENT_STEP)
        pipe = Pipeline([CombinePass(CombineConfig(max_paths=alpha, gamma=1.0))], one_shot)
        pipe.prepare(model)
    losses: list[float] = []

    def step(tr: Trainer) -> bool:
        losses.append(tr.last_loss)
        return pipe.on_step(tr.step - 1) if pipe is not None else False

    trainer = Trainer(model, corpus, cfg, step_callback=step)
    valid = [trainer.run_epoch()["val_loss"] for _ in range(cfg.epochs)]
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"losses": losses, "valid": valid, "state": state, "batch": trainer.batch_size}


def main() -> None:
    from common import distributed

    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--compress", action="store_true")
    p.add_argument("--skew", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    world = distributed.launched()
    distributed.start(world, "cpu")
    try:
        cfg = LMConfig.from_dict(json.loads(args.config))
        alpha = 3 if args.skew and not world.main else 2
        record = train(cfg, load_text_folder(args.corpus), compress=args.compress, alpha=alpha)
        torch.save(record, Path(args.out) / f"rank{world.rank}.pt")
    finally:
        distributed.stop()


if __name__ == "__main__":
    main()
