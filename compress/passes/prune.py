"""Gradual magnitude pruning (Zhu and Gupta) on weight targets, and the selections every mask
pass shares: a score per weight (|w| by default, see `Scorer`) and a threshold per matrix, per
gate block or per row (`--balance`)."""

from __future__ import annotations

from collections.abc import Callable

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


# (target, weight) -> a nonnegative score per weight; the selections keep the highest scores.
Scorer = Callable[[WeightTarget, torch.Tensor], torch.Tensor]


def magnitude(t: WeightTarget, w: torch.Tensor) -> torch.Tensor:
    """The default score: |w|."""
    return w.abs()


@torch.no_grad()
def row_keep(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Every row drops its round(sparsity * cols) smallest scores (ties: lowest column first), so
    every row keeps the same share and none is emptied while sparsity < 1 - 1/cols."""
    n_drop = int(round(sparsity * scores.shape[1]))
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if n_drop > 0:
        order = torch.sort(scores, dim=1, stable=True).indices[:, :n_drop]
        keep.scatter_(1, order, False)
    return keep


@torch.no_grad()
def balanced_keep(
    scores: torch.Tensor, sparsity: float, balance: str, row_blocks: tuple[int, ...]
) -> torch.Tensor:
    """magnitude_keep with one threshold per matrix ("none"), per row block ("gate": an LSTM's
    four gate blocks; one block for other targets) or per row ("row")."""
    if balance == "row":
        return row_keep(scores, sparsity)
    if balance == "gate":
        keep = torch.empty(scores.shape, dtype=torch.bool, device=scores.device)
        for lo, hi in zip(row_blocks[:-1], row_blocks[1:]):
            keep[lo:hi] = magnitude_keep(scores[lo:hi], sparsity)
        return keep
    return magnitude_keep(scores, sparsity)


def prune_target(
    t: WeightTarget, scores: torch.Tensor, sparsity: float, gate_aware: bool, balance: str = "none"
) -> torch.Tensor:
    # --gate-aware predates --balance and means --balance gate (for LSTM and GRU targets)
    if balance == "none" and gate_aware and t.kind in ("lstm", "gru"):
        balance = "gate"
    return balanced_keep(scores, sparsity, balance, t.row_blocks)


class PrunePass(MaskPass):
    """Registers a 0/1 mask on each target; at each event recomputes it from |W| in place."""

    name = LABEL
    config: PruneConfig
    scorer: Scorer = staticmethod(magnitude)  # --keep saliency sets a calibrated one

    def sparsity_at(self, frac: float) -> float:
        c = self.config
        return c.initial_sparsity + (c.final_sparsity - c.initial_sparsity) * frac

    @torch.no_grad()
    def update(self, targets: list[WeightTarget], frac: float) -> None:
        """Recompute every mask for schedule progress `frac` in [0, 1]."""
        s = self.sparsity_at(frac)
        scores = [self.scorer(t, t.raw().detach()) for t in targets]
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
            keep = prune_target(t, x, s, self.config.gate_aware, self.config.balance)
            find(t.module, t.param, Mask, LABEL).set_(keep)
