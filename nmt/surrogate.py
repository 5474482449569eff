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
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ATan",
    "Erf",
    "SURROGATES",
    "SpikingParrot",
    "Surrogate",
    "atan_grad",
    "erf_grad",
    "heaviside",
    "make_surrogate",
]


def heaviside(u: torch.Tensor, strict: bool) -> torch.Tensor:
    """1 where u > 0 (strict) or u >= 0 (not strict), else 0, in u's dtype."""
    return (u > 0).to(u.dtype) if strict else (u >= 0).to(u.dtype)


def erf_grad(u: torch.Tensor, alpha: float, grad_out: torch.Tensor | float = 1.0) -> torch.Tensor:
    """`Erf`'s derivative alpha / sqrt(pi) * exp(-(alpha u)^2) at u, times `grad_out`.

    The one place it is written: the autograd backward passes the incoming gradient, the fused
    gate cell (through `Erf.grad`) leaves it at 1. The factors multiply left to right in both,
    in the order each path always used, so neither rounds differently than it did."""
    return grad_out * (alpha / math.sqrt(math.pi)) * torch.exp(-((alpha * u) ** 2))


def atan_grad(u: torch.Tensor, alpha: float, grad_out: torch.Tensor | float = 1.0) -> torch.Tensor:
    """`ATan`'s derivative (alpha / 2) / (1 + (pi/2 alpha u)^2) at u, times `grad_out` (see
    `erf_grad` for why the incoming gradient is an argument)."""
    return grad_out * (alpha / 2) / (1 + (math.pi / 2 * alpha * u) ** 2)


class _AlphaSpike(torch.autograd.Function):
    """Heaviside forward; backward through `derivative(u, alpha, grad_out)`."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, alpha: float, strict: bool, derivative) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        ctx.derivative = derivative
        return heaviside(u, strict)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        return ctx.derivative(u, ctx.alpha, grad_out), None, None, None


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


class _AlphaSurrogate(Surrogate):
    """A surrogate with one fixed sharpness `alpha` and a closed-form derivative."""

    derivative: Callable[..., torch.Tensor]  # erf_grad or atan_grad, as a staticmethod

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"{type(self).__name__} surrogate alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, u: torch.Tensor, strict: bool = False) -> torch.Tensor:
        return _AlphaSpike.apply(u, self.alpha, strict, self.derivative)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative at u (for cells that fuse their own backward)."""
        return self.derivative(u, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Erf(_AlphaSurrogate):
    """spikingjelly's `surrogate.Erf`: gradient alpha/sqrt(pi) * exp(-(alpha u)^2)."""

    name = "erf"
    derivative = staticmethod(erf_grad)

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return torch.special.erfc(-self.alpha * u) / 2


class ATan(_AlphaSurrogate):
    """snnTorch's `surrogate.atan`: gradient (alpha/2) / (1 + (pi/2 alpha u)^2)."""

    name = "atan"
    derivative = staticmethod(atan_grad)

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * u) / math.pi + 0.5


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
