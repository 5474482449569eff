"""Spiking LSTM cells (gate-spiking and output-spiking), an analog twin, and their stacks.

Two spiking LSTMs cost very different things on hardware:

- Gate-spiking (`GateSpikingLSTMCell`, spikingjelly 2.0.0 `SpikingLSTMCell` semantics,
  after Lotfi Rezaabad and Vishwanath 2020): all four gates are Heaviside steps of their
  pre-activation, H(u) = 1 if u >= 0, with a surrogate gradient (default Erf, alpha 2);
  c' = f*c + i*g is clamped to at most 1 in the forward pass only, h' = o*c'. With the clamp
  h is binary, so the recurrent product W_hh h only accumulates.
- Output-spiking (`OutputSpikingLSTMCell`, snnTorch 0.9.4 `SLSTM` semantics, as used by the
  SpikingParrot translator): an analog LSTM (sigmoid/tanh gates, analog h and c carried in
  the recurrence) whose output is a spike s = 1 if h - theta > 0, theta a learnable scalar
  per cell (initial 1.0), no reset.

Every cell keeps its weights in two `nn.Linear` (`linear_ih`: input_size -> 4H and
`linear_hh`: H -> 4H, gate rows in order i, f, g, o), so the compression passes see them as
plain linear targets; parametrizations registered on their weights apply on every forward
(a stack reads them once per forward under `torch.nn.utils.parametrize.cached()`).

The stacks (`GateSpikingLSTM`, `OutputSpikingLSTM`, `AnalogLSTM`) are multi-layer and
optionally bidirectional: input [T, B, d] time-first, output ([T, B, dirs*H], (h_n, c_n))
with states [layers*dirs, B, H] in layer-major order (index = layer*dirs + direction, as
`nn.LSTM`). A `lengths` argument stops each sequence's state at its end; the reverse
direction starts at each sequence's last real element; outputs at padded positions are 0.
After every forward each cell holds its spike count over the non-padded positions
(`spike_count`, `position_count`), which `spike_stats()` and `spike_rate()` report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from nmt.surrogate import Surrogate, make_surrogate

__all__ = [
    "AnalogLSTM",
    "AnalogLSTMCell",
    "GateSpikingLSTM",
    "GateSpikingLSTMCell",
    "OutputSpikingLSTM",
    "OutputSpikingLSTMCell",
]

State = tuple[torch.Tensor, torch.Tensor]


class _ClampMaxStraightThrough(torch.autograd.Function):
    """min(x, bound) forward, identity backward (spikingjelly clamps under no_grad)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        return x.clamp(max=bound)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        return grad_out, None


