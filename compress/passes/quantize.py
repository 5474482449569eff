"""Quantization: symmetric per-row integer weights and calibrated activations, with an STE.

Post-training (`ptq`): calibrate activation ranges on training batches, quantize, no retraining.
Quantization-aware (`qat`): the same fake quantizers are active while fine-tuning. Every
targeted matrix is quantized, the last one included (the published code misses its final layer).

Activations are quantized at each target's input (a forward pre-hook) and, for LSTM and GRU
targets, on the hidden state fed back to W_hh: the layer runs its step loop with `recurrent_act`
applied to h_{t-1} when that attribute is set (see lm.lstm.MaskableLSTM, lstmpack.rnn).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.config import QuantConfig
from compress.parametrize import ActQuant, FakeQuant, find
from compress.targets import WeightTarget

LABEL = "quantize"


def _input_hook(aq: ActQuant):
    def hook(module: nn.Module, args: tuple):
        if not args:
            return None
        return (aq(args[0]), *args[1:])

    return hook


class QuantizePass:
    name = LABEL

    def __init__(self, config: QuantConfig) -> None:
        self.config = config
        self._act: list[ActQuant] = []

    def prepare(self, targets: list[WeightTarget]) -> None:
        c = self.config
        for t in targets:
            if c.weights_on and find(t.module, t.param, FakeQuant) is None:
                parametrize.register_parametrization(t.module, t.param, FakeQuant(c.bits))
            if c.acts_on and not hasattr(t.module, "input_act"):
                aq = ActQuant(c.act_bits)
                t.module.input_act = aq  # a submodule: its range travels in the state_dict
                t.module.register_forward_pre_hook(_input_hook(aq))
                self._act.append(aq)
                if t.kind in ("lstm", "gru"):
                    rq = ActQuant(c.act_bits)
                    t.module.recurrent_act = rq
                    self._act.append(rq)

    def update(self, targets: list[WeightTarget], frac: float) -> None:
        """Weight scales follow the weights on every forward; nothing to do at prune events."""

    @torch.no_grad()
    def calibrate(self, run_batch: Callable[[object], object], batches: Iterable) -> int:
        """Record activation ranges over `batches` (forward only); returns how many were run."""
        if not self._act:
            return 0
        for aq in self._act:
            aq.calibrating = True
            aq.amax.zero_()
        n = 0
        for batch in batches:
            run_batch(batch)
            n += 1
            if n >= self.config.calib_batches:
                break
        for aq in self._act:
            aq.calibrating = False
        return n

    def act_ranges(self) -> list[float]:
        return [float(a.amax) for a in self._act]
