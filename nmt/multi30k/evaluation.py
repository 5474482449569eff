"""Scoring the translator: teacher-forced loss, greedy and beam translations, sacreBLEU.

BLEU is sacreBLEU's corpus BLEU with tokenize="none": Multi30k's files are tokenized and
lowercased already, so hypotheses and references are compared token for token as written (what
multi-bleu.perl does on the same files). Each score comes with sacreBLEU's signature. `force`
silences sacreBLEU's warning that the text looks tokenized: it is, on purpose (the signature
does not change).
"""

from __future__ import annotations

from typing import Any

import torch

from nmt.bleu import Score, to_streams
from nmt.multi30k.config import Multi30kConfig
from nmt.multi30k.data import Multi30kData, Split, Vocab, batch_tensors, length_batches
from nmt.multi30k.decode import beam_search, greedy_decode, max_length
from nmt.multi30k.model import Translator, token_loss

__all__ = ["BLEU_TOKENIZE", "bleu", "evaluate", "split_loss", "translate"]

BLEU_TOKENIZE = "none"  # the files are tokenized already
SAMPLES = 4


@torch.no_grad()
def split_loss(model: Translator, split: Split, batch_size: int, device="cpu") -> float:
    """Mean cross-entropy per target token (with <eos>), teacher-forced, in eval mode."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for idx in length_batches(split, batch_size):
        src, src_len, tgt_in, tgt_out = batch_tensors(split, idx, device)
        n = int((tgt_out != 0).sum())
        total += float(token_loss(model(src, src_len, tgt_in), tgt_out)) * n
        count += n
    model.train(was)
    return total / max(count, 1)


@torch.no_grad()
def translate(
    model: Translator,
    split: Split,
    tgt_vocab: Vocab,
    cfg: Multi30kConfig,
    beam: int = 1,
    device="cpu",
) -> list[str]:
    """The split's translations, in its order: greedy when beam is 1, else beam search."""
    was = model.training
    model.eval()
    hyps: list[str] = [""] * len(split)
    for idx in length_batches(split, cfg.eval_batch_size):
        src, src_len, _, _ = batch_tensors(split, idx, device)
        limit = max_length(int(src_len[0]), cfg.max_decode)
        if beam > 1:
            rows = beam_search(model, src, src_len, limit, beam, cfg.length_alpha)
        else:
            rows = greedy_decode(model, src, src_len, limit)
        for i, row in zip(idx, rows):
            hyps[int(i)] = " ".join(tgt_vocab.decode(row))
    model.train(was)
    return hyps


def bleu(hypotheses: list[str], references: tuple[str, ...] | list[str]) -> Score:
    """sacreBLEU corpus BLEU, one reference per sentence, tokenize="none"."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=BLEU_TOKENIZE, force=True)
    refs = to_streams([[r] for r in references], len(hypotheses))
    result = metric.corpus_score(list(hypotheses), refs)
    sig = str(metric.get_signature())
    return Score(float(result.score), sig, f"{result} {sig}")


def evaluate(
    model: Translator,
    data: Multi30kData,
    cfg: Multi30kConfig,
    splits: tuple[str, ...] = ("valid", "test"),
    device="cpu",
) -> dict[str, Any]:
    """Per split: loss, greedy BLEU, beam BLEU (when cfg.beam > 1), `bleu` (the preset's
    decoding), the sacreBLEU lines and signature, and a few sample translations."""
    out: dict[str, Any] = {"decoding": f"beam {cfg.beam}" if cfg.beam > 1 else "greedy"}
    for name in splits:
        split: Split = getattr(data, name)
        greedy = translate(model, split, data.tgt_vocab, cfg, 1, device)
        g = bleu(greedy, split.references)
        r: dict[str, Any] = {
            "loss": split_loss(model, split, cfg.eval_batch_size, device),
            "bleu_greedy": g.score,
            "bleu_greedy_text": g.text,
            "bleu_signature": g.signature,
        }
        hyps = greedy
        if cfg.beam > 1:
            hyps = translate(model, split, data.tgt_vocab, cfg, cfg.beam, device)
            b = bleu(hyps, split.references)
            r.update(bleu_beam=b.score, bleu_beam_text=b.text)
        r["bleu"] = r["bleu_beam"] if cfg.beam > 1 else r["bleu_greedy"]
        r["samples"] = [
            {"source": " ".join(data.src_vocab.decode(split.src[i])),
             "reference": split.references[i], "translation": hyps[i]}
            for i in range(min(SAMPLES, len(split)))
        ]  # fmt: skip
        out[name] = r
    return out
