"""AWD-LSTM's regularizers: embedding dropout, locked (variational) dropout, AR and TAR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def embedding_dropout(
    tokens: torch.Tensor, weight: torch.Tensor, p: float, training: bool
) -> torch.Tensor:
    """Look up `tokens` in `weight` after dropping whole rows (word types) with probability p,
    so every occurrence of a dropped word in the batch is zeroed; kept rows scale by 1/(1-p)."""
    if training and p > 0:
        keep = torch.empty(
            (weight.size(0), 1), dtype=weight.dtype, device=weight.device
        ).bernoulli_(1 - p)
        weight = weight * (keep / (1 - p))
    return F.embedding(tokens, weight)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared across time steps: x is (seq, batch, features)."""

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.training or p <= 0:
            return x
        mask = x.new_empty((1, x.size(1), x.size(2))).bernoulli_(1 - p) / (1 - p)
        return x * mask


def activation_regularization(dropped_output: torch.Tensor, alpha: float) -> torch.Tensor:
    """AR: alpha * mean(h^2) on the (dropped-out) last-layer outputs."""
    return alpha * dropped_output.pow(2).mean()


def temporal_activation_regularization(raw_output: torch.Tensor, beta: float) -> torch.Tensor:
    """TAR (slowness): beta * mean((h_t - h_{t-1})^2) on the raw last-layer outputs."""
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()
