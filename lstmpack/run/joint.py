"""Training a model under the passes, for both recipes: the posthoc fine-tune of the compressed
dense copy, and the joint stage, which trains a fresh model under the pipeline on the dense
preset's own schedule (Kung, McDanel and Zhang, ASPLOS'19: prune + combine events over the first
half of training, regrouping at every event, an L1 penalty until the last one).

Either may add distillation from the dense model (`--distill`) and the L1 penalty (`--l1`). Both
record every event's figures (nonzeros, density, array columns, packing efficiency) in their
checkpoints, TensorBoard (train/ of the run, under events/, beside the trainer's train/loss,
train/lr and valid/ scalars) and the run's metrics.json (train.events), each with the validation
that followed it (lm validates at every slice end).

The family trains on the run's device and precision (Finetune.runtime); under torchrun every rank
trains (the family's trainer is data-parallel), EventLog.on_step returns whether an event fired
so that the trainer broadcasts rank 0's masks and groups, and only rank 0 keeps TensorBoard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common import distributed
from common.distill import Distill
from common.spec import Finetune
from compress.pipeline import Pipeline
from lstmpack.run.config import Context

log = logging.getLogger(__name__)

EVENT_FIGURES = ("nonzeros", "density", "array_columns", "packing_efficiency")


class RunWriter:
    """The fine-tune's TensorBoard writer (train/ of the run), opened at its first scalar, so that
    a family's fine-tune can first say where it starts (`resumed_at(step)`, 0 for a fresh start):
    TensorBoard then hides what a killed process logged from the next step on, which this process
    logs again. A family that never calls it purges nothing here (nmt's trainer purges the folder
    with its own writer)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._purge: int | None = None
        self._writer: Any = None

    def resumed_at(self, step: int) -> None:
        self._purge = step + 1

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=self._purge)
        self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class EventLog:
    """The pipeline's state for the trainer's checkpoints, plus one record per event: a resumed
    run continues with the records of the events before its checkpoint and repeats the others."""

    def __init__(self, pipe: Pipeline, writer: Any = None) -> None:
        self.pipe, self.writer = pipe, writer
        self.records: list[dict[str, Any]] = []

    def on_step(self, step: int) -> bool:
        fired = self.pipe.on_step(step)
        if fired:
            s = self.pipe.summary()
            rec = {"event": self.pipe.events_done, "step": step + 1, "nonzeros": s["nonzero"],
                   "density": s["density"], "array_columns": s.get("array_columns"),
                   "packing_efficiency": s.get("packing_efficiency")}  # fmt: skip
            self.records.append(rec)
            if self.writer is not None:
                for key in EVENT_FIGURES:
                    if rec[key] is not None:
                        self.writer.add_scalar(f"events/{key}", rec[key], step + 1)
        return fired

    def state_dict(self) -> dict[str, Any]:
        return {**self.pipe.state_dict(), "events": [dict(r) for r in self.records]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pipe.load_state_dict(state)
        self.records = [dict(r) for r in state.get("events", [])]


def with_validation(records: list[dict[str, Any]], valid: list[dict[str, Any]]) -> list[dict]:
    """Each event record with the first validation at or after its step (the slice end that
    followed it): its figures prefixed valid_ (lm: valid_bpc or valid_ppl; nmt: valid_loss) and
    valid_step; no valid_ figures when no validation followed."""
    out = []
    for r in records:
        after = next((v for v in valid if v["step"] >= r["step"]), None)
        figures = (
            {} if after is None else {f"valid_{k}": v for k, v in after.items() if k != "epoch"}
        )
        out.append({**r, **figures})
    return out


def l1_penalty(pipe: Pipeline, coef: float) -> Callable[[], torch.Tensor | None]:
    """coef * sum |masked targeted weights| until the pipeline's last event, then nothing (the
    published train.py sets its l1 penalty to 0 at the last prune epoch)."""

    def penalty() -> torch.Tensor | None:
        return coef * pipe.l1_penalty() if pipe.events_done < pipe.n_events else None

    return penalty


def train_under_pipeline(ctx: Context, model, pipe: Pipeline, dense_model) -> dict[str, Any]:
    """Train `model` (carrying the passes of `pipe`) as ctx.run's recipe says; returns the
    family's training record plus the recipe's own figures."""
    run, spec = ctx.run, ctx.spec
    distill = None if run.distill is None else Distill(dense_model, *run.distill)
    penalty = l1_penalty(pipe, run.l1) if run.l1 else None
    train_dir = ctx.run_dir / "train"
    writer = None
    if distributed.is_main():
        train_dir.mkdir(parents=True, exist_ok=True)
        writer = RunWriter(train_dir)
    events = EventLog(pipe, writer)
    shared = {"state": events, "on_step": events.on_step, "writer": writer,
              "epochs": run.finetune_epochs, "resume": ctx.args.resume,
              "lr_scale": run.lr_scale, "distill": distill, "penalty": penalty,
              "runtime": ctx.runtime}  # fmt: skip
    if run.recipe == "posthoc":
        ft = Finetune(max_steps=run.finetune_steps, lr_rewind=run.lr_rewind,
                      lr_decay=run.finetune_schedule, **shared)  # fmt: skip
    else:
        ft = Finetune(schedule="dense", **shared)
    try:
        info = spec.finetune(model, ctx.data, ctx.cfg, train_dir, ft)
    finally:
        if writer is not None:
            writer.close()
    info["events"] = with_validation(events.records, info.get("valid", []))
    return info
