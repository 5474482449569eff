"""Column combining as a pass: prune, group with the kernel, keep one weight per (row, group).

At every event each target is first magnitude-pruned to frac * prune_factor * (1 - 1/alpha) (at
least as sparse as the masks before it), then its nonzero columns are grouped by
`group_columns_split` (for an LSTM, groups never mix input and recurrent columns), then in each
(row, group) only the weight of largest magnitude survives (ties: lowest column). The mask is
recomputed from the current weights at every event, in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import parametrize

from compress.config import CombineConfig
from compress.kernels.column_combine import group_columns_split
from compress.packing import combine
from compress.parametrize import Mask, find
from compress.passes.prune import LABEL as PRUNE_LABEL
from compress.passes.prune import magnitude_keep
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


class CombinePass:
    name = LABEL

    def __init__(self, config: CombineConfig) -> None:
        self.config = config
        self.groups: dict[str, Groups] = {}

    def prepare(self, targets: list[WeightTarget]) -> None:
        for t in targets:
            if find(t.module, t.param, Mask, LABEL) is None:
                parametrize.register_parametrization(
                    t.module, t.param, Mask((t.rows, t.cols), name=LABEL)
                )

    def _pre_weight(self, t: WeightTarget) -> torch.Tensor:
        w = t.raw().detach()
        prune = find(t.module, t.param, Mask, PRUNE_LABEL)
        return w * prune.mask if prune is not None else w

    @torch.no_grad()
    def update(self, targets: list[WeightTarget], frac: float) -> None:
        c = self.config
        for t in targets:
            w = self._pre_weight(t)
            zero_frac = float((w == 0).sum()) / w.numel()
            keep = magnitude_keep(w.abs(), max(frac * c.combine_sparsity, zero_frac)) & (w != 0)
            mag = (w.abs() * keep).float().cpu().numpy()
            ptr, cols, per_split = group_columns_split(
                mag > 0,
                t.col_splits,
                c.max_paths,
                c.gamma,
                section_size=c.section_size,
                strategy=c.strategy,
            )
            cols = sorted_groups(ptr, cols)
            kept, _, _, _ = combine(mag, ptr, cols)
            find(t.module, t.param, Mask, LABEL).set_(torch.from_numpy(kept > 0))
            self.groups[t.name] = Groups(ptr, cols, per_split)

    def state_dict(self) -> dict:
        """The groups of the last event: saved in checkpoints, since regrouping the combined
        masks after a resume could give other (equally valid) groups and other metrics."""
        return {
            name: {
                "group_ptr": torch.from_numpy(g.group_ptr),
                "group_cols": torch.from_numpy(g.group_cols),
                "groups_per_split": torch.from_numpy(g.groups_per_split),
            }
            for name, g in self.groups.items()
        }

    def load_state_dict(self, state: dict) -> None:
        self.groups = {
            name: Groups(*(np.asarray(d[k]).astype(np.int64) for k in Groups.__dataclass_fields__))
            for name, d in state.items()
        }
