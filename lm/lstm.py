"""A single-layer LSTM whose weights the compression passes can mask and quantize while training.

The raw parameters live here, not in an `nn.LSTM`: a parametrization registered on an nn.LSTM's
own weights can silently stop them training (pytorch/pytorch#65688). Instead `weight` holds the
fused [W_ih | W_hh] matrix (rows 4H in gate order i, f, g, o), `forward` reads `self.weight`
afresh on every call (so any parametrization registered on it applies), applies DropConnect to
the W_hh block, and hands the effective weights to the same fused ATen kernel nn.LSTM uses (on a
GPU, cuDNN's: bench/gpu_lstm.py measures it against nn.LSTM and checks that it runs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Hidden = tuple[torch.Tensor, torch.Tensor]


class MaskableLSTM(nn.Module):
    """One LSTM layer, input (seq, batch, input_size), hidden states (1, batch, hidden_size).

    `wdrop` is DropConnect on the hidden-to-hidden weights: one mask per forward call (that is,
    per BPTT segment, as the published WeightDrop), active only in training mode.
    """

    lstmpack_kind = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        wdrop: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}"
            )
        if not 0.0 <= wdrop < 1.0:
            raise ValueError(f"wdrop must be in [0, 1), got {wdrop}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.wdrop = float(wdrop)
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        h4 = 4 * self.hidden_size
        self.weight = nn.Parameter(torch.empty(h4, self.input_size + self.hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(h4))
        self.bias_hh = nn.Parameter(torch.empty(h4))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.LSTM's initialisation, so parameter statistics match the published models.
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for p in (self.weight, self.bias_ih, self.bias_hh):
                p.uniform_(-bound, bound)
            if self.forget_bias is not None:
                # Jozefowicz et al. 2015: a positive forget bias lets gradients through the cell
                # from the start; a deep char model at uniform init sits at the unigram loss for
                # ~1M characters first (measured on PTB char, see lm/presets.py).
                f = slice(self.hidden_size, 2 * self.hidden_size)  # gate order i, f, g, o
                self.bias_ih[f] = self.forget_bias
                self.bias_hh[f] = 0.0

    def init_hidden(self, batch_size: int, *, device: torch.device | str | None = None) -> Hidden:
        z = torch.zeros(1, batch_size, self.hidden_size, device=device)
        return z, z.clone()

    def split_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective (parametrized) W_ih and W_hh, as views of one read of `self.weight`."""
        w = self.weight
        return w[:, : self.input_size], w[:, self.input_size :]

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        if hidden is None:
            hidden = self.init_hidden(x.size(1), device=x.device)
        w_ih, w_hh = self.split_weight()
        if self.training and self.wdrop > 0:
            w_hh = F.dropout(w_hh, p=self.wdrop, training=True)
        recurrent_act = getattr(self, "recurrent_act", None)
        if recurrent_act is not None:
            return self._step_loop(x, hidden, w_ih, w_hh, recurrent_act)
        if x.is_cuda:
            # cuDNN copies weights that are not in one flat buffer into its own, through a flat
            # (numel, 1) view of each matrix, which a column slice of [W_ih | W_hh] cannot give:
            # hand it whole matrices (a copy, small next to the recurrence; tests/test_gpu.py)
            w_ih, w_hh = w_ih.contiguous(), w_hh.contiguous()
        out, h, c = torch._VF.lstm(
            x,
            hidden,
            [w_ih, w_hh, self.bias_ih, self.bias_hh],
            True,  # has_biases
            1,  # num_layers
            0.0,  # dropout between layers (none: one layer)
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
        recurrent_act: nn.Module,
    ) -> tuple[torch.Tensor, Hidden]:
        """The same recurrence one step at a time, with `recurrent_act` (an activation quantizer
        set by compress' quantize pass) applied to h_{t-1} where W_hh reads it, as a quantized
        accelerator does. The fused kernel gives no access to h between steps."""
        h, c = hidden[0][0], hidden[1][0]
        xproj = F.linear(x, w_ih, self.bias_ih)
        outs = []
        for t in range(x.size(0)):
            gates = xproj[t] + F.linear(recurrent_act(h), w_hh, self.bias_hh)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h.unsqueeze(0), c.unsqueeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, wdrop={self.wdrop}"
