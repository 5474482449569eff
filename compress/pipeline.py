"""Pipeline(passes): prepare / on_step / finalize, the lifecycle of torch.ao's sparsifier.

`prepare(model)` finds the targets and lets each pass register its parametrization; the training
loop calls `on_step(step)` after every optimizer step, and at each scheduled event every pass
recomputes its masks from the current weights, in pass order (prune, then combine); between
events the masks hold and the weights retrain. `finalize()` returns a PackedModel (numpy only).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from compress.schedule import Schedule, progress
from compress.targets import WeightTarget, find_targets

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        passes: list,
        schedule: Schedule,
        *,
        pattern: str | None = None,
        kinds: tuple[str, ...] | None = None,
    ) -> None:
        self.passes = list(passes)
        self.schedule = schedule
        self.pattern = pattern
        self.kinds = kinds
        self.targets: list[WeightTarget] = []
        self.events_done = 0

    def prepare(self, model: nn.Module) -> list[WeightTarget]:
        self.targets = find_targets(model, self.pattern, self.kinds)
        if not self.targets:
            raise ValueError("the model has no weight targets to compress")
        for p in self.passes:
            p.prepare(self.targets)
        return self.targets

    def pass_named(self, name: str):
        return next((p for p in self.passes if p.name == name), None)

    @property
    def n_events(self) -> int:
        return len(self.schedule.event_steps())

    @torch.no_grad()
    def apply_event(self, event: int) -> None:
        """Every pass recomputes its masks at `progress` of the schedule (1.0 at the last)."""
        frac = progress(self.schedule.kind, event, self.n_events)
        for p in self.passes:
            p.update(self.targets, frac)
        self.events_done = max(self.events_done, event)
        log.info("prune event %d/%d: %s", event, self.n_events, self.summary())

    def on_step(self, step: int) -> bool:
        """Call after optimizer step `step` (0-based). Returns True when an event fired."""
        event = self.schedule.event_at_step(step)
        if event is None:
            return False
        self.apply_event(event)
        return True

    def state_dict(self) -> dict:
        """Masks and groups are buffers in the model; only the event count lives here."""
        return {"events_done": self.events_done}

    def load_state_dict(self, state: dict) -> None:
        self.events_done = int(state["events_done"])

    @torch.no_grad()
    def summary(self) -> dict[str, float]:
        nnz = sum(int((t.weight() != 0).sum()) for t in self.targets)
        total = sum(t.rows * t.cols for t in self.targets)
        return {"nonzero": nnz, "total": total, "density": nnz / max(total, 1)}

    @torch.no_grad()
    def finalize(self, **meta):
        """The PackedModel of the current effective weights (groups from the combine pass)."""
        from compress.passes.finalize import pack_targets

        return pack_targets(self, **meta)
