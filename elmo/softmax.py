"""The softmax losses over the token vocabulary: full, and TensorFlow's sampled softmax for
vocabularies too large to score whole (lm1b's 793k words) at every training position.

Sampled softmax (Jean et al., 2015), as `tf.nn.sampled_softmax_loss` computes it with its
defaults, which bilm-tf trains ELMo with: `num_sampled` distinct candidates drawn from the
log-uniform (Zipfian) distribution P(k) = log((k + 2) / (k + 1)) / log(V + 1) over ids sorted by
frequency, the same candidates for every position of the batch; every logit, the true class's
and the candidates', has log Q subtracted, Q the class's expected count in the draw (with unique
draws: 1 - (1 - P(k))^tries, `tries` the draws it took to find num_sampled distinct ids), which
makes the loss an estimate of the full softmax's; a candidate that is a row's own label is
removed from that row ("accidental hit"). Evaluation always uses the full softmax.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "expected_count",
    "full_softmax_nll",
    "log_uniform_prob",
    "sample_log_uniform",
    "sampled_softmax_logits",
    "sampled_softmax_nll",
]


def full_softmax_nll(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of softmax(inputs W^T + b) against `targets`; inputs (..., D), targets (...)."""
    logits = F.linear(inputs.reshape(-1, inputs.size(-1)), weight, bias)
    return F.cross_entropy(logits, targets.reshape(-1), reduction=reduction)


def log_uniform_prob(ids: torch.Tensor | np.ndarray, n_classes: int) -> torch.Tensor:
    """P(k) of the log-uniform distribution over 0 .. n_classes - 1 (float64)."""
    k = torch.as_tensor(ids, dtype=torch.float64)
    return torch.log((k + 2.0) / (k + 1.0)) / math.log(n_classes + 1.0)


def sample_log_uniform(
    n_classes: int, num_sampled: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """(candidates, tries): `num_sampled` distinct ids drawn from the log-uniform distribution
    in the order first drawn, and how many draws that took (TF's unique sampler)."""
    if not 1 <= num_sampled <= n_classes:
        raise ValueError(f"num_sampled must be in 1..{n_classes} (the classes), got {num_sampled}")
    log_range = math.log(n_classes + 1.0)
    drawn = np.zeros(0, dtype=np.int64)
    while True:
        # inverse CDF: P(id <= k) = log(k + 2) / log(V + 1)
        u = rng.random(max(2 * num_sampled, 64))
        new = (np.floor(np.exp(u * log_range)) - 1).astype(np.int64)
        drawn = np.concatenate((drawn, np.clip(new, 0, n_classes - 1)))
        uniq, first = np.unique(drawn, return_index=True)
        if len(uniq) >= num_sampled:
            order = np.sort(first)[:num_sampled]  # the first num_sampled distinct draws
            return drawn[order], int(order[-1]) + 1


def expected_count(ids: torch.Tensor | np.ndarray, tries: int, n_classes: int) -> torch.Tensor:
    """TF's expected count of each id in a unique draw of `tries` tries: 1 - (1 - P(k))^tries
    (float64)."""
    p = log_uniform_prob(ids, n_classes)
    return -torch.expm1(tries * torch.log1p(-p))


def sampled_softmax_logits(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    candidates: torch.Tensor,
    tries: int,
) -> torch.Tensor:
    """(N, 1 + S) logits of the sampled softmax, the true class first: each logit less the log
    of its class's expected count, and a row's accidental hits (a candidate equal to its label)
    at -inf. inputs (N, D), targets (N,), candidates (S,) distinct ids."""
    n_classes = weight.size(0)
    true = (inputs * weight[targets]).sum(-1) + bias[targets]
    sampled = F.linear(inputs, weight[candidates], bias[candidates])
    log_q_true = torch.log(expected_count(targets, tries, n_classes)).to(inputs)
    log_q_sampled = torch.log(expected_count(candidates, tries, n_classes)).to(inputs)
    true = true - log_q_true.to(inputs.device)
    sampled = sampled - log_q_sampled.to(inputs.device)
    hits = targets.unsqueeze(1) == candidates.unsqueeze(0)
    sampled = sampled.masked_fill(hits, float("-inf"))
    return torch.cat((true.unsqueeze(1), sampled), dim=1)


def sampled_softmax_nll(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    num_sampled: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """The mean sampled-softmax loss of inputs (..., D) against targets (...), one draw of
    `num_sampled` candidates from `rng` for all positions."""
    inputs = inputs.reshape(-1, inputs.size(-1))
    targets = targets.reshape(-1)
    cands, tries = sample_log_uniform(weight.size(0), num_sampled, rng)
    logits = sampled_softmax_logits(
        inputs, weight, bias, targets, torch.from_numpy(cands).to(targets.device), tries
    )
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
