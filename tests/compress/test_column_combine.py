"""Properties of the column-grouping kernels (Numba) and their plain reference twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.kernels import column_combine as cc
from compress.kernels import reference as twin

STRATEGIES = cc.STRATEGIES
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def problems(draw, max_rows: int = 40, max_cols: int = 70):
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    density = draw(st.sampled_from([0.0, 0.03, 0.1, 0.3, 0.6, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    nonzero = np.random.default_rng(seed).random((rows, cols)) < density
    alpha = draw(st.integers(1, 9))
    gamma = draw(st.sampled_from([0.0, 0.05, 0.25, 0.5, 1.0, 1.75, 4.0]))
    section = draw(st.one_of(st.none(), st.integers(1, 40)))
    return nonzero, alpha, gamma, section


def groups_of(group_ptr: np.ndarray, group_cols: np.ndarray) -> list[list[int]]:
    return [group_cols[group_ptr[g] : group_ptr[g + 1]].tolist() for g in range(len(group_ptr) - 1)]


def conflicts(nonzero: np.ndarray, cols: list[int]) -> int:
    counts = nonzero[:, cols].sum(axis=1)
    return int(np.maximum(counts - 1, 0).sum())


def check_valid(nonzero, alpha, gamma, section, group_ptr, group_cols) -> None:
    assert group_ptr.dtype == np.int64 and group_cols.dtype == np.int64
    assert group_ptr[0] == 0 and group_ptr[-1] == len(group_cols)
    groups = groups_of(group_ptr, group_cols)
    nonzero_cols = np.flatnonzero(nonzero.any(axis=0)).tolist()
    assert sorted(group_cols.tolist()) == nonzero_cols  # each nonzero column exactly once
    budget = math.floor(gamma * nonzero.shape[0])
    for cols in groups:
        assert 1 <= len(cols) <= alpha
        assert cols == sorted(cols)
        assert conflicts(nonzero, cols) <= budget
        if section is not None:
            assert len({c // section for c in cols}) == 1
    firsts = [cols[0] for cols in groups]
    assert firsts == sorted(firsts)  # documented output order


@SETTINGS
@given(problems(), st.sampled_from(STRATEGIES))
def test_every_strategy_partitions_nonzero_columns_within_alpha_budget_and_sections(
    problem, strategy
):
    nonzero, alpha, gamma, section = problem
    ptr, gcols = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy=strategy)
    check_valid(nonzero, alpha, gamma, section, ptr, gcols)


@SETTINGS
@given(problems())
def test_reference_strategy_respects_default_256_column_sections(problem):
    nonzero, alpha, gamma, _ = problem
    wide = np.concatenate([nonzero] * 8, axis=1)[:, :300]
    ptr, gcols = cc.group_columns(wide, alpha, gamma, strategy="reference")
    check_valid(wide, alpha, gamma, 256, ptr, gcols)


@SETTINGS
@given(problems())
def test_numba_reference_strategy_equals_plain_twin(problem):
    nonzero, alpha, gamma, section = problem
    got = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy="reference")
    want = twin.group_columns(nonzero, alpha, gamma, section_size=section)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@SETTINGS
@given(problems())
def test_greedy_never_more_groups_nor_more_pruned_weights_than_reference(problem):
    nonzero, alpha, gamma, section = problem
    ref = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy="reference")
    got = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy="greedy")
    assert len(got[0]) <= len(ref[0])
    pruned_ref = sum(conflicts(nonzero, g) for g in groups_of(*ref))
    pruned_got = sum(conflicts(nonzero, g) for g in groups_of(*got))
    assert pruned_got <= pruned_ref


@SETTINGS
@given(problems(), st.sampled_from(STRATEGIES))
def test_grouping_is_deterministic_and_independent_of_memory_layout(problem, strategy):
    nonzero, alpha, gamma, section = problem
    first = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy=strategy)
    again = cc.group_columns(
        np.asfortranarray(nonzero.copy()), alpha, gamma, section_size=section, strategy=strategy
    )
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


@SETTINGS
@given(problems(), st.integers(0, 3))
def test_split_grouping_keeps_groups_inside_blocks_with_global_ids(problem, n_cuts):
    nonzero, alpha, gamma, _ = problem
    cols = nonzero.shape[1]
    cuts = sorted(np.random.default_rng(cols).integers(0, cols + 1, n_cuts).tolist())
    splits = [0, *cuts, cols]
    ptr, gcols, per_split = cc.group_columns_split(nonzero, splits, alpha, gamma)
    check_valid(nonzero, alpha, gamma, None, ptr, gcols)
    assert int(per_split.sum()) == len(ptr) - 1
    block_of = np.searchsorted(np.array(splits), gcols, side="right") - 1
    for g, cols_g in enumerate(groups_of(ptr, gcols)):
        assert len(set(block_of[ptr[g] : ptr[g + 1]].tolist())) == 1, cols_g
    blocks = [block_of[ptr[g]] for g in range(len(ptr) - 1)]
    assert np.bincount(blocks, minlength=len(splits) - 1).tolist() == per_split.tolist()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_edge_shapes_one_row_one_column_all_zero_dense(strategy):
    one_row = np.array([[True, False, True, True]])
    ptr, gcols = cc.group_columns(one_row, 3, 0.0, strategy=strategy)
    # one row: any two nonzero columns conflict, budget floor(0 * 1) = 0
    assert groups_of(ptr, gcols) == [[0], [2], [3]]
    ptr, gcols = cc.group_columns(one_row, 3, 2.0, strategy=strategy)
    assert groups_of(ptr, gcols) == [[0, 2, 3]]
    one_col = np.array([[True], [False], [True]])
    assert groups_of(*cc.group_columns(one_col, 8, 1.0, strategy=strategy)) == [[0]]
    zeros = np.zeros((5, 7), bool)
    ptr, gcols = cc.group_columns(zeros, 8, 1.0, strategy=strategy)
    assert ptr.tolist() == [0] and gcols.tolist() == []
    dense = np.ones((4, 6), bool)
    # two dense columns cost 4 conflicts: budget floor(1.0 * 4) = 4 allows pairs only
    ptr, gcols = cc.group_columns(dense, 8, 1.0, strategy=strategy)
    assert [len(g) for g in groups_of(ptr, gcols)] == [2, 2, 2]
    empty = np.zeros((0, 3), bool)
    assert cc.group_columns(empty, 2, 1.0, strategy=strategy)[0].tolist() == [0]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_alpha_one_leaves_every_nonzero_column_alone(strategy):
    nonzero = np.random.default_rng(1).random((20, 30)) < 0.2
    ptr, gcols = cc.group_columns(nonzero, 1, 4.0, strategy=strategy)
    assert groups_of(ptr, gcols) == [[c] for c in np.flatnonzero(nonzero.any(axis=0))]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gamma_zero_groups_share_no_row(strategy):
    nonzero = np.random.default_rng(2).random((30, 60)) < 0.05
    ptr, gcols = cc.group_columns(nonzero, 8, 0.0, strategy=strategy)
    for cols in groups_of(ptr, gcols):
        assert nonzero[:, cols].sum(axis=1).max() <= 1
    assert len(ptr) - 1 < nonzero.any(axis=0).sum()  # something did combine


def test_reference_takes_partner_with_fewest_both_empty_rows_min_conflict_fewest_conflicts():
    # col0 rows {0,1}; col1 rows {2}; col2 rows {0,2,3}. budget floor(0.25 * 4) = 1.
    # col0+col2 covers all 4 rows (0 both-empty, 1 conflict); col0+col1 leaves row 3 empty.
    nonzero = np.zeros((4, 3), bool)
    nonzero[[0, 1], 0] = True
    nonzero[2, 1] = True
    nonzero[[0, 2, 3], 2] = True
    for impl in (cc.group_columns, twin.group_columns):
        ptr, gcols = impl(nonzero, 2, 0.25, strategy="reference")
        assert groups_of(ptr, gcols) == [[0, 2], [1]]
    ptr, gcols = cc.group_columns(nonzero, 2, 0.25, strategy="min_conflict")
    assert groups_of(ptr, gcols) == [[0, 1], [2]]
    # greedy keeps the same group count with fewer pruned weights (0 instead of 1)
    ptr, gcols = cc.group_columns(nonzero, 2, 0.25)
    assert groups_of(ptr, gcols) == [[0, 1], [2]]


def test_reference_ties_go_to_the_earliest_partner_and_b_absorbs_later_groups():
    # three identical disjoint candidates for col0: the earliest (col1) wins, then col0's group
    # is full (alpha 2), and col2 + col3 pair up.
    nonzero = np.zeros((4, 4), bool)
    nonzero[0, 0] = True
    nonzero[1, 1] = True
    nonzero[2, 2] = True
    nonzero[3, 3] = True
    for impl in (cc.group_columns, twin.group_columns):
        assert groups_of(*impl(nonzero, 2, 0.0, strategy="reference")) == [[0, 1], [2, 3]]


def test_reference_sections_stop_groups_at_window_edges():
    nonzero = np.zeros((2, 6), bool)
    nonzero[0, ::2] = True
    nonzero[1, 1::2] = True
    ptr, gcols = cc.group_columns(nonzero, 6, 0.0, section_size=4, strategy="reference")
    assert groups_of(ptr, gcols) == [[0, 1], [2, 3], [4, 5]]
    assert groups_of(*twin.group_columns(nonzero, 6, 0.0, section_size=4)) == [
        [0, 1],
        [2, 3],
        [4, 5],
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_paths": 0}, "max_paths"),
        ({"max_paths": 2.5}, "max_paths"),
        ({"gamma": -0.1}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"section_size": 0}, "section_size"),
        ({"strategy": "fastest"}, "strategy"),
        ({"nonzero": np.ones(5, bool)}, "nonzero"),
        ({"nonzero": np.ones((3, 3), np.int8)}, "nonzero"),
        ({"nonzero": [[True]]}, "nonzero"),
    ],
)
@pytest.mark.parametrize("impl", [cc.group_columns, twin.group_columns])
def test_invalid_arguments_raise_value_error_naming_the_argument(kwargs, match, impl):
    args = {"nonzero": np.ones((3, 3), bool), "max_paths": 2, "gamma": 0.5}
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("section_size", "strategy") if k in args}
    with pytest.raises(ValueError, match=match):
        impl(args["nonzero"], args["max_paths"], args["gamma"], **extra)


def test_split_rejects_splits_that_do_not_cover_the_columns():
    nonzero = np.ones((2, 5), bool)
    with pytest.raises(ValueError, match="col_splits"):
        cc.group_columns_split(nonzero, [0, 3], 2, 1.0)
    with pytest.raises(ValueError, match="col_splits"):
        cc.group_columns_split(nonzero, [0, 4, 2, 5], 2, 1.0)


def test_group_columns_with_stats_reports_pruned_weights_of_the_groups():
    nonzero = np.random.default_rng(3).random((50, 80)) < 0.2
    for strategy in STRATEGIES:
        ptr, gcols, pruned, winner = cc.group_columns_with_stats(nonzero, 4, 0.5, strategy=strategy)
        assert pruned == int(cc.group_conflicts(nonzero, ptr, gcols).sum())
        assert winner.split("@")[0] in STRATEGIES


def windowed_twin(nonzero: np.ndarray, alpha: int, gamma: float, window: int, strategy: str):
    """Plain-Python statement of the windowed strategies, to check the Numba scan and its bounds."""
    budget = math.floor(gamma * nonzero.shape[0])
    cols = [c for c in range(nonzero.shape[1]) if nonzero[:, c].any()]
    groups = [[c] for c in cols]
    occ = [nonzero[:, c].copy() for c in cols]
    conf = [0] * len(cols)
    b = 0
    while b < len(groups):
        best = None
        for a in range(b + 1, min(len(groups), b + 1 + window)):
            if len(groups[a]) + len(groups[b]) > alpha:
                continue
            ov = int((occ[a] & occ[b]).sum())
            if conf[a] + conf[b] + ov > budget:
                continue
            key = int(occ[a].sum()) - ov
            score = (key,) if strategy == "reference_window" else (-ov, key)
            if best is None or score > best[0]:  # strict: ties keep the earliest
                best = (score, a, ov)
        if best is None:
            b += 1
            continue
        _, a, ov = best
        groups[b] += groups[a]
        occ[b] = occ[b] | occ[a]
        conf[b] += conf[a] + ov
        del groups[a], occ[a], conf[a]
    return sorted(sorted(g) for g in groups)


@SETTINGS
@given(problems(), st.sampled_from(["min_conflict", "reference_window"]), st.integers(1, 12))
def test_windowed_strategies_equal_their_plain_statement(problem, strategy, window):
    nonzero, alpha, gamma, _ = problem
    old = cc.WINDOW
    try:
        cc.WINDOW = window
        got = cc.group_columns(nonzero, alpha, gamma, strategy=strategy)
    finally:
        cc.WINDOW = old
    assert groups_of(*got) == windowed_twin(nonzero, alpha, gamma, window, strategy)
