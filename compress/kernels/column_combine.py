"""Column combining on a boolean nonzero pattern: Numba kernels over row-occupancy bitsets.

A group is a set of columns that share one systolic-array column (each cell multiplexes up to
`max_paths` = alpha inputs). A group may prune at most `floor(gamma * rows)` weights, counting
conflicts(g) = sum_r max(0, nnz_r(g) - 1). Because
conflicts(a + b) = conflicts(a) + conflicts(b) + |occ(a) & occ(b)|,
one occupancy bitset (uint64 words over rows) and one integer per group are all a merge needs:
no pairwise table is rebuilt after a merge (the published code rebuilds one on the GPU).

Strategies (all deterministic):

- "reference": exactly the published greedy (see `compress.kernels.reference`), 256-column
  sections unless `section_size` is given. It runs in list order with one cursor: a group that has
  no feasible partner never gets one later (groups only grow, and conflicts and sizes are monotone
  under merging), so the "first group with a feasible partner" is always at or after the cursor,
  and its partners are always after it.
- "min_conflict": no sections unless `section_size` is given; each group, in column order, absorbs
  the partner that adds the fewest pruned weights (ties: most rows covered, then earliest), looking
  at most `WINDOW` live groups ahead, until it is full or nothing fits. No dominance guarantee.
- "reference_window": the published partner rule, but with the same sliding window instead of
  fixed sections. No dominance guarantee.
- "greedy" (default): runs "reference" and the `GREEDY_CANDIDATES` (min_conflict with windows 256
  and 64, reference_window with window 64; whole matrix unless `section_size` is given) and
  returns the candidate with the fewest groups, then fewest pruned weights, among those that have
  no more groups AND no more pruned weights than "reference" (which is always such a candidate).
  So "greedy" never does worse than "reference" on either count, by construction.

The scans skip a candidate without its popcount when a bound settles it (overlap >= pop(a) +
pop(b) - rows; rows a adds to b <= pop(a)); this never changes the result, only the time.

Weighted (`weights`, e.g. the saliency of each weight): the budget still counts weights, but a
pruned weight costs its weight. The keep-one rule keeps the heaviest weight of each (row, group),
so a merge costs sum_r min(top_r(a), top_r(b)) (top_r: the heaviest weight of row r in the
group), one float per row and group instead of one bit. "min_conflict" then takes the partner of
least added cost, and "greedy" weighs its candidates by cost pruned; the "reference" partner rule
(most rows added) has no conflict term and is unchanged. Weights are divided by their maximum, so
with all weights equal every cost is an exact count and the groups are the unweighted ones.

Output order: groups sorted by their smallest column (for "reference" this is also the published
list order, section by section); columns ascending inside a group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from common.configs import check_max_paths
from compress.kernels.bitsets import column_bitsets, popcount, weighted_overlap

STRATEGIES = ("greedy", "reference", "min_conflict", "reference_window")
REFERENCE_SECTION_SIZE = 256
# How many live groups ahead of the current one the windowed strategies look at. 256 matches the
# reference section width, so their cost per merge matches the reference's.
WINDOW = 256
# (strategy, window) runs that "greedy" weighs against "reference". A long window finds
# lower-conflict partners on uniform patterns; a short one keeps merges local and often wins on
# skewed ones. ("reference_window", 256) is left out: it rarely won and costs as much as the
# reference itself, which would break the 50 ms budget on a 4000 x 2000 matrix.
GREEDY_CANDIDATES = (
    ("min_conflict", 256),
    ("min_conflict", 64),
    ("reference_window", 64),
)

_CRITERION_REFERENCE = 0
_CRITERION_MIN_CONFLICT = 1


def check_arguments(
    nonzero: object,
    max_paths: object,
    gamma: object,
    section_size: object,
    strategy: object,
    strategies: Sequence[str] = STRATEGIES,
) -> None:
    """Raise ValueError naming the first bad argument and its allowed range."""
    if not isinstance(nonzero, np.ndarray) or nonzero.dtype != np.bool_:
        kind = type(nonzero).__name__
        if isinstance(nonzero, np.ndarray):
            kind = f"ndarray of {nonzero.dtype}"
        raise ValueError(f"nonzero must be a 2-D numpy array of dtype bool, got {kind}")
    if nonzero.ndim != 2:
        raise ValueError(f"nonzero must be a 2-D numpy array of dtype bool, got {nonzero.ndim}-D")
    check_max_paths(max_paths)
    if isinstance(gamma, bool) or not isinstance(gamma, int | float | np.integer | np.floating):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
    if not math.isfinite(float(gamma)) or gamma < 0:
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma}")
    if section_size is not None:
        if isinstance(section_size, bool) or not isinstance(section_size, int | np.integer):
            raise ValueError(f"section_size must be None or an int >= 1, got {section_size!r}")
        if section_size < 1:
            raise ValueError(f"section_size must be None or an int >= 1, got {section_size}")
    if strategy not in strategies:
        raise ValueError(f"strategy must be one of {', '.join(strategies)}; got {strategy!r}")


def conflict_budget(gamma: float, rows: int) -> int:
    """floor(gamma * rows): the most weights one group may prune."""
    return math.floor(float(gamma) * rows)


@njit(cache=True, nogil=True)
def _combine_core(bits, rows, starts, ends, max_paths, budget, window, criterion, top, weighted):
    """Greedy merging over the nonzero columns [starts[s], ends[s]) of each section s.

    bits: (n, words) uint64 occupancy, one row per nonzero column, modified in place (slot g holds
    the union of group g, named after its first column); top: (n, rows) float64, the heaviest
    weight per row of each group, used and updated in place only when `weighted`. Returns (head,
    member_next, n_groups, pruned, cost): head[k] is the slot of the k-th group in list order,
    member_next chains its columns; cost is the pruned weight (= pruned when not weighted).
    """
    n, n_words = bits.shape
    size = np.ones(n, np.int64)
    conf = np.zeros(n, np.int64)
    wconf = np.zeros(n, np.float64)
    pop = np.zeros(n, np.int64)
    for g in range(n):
        p = 0
        for w in range(n_words):
            p += popcount(bits[g, w])
        pop[g] = p
    nxt = np.full(n, -1, np.int64)  # next live group in list order
    member_next = np.full(n, -1, np.int64)
    tail = np.arange(n)
    head = np.empty(n, np.int64)
    n_groups = 0
    pruned = 0
    cost = 0.0
    for s in range(len(starts)):
        lo = starts[s]
        hi = ends[s]
        if lo >= hi:
            continue
        for g in range(lo, hi - 1):
            nxt[g] = g + 1
        nxt[hi - 1] = -1
        b = lo
        while b != -1:
            best = -1
            best_prev = -1
            best_ov = 0
            best_wov = 0.0
            best_key = 0
            if size[b] < max_paths:
                prev = b
                a = nxt[b]
                seen = 0
                while a != -1 and seen < window:
                    seen += 1
                    if size[a] + size[b] <= max_paths:
                        slack = budget - conf[a] - conf[b]
                        # Bounds that decide a candidate without its popcount, never changing
                        # the outcome: ov >= pop(a) + pop(b) - rows (pigeonhole), and
                        # key = |a minus b| <= pop(a).
                        ov_low = pop[a] + pop[b] - rows
                        skip = slack < 0 or ov_low > slack
                        if best != -1 and not skip:
                            if criterion == _CRITERION_REFERENCE:
                                skip = pop[a] <= best_key
                            elif not weighted:  # a count bound says nothing of a weighted cost
                                skip = ov_low > best_ov or (
                                    ov_low >= best_ov and pop[a] - best_ov <= best_key
                                )
                        if not skip:
                            # No early exit inside: a branch-free loop vectorizes, and was
                            # faster than breaking once ov exceeds the slack.
                            ov = 0
                            for w in range(n_words):
                                ov += popcount(bits[a, w] & bits[b, w])
                            if ov <= slack:
                                # rows a adds to b; "fewest both-empty rows" = most of these
                                key = pop[a] - ov
                                wov = float(ov)
                                if weighted and ov > 0 and criterion != _CRITERION_REFERENCE:
                                    wov = weighted_overlap(bits, top, a, b)
                                better = False
                                if best == -1:
                                    better = True
                                elif criterion == _CRITERION_REFERENCE:
                                    better = key > best_key
                                else:
                                    better = wov < best_wov or (wov == best_wov and key > best_key)
                                if better:
                                    best = a
                                    best_prev = prev
                                    best_ov = ov
                                    best_wov = wov
                                    best_key = key
                                    if best_key == rows - pop[b] and (
                                        criterion == _CRITERION_REFERENCE or best_ov == 0
                                    ):
                                        break  # b's empty rows all filled: nothing can beat it
                    prev = a
                    a = nxt[a]
            if best == -1:
                # b can never get a partner again: close it and move the cursor on
                head[n_groups] = b
                n_groups += 1
                pruned += conf[b]
                cost += wconf[b]
                b = nxt[b]
                continue
            if weighted and criterion == _CRITERION_REFERENCE and best_ov > 0:
                best_wov = weighted_overlap(bits, top, best, b)  # the reference never ranked it
            for w in range(n_words):
                bits[b, w] |= bits[best, w]
            if weighted:
                for r in range(rows):
                    top[b, r] = max(top[b, r], top[best, r])
            conf[b] += conf[best] + best_ov
            wconf[b] += wconf[best] + best_wov
            pop[b] += pop[best] - best_ov
            size[b] += size[best]
            member_next[tail[b]] = best
            tail[b] = tail[best]
            nxt[best_prev] = nxt[best]
    return head[:n_groups], member_next, n_groups, pruned, cost


@njit(cache=True, nogil=True)
def _to_csr(head, member_next, col_ids):
    """CSR arrays, groups ordered by first column, columns ascending inside a group."""
    n_groups = len(head)
    firsts = np.empty(n_groups, np.int64)
    for k in range(n_groups):
        firsts[k] = col_ids[head[k]]  # a group's slot is its earliest column
    order = np.argsort(firsts, kind="mergesort")
    group_ptr = np.zeros(n_groups + 1, np.int64)
    group_cols = np.empty(len(col_ids), np.int64)
    pos = 0
    for k in range(n_groups):
        start = pos
        m = head[order[k]]
        while m != -1:
            group_cols[pos] = col_ids[m]
            pos += 1
            m = member_next[m]
        group_cols[start:pos] = np.sort(group_cols[start:pos])
        group_ptr[k + 1] = pos
    return group_ptr, group_cols[:pos]


def _section_bounds(col_ids: np.ndarray, cols: int, section: int | None):
    """Index ranges into the nonzero-column list, one per column window [k*s, (k+1)*s)."""
    if section is None or section >= cols:
        return np.array([0], np.int64), np.array([len(col_ids)], np.int64)
    edges = np.arange(0, cols + section, section, dtype=np.int64)
    cut = np.searchsorted(col_ids, edges)
    return cut[:-1].astype(np.int64), cut[1:].astype(np.int64)


def _column_tops(weights: object, nonzero: np.ndarray, col_ids: np.ndarray) -> np.ndarray:
    """(nonzero columns, rows) float64: each column's weights, divided by the largest one (equal
    weights become exactly 1.0, so weighted costs are then exact counts)."""
    if not isinstance(weights, np.ndarray) or weights.shape != nonzero.shape:
        shape = getattr(weights, "shape", type(weights).__name__)
        raise ValueError(
            f"weights must be a numpy array shaped like nonzero {nonzero.shape}, got {shape}"
        )
    w = np.where(nonzero, weights.astype(np.float64), 0.0)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0 where nonzero is True")
    top = w.max(initial=0.0)
    if top > 0:
        w /= top
    return np.ascontiguousarray(w[:, col_ids].T)


def _run(col_bits, col_ids, rows, cols, max_paths, budget, section, window, criterion, top):
    starts, ends = _section_bounds(col_ids, cols, section)
    weighted = top is not None
    top = top.copy() if weighted else np.zeros((0, 0))
    head, member_next, n_groups, pruned, cost = _combine_core(
        col_bits.copy(), rows, starts, ends, max_paths, budget, window, criterion, top, weighted
    )
    group_ptr, group_cols = _to_csr(head, member_next, col_ids)
    return group_ptr, group_cols, int(n_groups), int(pruned), float(cost)


def group_columns_with_stats(
    nonzero: np.ndarray,
    max_paths: int,
    gamma: float,
    *,
    section_size: int | None = None,
    strategy: str = "greedy",
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """`group_columns`, plus the pruned-weight count and which candidate won (for "greedy")."""
    check_arguments(nonzero, max_paths, gamma, section_size, strategy)
    rows, cols = nonzero.shape
    budget = conflict_budget(gamma, rows)
    max_paths = int(max_paths)
    col_bits, col_ids = column_bitsets(nonzero)
    top = None if weights is None else _column_tops(weights, nonzero, col_ids)
    ref_section = REFERENCE_SECTION_SIZE if section_size is None else int(section_size)
    own_section = None if section_size is None else int(section_size)
    big = np.iinfo(np.int64).max

    def run(name: str, window: int = WINDOW):
        section, criterion = own_section, int(name == "min_conflict")
        if name == "reference":
            section, window = ref_section, big
        return _run(
            col_bits, col_ids, rows, cols, max_paths, budget, section, window, criterion, top
        )

    if strategy != "greedy":
        ptr, gcols, _, pruned, _ = run(strategy)
        return ptr, gcols, pruned, strategy
    # candidates are weighed by the cost they prune: the count, or the weight when weighted
    ref = run("reference")
    best, best_name = ref, "reference"
    for name, window in GREEDY_CANDIDATES:
        cand = run(name, window)
        dominates_ref = cand[2] <= ref[2] and cand[4] <= ref[4]
        if dominates_ref and (cand[2], cand[4]) < (best[2], best[4]):
            best, best_name = cand, f"{name}@{window}"
    return best[0], best[1], best[3], best_name


def group_columns(
    nonzero: np.ndarray,
    max_paths: int,
    gamma: float,
    *,
    section_size: int | None = None,
    strategy: str = "greedy",
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group the nonzero columns of `nonzero` (rows x cols, bool) into combinable groups.

    Returns int64 CSR arrays: group g holds `group_cols[group_ptr[g]:group_ptr[g+1]]`. Every
    nonzero column is in exactly one group; all-zero columns are in none. See the module docstring
    for the strategies; `section_size=None` means 256 for "reference" and no sections otherwise.
    `weights` (rows x cols, >= 0): the cost of pruning each weight (module docstring).
    """
    group_ptr, group_cols, _, _ = group_columns_with_stats(
        nonzero, max_paths, gamma, section_size=section_size, strategy=strategy, weights=weights
    )
    return group_ptr, group_cols


