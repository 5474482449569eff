"""--reconstruct and --keep saliency: the calibrated methods, as hooks around a Pipeline's events.

Reconstruction: once an event's masks are set, each row w of a target keeps the columns S its
masks leave, and the kept weights are re-solved by damped least squares on the calibration inputs
X of that target, min ||X_S^T v - X^T w||^2 + lambda ||v||^2, that is

    v = (H_SS + lambda I)^-1 (H w)_S,   H = X X^T,   lambda = damp * mean(diag H),

with w the row as it was before this event's masking. All rows of a target (an LSTM's four gate
blocks alike) share one H. Targets are solved in model order, each on inputs collected with the
targets below it already re-solved, so a layer makes up for what the layers below lost. An LSTM's
own h_{t-1} in its X comes from the layer run with w itself: the state the re-solved layer is
to reproduce. A row whose solution would raise its calibration error (v - w)^T H (v - w) above
that of masking alone keeps the masked weights, so the error never grows. The re-solved values
go into the raw weights (entries the masks hide keep their raw values); quantization then acts
on them.

Saliency: before the passes choose an event's masks, H of every target is collected from the
model as it is then, and the prune and combine passes score weights by `Saliency` instead of |w|.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.calibration import DAMP, Saliency, Source, collect_grams, damping
from compress.parametrize import Mask
from compress.pipeline import Pipeline, mask_of
from compress.targets import WeightTarget

# Elements of the stacked H_SS blocks one batched solve may hold (8 bytes each: 128 MiB).
SOLVE_ELEMENTS = 1 << 24


def calibration_error(v: torch.Tensor, w: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Per row, ||v X - w X||^2 = (v - w)^T H (v - w)."""
    d = v - w
    return ((d @ H) * d).sum(dim=1)


@torch.no_grad()
def solve_rows(
    w: torch.Tensor, keep: torch.Tensor, H: torch.Tensor, damp: float = DAMP
) -> torch.Tensor:
    """Each row's kept weights re-solved (float64, zero outside `keep`); see the module docstring.

    Rows with the same number of kept weights are solved together, in batches of bounded size.
    """
    w = w.to(torch.float64)
    keep = keep.bool()
    H = H.to(torch.float64)
    lam = damping(H, damp)
    hw = w @ H  # row r: (H w_r)^T, H being symmetric
    out = torch.zeros_like(w)
    counts = keep.sum(dim=1)
    for k in counts.unique().tolist():
        if k == 0:
            continue
        rows = (counts == k).nonzero().squeeze(1)
        eye = lam * torch.eye(k, dtype=w.dtype, device=w.device)
        step = max(1, SOLVE_ELEMENTS // (k * k))
        for i in range(0, len(rows), step):
            r = rows[i : i + step]
            S = keep[r].nonzero()[:, 1].reshape(len(r), k)  # ascending columns per row
            A = H[S[:, :, None], S[:, None, :]] + eye
            out[r[:, None], S] = torch.linalg.solve(A, hw[r[:, None], S])
    masked = w * keep
    worse = calibration_error(out, w, H) > calibration_error(masked, w, H)
    out[worse] = masked[worse]
    return out


@contextlib.contextmanager
def _weight_as(t: WeightTarget, w: torch.Tensor):
    """Run the target with effective weight `w` (masks opened, raw set), then restore both."""
    masks = _mask_modules(t)
    saved = [m.mask.clone() for m in masks]
    raw = t.raw()
    saved_raw = raw.detach().clone()
    try:
        with torch.no_grad():
            for m in masks:
                m.mask.fill_(1.0)
            raw.copy_(w.to(raw.dtype))
        yield
    finally:
        with torch.no_grad():
            for m, s in zip(masks, saved):
                m.mask.copy_(s)
            raw.copy_(saved_raw)


def _mask_modules(t: WeightTarget) -> list[Mask]:
    if not parametrize.is_parametrized(t.module, t.param):
        return []
    return [p for p in getattr(t.module.parametrizations, t.param) if isinstance(p, Mask)]


@dataclass
class CalibratedEvents:
    """The before/after-event hooks of --keep saliency and --reconstruct, and their cost."""

    model: nn.Module
    source: Source
    saliency: Saliency | None = None
    reconstruct: bool = False
    damp: float = DAMP
    calibration_s: float = 0.0
    solve_s: float = 0.0
    events: int = 0
    # per target, at the last event: relative calibration error of masking alone and re-solved
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    _before: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def attach(self, pipe: Pipeline) -> Pipeline:
        """Hang the hooks on `pipe` and give its mask passes the saliency scorer."""
        pipe.before_event, pipe.after_event = self.before_event, self.after_event
        if self.saliency is not None:
            for p in pipe.passes:
                if hasattr(p, "scorer"):
                    p.scorer = self.saliency
        return pipe

    def _grams(self, targets: list[WeightTarget]):
        t0 = time.perf_counter()
        grams = collect_grams(self.model, targets, self.source)
        self.calibration_s += time.perf_counter() - t0
        return grams

    @torch.no_grad()
    def before_event(self, pipe: Pipeline) -> None:
        if self.reconstruct:
            self._before = {t.name: (t.raw().detach() * mask_of(t)).clone() for t in pipe.targets}
        if self.saliency is not None:
            self.saliency.refresh(self._grams(pipe.targets))

    @torch.no_grad()
    def after_event(self, pipe: Pipeline) -> None:
        self.events += 1
        if not self.reconstruct:
            return
        for t in pipe.targets:  # model order: the targets below are re-solved first
            w = self._before[t.name]
            with _weight_as(t, w):
                H = self._grams([t])[t.name].H
            t0 = time.perf_counter()
            keep = mask_of(t) != 0
            new = solve_rows(w, keep, H, self.damp)
            raw = t.raw()
            raw.copy_(torch.where(keep, new.to(raw.dtype), raw))
            w64 = w.to(torch.float64)
            scale = max(float(calibration_error(torch.zeros_like(w64), w64, H).sum()), 1e-300)
            self.errors[t.name] = {
                "masked": float(calibration_error(w64 * keep, w64, H).sum()) / scale,
                "resolved": float(calibration_error(new, w64, H).sum()) / scale,
            }
            self.solve_s += time.perf_counter() - t0
        self._before = {}

    def record(self) -> dict[str, Any]:
        """The cost and effect, for metrics.json."""
        return {
            "keep": self.saliency.kind if self.saliency is not None else "magnitude",
            "reconstruct": self.reconstruct,
            "damp": self.damp,
            "events": self.events,
            "calibration_s": self.calibration_s,
            "solve_s": self.solve_s,
            "relative_calibration_error": self.errors,
        }