class _GateSpikingUpdate(torch.autograd.Function):
    """The gate cell's elementwise part, u [B, 4H], c [B, H] -> (h', c'), in one node.

    Same values as the unfused path (Heaviside gates, optional clamp, h' = o c'); the
    backward is written out (straight through the clamp, surrogate derivative at u), which
    saves a dozen autograd nodes per time step. Used for surrogates without parameters.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, c: torch.Tensor, surrogate, clamp: bool):
        s = (u >= 0).to(u.dtype)
        i, f, g, o = s.chunk(4, dim=-1)
        c_new = f * c + i * g
        if clamp:
            c_new = c_new.clamp(max=1.0)
        h = o * c_new
        ctx.surrogate = surrogate
        ctx.save_for_backward(u, s, c, c_new)
        return h, c_new

    @staticmethod
    def backward(ctx, dh: torch.Tensor, dc: torch.Tensor):
        u, s, c, c_new = ctx.saved_tensors
        i, f, g, o = s.chunk(4, dim=-1)
        dc_total = dc + dh * o
        ds = torch.cat((dc_total * g, dc_total * c, dc_total * i, dh * c_new), dim=-1)
        return ds * ctx.surrogate.grad(u), dc_total * f, None, None


def _check_sizes(input_size: int, hidden_size: int) -> None:
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    if not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")


class _LSTMCellBase(nn.Module):
    """Two linear maps (i, f, g, o row blocks) and the uniform initialisation of both kinds."""

    spike_kind: str = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.linear_ih = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.linear_hh = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)
        self.reset_parameters()
        # Filled by the stacks after each forward: spikes emitted and (t, b) positions seen.
        self.spike_count: torch.Tensor | None = None
        self.position_count: int = 0

    def reset_parameters(self) -> None:
        """Weights and biases U(-1/sqrt(H), 1/sqrt(H)), as nn.LSTM and both originals."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for lin in (self.linear_ih, self.linear_hh):
            nn.init.uniform_(lin.weight, -bound, bound)
            if lin.bias is not None:
                nn.init.uniform_(lin.bias, -bound, bound)

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        h = like.new_zeros(batch, self.hidden_size)
        return h, torch.zeros_like(h)

    def step(self, gates_x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step from the input projection `linear_ih(x)`: (output, (h, c))."""
        raise NotImplementedError

    def _state(self, x: torch.Tensor, state: State | None) -> State:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input [batch, {self.input_size}], got "
                f"{tuple(x.shape)}"
            )
        if state is None:
            return self.zero_state(x.shape[0], x)
        h, c = state
        want = (x.shape[0], self.hidden_size)
        if tuple(h.shape) != want or tuple(c.shape) != want:
            raise ValueError(
                f"state (h, c) must both be {want}, got {tuple(h.shape)} and {tuple(c.shape)}"
            )
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class GateSpikingLSTMCell(_LSTMCellBase):
    """spikingjelly's spiking LSTM cell: binary gates, clamped cell state, binary h.

    [i, f, g, o] = H(W_ih x + b_ih + W_hh h + b_hh), H(u) = 1 if u >= 0 else 0, backward
    through `surrogate`; c' = f*c + i*g, clamped to <= 1 in the forward pass only when
    `clamp` (spikingjelly >= 2.0; `clamp=False` is the older unbounded behaviour);
    h' = o * c'. `forward(x, (h, c)) -> (h', c')`.
    """

    spike_kind = "gate"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        surrogate: str | Surrogate = "erf",
        alpha: float = 2.0,
        clamp: bool = True,
    ) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.surrogate = (
            surrogate
            if isinstance(surrogate, Surrogate)
            else make_surrogate(surrogate, 4 * hidden_size, alpha)
        )
        self.clamp = bool(clamp)
        # The fused update is the fast path; the unfused one stays as its readable twin.
        self.fused = True

    def step(self, gates_x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        u = gates_x + self.linear_hh(h)
        if self.fused and hasattr(self.surrogate, "grad"):
            h, c = _GateSpikingUpdate.apply(u, c, self.surrogate, self.clamp)
            return h, (h, c)
        gates = self.surrogate(u, strict=False)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = f * c + i * g
        if self.clamp:
            c = _ClampMaxStraightThrough.apply(c, 1.0)
        h = o * c
        return h, (h, c)

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        _, new_state = self.step(self.linear_ih(x), self._state(x, state))
        return new_state

    def extra_repr(self) -> str:
        return super().extra_repr() + f", clamp={self.clamp}"


def _analog_lstm_update(gates: torch.Tensor, c: torch.Tensor) -> State:
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class OutputSpikingLSTMCell(_LSTMCellBase):
    """snnTorch's SLSTM: an analog LSTM cell whose output h is thresholded into a spike.

    h', c' are the ordinary LSTM update (sigmoid i, f, o; tanh g; h' = o tanh(c')) and are
    carried analog in the recurrence; the output is s = 1 if h' - threshold > 0 else 0,
    backward through `surrogate` (default SpikingParrot's, or "atan"). `threshold` is a
    scalar parameter (initial 1.0, learnable unless `learn_threshold=False`); no reset.
    `zero_state_quirk=True` reproduces snnTorch 0.9.4, which zeroes h and c before every
    step whenever input_size != hidden_size (its state-shape check compares against the
    input's shape). `forward(x, (h, c)) -> (spike, (h', c'))`.
    """

    spike_kind = "output"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        surrogate: str | Surrogate = "spikingparrot",
        alpha: float = 2.0,
        threshold: float = 1.0,
        learn_threshold: bool = True,
        zero_state_quirk: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.surrogate = (
            surrogate
            if isinstance(surrogate, Surrogate)
            else make_surrogate(surrogate, hidden_size, alpha)
        )
        t = torch.tensor(float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(t)
        else:
            self.register_buffer("threshold", t)
        self.zero_state_quirk = bool(zero_state_quirk)

    def step(self, gates_x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        if self.zero_state_quirk and self.input_size != self.hidden_size:
            h, c = torch.zeros_like(h), torch.zeros_like(c)
        h, c = _analog_lstm_update(gates_x + self.linear_hh(h), c)
        spike = self.surrogate(h - self.threshold, strict=True)
        return spike, (h, c)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        return self.step(self.linear_ih(x), self._state(x, state))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", zero_state_quirk={self.zero_state_quirk}"


class AnalogLSTMCell(_LSTMCellBase):
    """The plain LSTM cell (nn.LSTMCell's equations) on the same two linear maps.

    The analog baseline beside the spiking kinds; `forward(x, (h, c)) -> (h', c')`.
    """

    spike_kind = "analog"

    def step(self, gates_x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        h, c = _analog_lstm_update(gates_x + self.linear_hh(h), c)
        return h, (h, c)

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        _, new_state = self.step(self.linear_ih(x), self._state(x, state))
        return new_state


def _reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[T, B] time index that reverses each sequence within its length (an involution)."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    rev = lengths.unsqueeze(0) - 1 - t
    return torch.where(t < lengths.unsqueeze(0), rev, t)


class _LSTMStack(nn.Module):
    cell_class: type[_LSTMCellBase] = _LSTMCellBase
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
        _check_sizes(input_size, hidden_size)
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

    def _cell(self, layer: int, direction: int) -> _LSTMCellBase:
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
        cell: _LSTMCellBase, x: torch.Tensor, state: State, mask: torch.Tensor | None
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

    def all_cells(self) -> list[tuple[int, int, _LSTMCellBase]]:
        """(layer, direction, cell) for every cell."""
        return [
            (layer, d, self._cell(layer, d))
            for layer in range(self.num_layers)
            for d in range(self.num_directions)
        ]

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
