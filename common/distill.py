"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): the loss term a fine-tune adds so that
a compressed student follows the token distributions of its frozen dense teacher.

`Distill(teacher, temperature, weight)` travels in a `common.spec.Finetune`; each family's trainer
runs the teacher on the student's own batches (eval mode, no gradients) and adds
`weight * distillation_loss(student_logits, teacher_logits, temperature)` to its loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def parse_distill(text: str) -> tuple[float, float]:
    """Parse "T,W" into (T, W), T > 0 and W >= 0 (finite); ValueError naming the flag if not."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        t, w = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"--distill must be T,W (two numbers, e.g. 2,0.5); got {text!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"--distill: the temperature T must be > 0; got {parts[0]!r}")
    if not (math.isfinite(w) and w >= 0):
        raise ValueError(f"--distill: the weight W must be >= 0; got {parts[1]!r}")
    return t, w


@dataclass(frozen=True)
class Distill:
    """The teacher (frozen, in eval mode from here on) and the term's temperature and weight."""

    teacher: nn.Module
    temperature: float
    weight: float

    def __post_init__(self) -> None:
        if not self.temperature > 0 or not self.weight >= 0:
            raise ValueError(
                f"distillation needs T > 0 and W >= 0; got T={self.temperature}, W={self.weight}"
            )
        self.teacher.eval()
        self.teacher.requires_grad_(False)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), summed over the vocabulary and
    averaged over the rows (one row per scored token). The T^2 factor (Hinton et al.) keeps the
    term's gradients at the scale of the hard-label loss's as T changes."""
    t = float(temperature)
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.detach().float() / t, dim=-1)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")
    return kl * (t * t)
