"""The surname classifier: one-hot letters -> (spiking) LSTM stack -> linear readout."""

from __future__ import annotations

import torch
from torch import nn

from nmt.names.config import READOUTS, NamesConfig
from nmt.names.data import LETTERS
from nmt.stacks import AnalogLSTM, GateSpikingLSTM, OutputSpikingLSTM

__all__ = ["NamesClassifier", "build_model", "count_params"]


class NamesClassifier(nn.Module):
    """One-hot letters -> LSTM stack -> linear readout of the last letter's output."""

    def __init__(self, lstm: nn.Module, n_classes: int, readout: str = "last") -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r}; choose one of {', '.join(READOUTS)}")
        self.lstm = lstm
        self.readout_mode = readout
        width = lstm.hidden_size * lstm.num_directions
        self.readout = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x, lengths=lengths)
        lengths = lengths.to(y.device)
        if self.readout_mode == "last":
            feats = y[lengths - 1, torch.arange(y.shape[1], device=y.device)]
        else:
            feats = y.sum(0) / lengths.unsqueeze(1).to(y.dtype)
        return self.readout(feats)

    def spike_stats(self) -> dict[str, list[int]] | None:
        return self.lstm.spike_stats() if self.lstm.spiking else None


def build_model(config: NamesConfig, n_classes: int = 18) -> NamesClassifier:
    """The classifier for `config` (seeded by config.seed)."""
    torch.manual_seed(config.seed)
    options = dict(num_layers=config.num_layers, dropout=config.dropout)
    if config.cell != "analog":
        options.update(surrogate=config.cell_surrogate(), alpha=config.alpha)
    if config.cell == "gate":
        lstm = GateSpikingLSTM(len(LETTERS), config.hidden_size, clamp=config.clamp, **options)
    elif config.cell == "output":
        lstm = OutputSpikingLSTM(
            len(LETTERS), config.hidden_size, threshold=config.threshold, **options
        )
    else:
        lstm = AnalogLSTM(len(LETTERS), config.hidden_size, **options)
    return NamesClassifier(lstm, n_classes, config.readout)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
