"""AWD-LSTM: embedding -> 3 weight-dropped LSTMs with locked dropout between -> tied decoder.

Under data parallelism (lm.trainer with a torchrun process group) every rank runs a share of the
global batch; `AWDLSTM.share_batch` makes its locked dropout draw the mask of the whole global
batch and keep this rank's columns, so the masks (and the random stream behind every other
draw) are those one process would draw for the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lm.config import LMConfig
from lm.lstm import Hidden, MaskableLSTM
from lm.regularizers import LockedDropout, embedding_dropout


class ShardedLockedDropout(LockedDropout):
    """LockedDropout that, given this rank's share (first column, global batch), draws the
    global batch's (1, batch, features) mask and keeps its own columns. Every rank draws the
    same numbers as one process would (the shape of a draw decides how much of the random
    stream it takes): the shares' masks are the single process's, and the stream stays in step
    on every rank for the draws after it (weight drop, embedding dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.share: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if self.share is None or not self.training or p <= 0:
            return super().forward(x, p)
        start, total = self.share
        mask = x.new_empty((1, total, x.size(2))).bernoulli_(1 - p) / (1 - p)
        return x * mask[:, start : start + x.size(1)]


@dataclass
class ModelOutput:
    """`output` is the dropped-out last-layer output (seq, batch, emsize), fed to the decoder and
    to AR; `raw_outputs` / `dropped_outputs` are per layer (TAR uses the raw last one)."""

    output: torch.Tensor
    hidden: list[Hidden]
    raw_outputs: list[torch.Tensor]
    dropped_outputs: list[torch.Tensor]


class AWDLSTM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        emsize: int,
        nhid: int,
        nlayers: int = 3,
        *,
        dropout: float = 0.0,
        dropouth: float = 0.0,
        dropouti: float = 0.0,
        dropoute: float = 0.0,
        wdrop: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.vocab_size, self.emsize, self.nhid, self.nlayers = vocab_size, emsize, nhid, nlayers
        self.dropout, self.dropouth, self.dropouti, self.dropoute = (
            dropout,
            dropouth,
            dropouti,
            dropoute,
        )
        self.encoder = nn.Embedding(vocab_size, emsize)
        # The last layer outputs emsize so the decoder can share the embedding matrix.
        sizes = [emsize] + [nhid] * (nlayers - 1) + [emsize]
        self.rnns = nn.ModuleList(
            MaskableLSTM(sizes[k], sizes[k + 1], wdrop=wdrop, forget_bias=forget_bias)
            for k in range(nlayers)
        )
        self.lockdrop = ShardedLockedDropout()
        self.decoder = nn.Linear(emsize, vocab_size)
        self.decoder.weight = self.encoder.weight
        with torch.no_grad():
            self.encoder.weight.uniform_(-0.1, 0.1)
            self.decoder.bias.zero_()

    def share_batch(self, start: int, total: int) -> None:
        """Train on columns start.. of a global batch of `total` (see ShardedLockedDropout)."""
        if not 0 <= start < total:
            raise ValueError(f"share start {start} is not a column of a batch of {total}")
        self.lockdrop.share = (int(start), int(total))

    def init_hidden(self, batch_size: int) -> list[Hidden]:
        device = self.encoder.weight.device
        return [rnn.init_hidden(batch_size, device=device) for rnn in self.rnns]

    def forward(self, tokens: torch.Tensor, hidden: list[Hidden] | None = None) -> ModelOutput:
        if hidden is None:
            hidden = self.init_hidden(tokens.size(1))
        x = embedding_dropout(tokens, self.encoder.weight, self.dropoute, self.training)
        x = self.lockdrop(x, self.dropouti)
        new_hidden, raw_outputs, dropped_outputs = [], [], []
        for k, rnn in enumerate(self.rnns):
            x, h = rnn(x, hidden[k])
            new_hidden.append(h)
            raw_outputs.append(x)
            if k != self.nlayers - 1:
                x = self.lockdrop(x, self.dropouth)
                dropped_outputs.append(x)
        x = self.lockdrop(x, self.dropout)
        dropped_outputs.append(x)
        return ModelOutput(x, new_hidden, raw_outputs, dropped_outputs)

    def nll(
        self, output: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Cross entropy of the tied decoder's logits (full softmax) against `targets`."""
        logits = self.decoder(output.reshape(-1, output.size(-1)))
        return F.cross_entropy(logits, targets.reshape(-1), reduction=reduction)


def build_model(config: LMConfig, vocab_size: int) -> AWDLSTM:
    """The AWD-LSTM that `config` describes, with the weights initialised from the global RNG."""
    return AWDLSTM(
        vocab_size,
        config.emsize,
        config.nhid,
        config.nlayers,
        dropout=config.dropout,
        dropouth=config.dropouth,
        dropouti=config.dropouti,
        dropoute=config.dropoute,
        wdrop=config.wdrop,
        forget_bias=config.forget_bias,
    )


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (the tied embedding/decoder matrix counts once, as published)."""
    return sum(p.numel() for p in model.parameters())


def detach_hidden(hidden: list[Hidden]) -> list[Hidden]:
    return [(h.detach(), c.detach()) for h, c in hidden]
