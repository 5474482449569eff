"""The sampled softmax, as TF computes it: distinct log-uniform candidates and the draws they
took, every logit less the log of its expected count, accidental hits removed; with every class
drawn its loss is the full softmax's, and its candidates follow the log-uniform law."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elmo.softmax import (
    expected_count,
    full_softmax_nll,
    log_uniform_prob,
    sample_log_uniform,
    sampled_softmax_logits,
    sampled_softmax_nll,
)


def _problem(n=40, d=6, v=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, d, generator=g, dtype=torch.float64)
    weight = torch.randn(v, d, generator=g, dtype=torch.float64)
    bias = torch.randn(v, generator=g, dtype=torch.float64)
    targets = torch.randint(0, v, (n,), generator=g)
    return inputs, weight, bias, targets


def test_the_log_uniform_law_sums_to_one_and_favours_low_ids():
    p = log_uniform_prob(np.arange(1000), 1000)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    assert (p[1:] < p[:-1]).all()


def test_candidates_are_distinct_log_uniform_draws_and_the_tries_are_counted():
    rng = np.random.default_rng(0)
    counts = np.zeros(50)
    for _ in range(400):
        cands, tries = sample_log_uniform(50, 5, rng)
        assert len(set(cands.tolist())) == 5 and tries >= 5
        counts[cands[0]] += 1  # a unique draw's first candidate is a plain log-uniform draw
    p = log_uniform_prob(np.arange(50), 50).numpy()
    assert np.abs(counts / 400 - p).max() < 0.05
    again = sample_log_uniform(50, 5, np.random.default_rng(3))
    assert np.array_equal(again[0], sample_log_uniform(50, 5, np.random.default_rng(3))[0])


def test_the_expected_count_of_a_unique_draw_is_tfs():
    # TF (range_sampler.cc): -expm1(num_tries * log1p(-p)) for unique samplers
    ids = np.array([0, 3, 29])
    p = np.log((ids + 2) / (ids + 1)) / np.log(31)
    assert np.allclose(expected_count(ids, 17, 30).numpy(), 1 - (1 - p) ** 17)


def test_each_logit_is_corrected_by_its_expected_count_and_accidental_hits_are_removed():
    inputs, weight, bias, targets = _problem()
    cands = torch.tensor([0, 2, 5, 11])
    logits = sampled_softmax_logits(inputs, weight, bias, targets, cands, 9)
    q = lambda ids: expected_count(ids, 9, 30)  # noqa: E731
    true = (inputs * weight[targets]).sum(1) + bias[targets] - torch.log(q(targets))
    assert torch.allclose(logits[:, 0], true)
    sampled = inputs @ weight[cands].T + bias[cands] - torch.log(q(cands))
    hit = targets[:, None] == cands[None, :]
    assert hit.any()  # the made problem has accidental hits
    assert torch.isneginf(logits[:, 1:][hit]).all()
    assert torch.allclose(logits[:, 1:][~hit], sampled[~hit])


def test_with_every_class_drawn_and_certain_the_sampled_loss_is_the_full_softmax_loss():
    inputs, weight, bias, targets = _problem()
    full = full_softmax_nll(inputs, weight, bias, targets, reduction="none")
    # every class a candidate after so many tries that each expected count is 1: no correction
    # is left, and the candidates less each row's own label (its accidental hit) are the rest
    logits = sampled_softmax_logits(inputs, weight, bias, targets, torch.arange(30), 10**9)
    sampled = torch.logsumexp(logits, dim=1) - logits[:, 0]
    assert torch.allclose(sampled, full, atol=1e-9)


def test_the_sampled_loss_approaches_the_full_softmax_loss_as_candidates_grow():
    inputs, weight, bias, targets = _problem()
    full = float(full_softmax_nll(inputs, weight, bias, targets))
    rng = np.random.default_rng(0)
    gaps = [
        np.mean([abs(float(sampled_softmax_nll(inputs, weight, bias, targets, n, rng)) - full)
                 for _ in range(20)])
        for n in (3, 10, 30)
    ]  # fmt: skip
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.1 * gaps[0]


def test_too_many_candidates_are_refused():
    with pytest.raises(ValueError, match="num_sampled must be in 1..30"):
        sample_log_uniform(30, 31, np.random.default_rng(0))
