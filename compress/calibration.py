"""Calibration inputs of weight targets: H = sum X X^T over the columns X a target multiplies.

For an LSTM or GRU target (the fused [W_ih | W_hh], see compress.targets) each column of X is
[x_t ; h_{t-1}] for every step t of every sequence: x_t from the layer's input, h_{t-1} from its
output sequence shifted by one step and, at t = 0, from the hidden state handed in. For an
`nn.Linear` target X is its input, and for an LSTM's projection the o * tanh(c) of every step
(the layer steps through the sequence while a hook watches its projection). Forward hooks
collect them while a model family's calibration batches run (ModelSpec.calibration: forward
passes over training windows, eval mode), so nothing here knows a model family. H lives on the
device of the target's weight (a model on a GPU collects and solves there), in float64. An embedding
target has no such inputs (one-hot rows): the calibrated methods (--keep saliency,
--reconstruct) refuse it.

`Saliency` turns H into a score for every weight: "saliency", the OBS score w^2 / [H^-1]_jj with
H damped by lambda = damp * mean(diag H) (Hassibi and Stork; the damping as in SparseGPT), what
removing that weight alone costs on the calibration inputs once the others are re-fitted; or
"activation", w^2 H_jj (Wanda's |w| ||x_j||, squared), what removing it costs with nothing
re-fitted. Where inputs are collinear (an embedding's few distinct vectors, correlated hidden
units) OBS calls every weight of a collinear set cheap, since each alone could be made up for by
the others, and removing two thirds of a matrix at once then removes whole sets: measured on the
ptbc cpu model at alpha 3 (row balance, re-solved, no fine-tuning) OBS gave 2.77 valid BPC,
magnitude 2.03, activation 2.01.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from compress.targets import WeightTarget

# lambda = DAMP * mean(diag H): keeps H_SS invertible where inputs are collinear or unused
DAMP = 1e-2
# calibration batches per collection, at most: the LM and translator specs give 16 (an LM's are
# 16 windows of batch x bptt steps); the names spec hands over its whole training set
MAX_BATCHES = 16
CALIBRATED_KINDS = ("lstm", "gru", "proj", "linear")
RECURRENT_KINDS = ("lstm", "gru")  # inputs [x_t ; h_{t-1}]

# () -> (run_batch, batches): a fresh calibration source, as ModelSpec.calibration returns one
Source = Callable[[], tuple[Callable[[object], object], Iterable]]


def check_calibration_targets(targets: list[WeightTarget], what: str) -> None:
    """ValueError naming the first target with no calibration inputs."""
    for t in targets:
        if t.kind not in CALIBRATED_KINDS:
            raise ValueError(
                f"{what} needs each target's inputs, but target {t.name!r} is an {t.kind} "
                f"(only recurrent layers and nn.Linear have them); choose --targets without it, "
                f"or --keep magnitude --no-reconstruct"
            )


@dataclass
class Gram:
    """H = sum over samples of x x^T (float64, cols x cols) and the number of samples."""

    H: torch.Tensor
    samples: int = 0


def target_inputs(t: WeightTarget, args: tuple, kwargs: dict, output) -> torch.Tensor:
    """(samples, t.cols): the columns the target's matrix multiplied in one forward call."""
    x = args[0] if args else next(iter(kwargs.values()))  # the first argument is the input
    if t.kind in RECURRENT_KINDS:
        hidden = args[1] if len(args) > 1 else kwargs.get("hidden")
        out = output[0]  # (seq, batch, hidden)
        if isinstance(hidden, tuple | list):  # an LSTM's (h, c); a GRU hands h alone
            hidden = hidden[0]
        h0 = hidden if hidden is not None else torch.zeros_like(out[:1])
        prev = torch.cat([h0.reshape(1, *out.shape[1:]).to(out.dtype), out[:-1]], dim=0)
        x = torch.cat([x, prev], dim=-1)
    return x.reshape(-1, t.cols)


@torch.no_grad()
def collect_grams(
    model: nn.Module,
    targets: list[WeightTarget],
    source: Source,
    max_batches: int | None = MAX_BATCHES,
) -> dict[str, Gram]:
    """H of every target's inputs over the calibration batches; the model's train/eval mode is
    restored afterwards (the batches run in eval mode, and fine-tuning goes on after an event)."""
    check_calibration_targets(targets, "calibration")
    grams = {
        t.name: Gram(torch.zeros(t.cols, t.cols, dtype=torch.float64, device=t.raw().device))
        for t in targets
    }

    def hook_of(t: WeightTarget):
        def hook(module, args, kwargs, output):
            x = target_inputs(t, args, kwargs, output).detach().to(torch.float64)
            g = grams[t.name]
            g.H.addmm_(x.T, x)
            g.samples += x.shape[0]

        return hook

    handles = [t.module.register_forward_hook(hook_of(t), with_kwargs=True) for t in targets]
    was_training = model.training
    try:
        run_batch, batches = source()
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            run_batch(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return grams


def damping(H: torch.Tensor, damp: float = DAMP) -> float:
    """lambda = damp * mean(diag H); damp itself where H is all zero (no input reached the
    target), so that H + lambda I stays invertible whenever damp > 0."""
    lam = damp * float(H.diagonal().mean()) if H.numel() else 0.0
    return lam if lam > 0 else float(damp)


def damped(H: torch.Tensor, damp: float = DAMP) -> torch.Tensor:
    """H + lambda I."""
    return H + damping(H, damp) * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)


def inverse_diagonal(H: torch.Tensor, damp: float = DAMP) -> torch.Tensor:
    """diag((H + lambda I)^-1), by a Cholesky factor (H + lambda I is positive definite)."""
    return torch.cholesky_inverse(torch.linalg.cholesky(damped(H, damp))).diagonal()


class Saliency:
    """w^2 * c_j, a `Scorer` for the prune and combine passes, with c = 1 / diag((H + lambda I)^-1)
    ("saliency", OBS) or c = diag(H) ("activation"); `refresh` sets c per target from its
    calibration inputs (at each event)."""

    def __init__(self, kind: str = "saliency", damp: float = DAMP) -> None:
        if kind not in ("saliency", "activation"):
            raise ValueError(f"kind must be 'saliency' or 'activation'; got {kind!r}")
        self.kind = kind
        self.damp = damp
        self.column_weight: dict[str, torch.Tensor] = {}

    def refresh(self, grams: dict[str, Gram]) -> None:
        def weight(H: torch.Tensor) -> torch.Tensor:
            if self.kind == "activation":
                return H.diagonal().clone()
            return 1.0 / inverse_diagonal(H, self.damp)

        self.column_weight = {name: weight(g.H) for name, g in grams.items()}

    def __call__(self, t: WeightTarget, w: torch.Tensor) -> torch.Tensor:
        c = self.column_weight.get(t.name)
        if c is None:
            raise RuntimeError(f"{self.kind} of {t.name!r} asked before its calibration inputs")
        return w.detach().to(torch.float64).square() * c.to(w.device)
