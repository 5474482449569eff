"""The GRU encoder-decoder: a bidirectional GRU encoder, additive attention (or none), a GRU
decoder stepped one token at a time, a tanh readout and the vocabulary projection.

    src -> embedding -> GRU encoder (bidirectional, `enc_layers`) -> memory [S, B, 2H]
    first decoder state = tanh(W [h_fwd ; h_bwd])       (the top layer's final states)
    step t: c_t = attention(s_{t-1}, memory)             (none: no context)
            s_t = GRU([embed(y_{t-1}) ; c_t], s_{t-1})
            logits_t = W_out tanh(W_r [s_t ; c_t ; embed(y_{t-1})])

The encoder is `lstmpack.rnn.GRU`, so each layer and direction is a `MaskableGRU` the passes
compress (`encoder.l0`, `encoder.l0_reverse`, ...); the decoder is one `MaskableGRU`
(`decoder`), called as a module at every step so that calibration hooks see every step's input.
Every forward reads the parametrized weights once (`parametrize.cached()`), not once per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from lstmpack.rnn import GRU, MaskableGRU
from nmt.multi30k.config import Multi30kConfig
from nmt.multi30k.data import PAD

__all__ = ["AdditiveAttention", "Memory", "Translator", "build_model"]


@dataclass(frozen=True)
class Memory:
    """The encoder's outputs for the decoder: states [S, B, 2H], the attention's keys
    [S, B, A] (None without attention) and which source positions are real [S, B]."""

    states: torch.Tensor
    keys: torch.Tensor | None
    mask: torch.Tensor

    def index_select(self, index: torch.Tensor) -> Memory:
        """The memory of the batch rows `index` (beam search repeats each sentence k times)."""
        keys = None if self.keys is None else self.keys.index_select(1, index)
        return Memory(self.states.index_select(1, index), keys, self.mask.index_select(1, index))


class AdditiveAttention(nn.Module):
    """Bahdanau, Cho and Bengio's attention: e_j = v^T tanh(W_k h_j + W_q s), softmax over the
    source positions, the context the weighted sum of the h_j. W_k h_j is computed once per
    sentence (`keys`)."""

    def __init__(self, memory_size: int, query_size: int, size: int) -> None:
        super().__init__()
        self.keys = nn.Linear(memory_size, size, bias=False)
        self.query = nn.Linear(query_size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def forward(self, query: torch.Tensor, memory: Memory) -> torch.Tensor:
        """The context [B, 2H] for the decoder state `query` [B, Hd]."""
        scores = self.v(torch.tanh(memory.keys + self.query(query))).squeeze(-1)  # [S, B]
        scores = scores.masked_fill(~memory.mask, float("-inf"))
        weights = torch.softmax(scores, dim=0)
        return (weights.unsqueeze(-1) * memory.states).sum(0)


class Translator(nn.Module):
    """German to English; token ids in, logits out (time first: [T, B, V])."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        *,
        emb: int,
        hidden: int,
        enc_layers: int,
        dec_hidden: int,
        attention: str,
        attn_size: int,
        readout: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.tgt_vocab = tgt_vocab
        self.src_embed = nn.Embedding(src_vocab, emb, padding_idx=PAD)
        self.encoder = GRU(emb, hidden, enc_layers, bidirectional=True,
                           dropout=dropout if enc_layers > 1 else 0.0)  # fmt: skip
        memory = 2 * hidden
        self.bridge = nn.Linear(memory, dec_hidden)
        self.attention = (
            AdditiveAttention(memory, dec_hidden, attn_size) if attention == "bahdanau" else None
        )
        context = memory if self.attention is not None else 0
        self.tgt_embed = nn.Embedding(tgt_vocab, emb, padding_idx=PAD)
        self.decoder = MaskableGRU(emb + context, dec_hidden)
        self.readout = nn.Linear(dec_hidden + context + emb, readout)
        self.generator = nn.Linear(readout, tgt_vocab)
        self.drop = nn.Dropout(dropout)

    # -- the parts ---------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Memory, torch.Tensor]:
        """(memory, the decoder's first state [B, Hd]) of a batch of one source length."""
        if src_len.numel() and bool((src_len != src_len[0]).any()):
            raise ValueError(
                "a batch must hold sentences of one source length (nmt.multi30k.data."
                "length_batches): the reverse direction would read the padding first"
            )
        states, h_n = self.encoder(self.drop(self.src_embed(src)))
        first = torch.tanh(self.bridge(torch.cat((h_n[-2], h_n[-1]), dim=-1)))
        keys = self.attention.keys(states) if self.attention is not None else None
        positions = torch.arange(src.size(0), device=src.device).unsqueeze(1)
        return Memory(states, keys, positions < src_len.unsqueeze(0)), first

    def _logits(
        self, state: torch.Tensor, context: torch.Tensor | None, embedded: torch.Tensor
    ) -> torch.Tensor:
        parts = (state, embedded) if context is None else (state, context, embedded)
        out = torch.tanh(self.readout(self.drop(torch.cat(parts, dim=-1))))
        return self.generator(self.drop(out))

    def _advance(
        self, embedded: torch.Tensor, state: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One decoder step from the embedded previous token [B, E]: (s_t, c_t)."""
        context = self.attention(state, memory) if self.attention is not None else None
        inp = embedded if context is None else torch.cat((embedded, context), dim=-1)
        _, h = self.decoder(inp.unsqueeze(0), state.unsqueeze(0))
        return h[0], context

    def step(
        self, tokens: torch.Tensor, state: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, V], next state) after feeding `tokens` [B]; decoding calls this."""
        embedded = self.drop(self.tgt_embed(tokens))
        state, context = self._advance(embedded, state, memory)
        return self._logits(state, context, embedded), state

    # -- teacher-forced training -------------------------------------------------------------
    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """Logits [T, B, V] of every target position. With `teacher_forcing` < 1 (training
        only), each step feeds the reference token with that probability (drawn from `rng`)
        and the previous step's argmax otherwise."""
        with parametrize.cached():
            memory, state = self.encode(src, src_len)
            if teacher_forcing < 1.0 and self.training:
                return self._sampled(tgt_in, state, memory, teacher_forcing, rng)
            embedded = self.drop(self.tgt_embed(tgt_in))  # [T, B, E]
            if self.attention is None:  # no context: the whole sequence in one call
                states, _ = self.decoder(embedded, state.unsqueeze(0))
                return self._logits(states, None, embedded)
            states, contexts = [], []
            for t in range(tgt_in.size(0)):
                state, context = self._advance(embedded[t], state, memory)
                states.append(state)
                contexts.append(context)
            return self._logits(torch.stack(states), torch.stack(contexts), embedded)

    def _sampled(
        self,
        tgt_in: torch.Tensor,
        state: torch.Tensor,
        memory: Memory,
        ratio: float,
        rng: np.random.Generator | None,
    ) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        tokens, out = tgt_in[0], []
        for t in range(tgt_in.size(0)):
            if t > 0:
                gold = torch.from_numpy(rng.random(tgt_in.size(1)) < ratio).to(tgt_in.device)
                tokens = torch.where(gold, tgt_in[t], out[-1].argmax(-1))
            logits, state = self.step(tokens, state, memory)
            out.append(logits)
        return torch.stack(out)


def build_model(cfg: Multi30kConfig, src_vocab: int, tgt_vocab: int) -> Translator:
    """A freshly initialised translator (seeded by cfg.seed)."""
    torch.manual_seed(cfg.seed)
    return Translator(
        src_vocab,
        tgt_vocab,
        emb=cfg.emb,
        hidden=cfg.hidden,
        enc_layers=cfg.enc_layers,
        dec_hidden=cfg.dec_hidden,
        attention=cfg.attention,
        attn_size=cfg.attn_size,
        readout=cfg.readout,
        dropout=cfg.dropout,
    )


def token_loss(
    logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy over the target tokens that are not padding."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        tgt_out.reshape(-1),
        ignore_index=PAD,
        label_smoothing=label_smoothing,
    )
