"""Perplexity of the biLM: forward, backward and their mean, with the full softmax.

Each direction reads its own stream (elmo.data: the backward one is the reversed stream) as
`eval_batch_size` parallel columns in windows of `bptt`, its LSTM state carried from window to
window, and scores every next token of its reading order: the forward LM predicts token t+1 from
tokens 0..t, the backward LM token t-1 from tokens t..N-1. The mean over the targets scored is
exact (sums in float64). ELMo reports the mean of the two perplexities.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from common.device import module_device
from elmo.config import ELMoConfig
from elmo.data import ELMoData, batchify, window, window_starts
from elmo.model import DIRECTIONS, BiLM

__all__ = ["direction_nll", "evaluate", "perplexities", "ppl"]


def ppl(nll: float) -> float:
    """exp(nll), inf past float range."""
    return math.exp(nll) if nll < 700 else math.inf


def stream(ids: torch.Tensor, direction: str) -> torch.Tensor:
    """The token stream `direction` reads left to right: `ids`, or `ids` reversed."""
    return ids if direction == "fwd" else ids.flip(0)


@torch.no_grad()
def direction_nll(
    model: BiLM, data: ELMoData, ids: torch.Tensor, direction: str, cfg: ELMoConfig
) -> float:
    """Mean NLL (nats) of `direction`'s LM over the split `ids`, in eval mode."""
    device = module_device(model)
    source = batchify(stream(ids, direction), cfg.eval_batch_size).to(device)
    was_training = model.training
    model.eval()
    try:
        states = None
        total, count = 0.0, 0
        for start in window_starts(source, cfg.bptt):
            x, y = window(source, start, cfg.bptt)
            out, states = model.run(direction, model.encoder(data.char_ids(x)), states)
            total += float(model.nll(out, y, reduction="sum").double())
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def perplexities(model: BiLM, data: ELMoData, ids: torch.Tensor, cfg: ELMoConfig) -> dict:
    """{"ppl_forward", "ppl_backward", "ppl" (their mean), "nll_forward", "nll_backward"}."""
    nll = {d: direction_nll(model, data, ids, d, cfg) for d in DIRECTIONS}
    fwd, bwd = ppl(nll["fwd"]), ppl(nll["bwd"])
    return {"ppl": (fwd + bwd) / 2, "ppl_forward": fwd, "ppl_backward": bwd,
            "nll_forward": nll["fwd"], "nll_backward": nll["bwd"]}  # fmt: skip


def evaluate(model: BiLM, data: ELMoData, cfg: ELMoConfig) -> dict[str, Any]:
    """{"valid": perplexities, "test": perplexities} (see `perplexities`)."""
    return {split: perplexities(model, data, getattr(data, split), cfg)
            for split in ("valid", "test")}  # fmt: skip
