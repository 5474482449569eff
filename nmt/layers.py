"""The translator's building blocks: a spiking layer and Luong "general" attention.

SpikingLayer(d -> H), as in SpikingParrot: an LSTM cell whose output s is a spike train (or, in
the ablations, the gate-spiking cell's binary h, or the analog h), then
y = Dropout(DyT(W_m [W_l s + b_l ; x] + b_m)). The skip of x into the mixer lets the layer pass
information on while the cell is still silent (with threshold 1 and |h| < 1 it starts silent).

Every layer can count, when `track` is set, its spikes and the positions it saw, from which the
translator reports spike rates and synaptic operations.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.cells import AnalogLSTMCell, GateSpikingLSTMCell, OutputSpikingLSTMCell
from nmt.dyt import DyT

__all__ = ["KINDS", "LuongAttention", "SpikingLayer"]

KINDS = ("output", "gate", "analog")

State = tuple[torch.Tensor, torch.Tensor]


def make_cell(kind: str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    """The LSTM cell of a layer: output-spiking (SpikingParrot), gate-spiking (spikingjelly) or
    analog (the spike replaced by h)."""
    if kind == "output":
        return OutputSpikingLSTMCell(input_size, hidden_size, **kwargs)
    if kind == "gate":
        return GateSpikingLSTMCell(input_size, hidden_size, **kwargs)
    if kind == "analog":
        return AnalogLSTMCell(input_size, hidden_size)
    raise ValueError(f"cell kind must be one of {KINDS}, got {kind!r}")


class SpikingLayer(nn.Module):
    """An LSTM cell (spiking or not) followed by W_l, the mixer W_m over [W_l s + b_l ; x], DyT
    and dropout. `forward_seq` runs a whole sequence, `step` one time step; both return the
    layer output y and the analog state (h, c).

    `output=False` builds the cell alone (y is None): for a layer whose y would feed nothing,
    the encoder's last stack layer, whose h and final state are all the decoder reads. Its W_l
    and W_m would be weights no loss reaches, and cost the hardware model columns and MACs."""

    def __init__(
        self, input_size: int, hidden_size: int, dropout: float, kind: str = "output",
        output: bool = True, **cell_kw,
    ) -> None:  # fmt: skip
        super().__init__()
        self.kind = kind
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.has_output = output
        self.cell = make_cell(kind, input_size, hidden_size, **cell_kw)
        linear = nn.Linear(hidden_size, hidden_size)
        mixer = nn.Linear(hidden_size + input_size, hidden_size)
        # Without an output the two matrices are still drawn (and dropped), so a seed gives
        # every other weight the same initial value as in models built with them.
        if output:
            self.linear, self.mixer = linear, mixer
            self.norm = DyT(hidden_size)
            self.dropout = nn.Dropout(dropout)
        self.track = False
        # memoryless: every step starts from the zero state (the cell sees only its current
        # input); see Translator's `stack_memory`
        self.memoryless = False
        self.reset_stats()

    def reset_stats(self) -> None:
        self.spike_sum = 0.0
        self.position_sum = 0

    def _record(self, s: torch.Tensor, mask: torch.Tensor | None) -> None:
        with torch.no_grad():
            if mask is None:
                self.spike_sum += float((s != 0).sum())
                self.position_sum += s.numel() // s.shape[-1]
            else:
                self.spike_sum += float(((s != 0) & mask.unsqueeze(-1)).sum())
                self.position_sum += int(mask.sum())

    def mix(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        if not self.has_output:
            return None
        return self.dropout(self.norm(self.mixer(torch.cat((self.linear(s), x), dim=-1))))

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        h = like.new_zeros(batch, self.hidden_size)
        return h, torch.zeros_like(h)

    def forward_seq(
        self,
        x: torch.Tensor,
        state: State | None = None,
        mask: torch.Tensor | None = None,
        stats_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, State]:
        """x [T, B, d] -> (y [T, B, H] (None without an output), h [T, B, H], c [T, B, H],
        final (h, c)).

        With `mask` [T, B] (True = real token) the state stands still at padded positions and
        the spike there is 0, so the final state is each sequence's state at its last token.
        A `memoryless` layer computes every step from the zero state (and `state` is ignored).
        `stats_mask` chooses the positions counted by `track` (default: `mask`)."""
        steps, batch, _ = x.shape
        h, c = self.zero_state(batch, x) if state is None else state
        gates_x = self.cell.linear_ih(x)  # one GEMM for the whole sequence's input projection
        outs, hs, cs = [], [], []
        zero = self.zero_state(batch, x) if self.memoryless else None
        for t in range(steps):
            s, (h_new, c_new) = self.cell.step(gates_x[t], (h, c) if zero is None else zero)
            if mask is None:
                h, c = h_new, c_new
            else:
                m = mask[t].unsqueeze(-1)
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c)
                s = s * m
            outs.append(s)
            hs.append(h)
            cs.append(c)
        s_seq = torch.stack(outs)
        if self.track:
            self._record(s_seq, stats_mask if stats_mask is not None else mask)
        return self.mix(s_seq, x), torch.stack(hs), torch.stack(cs), (h, c)

    def step(
        self, x: torch.Tensor, state: State, stats_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, State]:
        """x [B, d], state (h, c) -> (y [B, H] (None without an output), (h, c))."""
        s, (h, c) = self.cell.step(self.cell.linear_ih(x), state)
        if self.track:
            self._record(s, stats_mask)
        return self.mix(s, x), (h, c)


class LuongAttention(nn.Module):
    """Luong's "general" score h_enc^T W_a h_dec (no bias), softmax over the source, context
    Dropout(DyT(sum_s a_s h_enc,s)). Padded source positions get no weight when `mask` is given
    (SpikingParrot attends over them; `faithful` passes no mask)."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.w = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.xavier_uniform_(self.w.weight)
        self.norm = DyT(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.track = False
        self.reset_stats()

    def reset_stats(self) -> None:
        self.query_sum = 0
        self.key_sum = 0

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None,
        stats_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query [B, T, H] (decoder h), keys [B, S, H] (encoder h), mask [B, S] -> [B, T, H]."""
        scores = torch.bmm(self.w(query), keys.transpose(1, 2))  # [B, T, S]
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if self.track:
            with torch.no_grad():
                q = (
                    stats_mask
                    if stats_mask is not None
                    else torch.ones(query.shape[:2], dtype=torch.bool, device=query.device)
                )
                n_keys = (
                    mask.sum(1)
                    if mask is not None
                    else torch.full((keys.shape[0],), keys.shape[1], device=keys.device)
                )
                self.query_sum += int(q.sum())
                self.key_sum += int((q.sum(1) * n_keys).sum())
        return self.dropout(self.norm(torch.bmm(weights, keys)))
