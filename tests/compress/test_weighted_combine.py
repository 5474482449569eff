"""The weighted grouping kernel (a cost per weight, e.g. its saliency): equal weights give today's
groups, and with unequal ones it follows its plain statement and prunes the cheaper weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.kernels import column_combine as cc
from tests.compress.test_column_combine import STRATEGIES, check_valid, groups_of, problems

SETTINGS = settings(max_examples=60, deadline=None)


def pruned_cost(weights: np.ndarray, nonzero: np.ndarray, groups: list[list[int]]) -> float:
    """What keeping the heaviest weight per (row, group) prunes, summed."""
    w = np.where(nonzero, weights, 0.0)
    return float(sum((w[:, g].sum(axis=1) - w[:, g].max(axis=1)).sum() for g in groups))


@SETTINGS
@given(problems(), st.sampled_from(STRATEGIES), st.floats(1e-6, 1e6))
def test_equal_weights_give_exactly_the_unweighted_groups(problem, strategy, value):
    nonzero, alpha, gamma, section = problem
    plain = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy=strategy)
    weights = np.full(nonzero.shape, value)
    got = cc.group_columns(
        nonzero, alpha, gamma, section_size=section, strategy=strategy, weights=weights
    )
    np.testing.assert_array_equal(got[0], plain[0])
    np.testing.assert_array_equal(got[1], plain[1])


@SETTINGS
@given(problems(), st.integers(0, 2))
def test_equal_weights_give_the_unweighted_groups_in_split_grouping(problem, n_cuts):
    nonzero, alpha, gamma, _ = problem
    cols = nonzero.shape[1]
    splits = [0, *sorted(np.random.default_rng(cols).integers(0, cols + 1, n_cuts)), cols]
    plain = cc.group_columns_split(nonzero, splits, alpha, gamma)
    got = cc.group_columns_split(nonzero, splits, alpha, gamma, weights=np.ones(nonzero.shape))
    for a, b in zip(got, plain):
        np.testing.assert_array_equal(a, b)


@st.composite
def weighted_problems(draw):
    nonzero, alpha, gamma, section = draw(problems())
    seed = draw(st.integers(0, 2**32 - 1))
    weights = np.random.default_rng(seed).exponential(size=nonzero.shape)
    return nonzero, weights, alpha, gamma, section


@SETTINGS
@given(weighted_problems(), st.sampled_from(STRATEGIES))
def test_weighted_groups_are_valid_partitions_within_the_count_budget(problem, strategy):
    nonzero, weights, alpha, gamma, section = problem
    ptr, gcols = cc.group_columns(
        nonzero, alpha, gamma, section_size=section, strategy=strategy, weights=weights
    )
    check_valid(nonzero, alpha, gamma, section, ptr, gcols)


@SETTINGS
@given(weighted_problems())
def test_weighted_reference_keeps_the_published_partner_rule(problem):
    nonzero, weights, alpha, gamma, section = problem
    plain = cc.group_columns(nonzero, alpha, gamma, section_size=section, strategy="reference")
    got = cc.group_columns(
        nonzero, alpha, gamma, section_size=section, strategy="reference", weights=weights
    )
    assert groups_of(*got) == groups_of(*plain)


@SETTINGS
@given(weighted_problems())
def test_weighted_greedy_never_prunes_more_weight_nor_groups_than_reference(problem):
    nonzero, weights, alpha, gamma, section = problem
    kw = {"section_size": section, "weights": weights}
    ref = cc.group_columns(nonzero, alpha, gamma, strategy="reference", **kw)
    got = cc.group_columns(nonzero, alpha, gamma, strategy="greedy", **kw)
    assert len(got[0]) <= len(ref[0])
    cost_ref = pruned_cost(weights, nonzero, groups_of(*ref))
    cost_got = pruned_cost(weights, nonzero, groups_of(*got))
    assert cost_got <= cost_ref * (1 + 1e-9) + 1e-12


def weighted_min_conflict_twin(nonzero, weights, alpha, gamma, window):
    """Plain statement of weighted min_conflict: each group, in column order, absorbs the feasible
    partner (count budget) within `window` whose merge prunes the least weight, ties: most rows
    added, then earliest."""
    budget = math.floor(gamma * nonzero.shape[0])
    w = np.where(nonzero, weights, 0.0)
    w = w / w.max() if w.max() > 0 else w
    cols = [c for c in range(nonzero.shape[1]) if nonzero[:, c].any()]
    groups = [[c] for c in cols]
    occ = [nonzero[:, c].copy() for c in cols]
    top = [w[:, c].copy() for c in cols]
    conf = [0] * len(cols)
    b = 0
    while b < len(groups):
        best = None
        for a in range(b + 1, min(len(groups), b + 1 + window)):
            if len(groups[a]) + len(groups[b]) > alpha:
                continue
            both = occ[a] & occ[b]
            ov = int(both.sum())
            if conf[a] + conf[b] + ov > budget:
                continue
            cost = float(np.minimum(top[a], top[b])[both].sum())
            score = (-cost, int(occ[a].sum()) - ov)
            if best is None or score > best[0]:
                best = (score, a, ov)
        if best is None:
            b += 1
            continue
        _, a, ov = best
        groups[b] += groups[a]
        occ[b], top[b] = occ[b] | occ[a], np.maximum(top[b], top[a])
        conf[b] += conf[a] + ov
        del groups[a], occ[a], conf[a], top[a]
    return sorted(sorted(g) for g in groups)


@SETTINGS
@given(weighted_problems(), st.integers(1, 12))
def test_weighted_min_conflict_equals_its_plain_statement(problem, window):
    nonzero, weights, alpha, gamma, _ = problem
    old = cc.WINDOW
    try:
        cc.WINDOW = window
        got = cc.group_columns(nonzero, alpha, gamma, strategy="min_conflict", weights=weights)
    finally:
        cc.WINDOW = old
    assert groups_of(*got) == weighted_min_conflict_twin(nonzero, weights, alpha, gamma, window)


def test_weighted_min_conflict_prefers_pruning_light_weights_over_fewer_conflicts():
    # column 0 can pair with column 1 (one conflict, on a heavy weight) or column 2 (two
    # conflicts, on light weights): unweighted takes 1, weighted takes 2
    nonzero = np.array([[1, 1, 1], [0, 0, 1], [1, 0, 1]], bool)
    weights = np.array([[1.0, 5.0, 0.1], [0, 0, 0.1], [1.0, 0, 0.1]])
    plain = cc.group_columns(nonzero, 2, 1.0, strategy="min_conflict")
    got = cc.group_columns(nonzero, 2, 1.0, strategy="min_conflict", weights=weights)
    assert groups_of(*plain) == [[0, 1], [2]]
    assert groups_of(*got) == [[0, 2], [1]]


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.ones((3, 2)), "shaped like nonzero"),
        ([[1.0] * 3] * 2, "numpy array"),
        (np.full((2, 3), -1.0), ">= 0"),
        (np.full((2, 3), np.nan), "finite"),
    ],
)
def test_bad_weights_raise_value_error(weights, match):
    with pytest.raises(ValueError, match=match):
        cc.group_columns(np.ones((2, 3), bool), 2, 1.0, weights=weights)
