"""Multi-layer, optionally bidirectional stacks of the nmt.cells cells, over whole sequences.

The stacks (`GateSpikingLSTM`, `OutputSpikingLSTM`, `AnalogLSTM`) take input [T, B, d] time-first
and give ([T, B, dirs*H], (h_n, c_n)) with states [layers*dirs, B, H] in layer-major order
(index = layer*dirs + direction, as `nn.LSTM`). A `lengths` argument stops each sequence's state
at its end; the reverse direction starts at each sequence's last real element; outputs at padded
positions are 0. After every forward each cell holds its spike count over the non-padded
positions (`spike_count`, `position_count`), which `spike_stats()` and `spike_rate()` report.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from nmt.cells import (
    AnalogLSTMCell,
    GateSpikingLSTMCell,
    LSTMCellBase,
    OutputSpikingLSTMCell,
    State,
    check_sizes,
)

__all__ = ["AnalogLSTM", "GateSpikingLSTM", "OutputSpikingLSTM"]


def _reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[T, B] time index that reverses each sequence within its length (an involution)."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    rev = lengths.unsqueeze(0) - 1 - t
    return torch.where(t < lengths.unsqueeze(0), rev, t)


class _LSTMStack(nn.Module):
    cell_class: type[LSTMCellBase] = LSTMCellBase
    spiking: bool = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        bias: bool = True,
        dropout: float = 0.0,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.bias = bias
        self.dropout = float(dropout)
        self.num_directions = 2 if bidirectional else 1
        sizes = [input_size] + [hidden_size * self.num_directions] * (num_layers - 1)

        def make() -> nn.ModuleList:
            return nn.ModuleList(
                self.cell_class(d, hidden_size, bias, **cell_kwargs) for d in sizes
            )

        self.cells = make()
        self.cells_reverse = make() if bidirectional else None

    def _cell(self, layer: int, direction: int) -> LSTMCellBase:
        return self.cells[layer] if direction == 0 else self.cells_reverse[layer]

    def _check_lengths(self, lengths, steps: int, batch: int, device) -> torch.Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        if lengths.dim() != 1 or lengths.shape[0] != batch:
            raise ValueError(
                f"lengths must have shape [{batch}] (one per sequence), got {tuple(lengths.shape)}"
            )
        if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > steps):
            raise ValueError(
                f"lengths must lie in [0, {steps}] (the input has T={steps}), got "
                f"min {int(lengths.min())}, max {int(lengths.max())}"
            )
        if bool((lengths == steps).all()):
            return None
        return lengths.to(device)

    def forward(
        self,
        x: torch.Tensor,
        state: State | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, State]:
        """x [T, B, input_size] -> (outputs [T, B, dirs*H], (h_n, c_n) [layers*dirs, B, H])."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input [T, B, {self.input_size}] (time first), "
                f"got {tuple(x.shape)}"
            )
        steps, batch, _ = x.shape
        n_states = self.num_layers * self.num_directions
        if state is None:
            h0 = x.new_zeros(n_states, batch, self.hidden_size)
            c0 = torch.zeros_like(h0)
        else:
            h0, c0 = state
            want = (n_states, batch, self.hidden_size)
            if tuple(h0.shape) != want or tuple(c0.shape) != want:
                raise ValueError(
                    f"state (h0, c0) must both be {want} (layers*dirs, batch, hidden), got "
                    f"{tuple(h0.shape)} and {tuple(c0.shape)}"
                )
        lengths = self._check_lengths(lengths, steps, batch, x.device)
        mask = None
        rev_index = None
        if lengths is not None:
            mask = (torch.arange(steps, device=x.device).unsqueeze(1) < lengths).unsqueeze(2)
            rev_index = _reverse_index(lengths, steps).unsqueeze(2)
        positions = steps * batch if lengths is None else int(lengths.sum())

        h_n, c_n = [], []
        y = x
        # One parametrized-weight evaluation per forward, shared by all time steps.
        with parametrize.cached():
            for layer in range(self.num_layers):
                outs = []
                for direction in range(self.num_directions):
                    cell = self._cell(layer, direction)
                    k = layer * self.num_directions + direction
                    inp = y
                    if direction == 1:
                        inp = (
                            y.flip(0)
                            if rev_index is None
                            else y.gather(0, rev_index.expand(-1, -1, y.shape[2]))
                        )
                    out, h, c = self._run(cell, inp, (h0[k], c0[k]), mask)
                    if direction == 1:
                        out = (
                            out.flip(0)
                            if rev_index is None
                            else out.gather(0, rev_index.expand(-1, -1, out.shape[2]))
                        )
                    with torch.no_grad():
                        cell.spike_count = (out != 0).sum()
                    cell.position_count = positions
                    outs.append(out)
                    h_n.append(h)
                    c_n.append(c)
                y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
                if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                    y = F.dropout(y, p=self.dropout, training=True)
        return y, (torch.stack(h_n), torch.stack(c_n))

    @staticmethod
    def _run(
        cell: LSTMCellBase, x: torch.Tensor, state: State, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gates_x = cell.linear_ih(x)  # the whole sequence's input projection in one GEMM
        h, c = state
        outs = []
        for t in range(x.shape[0]):
            out, (h_new, c_new) = cell.step(gates_x[t], (h, c))
            if mask is None:
                h, c = h_new, c_new
            else:
                m = mask[t]
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c)
                out = torch.where(m, out, 0.0)
            outs.append(out)
        if not outs:
            return x.new_zeros(0, x.shape[1], cell.hidden_size), h, c
        return torch.stack(outs), h, c

    def spike_stats(self) -> dict[str, list[int]]:
        """Per layer (both directions summed), from the last forward: output spikes
        ("spikes", nonzero outputs), neuron-steps seen over non-padded positions
        ("neuron_steps" = positions * hidden_size * dirs) and "positions" (valid (t, b))."""
        spikes, steps, positions = [], [], []
        for layer in range(self.num_layers):
            cells = [self._cell(layer, d) for d in range(self.num_directions)]
            if any(c.spike_count is None for c in cells):
                raise ValueError("spike_stats() needs a forward pass first")
            spikes.append(int(sum(int(c.spike_count) for c in cells)))
            steps.append(int(sum(c.position_count * c.hidden_size for c in cells)))
            positions.append(cells[0].position_count)
        return {"spikes": spikes, "neuron_steps": steps, "positions": positions}

    def spike_rate(self) -> float:
        """Spikes per neuron per non-padded step over all layers, from the last forward."""
        stats = self.spike_stats()
        total = sum(stats["neuron_steps"])
        return sum(stats["spikes"]) / total if total else 0.0

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )


class GateSpikingLSTM(_LSTMStack):
    """Stack of `GateSpikingLSTMCell` (spikingjelly's `SpikingLSTM`); outputs are binary h.

    Cell options (`surrogate`, `alpha`, `clamp`) are passed to every cell.
    """

    cell_class = GateSpikingLSTMCell


class OutputSpikingLSTM(_LSTMStack):
    """Stack of `OutputSpikingLSTMCell` (snnTorch SLSTM); outputs are the spikes, and the
    next layer's input is the previous layer's spikes. (h_n, c_n) are the analog states.

    Cell options (`surrogate`, `alpha`, `threshold`, `learn_threshold`, `zero_state_quirk`)
    are passed to every cell.
    """

    cell_class = OutputSpikingLSTMCell


class AnalogLSTM(_LSTMStack):
    """Stack of `AnalogLSTMCell`: the ordinary LSTM on the same weight layout."""

    cell_class = AnalogLSTMCell
    spiking = False
