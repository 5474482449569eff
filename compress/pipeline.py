"""Pipeline(passes): prepare / on_step / finalize, the lifecycle of torch.ao's sparsifier.

`prepare(model)` finds the targets and lets each pass register its parametrization; the training
loop calls `on_step(step)` after every optimizer step, and at each scheduled event every pass
recomputes its masks from the current weights, in pass order (prune, then combine); between
events the masks hold and the weights retrain. `finalize()` returns a PackedModel (numpy only).

Masks are rebuilt from the raw weights at every event, as the published column-combining code
does, so a weight masked at one event may come back at a later one (its raw value is kept).
With `regrow=False` masks only shrink: each event first zeroes the raw weights the masks removed,
and every pass drops zeros first. `l1_penalty` is the L1 term on the masked weights that the
joint recipe adds to the loss until the last event.

`before_event` and `after_event` (callables taking the pipeline) run around each event's passes:
the calibrated methods hang there (--keep saliency refreshes its scores before the masks are
chosen, --reconstruct re-solves the kept weights once they are set; see compress.reconstruct).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.parametrize import Mask
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
        regrow: bool = True,
        before_event: Callable[[Pipeline], None] | None = None,
        after_event: Callable[[Pipeline], None] | None = None,
    ) -> None:
        self.regrow = regrow
        self.before_event = before_event
        self.after_event = after_event
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
        if not self.regrow:
            for t in self.targets:
                t.raw().mul_(mask_of(t))
        if self.before_event is not None:
            self.before_event(self)
        for p in self.passes:
            p.update(self.targets, frac)
        if self.after_event is not None:
            self.after_event(self)
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

    def l1_penalty(self) -> torch.Tensor:
        """sum |masked weight| over the targets, differentiable in the raw weights (a masked
        weight gets no gradient from it)."""
        return sum(((t.raw() * mask_of(t)).abs().sum() for t in self.targets), torch.zeros(()))

    @torch.no_grad()
    def summary(self) -> dict[str, float]:
        """Nonzeros of the effective weights; after an event that grouped every target, also
        the array columns (groups) and the packing efficiency nnz / (rows * groups)."""
        nnz = [int((t.weight() != 0).sum()) for t in self.targets]
        total = sum(t.rows * t.cols for t in self.targets)
        out: dict[str, float] = {
            "nonzero": sum(nnz), "total": total, "density": sum(nnz) / max(total, 1)
        }  # fmt: skip
        combine = self.pass_named("combine")
        groups = [combine.groups_of(t) for t in self.targets] if combine is not None else []
        if groups and all(g is not None for g in groups):
            cells = sum(t.rows * g.n_groups for t, g in zip(self.targets, groups))
            out["array_columns"] = sum(g.n_groups for g in groups)
            out["packing_efficiency"] = sum(nnz) / max(cells, 1)
        return out

    @torch.no_grad()
    def finalize(self, **meta):
        """The PackedModel of the current effective weights (groups from the combine pass)."""
        from compress.passes.finalize import pack_targets

        return pack_targets(self, **meta)


def mask_of(t: WeightTarget) -> torch.Tensor:
    """The product of every mask on the target's weight (ones where no pass masks it)."""
    keep = torch.ones((t.rows, t.cols), device=t.raw().device)
    if parametrize.is_parametrized(t.module, t.param):
        for p in getattr(t.module.parametrizations, t.param):
            if isinstance(p, Mask):
                keep = keep * p.mask
    return keep
