"""Maskable drop-in equivalents of `torch.nn.LSTM` and `torch.nn.GRU`.

`LSTM` and `GRU` take nn.LSTM's / nn.GRU's arguments (layers, bidirectional, batch_first, dropout
between layers, bias, proj_size) and compute the same outputs, final states and gradients, but keep
each direction of each layer in a module of ours whose fused weight the passes can mask
(compress.targets: `lstmpack_kind` "lstm", "gru" and, for an LSTM's projection, "proj"). A
parametrization on nn.LSTM's own weights can silently stop them training
(pytorch/pytorch#65688); ours are plain parameters read afresh on every forward.

Layer k of direction d is the submodule `l{k}` or `l{k}_reverse`, the suffixes of nn.LSTM's
parameter names, so a target's name says which matrix of the original model it is. Each runs the
fused ATen kernel nn.LSTM runs; it steps through the sequence in Python only when the quantize
pass quantizes the fed-back state (`recurrent_act`) or a hook watches the projection (the
calibration inputs of a projection target are o * tanh(c), which the kernel never exposes).
`lstmpack.convert` builds these from existing modules and `lstmpack.unconvert` turns them back
(both in lstmpack.conversion).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from lm.lstm import MaskableLSTM

Hidden = tuple[torch.Tensor, torch.Tensor]


def _uniform_(hidden_size: int, *params: torch.Tensor) -> None:
    """nn.LSTM's / nn.GRU's initialisation: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


def _drop_biases(layer: nn.Module) -> None:
    """bias=False: the biases become zero buffers (not trained, left out of the state dict), so
    the kernels keep one call signature and the layer computes what nn.LSTM(bias=False) does."""
    for name in ("bias_ih", "bias_hh"):
        zeros = torch.zeros_like(getattr(layer, name).detach())
        delattr(layer, name)
        layer.register_buffer(name, zeros, persistent=False)


