"""Gradual magnitude pruning (Zhu and Gupta) on weight targets."""

from __future__ import annotations

import torch

from compress.config import PruneConfig
from compress.parametrize import Mask, MaskPass, find
from compress.targets import WeightTarget

LABEL = "prune"


@torch.no_grad()
def magnitude_keep(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A bool mask keeping all but the round(sparsity * n) smallest scores.

    Exactly that many entries are dropped; among equal scores the lowest flat index goes first,
    so the result is deterministic.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1]; got {sparsity}")
    flat = scores.reshape(-1)
    n_drop = int(round(sparsity * flat.numel()))
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    if n_drop > 0:
        order = torch.sort(flat, stable=True).indices
        keep[order[:n_drop]] = False
    return keep.reshape(scores.shape)


def prune_target(t: WeightTarget, scores: torch.Tensor, sparsity: float, gate_aware: bool):
    if gate_aware and t.kind == "lstm":
        keep = torch.empty_like(scores, dtype=torch.bool)
        b = t.row_blocks
        for lo, hi in zip(b[:-1], b[1:]):
            keep[lo:hi] = magnitude_keep(scores[lo:hi], sparsity)
        return keep
    return magnitude_keep(scores, sparsity)


class PrunePass(MaskPass):
    """Registers a 0/1 mask on each target; at each event recomputes it from |W| in place."""

    name = LABEL
    config: PruneConfig

    def sparsity_at(self, frac: float) -> float:
        c = self.config
        return c.initial_sparsity + (c.final_sparsity - c.initial_sparsity) * frac

    @torch.no_grad()
    def update(self, targets: list[WeightTarget], frac: float) -> None:
        """Recompute every mask for schedule progress `frac` in [0, 1]."""
        s = self.sparsity_at(frac)
        scores = [t.raw().detach().abs() for t in targets]
        if self.config.scope == "global" and targets:
            flat = torch.cat([x.reshape(-1) for x in scores])
            keep_all = magnitude_keep(flat, s)
            offset = 0
            for t, x in zip(targets, scores):
                n = x.numel()
                find(t.module, t.param, Mask, LABEL).set_(keep_all[offset : offset + n].view_as(x))
                offset += n
            return
        for t, x in zip(targets, scores):
            find(t.module, t.param, Mask, LABEL).set_(prune_target(t, x, s, self.config.gate_aware))
