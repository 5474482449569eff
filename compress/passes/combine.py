"""Column combining as a pass: prune, group with the kernel, keep one weight per (row, group).

At every event each target is first pruned to frac * prune_factor * (1 - 1/alpha) (at least as
sparse as the masks before it; one threshold per matrix, gate block or row: `--balance`), then its
nonzero columns are grouped by `group_columns_split` (for an LSTM, groups never mix input and
recurrent columns), then in each (row, group) only the weight of highest score survives (ties:
lowest column). The score is |w|, or with `--keep saliency` / `--keep activation` a score on
calibration inputs (compress.calibration), which the grouping then also weighs its conflicts by. The mask is recomputed from the
current weights at every event, in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from compress.config import CombineConfig
from compress.kernels.column_combine import group_columns_split
from compress.parametrize import Mask, MaskPass, find
from compress.passes.combining import combine
from compress.passes.prune import LABEL as PRUNE_LABEL
from compress.passes.prune import Scorer, balanced_keep, magnitude, magnitude_keep
from compress.targets import WeightTarget

LABEL = "combine"


@dataclass(frozen=True)
class Groups:
    group_ptr: np.ndarray  # int64 [G + 1]
    group_cols: np.ndarray  # int64, ascending within each group
    groups_per_split: np.ndarray  # int64 [len(col_splits) - 1]

    @property
    def n_groups(self) -> int:
        return len(self.group_ptr) - 1


def sorted_groups(group_ptr: np.ndarray, group_cols: np.ndarray) -> np.ndarray:
    """group_cols with each group's columns in ascending order (the tie rule needs it)."""
    gid = np.repeat(np.arange(len(group_ptr) - 1), np.diff(group_ptr))
    return group_cols[np.lexsort((group_cols, gid))]


class CombineMask(Mask):
    """The combine mask plus the grouping it came from, as a fixed-shape buffer.

    `col_group[c]` is the group of column c (-1: in none). Keeping it in the model means every
    trainer's checkpoint carries the groups: regrouping the combined masks after a resume could
    give other, equally valid groups and so other figures.
    """

    def __init__(self, shape: tuple[int, int], *, name: str = LABEL) -> None:
        super().__init__(shape, name=name)
        self.register_buffer("col_group", torch.full((shape[1],), -1, dtype=torch.int64))


def groups_from_columns(col_group: np.ndarray, col_splits: tuple[int, ...]) -> Groups:
    cols = np.flatnonzero(col_group >= 0)
    gid = col_group[cols]
    order = np.lexsort((cols, gid))
    cols, gid = cols[order], gid[order]
    n = int(gid.max()) + 1 if len(gid) else 0
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(gid, minlength=n), out=ptr[1:])
    first = cols[ptr[:-1]]
    per_split = np.histogram(first, bins=np.asarray(col_splits))[0].astype(np.int64)
    return Groups(ptr, cols.astype(np.int64), per_split)


class CombinePass(MaskPass):
    name = LABEL
    mask_type = CombineMask
    config: CombineConfig
    scorer: Scorer = staticmethod(magnitude)  # --keep saliency sets a calibrated one

    def groups_of(self, t: WeightTarget) -> Groups | None:
        """The groups of the last event (None before any event)."""
        m = find(t.module, t.param, CombineMask, LABEL)
        if m is None or not bool((m.col_group >= 0).any()):
            return None
        return groups_from_columns(m.col_group.cpu().numpy(), t.col_splits)

    def _pre_weight(self, t: WeightTarget) -> torch.Tensor:
        w = t.raw().detach()
        prune = find(t.module, t.param, Mask, PRUNE_LABEL)
        return w * prune.mask if prune is not None else w

    @torch.no_grad()
    def update(self, targets: list[WeightTarget], frac: float) -> None:
        c = self.config
        for t in targets:
            w = self._pre_weight(t)
            score = self.scorer(t, w)
            if c.balance == "none":
                zero_frac = float((w == 0).sum()) / w.numel()
                keep = magnitude_keep(score, max(frac * c.combine_sparsity, zero_frac))
            else:
                keep = balanced_keep(score, frac * c.combine_sparsity, c.balance, t.row_blocks)
            keep &= w != 0
            # the score of every weight still in play: the kernel's conflict weights (saliency)
            # and the keep-one rule's ranking per (row, group)
            mag = (score * keep).float().cpu().numpy()
            ptr, cols, _ = group_columns_split(
                mag > 0,
                t.col_splits,
                c.max_paths,
                c.gamma,
                section_size=c.section_size,
                strategy=c.strategy,
                weights=mag if c.keep != "magnitude" else None,
            )
            cols = sorted_groups(ptr, cols)
            kept, _, _, _ = combine(mag, ptr, cols)
            m = find(t.module, t.param, CombineMask, LABEL)
            m.set_(torch.from_numpy(kept > 0))
            col_group = np.full(t.cols, -1, np.int64)
            col_group[cols] = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
            m.col_group.copy_(torch.from_numpy(col_group))
