"""Greedy decoding and beam search for the GRU translator.

Both stop a sentence at <eos>. Beam search keeps `beam` hypotheses per sentence; a finished one
is carried on with <pad> at no cost, and candidates are ranked by log-probability divided by
GNMT's length penalty ((5 + len) / 6) ** alpha, so one beam picks the argmax token at every
step, as greedy decoding does. The weights are read once per batch (`parametrize.cached()`).
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from nmt.multi30k.data import BOS, EOS, PAD
from nmt.multi30k.model import Translator

__all__ = ["beam_search", "greedy_decode", "length_penalty", "max_length"]


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT's ((5 + length) / 6) ** alpha (1 when alpha is 0)."""
    return ((5.0 + length.float()) / 6.0) ** alpha


def max_length(src_len: int, cap: int) -> int:
    """At most 2 * source length + 10 tokens, and at most `cap`."""
    return max(1, min(cap, 2 * int(src_len) + 10))


def _strip(row: list[int]) -> list[int]:
    out = []
    for t in row:
        if t in (EOS, PAD):
            break
        out.append(t)
    return out


@torch.no_grad()
def greedy_decode(
    model: Translator, src: torch.Tensor, src_len: torch.Tensor, max_len: int
) -> list[list[int]]:
    """Token ids of each sentence's greedy translation, without <bos>/<eos>."""
    with parametrize.cached():
        memory, state = model.encode(src, src_len)
        batch = src.size(1)
        tokens = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(batch, dtype=torch.bool, device=src.device)
        out = []
        for _ in range(max_len):
            logits, state = model.step(tokens, state, memory)
            tokens = logits.argmax(-1).masked_fill(done, PAD)
            out.append(tokens)
            done |= tokens == EOS
            if bool(done.all()):
                break
    return [_strip(r) for r in torch.stack(out, dim=1).tolist()]


@torch.no_grad()
def beam_search(
    model: Translator,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_len: int,
    beam: int = 4,
    alpha: float = 0.6,
) -> list[list[int]]:
    """Token ids of each sentence's best beam, without <bos>/<eos>."""
    if beam > model.tgt_vocab:
        raise ValueError(f"beam {beam} exceeds the target vocabulary size {model.tgt_vocab}")
    device, batch, k, vocab = src.device, src.size(1), beam, model.tgt_vocab
    with parametrize.cached():
        memory, state = model.encode(src, src_len)
        expand = torch.arange(batch, device=device).repeat_interleave(k)
        memory, state = memory.index_select(expand), state.index_select(0, expand)
        scores = torch.full((batch, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
        finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
        history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)
        tokens = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
        pad_row = torch.full((vocab,), float("-inf"), device=device)
        pad_row[PAD] = 0.0
        base = (torch.arange(batch, device=device) * k).unsqueeze(1)
        for _ in range(max_len):
            logits, state = model.step(tokens, state, memory)
            logp = torch.log_softmax(logits.float(), dim=-1).view(batch, k, vocab)
            logp = torch.where(finished.unsqueeze(-1), pad_row, logp)
            cand = scores.unsqueeze(-1) + logp  # [B, k, V]
            cand_len = torch.where(finished, lengths, lengths + 1).unsqueeze(-1)
            cand_len = cand_len.expand(-1, -1, vocab)
            ranked = (cand / length_penalty(cand_len, alpha)).view(batch, k * vocab)
            top = ranked.topk(k, dim=1).indices  # [B, k]
            src_beam, token = top // vocab, top % vocab
            scores = cand.view(batch, -1).gather(1, top)
            lengths = cand_len.reshape(batch, -1).gather(1, top)
            finished = finished.gather(1, src_beam) | (token == EOS)
            kept = history.gather(1, src_beam.unsqueeze(-1).expand(-1, -1, history.size(2)))
            history = torch.cat((kept, token.unsqueeze(-1)), dim=2)
            state = state.index_select(0, (base + src_beam).view(-1))
            tokens = token.view(-1)
            if bool(finished.all()):
                break
    final = scores / length_penalty(lengths.clamp(min=1), alpha)
    best = final.argmax(dim=1)
    rows = history[torch.arange(batch, device=device), best].tolist()
    return [_strip(r) for r in rows]
