"""Spiking LSTM cells (gate-spiking and output-spiking) and an analog twin; nmt.stacks runs
them over sequences, in layers and directions.

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
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.surrogate import Surrogate, make_surrogate

__all__ = [
    "AnalogLSTMCell",
    "GateSpikingLSTMCell",
    "LSTMCellBase",
    "OutputSpikingLSTMCell",
    "check_sizes",
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


def _surrogate(surrogate: str | Surrogate, channels: int, alpha: float) -> Surrogate:
    """A cell's spike function: `surrogate` itself, or a fresh one of that name."""
    if isinstance(surrogate, Surrogate):
        return surrogate
    return make_surrogate(surrogate, channels, alpha)


def check_sizes(input_size: int, hidden_size: int) -> None:
    """The size check every cell and stack makes of its arguments."""
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    if not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")


class LSTMCellBase(nn.Module):
    """Two linear maps (i, f, g, o row blocks) and the uniform initialisation of both kinds."""

    spike_kind: str = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
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

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        """One time step: x [B, input_size], state (h, c) (zeros when None) -> (h', c')."""
        _, new_state = self.step(self.linear_ih(x), self._state(x, state))
        return new_state

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


class GateSpikingLSTMCell(LSTMCellBase):
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
        self.surrogate = _surrogate(surrogate, 4 * hidden_size, alpha)  # it sees all 4H gates
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

    def extra_repr(self) -> str:
        return super().extra_repr() + f", clamp={self.clamp}"


def _analog_lstm_update(gates: torch.Tensor, c: torch.Tensor) -> State:
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class OutputSpikingLSTMCell(LSTMCellBase):
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
        self.surrogate = _surrogate(surrogate, hidden_size, alpha)
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


class AnalogLSTMCell(LSTMCellBase):
    """The plain LSTM cell (nn.LSTMCell's equations) on the same two linear maps.

    The analog baseline beside the spiking kinds; `forward(x, (h, c)) -> (h', c')`.
    """

    spike_kind = "analog"

    def step(self, gates_x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        h, c = _analog_lstm_update(gates_x + self.linear_hh(h), c)
        return h, (h, c)
