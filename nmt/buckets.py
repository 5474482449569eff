"""Length buckets chosen by dynamic programming, and the batches cut from them.

For each side (source, target) the sorted distinct lengths are partitioned into at most K
contiguous groups so that padding every sentence to its group's longest length costs the fewest
pad tokens. With counts c_i of distinct lengths v_0 < ... < v_{n-1} and prefix sums
C (counts) and S (count * length), a group holding v_k..v_{i-1} costs
v_{i-1} (C_i - C_k) - (S_i - S_k), so dp[j][i] = min_k dp[j-1][k] + cost(k, i) is O(n^2 K).
(SpikingParrot's BucketManager runs the same recurrence but re-sums each group's padding in an
inner loop, O(n^3 K).)

The source groups times the target groups form a grid of cells; cells with fewer than
`min_size` sentences are dropped (training only: they would make tiny, slow batches) and cells
above `max_size` are sharded into near-equal parts. `BucketStats` reports the padding rate (pad
tokens over all tokens, sentences padded to their cell's maxima) and the drop rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BucketStats",
    "Buckets",
    "Partition",
    "build_buckets",
    "eval_batches",
    "optimal_partition",
    "pad_batch",
    "padding_cost",
    "train_batches",
]


@dataclass(frozen=True)
class Partition:
    """Groups of lengths by their inclusive upper edges `maxes` (increasing)."""

    maxes: tuple[int, ...]
    padding: int

    def group_of(self, lengths: np.ndarray) -> np.ndarray:
        lengths = np.asarray(lengths)
        if len(lengths) and int(lengths.max()) > self.maxes[-1]:
            raise ValueError(
                f"length {int(lengths.max())} exceeds the largest group edge {self.maxes[-1]}"
            )
        return np.searchsorted(np.asarray(self.maxes), lengths, side="left")


def padding_cost(lengths: np.ndarray, maxes: tuple[int, ...] | list[int]) -> int:
    """Pad tokens when every length is padded up to the smallest edge in `maxes` >= it."""
    lengths = np.asarray(lengths, dtype=np.int64)
    edges = np.asarray(sorted(maxes), dtype=np.int64)
    if len(lengths) == 0:
        return 0
    if lengths.max() > edges[-1]:
        raise ValueError(f"length {int(lengths.max())} exceeds the largest edge {int(edges[-1])}")
    return int((edges[np.searchsorted(edges, lengths, side="left")] - lengths).sum())


def optimal_partition(lengths: np.ndarray | list[int], k: int) -> Partition:
    """The partition of the distinct `lengths` into at most `k` contiguous groups with the least
    total padding (ties: the earliest cut points found by the DP)."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (groups per side) must be a positive int, got {k!r}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        raise ValueError("cannot partition an empty list of lengths")
    if lengths.min() < 0:
        raise ValueError(f"lengths must be >= 0, got {int(lengths.min())}")
    values, counts = np.unique(lengths, return_counts=True)
    n = len(values)
    if n <= k:
        return Partition(tuple(int(v) for v in values), 0)
    csum = np.concatenate([[0], np.cumsum(counts)])
    ssum = np.concatenate([[0], np.cumsum(counts * values)])
    inf = np.iinfo(np.int64).max // 4
    # dp[i]: least padding of the first i distinct lengths in j groups; parent for backtracking.
    dp = np.full(n + 1, inf, dtype=np.int64)
    dp[0] = 0
    parents = np.zeros((k + 1, n + 1), dtype=np.int64)
    for j in range(1, k + 1):
        new = np.full(n + 1, inf, dtype=np.int64)
        for i in range(j, n + 1):
            ks = np.arange(j - 1, i)
            cost = values[i - 1] * (csum[i] - csum[ks]) - (ssum[i] - ssum[ks])
            total = dp[ks] + cost
            best = int(np.argmin(total))
            new[i] = total[best]
            parents[j, i] = ks[best]
        dp = new
    maxes = []
    i = n
    for j in range(k, 0, -1):
        maxes.append(int(values[i - 1]))
        i = int(parents[j, i])
    return Partition(tuple(reversed(maxes)), int(dp[n]))


