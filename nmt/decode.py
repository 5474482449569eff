"""Greedy decoding and beam search with a length penalty for the translator.

Both stop a sentence at [EOS] (SpikingParrot's greedy decoder runs every sentence for the full
`max_length` and cuts at EOS afterwards: the same tokens, more work). Beam search keeps `beam`
hypotheses per sentence; a finished one is carried on with [PAD] at no cost, and candidates
are ranked by log-probability divided by the GNMT length penalty ((5 + len) / 6) ** alpha, so
with one beam it picks the argmax token at every step, exactly as greedy decoding.
"""

from __future__ import annotations

import torch

from nmt.tokenize import BOS, EOS, PAD
from nmt.translator import Translator

__all__ = ["beam_search", "greedy_decode", "length_penalty"]


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT's ((5 + length) / 6) ** alpha (1 when alpha is 0)."""
    return ((5.0 + length.float()) / 6.0) ** alpha


def _strip(row: list[int]) -> list[int]:
    out = []
    for t in row:
        if t in (EOS, PAD):
            break
        out.append(t)
    return out


def _check(max_len: int) -> None:
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int, got {max_len!r}")


@torch.no_grad()
def greedy_decode(
    model: Translator, src: torch.Tensor, src_len: torch.Tensor, max_len: int
) -> list[list[int]]:
    """Token ids of each sentence's greedy translation, without [BOS]/[EOS]."""
    _check(max_len)
    enc = model.encode(src, src_len)
    states = model.decoder.init_state(enc)
    batch = src.shape[0]
    tokens = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    out = []
    for _ in range(max_len):
        logits, states = model.decoder.step(tokens, states, enc)
        tokens = logits.argmax(-1).masked_fill(done, PAD)
        out.append(tokens)
        done |= tokens == EOS
        if bool(done.all()):
            break
    rows = torch.stack(out, dim=1).tolist()
    return [_strip(r) for r in rows]


@torch.no_grad()
def beam_search(
    model: Translator,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_len: int,
    beam: int = 4,
    alpha: float = 0.6,
) -> list[list[int]]:
    """Token ids of each sentence's best beam, without [BOS]/[EOS]."""
    _check(max_len)
    if not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be a positive int, got {beam!r}")
    if alpha < 0:
        raise ValueError(f"length penalty alpha must be >= 0, got {alpha!r}")
    device = src.device
    batch = src.shape[0]
    k = beam
    expand = torch.arange(batch, device=device).repeat_interleave(k)
    enc = model.encode(src, src_len).index_select(expand)
    states = model.decoder.init_state(enc)
    vocab = model.decoder.vocab
    if k > vocab:
        raise ValueError(f"beam {k} exceeds the target vocabulary size {vocab}")
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    tokens = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
    pad_row = torch.full((vocab,), float("-inf"), device=device)
    pad_row[PAD] = 0.0
    base = (torch.arange(batch, device=device) * k).unsqueeze(1)
    for _ in range(max_len):
        logits, states = model.decoder.step(tokens, states, enc)
        logp = torch.log_softmax(logits.float(), dim=-1).view(batch, k, vocab)
        logp = torch.where(finished.unsqueeze(-1), pad_row, logp)
        cand = scores.unsqueeze(-1) + logp  # [B, k, V]
        cand_len = torch.where(finished, lengths, lengths + 1).unsqueeze(-1).expand(-1, -1, vocab)
        ranked = (cand / length_penalty(cand_len, alpha)).view(batch, k * vocab)
        top = ranked.topk(k, dim=1).indices  # [B, k]
        src_beam, token = top // vocab, top % vocab
        scores = cand.view(batch, -1).gather(1, top)
        lengths = cand_len.reshape(batch, -1).gather(1, top)
        was_done = finished.gather(1, src_beam)
        finished = was_done | (token == EOS)
        history = torch.cat(
            (history.gather(1, src_beam.unsqueeze(-1).expand(-1, -1, history.shape[2])),
             token.unsqueeze(-1)),
            dim=2,
        )  # fmt: skip
        flat = (base + src_beam).view(-1)
        states = [(h.index_select(0, flat), c.index_select(0, flat)) for h, c in states]
        tokens = token.view(-1)
        if bool(finished.all()):
            break
    final = scores / length_penalty(lengths.clamp(min=1), alpha)
    best = final.argmax(dim=1)
    rows = history[torch.arange(batch, device=device), best].tolist()
    return [_strip(r) for r in rows]
