"""Decoding: beam 1 equals greedy; beams stop at EOS and respect max_len; length penalty."""

from __future__ import annotations

import pytest
import torch

from nmt.decode import beam_search, greedy_decode, length_penalty
from nmt.tokenize import BOS, EOS, PAD
from nmt.translator import Translator


def setup(kind: str, seed: int):
    torch.manual_seed(seed)
    m = Translator(30, 25, embed=8, hidden=12, layers=1, dropout=0.0, kind=kind).eval()
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 30, (5, 7), generator=g)
    src_len = torch.tensor([7, 6, 4, 3, 1])
    for b, n in enumerate(src_len.tolist()):
        src[b, n:] = PAD
    return m, src, src_len


def sequence_logprob(m, src, src_len, ids):
    """Log-probability of ids (+ EOS if room) under the model, one sentence."""
    enc = m.encode(src, src_len)
    states = m.decoder.init_state(enc)
    tokens = [BOS, *ids, EOS]
    total = 0.0
    for a, b in zip(tokens[:-1], tokens[1:]):
        logits, states = m.decoder.step(torch.tensor([a]), states, enc)
        total += float(torch.log_softmax(logits, -1)[0, b])
    return total


@pytest.mark.parametrize("kind", ("output", "gate", "analog"))
@pytest.mark.parametrize("seed", (0, 1, 2))
def test_beam_one_equals_greedy(kind, seed):
    m, src, src_len = setup(kind, seed)
    g = greedy_decode(m, src, src_len, max_len=12)
    assert beam_search(m, src, src_len, max_len=12, beam=1, alpha=0.6) == g
    assert beam_search(m, src, src_len, max_len=12, beam=1, alpha=0.0) == g


def test_outputs_hold_no_specials_and_respect_max_len():
    m, src, src_len = setup("analog", 3)
    for hyps in (greedy_decode(m, src, src_len, 4), beam_search(m, src, src_len, 4, beam=3)):
        assert len(hyps) == 5
        assert all(len(h) <= 4 and not {PAD, BOS, EOS} & set(h) for h in hyps)


def test_greedy_stops_each_sentence_at_eos():
    m, src, src_len = setup("analog", 4)
    with torch.no_grad():
        m.decoder.fc.bias.fill_(0.0)
        m.decoder.fc.bias[EOS] = 100.0  # EOS always wins
    assert greedy_decode(m, src, src_len, 10) == [[]] * 5
    assert beam_search(m, src, src_len, 10, beam=3) == [[]] * 5


def test_wide_beam_without_penalty_scores_at_least_greedy():
    m, src, src_len = setup("analog", 5)
    one = (src[:1], src_len[:1])
    greedy = greedy_decode(m, *one, 8)[0]
    best = beam_search(m, *one, 8, beam=8, alpha=0.0)[0]
    if len(greedy) < 8 and len(best) < 8:  # both finished: compare complete hypotheses
        assert sequence_logprob(m, *one, best) >= sequence_logprob(m, *one, greedy) - 1e-5


def test_length_penalty_values():
    assert float(length_penalty(torch.tensor(1), 0.0)) == 1.0
    assert float(length_penalty(torch.tensor(7), 1.0)) == pytest.approx(2.0)


def test_bad_decode_arguments():
    m, src, src_len = setup("analog", 0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(m, src, src_len, 0)
    with pytest.raises(ValueError, match="beam"):
        beam_search(m, src, src_len, 5, beam=0)