@dataclass(frozen=True)
class BucketStats:
    sentences: int
    kept: int
    dropped: int
    drop_rate: float
    cells: int
    shards: int
    real_tokens: int
    pad_tokens: int
    padding_rate: float
    src_edges: tuple[int, ...]
    tgt_edges: tuple[int, ...]


@dataclass(frozen=True)
class Buckets:
    """Shards of sentence indices; every shard lies in one (source group, target group) cell."""

    shards: tuple[np.ndarray, ...]
    shard_cells: tuple[tuple[int, int], ...]
    dropped: np.ndarray
    stats: BucketStats


def build_buckets(
    src_lengths: np.ndarray | list[int],
    tgt_lengths: np.ndarray | list[int],
    k_src: int,
    k_tgt: int,
    min_size: int = 1,
    max_size: int = 0,
) -> Buckets:
    """Bucket sentence pairs on the DP grid. `max_size` 0 means never shard."""
    src = np.asarray(src_lengths, dtype=np.int64)
    tgt = np.asarray(tgt_lengths, dtype=np.int64)
    if src.shape != tgt.shape or src.ndim != 1:
        raise ValueError(
            f"src_lengths and tgt_lengths must be 1-D of equal length, got {src.shape} and "
            f"{tgt.shape}"
        )
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    if max_size < 0 or (max_size and max_size < min_size):
        raise ValueError(f"max_size must be 0 (no sharding) or >= min_size, got {max_size}")
    ps = optimal_partition(src, k_src)
    pt = optimal_partition(tgt, k_tgt)
    gs, gt = ps.group_of(src), pt.group_of(tgt)
    cell_id = gs * len(pt.maxes) + gt
    shards, shard_cells, dropped = [], [], []
    real = pad = 0
    for cid in np.unique(cell_id):
        idx = np.flatnonzero(cell_id == cid)
        a, b = divmod(int(cid), len(pt.maxes))
        if len(idx) < min_size:
            dropped.append(idx)
            continue
        real += int(src[idx].sum() + tgt[idx].sum())
        pad += int((ps.maxes[a] - src[idx]).sum() + (pt.maxes[b] - tgt[idx]).sum())
        parts = max(1, -(-len(idx) // max_size)) if max_size else 1
        for part in np.array_split(idx, parts):
            shards.append(part)
            shard_cells.append((a, b))
    dropped_idx = np.concatenate(dropped) if dropped else np.zeros(0, dtype=np.int64)
    n = len(src)
    stats = BucketStats(
        sentences=n,
        kept=n - len(dropped_idx),
        dropped=len(dropped_idx),
        drop_rate=len(dropped_idx) / n if n else 0.0,
        cells=len(set(shard_cells)),
        shards=len(shards),
        real_tokens=real,
        pad_tokens=pad,
        padding_rate=pad / (real + pad) if real + pad else 0.0,
        src_edges=ps.maxes,
        tgt_edges=pt.maxes,
    )
    return Buckets(tuple(shards), tuple(shard_cells), np.sort(dropped_idx), stats)


def train_batches(
    buckets: Buckets,
    src_lengths: np.ndarray,
    tgt_lengths: np.ndarray,
    batch_size: int,
    batch_tokens: int,
    seed: int,
    epoch: int,
) -> list[np.ndarray]:
    """One epoch of batches (index arrays), a pure function of (seed, epoch) so a resumed run
    replays the same order. A batch holds `batch_size` pairs, or, when `batch_tokens` > 0, as
    many as fit `batch_tokens` padded source + target tokens (at least one)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng([seed, epoch])
    src = np.asarray(src_lengths)
    tgt = np.asarray(tgt_lengths)
    batches = []
    for shard in buckets.shards:
        order = shard[rng.permutation(len(shard))]
        if batch_tokens > 0:
            width = int(src[shard].max() + tgt[shard].max())
            size = max(1, min(batch_size, batch_tokens // max(width, 1)))
        else:
            size = batch_size
        batches.extend(order[i : i + size] for i in range(0, len(order), size))
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_batches(src_lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """All pairs, sorted by source length (stable), in consecutive batches: no pair dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(np.asarray(src_lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(seqs: list[list[int]] | list[np.ndarray], pad: int = 0) -> np.ndarray:
    """[B, max_len] int64 array, right-padded with `pad`."""
    if not seqs:
        raise ValueError("cannot pad an empty batch")
    width = max(len(s) for s in seqs)
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out