def group_conflicts(
    nonzero: np.ndarray, group_ptr: np.ndarray, group_cols: np.ndarray
) -> np.ndarray:
    """conflicts(g) = sum_r max(0, nnz_r(g) - 1) for every group (int64)."""
    out = np.zeros(len(group_ptr) - 1, np.int64)
    for g in range(len(out)):
        counts = nonzero[:, group_cols[group_ptr[g] : group_ptr[g + 1]]].sum(axis=1)
        out[g] = int(np.maximum(counts - 1, 0).sum())
    return out


def group_columns_split(
    nonzero: np.ndarray,
    col_splits: Sequence[int],
    max_paths: int,
    gamma: float,
    *,
    section_size: int | None = None,
    strategy: str = "greedy",
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group each column block [col_splits[i], col_splits[i+1]) on its own.

    For an LSTM's fused [W_ih | W_hh] pass col_splits = [0, input_size, input_size + hidden]:
    no group then mixes input-projection and recurrent columns. The conflict budget stays
    floor(gamma * rows) per group. Returns (group_ptr, group_cols, groups_per_split) with global
    column ids, blocks in order.
    """
    check_arguments(nonzero, max_paths, gamma, section_size, strategy)
    splits = [int(s) for s in col_splits]
    cols = nonzero.shape[1]
    if len(splits) < 2 or splits[0] != 0 or splits[-1] != cols:
        raise ValueError(
            f"col_splits must start at 0, end at cols={cols} and have >= 2 entries, got {splits}"
        )
    if any(b < a for a, b in zip(splits, splits[1:])):
        raise ValueError(f"col_splits must be non-decreasing, got {splits}")
    ptrs = [np.zeros(1, np.int64)]
    all_cols = []
    per_split = np.zeros(len(splits) - 1, np.int64)
    offset = 0
    for i, (lo, hi) in enumerate(zip(splits, splits[1:])):
        ptr, gcols = group_columns(
            nonzero[:, lo:hi],
            max_paths,
            gamma,
            section_size=section_size,
            strategy=strategy,
            weights=None if weights is None else weights[:, lo:hi],
        )
        per_split[i] = len(ptr) - 1
        ptrs.append(ptr[1:] + offset)
        all_cols.append(gcols + lo)
        offset += len(gcols)
    group_cols = np.concatenate(all_cols) if all_cols else np.zeros(0, np.int64)
    return np.concatenate(ptrs), group_cols.astype(np.int64), per_split
