"""Spike functions with surrogate gradients.

A spike function is a Heaviside step in the forward pass and a smooth derivative in the
backward pass. Each surrogate here is the derivative of a smooth *primitive* (exposed as
`primitive`, for tests and plots), so the backward pass of a surrogate equals the finite-
difference slope of its primitive.

Whether the step fires at exactly zero is a property of the model, not of the surrogate:
spikingjelly's gate-spiking LSTM fires at u >= 0, snnTorch's SLSTM at u > 0. So every
surrogate takes `strict` per call and the cell decides.

- `Erf` (spikingjelly's default): d/du = alpha / sqrt(pi) * exp(-(alpha u)^2),
  primitive erfc(-alpha u) / 2.
- `ATan` (snnTorch's default): d/du = (alpha / 2) / (1 + (pi/2 * alpha * u)^2),
  primitive arctan(pi/2 * alpha * u) / pi + 1/2.
- `SpikingParrot` (Hihoshi/SpikingParrot's learnable surrogate): d/du =
  softplus(b) * softplus(a) * sech^2(softplus(a) u) with `a` and `b` learnable per channel
  (last dimension), initialised so both softplus values are 1; primitive
  softplus(b) * tanh(softplus(a) u). Its backward also returns gradients for `a` and `b`
  (those of the primitive), so the surrogate's shape is trained with the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ATan",
    "Erf",
    "SURROGATES",
    "SpikingParrot",
    "Surrogate",
    "heaviside",
    "make_surrogate",
]


def heaviside(u: torch.Tensor, strict: bool) -> torch.Tensor:
    """1 where u > 0 (strict) or u >= 0 (not strict), else 0, in u's dtype."""
    return (u > 0).to(u.dtype) if strict else (u >= 0).to(u.dtype)


class _ErfSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, alpha: float, strict: bool) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return heaviside(u, strict)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        return grad_out * (a / math.sqrt(math.pi)) * torch.exp(-((a * u) ** 2)), None, None


class _ATanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, alpha: float, strict: bool) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return heaviside(u, strict)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        return grad_out * (a / 2) / (1 + (math.pi / 2 * a * u) ** 2), None, None


class _ParrotSpike(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, u: torch.Tensor, a: torch.Tensor, b: torch.Tensor, strict: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(u, a, b)
        return heaviside(u, strict)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        u, a, b = ctx.saved_tensors
        sa, sb = F.softplus(a), F.softplus(b)
        tanh = torch.tanh(sa * u)
        sech2 = 1 - tanh * tanh
        grad_u = grad_out * sb * sa * sech2
        # The gradients of the primitive sb * tanh(sa * u) with respect to the raw a, b
        # (softplus' derivative is the sigmoid), summed over every axis but the channels.
        grad_a = grad_out * sb * sech2 * u * torch.sigmoid(a)
        grad_b = grad_out * tanh * torch.sigmoid(b)
        dims = tuple(range(grad_out.dim() - 1))
        if dims:
            grad_a = grad_a.sum(dim=dims)
            grad_b = grad_b.sum(dim=dims)
        return grad_u, grad_a, grad_b, None


class Surrogate(nn.Module):
    """A spike function: Heaviside forward, smooth surrogate backward."""

    name: str = ""

    def forward(self, u: torch.Tensor, strict: bool = False) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        """The smooth function whose derivative is the surrogate gradient."""
        raise NotImplementedError


class Erf(Surrogate):
    """spikingjelly's `surrogate.Erf`: gradient alpha/sqrt(pi) * exp(-(alpha u)^2)."""

    name = "erf"

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"Erf surrogate alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, u: torch.Tensor, strict: bool = False) -> torch.Tensor:
        return _ErfSpike.apply(u, self.alpha, strict)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative at u (for cells that fuse their own backward)."""
        return (self.alpha / math.sqrt(math.pi)) * torch.exp(-((self.alpha * u) ** 2))

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return torch.special.erfc(-self.alpha * u) / 2

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class ATan(Surrogate):
    """snnTorch's `surrogate.atan`: gradient (alpha/2) / (1 + (pi/2 alpha u)^2)."""

    name = "atan"

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"ATan surrogate alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, u: torch.Tensor, strict: bool = False) -> torch.Tensor:
        return _ATanSpike.apply(u, self.alpha, strict)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative at u (for cells that fuse their own backward)."""
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * u) ** 2)

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * u) / math.pi + 0.5

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SpikingParrot(Surrogate):
    """SpikingParrot's learnable surrogate: softplus(b) softplus(a) sech^2(softplus(a) u).

    `a` and `b` have one entry per channel (the input's last dimension).
    """

    name = "spikingparrot"

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"SpikingParrot surrogate needs channels >= 1, got {channels!r}")
        # softplus(log(e - 1)) == 1: the surrogate starts as sech^2(u).
        init = math.log(math.expm1(1.0))
        self.a = nn.Parameter(torch.full((channels,), init))
        self.b = nn.Parameter(torch.full((channels,), init))

    def forward(self, u: torch.Tensor, strict: bool = True) -> torch.Tensor:
        if u.shape[-1] != self.a.shape[0]:
            raise ValueError(
                f"SpikingParrot surrogate has {self.a.shape[0]} channels, input's last "
                f"dimension is {u.shape[-1]}"
            )
        return _ParrotSpike.apply(u, self.a.to(u.dtype), self.b.to(u.dtype), strict)

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.b) * torch.tanh(F.softplus(self.a) * u)

    def extra_repr(self) -> str:
        return f"channels={self.a.shape[0]}"


SURROGATES = ("erf", "atan", "spikingparrot")


def make_surrogate(name: str, channels: int, alpha: float = 2.0) -> Surrogate:
    """A fresh surrogate by name; `channels` is used by the per-channel ones only."""
    if name == "erf":
        return Erf(alpha)
    if name == "atan":
        return ATan(alpha)
    if name == "spikingparrot":
        return SpikingParrot(channels)
    raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATES)}")
