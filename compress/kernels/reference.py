"""The published column-combining greedy algorithm, in plain Python + numpy.

Kung, McDanel and Zhang, "Packing Sparse Convolutional Neural Networks for Efficient Systolic
Array Implementations: Column Combining Under Joint Optimization" (ASPLOS'19), Algorithm 1 as
released with the paper. This module is meant to be read beside the paper, and it is the twin the
Numba kernel (`compress.kernels.column_combine`) is tested against; it is slow on purpose only in
the sense that it follows the published structure: the whole pairwise table is rebuilt after every
merge.

Per section of `section_size` columns (256 by default, as in the published code):

1. one group per nonzero column, in column order (a list);
2. a merge a+b is feasible when |a| + |b| <= alpha and conflicts(a+b) <= floor(gamma * rows),
   where conflicts(g) = sum_r max(0, nnz_r(g) - 1) are the weights combining g prunes;
3. if no pair is feasible, stop; otherwise b = the first group in list order with a feasible
   partner, a = its feasible partner with the fewest rows where both a and b are empty (ties:
   earliest in list order); b absorbs a's columns and keeps its place; a leaves the list.

Output: groups of all sections, section by section, each in list order (which is ascending order of
the group's smallest column), columns ascending inside a group, as int64 CSR arrays.

Points where the released code (BradMcDanel/column-combine, packing.py) leaves room, and how they
are settled here. This module exists to reproduce the published algorithm, so each is settled to
give the released code's grouping wherever that code fixes one:
- "both empty" is counted there over rows that have a nonzero anywhere, here over all rows: the two
  differ by the same constant for every pair, so the chosen partner is the same.
- ties between partners: there torch's min over a CUDA tensor, here the earliest in list order.
- budget: there int(gamma * output_channels), here floor(gamma * rows): equal for gamma >= 0.
- columns inside a group: there in merge order (b's, then a's), here sorted ascending (the packed
  format requires it); group order is the list order in both.
- stop rule "no pair feasible" and sections (all-zero columns dropped, list restarted per section,
  budget still over all rows) are as there.
"""

from __future__ import annotations

import numpy as np

from compress.kernels.column_combine import (
    REFERENCE_SECTION_SIZE,
    check_arguments,
    conflict_budget,
)


def _pairwise_tables(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conflicts of every merge a+b, and rows where both a and b are empty.

    counts[r, g] = nonzeros of row r among group g's columns. With occ = counts > 0:
    conflicts(a+b) = conflicts(a) + conflicts(b) + |occ(a) & occ(b)|, and
    both_empty(a, b) = rows - |occ(a)| - |occ(b)| + |occ(a) & occ(b)|.
    """
    occ = (counts > 0).astype(np.float64)
    both = occ.T @ occ  # rows occupied in both groups, exact in float64
    conflicts = counts.sum(axis=0) - occ.sum(axis=0)
    pair_conflicts = conflicts[:, None] + conflicts[None, :] + both
    occupied = occ.sum(axis=0)
    both_empty = counts.shape[0] - occupied[:, None] - occupied[None, :] + both
    return pair_conflicts, both_empty


def _combine_section(nonzero: np.ndarray, first_col: int, max_paths: int, budget: int):
    columns = [first_col + c for c in range(nonzero.shape[1]) if nonzero[:, c].any()]
    groups = [[c] for c in columns]
    counts = nonzero[:, [c - first_col for c in columns]].astype(np.int64)
    while len(groups) > 1:
        sizes = np.array([len(g) for g in groups])
        pair_conflicts, both_empty = _pairwise_tables(counts)
        feasible = (sizes[:, None] + sizes[None, :] <= max_paths) & (pair_conflicts <= budget)
        np.fill_diagonal(feasible, False)
        has_partner = feasible.any(axis=1)
        if not has_partner.any():
            break
        b = int(np.argmax(has_partner))  # first group in list order with a feasible partner
        score = np.where(feasible[b], both_empty[b], np.inf)
        a = int(np.argmin(score))  # fewest both-empty rows; argmin keeps the earliest on ties
        groups[b].extend(groups[a])
        counts[:, b] += counts[:, a]
        del groups[a]
        counts = np.delete(counts, a, axis=1)
    return [sorted(g) for g in groups]


def group_columns(
    nonzero: np.ndarray,
    max_paths: int,
    gamma: float,
    *,
    section_size: int | None = None,
    strategy: str = "reference",
) -> tuple[np.ndarray, np.ndarray]:
    """The published algorithm; same signature as the Numba kernel (only "reference" exists here).

    `section_size=None` means the published default of 256 columns.
    """
    check_arguments(nonzero, max_paths, gamma, section_size, strategy)
    if strategy != "reference":
        raise ValueError(
            f"strategy must be 'reference' in the reference twin, got {strategy!r} "
            "(the other strategies live in compress.kernels.column_combine)"
        )
    rows, cols = nonzero.shape
    budget = conflict_budget(gamma, rows)
    section = REFERENCE_SECTION_SIZE if section_size is None else section_size
    groups: list[list[int]] = []
    for start in range(0, cols, section):
        groups.extend(
            _combine_section(nonzero[:, start : start + section], start, max_paths, budget)
        )
    group_ptr = np.zeros(len(groups) + 1, dtype=np.int64)
    group_ptr[1:] = np.cumsum([len(g) for g in groups])
    group_cols = np.array([c for g in groups for c in g], dtype=np.int64)
    return group_ptr, group_cols
