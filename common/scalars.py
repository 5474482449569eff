"""TensorBoard scalars of a training run, shared by the families' trainers."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RunScalars:
    """TensorBoard scalars: the run's own writer (`writer`, e.g. compress.run's fine-tune
    writer) or one of ours in run_dir; what a killed process logged after its checkpoint is
    hidden (purge_step) and logged again."""

    def __init__(self, run_dir: Path, writer: Any, step: int) -> None:
        self.own = writer is None
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir), purge_step=step + 1)
        elif hasattr(writer, "resumed_at"):
            writer.resumed_at(step)
        self.writer = writer

    def add(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.own:
            self.writer.close()