def kernel_weights(
    device: torch.device, w_ih: torch.Tensor, w_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """W_ih and W_hh as the fused kernel on `device` takes them. They are column slices of one
    [W_ih | W_hh] matrix: cuDNN copies weights that are not in one flat buffer into its own
    through a flat (numel, 1) view of each, which a column slice cannot give, so on CUDA it gets
    whole copies (small next to the recurrence), as lm.lstm.MaskableLSTM hands it. Elsewhere the
    slices themselves: the CPU kernel reads strided weights, and its results stay bit-identical."""
    if device.type != "cuda":
        return w_ih, w_hh
    return w_ih.contiguous(), w_hh.contiguous()


def _watched(module: nn.Module) -> bool:
    """Whether a hook is registered on `module` (a calibration hook, an activation quantizer)."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


class Projection(nn.Module):
    """An LSTM layer's projection W_hr (proj_size x hidden_size): h_t = W_hr (o_t * tanh(c_t)).

    A module of its own so that the passes find it as a target ("proj") and a packed file names it
    `<layer>.proj`."""

    lstmpack_kind = "proj"

    def __init__(self, hidden_size: int, proj_size: int) -> None:
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.proj_size = int(proj_size)
        self.weight = nn.Parameter(torch.empty(self.proj_size, self.hidden_size))
        _uniform_(self.hidden_size, self.weight)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return F.linear(m, self.weight)

    def extra_repr(self) -> str:
        return f"{self.hidden_size}, {self.proj_size}"


class ProjectedLSTM(MaskableLSTM):
    """One LSTM layer with a projection (nn.LSTM's proj_size = R): the fused weight is
    (4H, in + R), since the state fed back is the projected h (R wide), and `proj` holds W_hr."""

    def __init__(self, input_size: int, hidden_size: int, proj_size: int) -> None:
        if not 0 < proj_size < hidden_size:
            raise ValueError(f"proj_size must be in 1..hidden_size-1; got {proj_size}")
        super().__init__(input_size, hidden_size)
        self.proj_size = int(proj_size)
        self.weight = nn.Parameter(torch.empty(4 * self.hidden_size, self.input_size + proj_size))
        self.proj = Projection(self.hidden_size, self.proj_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_(self.hidden_size, *self.parameters())

    def init_hidden(self, batch_size: int, *, device: torch.device | str | None = None) -> Hidden:
        h = torch.zeros(1, batch_size, self.proj_size, device=device)
        return h, torch.zeros(1, batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        if hidden is None:
            hidden = self.init_hidden(x.size(1), device=x.device)
        w_ih, w_hh = self.split_weight()
        recurrent_act = getattr(self, "recurrent_act", None)
        if recurrent_act is not None or _watched(self.proj):
            return self._step_loop(x, hidden, w_ih, w_hh, recurrent_act)
        w_ih, w_hh = kernel_weights(x.device, w_ih, w_hh)
        # the kernel takes W_hr as a fifth weight and tells projections by h's width
        out, h, c = torch._VF.lstm(
            x,
            hidden,
            [w_ih, w_hh, self.bias_ih, self.bias_hh, self.proj.weight],
            True,  # has_biases
            1,  # num_layers
            0.0,  # dropout
            self.training,
            False,  # bidirectional
            False,  # batch_first
        )
        return out, (h, c)

    def _step_loop(
        self,
        x: torch.Tensor,
        hidden: Hidden,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        recurrent_act: nn.Module | None,
    ) -> tuple[torch.Tensor, Hidden]:
        """The recurrence step by step, the projection called as a module every step (so its
        hooks see each o * tanh(c)), `recurrent_act` on the h_{t-1} that W_hh reads."""
        h, c = hidden[0][0], hidden[1][0]
        xproj = F.linear(x, w_ih, self.bias_ih)
        outs = []
        for t in range(x.size(0)):
            h_in = recurrent_act(h) if recurrent_act is not None else h
            gates = xproj[t] + F.linear(h_in, w_hh, self.bias_hh)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = self.proj(torch.sigmoid(o) * torch.tanh(c))
            outs.append(h)
        return torch.stack(outs), (h.unsqueeze(0), c.unsqueeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, proj_size={self.proj_size}"


class MaskableGRU(nn.Module):
    """One GRU layer, input (seq, batch, input_size), hidden state (1, batch, hidden_size).

    `weight` is the fused [W_ih | W_hh] (3H, in + H), gate rows r, z, n as nn.GRU orders them.
    The n gate is tanh(W_in x + b_in + r * (W_hn h + b_hn)): its recurrent part is scaled by r
    before the sum, so the two column parts are multiplied apart (the kernel takes them as two
    matrices; groups never cross the split), never as one [x ; h] product."""

    lstmpack_kind = "gru"

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}"
            )
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        h3 = 3 * self.hidden_size
        self.weight = nn.Parameter(torch.empty(h3, self.input_size + self.hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(h3))
        self.bias_hh = nn.Parameter(torch.empty(h3))
        _uniform_(self.hidden_size, *self.parameters())

    def init_hidden(
        self, batch_size: int, *, device: torch.device | str | None = None
    ) -> torch.Tensor:
        return torch.zeros(1, batch_size, self.hidden_size, device=device)

    def split_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective (parametrized) W_ih and W_hh, as views of one read of `self.weight`."""
        w = self.weight
        return w[:, : self.input_size], w[:, self.input_size :]

    def forward(
        self, x: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if hidden is None:
            hidden = self.init_hidden(x.size(1), device=x.device)
        w_ih, w_hh = self.split_weight()
        recurrent_act = getattr(self, "recurrent_act", None)
        if recurrent_act is not None:
            return self._step_loop(x, hidden, w_ih, w_hh, recurrent_act)
        w_ih, w_hh = kernel_weights(x.device, w_ih, w_hh)
        out, h = torch._VF.gru(
            x,
            hidden,
            [w_ih, w_hh, self.bias_ih, self.bias_hh],
            True,  # has_biases
            1,  # num_layers
            0.0,  # dropout
            self.training,
            False,  # bidirectional
            False,  # batch_first
        )
        return out, h

    def _step_loop(
        self,
        x: torch.Tensor,
        hidden: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        recurrent_act: nn.Module,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The recurrence step by step with `recurrent_act` (the quantize pass's activation
        quantizer) on the h_{t-1} that W_hh reads; h_{t-1} itself enters z * h_{t-1} unchanged,
        as nn.GRU's kernel keeps it."""
        h = hidden[0]
        xproj = F.linear(x, w_ih, self.bias_ih)
        outs = []
        for t in range(x.size(0)):
            hproj = F.linear(recurrent_act(h), w_hh, self.bias_hh)
            xr, xz, xn = xproj[t].chunk(3, dim=1)
            hr, hz, hn = hproj.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class _RNN(nn.Module):
    """The stack both `LSTM` and `GRU` are: nn.RNNBase's arguments and attributes, one maskable
    layer module per layer and direction, dropout between layers as nn.LSTM applies it."""

    mode: str  # "LSTM" | "GRU", as nn.RNNBase names it

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1; got {num_layers}")
        if not 0.0 <= dropout <= 1.0 or isinstance(dropout, bool):
            raise ValueError(f"dropout must be a number in [0, 1]; got {dropout!r}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"proj_size must be 0 or in 1..hidden_size-1; got {proj_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        out = self.proj_size or self.hidden_size
        for k in range(self.num_layers):
            width = self.input_size if k == 0 else out * self.num_directions
            for d in range(self.num_directions):
                layer = self._layer(width)
                if not self.bias:
                    _drop_biases(layer)
                self.add_module(self.layer_name(k, d), layer)

    def _layer(self, input_size: int) -> nn.Module:
        raise NotImplementedError

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @staticmethod
    def layer_name(k: int, d: int) -> str:
        """The submodule of layer k, direction d: "l0", "l0_reverse", ..."""
        return f"l{k}" + ("_reverse" if d else "")

    def layers(self) -> list[nn.Module]:
        """The layer modules in nn.LSTM's state order: l0, l0_reverse, l1, ..."""
        return [
            getattr(self, self.layer_name(k, d))
            for k in range(self.num_layers)
            for d in range(self.num_directions)
        ]

    def flatten_parameters(self) -> None:
        """nn.RNNBase's method, which many models call in forward: nothing to flatten here."""

    def _zeros(self, x: torch.Tensor, width: int) -> torch.Tensor:
        return x.new_zeros(self.num_layers * self.num_directions, x.size(1), width)

    def _initial(self, x: torch.Tensor, hx):  # the per-layer hidden states
        raise NotImplementedError

    def _final(self, states: list):
        raise NotImplementedError

    def forward(self, input: torch.Tensor, hx=None):
        if isinstance(input, PackedSequence):
            raise ValueError(
                f"lstmpack.rnn.{type(self).__name__} takes a padded tensor, not a "
                f"PackedSequence; pad the batch (torch.nn.utils.rnn.pad_packed_sequence) instead"
            )
        batched = input.dim() == 3
        if not batched:  # (seq, features) with a state (layers, features), as nn.LSTM allows
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        x = input
        states = self._initial(x, hx)
        finals = []
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                i = k * self.num_directions + d
                layer = getattr(self, self.layer_name(k, d))
                # the reverse direction reads the sequence backwards and its outputs are put back
                # in time order, as nn.LSTM's kernel does
                out, final = layer(x.flip(0) if d else x, states[i])
                outs.append(out.flip(0) if d else out)
                finals.append(final)
            x = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
            if self.dropout and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        output = x
        hidden = self._final(finals)
        if not batched:
            output = output.squeeze(1)
            hidden = (
                tuple(h.squeeze(1) for h in hidden)
                if isinstance(hidden, tuple)
                else hidden.squeeze(1)
            )
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, hidden

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False), ("proj_size", 0)):  # fmt: skip
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class LSTM(_RNN):
    """nn.LSTM's drop-in: the same arguments, outputs (output, (h_n, c_n)) and gradients; every
    layer and direction a maskable `MaskableLSTM` (`ProjectedLSTM` with proj_size)."""

    mode = "LSTM"

    def _layer(self, input_size: int) -> nn.Module:
        if self.proj_size:
            return ProjectedLSTM(input_size, self.hidden_size, self.proj_size)
        return MaskableLSTM(input_size, self.hidden_size)

    def _initial(self, x: torch.Tensor, hx: Hidden | None) -> list[Hidden]:
        if hx is None:
            hx = (
                self._zeros(x, self.proj_size or self.hidden_size),
                self._zeros(x, self.hidden_size),
            )
        h, c = hx
        return [(h[i : i + 1], c[i : i + 1]) for i in range(h.size(0))]

    def _final(self, states: list[Hidden]) -> Hidden:
        return torch.cat([h for h, _ in states]), torch.cat([c for _, c in states])


class GRU(_RNN):
    """nn.GRU's drop-in: the same arguments, outputs (output, h_n) and gradients; every layer and
    direction a maskable `MaskableGRU`."""

    mode = "GRU"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )

    def _layer(self, input_size: int) -> nn.Module:
        return MaskableGRU(input_size, self.hidden_size)

    def _initial(self, x: torch.Tensor, hx: torch.Tensor | None) -> list[torch.Tensor]:
        h = self._zeros(x, self.hidden_size) if hx is None else hx
        return [h[i : i + 1] for i in range(h.size(0))]

    def _final(self, states: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(states)
