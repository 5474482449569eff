"""Length buckets: the O(n^2 K) DP equals brute force; grid, drops, shards and batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.buckets import (
    build_buckets,
    eval_batches,
    optimal_partition,
    pad_batch,
    padding_cost,
    train_batches,
)


def brute_force(lengths: list[int], k: int) -> int:
    values = sorted(set(lengths))
    n = len(values)
    if n <= k:
        return 0
    best = None
    for cuts in itertools.combinations(range(n - 1), k - 1):
        maxes = [values[c] for c in cuts] + [values[-1]]
        cost = padding_cost(np.array(lengths), maxes)
        best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=40), st.integers(1, 6))
def test_dp_padding_equals_brute_force(lengths, k):
    part = optimal_partition(lengths, k)
    assert part.padding == brute_force(lengths, k)
    assert padding_cost(np.array(lengths), part.maxes) == part.padding
    assert len(part.maxes) <= k
    assert part.maxes[-1] == max(lengths)


def test_dp_exhaustive_small_cases():
    rng = np.random.default_rng(0)
    for _ in range(300):
        lengths = rng.integers(1, 12, size=rng.integers(1, 15)).tolist()
        for k in (1, 2, 3, 4):
            assert optimal_partition(lengths, k).padding == brute_force(lengths, k)


def test_one_group_pads_to_the_longest():
    part = optimal_partition([1, 2, 3, 3], 1)
    assert part.maxes == (3,) and part.padding == 2 + 1


def test_bad_partition_arguments():
    with pytest.raises(ValueError, match="k"):
        optimal_partition([1, 2], 0)
    with pytest.raises(ValueError, match="empty"):
        optimal_partition([], 2)


def test_grid_drops_small_cells_and_shards_large_ones():
    rng = np.random.default_rng(1)
    src = rng.integers(3, 30, size=2000)
    tgt = src + rng.integers(-2, 3, size=2000)
    src[:3], tgt[:3] = 3, 31  # three short sources with long targets: a cell of their own
    b = build_buckets(src, tgt, 4, 4, min_size=20, max_size=100)
    kept = np.concatenate(b.shards)
    assert len(np.unique(kept)) == len(kept) == b.stats.kept
    assert sorted(np.concatenate([kept, b.dropped]).tolist()) == list(range(2000))
    assert all(len(s) <= 100 for s in b.shards)
    assert b.stats.drop_rate == pytest.approx(len(b.dropped) / 2000)
    assert b.dropped[:3].tolist() == [0, 1, 2]
    # every sentence of a shard fits its cell's edges
    for shard, (a, c) in zip(b.shards, b.shard_cells):
        assert (src[shard] <= b.stats.src_edges[a]).all()
        assert (tgt[shard] <= b.stats.tgt_edges[c]).all()
    real = src[kept].sum() + tgt[kept].sum()
    assert b.stats.padding_rate == pytest.approx(b.stats.pad_tokens / (real + b.stats.pad_tokens))


def test_train_batches_cover_kept_pairs_and_depend_only_on_seed_epoch():
    rng = np.random.default_rng(2)
    src = rng.integers(3, 20, size=500)
    tgt = rng.integers(3, 20, size=500)
    b = build_buckets(src, tgt, 3, 3, min_size=1)
    e0 = train_batches(b, src, tgt, 16, 0, seed=5, epoch=0)
    assert sorted(np.concatenate(e0).tolist()) == list(range(500))
    again = train_batches(b, src, tgt, 16, 0, seed=5, epoch=0)
    assert all((x == y).all() for x, y in zip(e0, again))
    e1 = train_batches(b, src, tgt, 16, 0, seed=5, epoch=1)
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(e0, e1))
    by_tokens = train_batches(b, src, tgt, 1000, 200, seed=5, epoch=0)
    assert all(len(x) * (src[x].max() + tgt[x].max()) <= 200 or len(x) == 1 for x in by_tokens)


def test_eval_batches_keep_every_pair_and_pad_batch():
    lengths = np.array([5, 2, 9, 2, 7])
    batches = eval_batches(lengths, 2)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3, 4]
    assert pad_batch([[1, 2], [3]]).tolist() == [[1, 2], [3, 0]]
