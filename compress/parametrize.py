"""Parametrizations the passes register on a target's weight.

They chain in registration order, so with prune, combine and quantize passes the weight seen in
forward is quant(combine_mask * prune_mask * W). Masks are buffers updated in place under
no_grad, so the optimizer, the state_dict and any compiled graph keep pointing at the same
tensors between prune events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.utils import parametrize

if TYPE_CHECKING:
    from compress.targets import WeightTarget


class Mask(nn.Module):
    """W -> W * mask. The mask is a float buffer of 0s and 1s shaped like W."""

    def __init__(self, shape: torch.Size | tuple[int, ...], *, name: str = "mask") -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(shape))
        self.label = name

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask

    @torch.no_grad()
    def set_(self, keep: torch.Tensor) -> None:
        if keep.shape != self.mask.shape:
            raise ValueError(f"mask shape {tuple(keep.shape)} != weight {tuple(self.mask.shape)}")
        self.mask.copy_(keep.to(self.mask.dtype))


def symmetric_scale(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-row scale of symmetric integer quantization: max |w_row| / (2^(bits-1) - 1)."""
    qmax = 2 ** (bits - 1) - 1
    amax = w.detach().abs().amax(dim=1, keepdim=True)
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def quantize_rows(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer-valued codes, per-row scale) with w ~= codes * scale; zeros stay exactly zero."""
    qmax = 2 ** (bits - 1) - 1
    scale = symmetric_scale(w, bits)
    codes = torch.clamp(torch.round(w.detach() / scale), -qmax, qmax)
    return codes, scale


class FakeQuant(nn.Module):
    """Symmetric per-row fake quantization with a straight-through estimator.

    Forward returns codes * scale; backward passes the gradient through unchanged (the STE), so
    quantization-aware fine-tuning trains the float weights underneath.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        if not 2 <= bits <= 16:
            raise ValueError(f"weight bits must be in 2..16 for fake quantization; got {bits}")
        self.bits = int(bits)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        codes, scale = quantize_rows(w, self.bits)
        return w + (codes * scale - w).detach()


class ActQuant(nn.Module):
    """Unsigned/signed uniform fake quantization of activations with a calibrated range.

    Until calibrated it records the running max |x| and passes x through; afterwards it
    quantizes symmetrically to `bits` with that range (STE backward). Both the range and the
    calibrated flag are buffers, so a resumed run quantizes exactly as the interrupted one did.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        if not 2 <= bits <= 16:
            raise ValueError(f"activation bits must be in 2..16; got {bits}")
        self.bits = int(bits)
        self.register_buffer("amax", torch.zeros(()))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    @property
    def calibrating(self) -> bool:
        return not bool(self.calibrated)

    @calibrating.setter
    def calibrating(self, on: bool) -> None:
        self.calibrated.fill_(not on)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            with torch.no_grad():
                self.amax.copy_(torch.maximum(self.amax, x.detach().abs().max()))
            return x
        qmax = 2 ** (self.bits - 1) - 1
        scale = (self.amax / qmax).clamp_min(torch.finfo(x.dtype).tiny)
        q = torch.clamp(torch.round(x.detach() / scale), -qmax, qmax) * scale
        return x + (q - x).detach()


def find(module: nn.Module, param: str, kind: type[nn.Module], label: str | None = None):
    """The first parametrization of type `kind` (and label) registered on module.param, or None."""
    if not parametrize.is_parametrized(module, param):
        return None
    for p in getattr(module.parametrizations, param):
        if isinstance(p, kind) and (label is None or getattr(p, "label", None) == label):
            return p
    return None


class MaskPass:
    """A pass that keeps one mask of `mask_type`, labelled with the pass's `name`, on each target's
    weight. A weight that already carries that mask keeps it: one mask per label, however often
    `prepare` runs."""

    name: str
    mask_type: type[Mask] = Mask

    def __init__(self, config: Any) -> None:
        self.config = config

    def prepare(self, targets: list[WeightTarget]) -> None:
        for t in targets:
            if find(t.module, t.param, Mask, self.name) is None:
                parametrize.register_parametrization(
                    t.module, t.param, self.mask_type((t.rows, t.cols), name=self.name)
                )
