"""Combining a matrix by given column groups (numpy only): the step the combine pass runs on
every prune event and `compress.packing.pack_layer` runs once to pack the final weights.

In each (row, group) cell the weight of largest magnitude is kept (ties: lowest column) and the
group's other weights in that row are zeroed; `control[r, g]` records the kept column, or -1 when
the row has no nonzero in the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.packed import PackingFigures, check_groups

# Elements per gathered block in combine / packed_matmul: bounds temporary memory (~64 MiB).
BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class CombineStats(PackingFigures):
    """Per-layer figures of one combining (packing efficiency, column reduction and tiles come
    from `PackingFigures`, as for a packed layer)."""

    rows: int
    cols: int
    groups: int
    nnz_before: int
    nnz: int
    pruned_conflicts: int
    pruned_l1: float


def _padded_groups(group_ptr: np.ndarray, group_cols: np.ndarray, pad: int) -> np.ndarray:
    """(groups, max size) column ids, padded with `pad` (a zero column appended to W)."""
    sizes = np.diff(group_ptr)
    width = int(sizes.max()) if len(sizes) else 1
    idx = np.full((len(sizes), width), pad, np.int64)
    within = np.arange(len(group_cols)) - np.repeat(group_ptr[:-1], sizes)
    idx[np.repeat(np.arange(len(sizes)), sizes), within] = group_cols
    return idx


def combine(
    W: np.ndarray, group_ptr: np.ndarray, group_cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CombineStats]:
    """Combine W's columns by the given groups.

    Returns (W_combined, control, values, stats): W_combined is W with every weight but the largest
    per (row, group) zeroed; control int32 (rows, groups) the kept column or -1; values (rows,
    groups) the kept weight (W's dtype), 0 where control is -1. A nonzero column of W outside
    every group is an error (it would be silently dropped).
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, got {W.ndim}-D")
    rows, cols = W.shape
    group_ptr = np.asarray(group_ptr, np.int64)
    group_cols = np.asarray(group_cols, np.int64)
    check_groups(group_ptr, group_cols, cols)
    covered = np.zeros(cols, bool)
    covered[group_cols] = True
    stray = np.flatnonzero(~covered & (W != 0).any(axis=0))
    if len(stray):
        raise ValueError(f"group_cols misses nonzero column(s) of W, e.g. column {stray[0]}")
    n_groups = len(group_ptr) - 1
    idx = _padded_groups(group_ptr, group_cols, cols)
    W_ext = np.concatenate([W, np.zeros((rows, 1), W.dtype)], axis=1)
    control = np.full((rows, n_groups), -1, np.int32)
    values = np.zeros((rows, n_groups), W.dtype)
    block = max(1, BLOCK_ELEMENTS // max(1, rows * idx.shape[1]))
    for g0 in range(0, n_groups, block):
        ids = idx[g0 : g0 + block]  # (gb, width)
        sub = W_ext[:, ids]  # (rows, gb, width)
        # argmax takes the first maximum: the lowest column, since groups are ascending
        pick = np.abs(sub).argmax(axis=2)
        kept = np.take_along_axis(sub, pick[:, :, None], axis=2)[:, :, 0]
        has = kept != 0
        control[:, g0 : g0 + block] = np.where(has, ids[np.arange(len(ids)), pick], -1)
        values[:, g0 : g0 + block] = np.where(has, kept, 0)
    W_combined = np.zeros_like(W)
    r, g = np.nonzero(control >= 0)
    W_combined[r, control[r, g]] = values[r, g]
    nnz_before = int(np.count_nonzero(W))
    nnz = int(len(r))
    stats = CombineStats(
        rows=rows,
        cols=cols,
        groups=n_groups,
        nnz_before=nnz_before,
        nnz=nnz,
        pruned_conflicts=nnz_before - nnz,
        pruned_l1=float(np.abs(W).sum(dtype=np.float64) - np.abs(W_combined).sum(dtype=np.float64)),
    )
    return W_combined, control, values, stats
