"""Dynamic Tanh (DyT), the normalisation layer of SpikingParrot.

DyT(v) = softplus(gamma) * tanh(softplus(alpha) * v) + beta, per channel (last dimension).
The softplus keeps the scale and slope positive; alpha and gamma start at softplus^-1(1), so the
layer starts as tanh(v), as in the original.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DyT"]

_SOFTPLUS_INV_ONE = math.log(math.expm1(1.0))


class DyT(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"DyT channels must be a positive int, got {channels!r}")
        self.channels = channels
        self.alpha = nn.Parameter(torch.full((channels,), _SOFTPLUS_INV_ONE))
        self.gamma = nn.Parameter(torch.full((channels,), _SOFTPLUS_INV_ONE))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.gamma) * torch.tanh(F.softplus(self.alpha) * x) + self.beta

    def extra_repr(self) -> str:
        return f"{self.channels}"
