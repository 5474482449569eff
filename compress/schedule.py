"""Pruning schedules: event index -> progress in [0, 1], and progress -> sparsity.

Cubic is Zhu and Gupta's (2017): s_k = s_f + (s_i - s_f) * (1 - k/n)^3 for events k = 1..n, so
pruning is fast early and gentle late. The last event always reaches the final sparsity exactly
(the published column-combining code computes its rates so that the last one is never applied).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULES = ("cubic", "linear", "one-shot")


def progress(kind: str, event: int, n_events: int) -> float:
    """Fraction of the way from the initial to the final sparsity after event `event` (1-based)."""
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {kind!r}")
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1; got {n_events}")
    if not 1 <= event <= n_events:
        raise ValueError(f"event must be in 1..{n_events}; got {event}")
    if kind == "one-shot" or event == n_events:
        return 1.0
    frac = event / n_events
    return frac if kind == "linear" else 1.0 - (1.0 - frac) ** 3


@dataclass(frozen=True)
class Schedule:
    """When prune events happen (optimizer steps) and what sparsity each one reaches."""

    kind: str = "cubic"
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.0
    n_events: int = 4
    start_step: int = 0
    end_step: int = 0  # the step of the last event; events are spread evenly from start to end

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.kind!r}")
        for name in ("initial_sparsity", "final_sparsity"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {v}")
        if self.n_events < 1:
            raise ValueError(f"n_events must be >= 1; got {self.n_events}")
        if self.end_step < self.start_step:
            raise ValueError(
                f"end_step ({self.end_step}) must be >= start_step ({self.start_step})"
            )

    def event_steps(self) -> list[int]:
        """The optimizer steps at which events 1..n fire (one-shot: a single event at start)."""
        n = 1 if self.kind == "one-shot" else self.n_events
        if n == 1:
            return [self.start_step]
        span = self.end_step - self.start_step
        return [self.start_step + round(span * k / (n - 1)) for k in range(n)]

    def sparsity_at_event(self, event: int) -> float:
        n = 1 if self.kind == "one-shot" else self.n_events
        p = progress(self.kind, event, n)
        return self.initial_sparsity + (self.final_sparsity - self.initial_sparsity) * p

    def event_at_step(self, step: int) -> int | None:
        """The 1-based event that fires at `step`, or None.

        When several events share a step (a span shorter than the event count), the last of them
        fires, so the final sparsity is still reached exactly.
        """
        hits = [k + 1 for k, s in enumerate(self.event_steps()) if s == step]
        return max(hits) if hits else None
