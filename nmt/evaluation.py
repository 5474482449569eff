"""Scoring the translator: teacher-forced loss, greedy and beam BLEU / chrF, spike activity.

    metrics = evaluate(model, data, config)         # BLEU greedy/beam, chrF, spikes, MACs/ACs

`evaluate` tunes the beam's length penalty on the valid split only (never on test) when the
config asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nmt.bleu import corpus_bleu, corpus_chrf
from nmt.buckets import eval_batches
from nmt.data import EvalSet, NMTData, batch_tensors
from nmt.decode import beam_search, greedy_decode
from nmt.presets import TranslatorConfig
from nmt.tokenize import PAD
from nmt.translator import Translator

__all__ = [
    "ALPHA_GRID",
    "activity",
    "evaluate",
    "pair_loss",
    "score_set",
    "translate",
    "tune_length_alpha",
]


@torch.no_grad()
def pair_loss(
    model: Translator, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
    batch_size: int, device="cpu",
) -> float:  # fmt: skip
    """Teacher-forced cross-entropy per target token (no label smoothing), in nats."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    lengths = np.array([len(s) for s in src])
    for idx in eval_batches(lengths, batch_size):
        s, sl, ti, to = batch_tensors(src, tgt, idx, device)
        logits = model(s, sl, ti)
        total += float(
            nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), to.reshape(-1), ignore_index=PAD,
                reduction="sum",
            )
        )  # fmt: skip
        count += int((to != PAD).sum())
    model.train(was)
    return total / max(count, 1)


def _max_len(config: TranslatorConfig, src_len: torch.Tensor) -> int:
    return int(config.max_decode_ratio * int(src_len.max()) + config.max_decode_extra)


@torch.no_grad()
def translate(
    model: Translator, data: NMTData, sentences: Sequence[str], config: TranslatorConfig,
    beam: int = 1, device="cpu",
) -> list[str]:  # fmt: skip
    """Chinese translations of English `sentences` (greedy when beam == 1)."""
    ids = data.src_tok.encode_batch(list(sentences))
    return _decode_ids(model, data, ids, config, beam, device)


def _decode_ids(model, data, ids, config, beam, device) -> list[str]:
    was = model.training
    model.eval()
    out: list[str | None] = [None] * len(ids)
    for idx in eval_batches(np.array([len(s) for s in ids]), config.eval_batch_size):
        src, src_len = batch_tensors(ids, None, idx, device)
        n = _max_len(config, src_len)
        if beam == 1:
            hyps = greedy_decode(model, src, src_len, n)
        else:
            hyps = beam_search(model, src, src_len, n, beam=beam, alpha=config.length_alpha)
        for i, h in zip(idx, hyps):
            out[i] = data.tgt_tok.decode(h)
    model.train(was)
    return out  # type: ignore[return-value]


def score_set(
    model: Translator, data: NMTData, es: EvalSet, config: TranslatorConfig, device="cpu",
    beam: bool = True, samples: int = 8,
) -> dict:  # fmt: skip
    """Greedy (and beam) BLEU/chrF of one evaluation set, its loss and a few samples."""
    res: dict = {"sources": len(es.sources)}
    t0 = time.perf_counter()
    greedy = _decode_ids(model, data, es.src_ids, config, 1, device)
    res["decode_greedy_s"] = time.perf_counter() - t0
    b = corpus_bleu(greedy, es.references)
    c = corpus_chrf(greedy, es.references)
    res.update(bleu_greedy=b.score, chrf_greedy=c.score, bleu_signature=b.signature,
               chrf_signature=c.signature, bleu_greedy_text=b.text)  # fmt: skip
    beamed = None
    if beam and config.beam > 1:
        t0 = time.perf_counter()
        beamed = _decode_ids(model, data, es.src_ids, config, config.beam, device)
        res["decode_beam_s"] = time.perf_counter() - t0
        b = corpus_bleu(beamed, es.references)
        c = corpus_chrf(beamed, es.references)
        res.update(bleu_beam=b.score, chrf_beam=c.score, bleu_beam_text=b.text)
    res["loss"] = pair_loss(model, es.pair_src, es.pair_tgt, config.eval_batch_size, device)
    # spread over the set: Tatoeba lists short sentences first, so its head is all one-liners
    picks = np.unique(np.linspace(0, len(es.sources) - 1, min(samples, len(es.sources))).round())
    res["samples"] = [
        {"en": es.sources[i], "refs": es.references[i], "greedy": greedy[i],
         **({"beam": beamed[i]} if beamed else {})}
        for i in picks.astype(int).tolist()
    ]  # fmt: skip
    return res


@torch.no_grad()
def activity(model: Translator, es: EvalSet, config: TranslatorConfig, device="cpu") -> dict:
    """Spike rate per layer and MACs / ACs per target token, teacher-forced over `es`'s pairs."""
    was = model.training
    model.eval()
    model.set_tracking(True)
    try:
        pair_loss(model, es.pair_src, es.pair_tgt, config.eval_batch_size, device)
        counts = model.operation_counts()
        rates = model.spike_rates()
    finally:
        model.set_tracking(False)
        model.train(was)
    per = max(counts["target_positions"], 1.0)
    return {
        "spike_rates": rates,
        "macs_per_token": counts["macs"] / per,
        "acs_per_token": counts["acs"] / per,
        "target_tokens": int(counts["target_positions"]),
    }


ALPHA_GRID = (0.6, 1.0, 1.5, 2.0)


def tune_length_alpha(
    model: Translator, data: NMTData, config: TranslatorConfig, device="cpu",
    grid: Sequence[float] = ALPHA_GRID,
) -> tuple[float, dict[str, float]]:  # fmt: skip
    """The length-penalty alpha of `grid` with the best beam BLEU on the valid split (never
    the test split), and the BLEU of each."""
    scores = {}
    for alpha in grid:
        hyps = _decode_ids(model, data, data.valid.src_ids, config.replace(length_alpha=alpha),
                           config.beam, device)  # fmt: skip
        scores[str(alpha)] = corpus_bleu(hyps, data.valid.references).score
    best = max(grid, key=lambda a: (scores[str(a)], -a))
    return float(best), scores


def evaluate(
    model: Translator, data: NMTData, config: TranslatorConfig, device="cpu",
    splits: Sequence[str] = ("valid", "test"),
) -> dict:  # fmt: skip
    """BLEU (greedy, beam), chrF, loss per split; spike rates and MACs/ACs on the test split.
    With `config.tune_length_alpha` the beam's length penalty is first chosen on valid."""
    model.to(device)
    out: dict = {}
    if config.tune_length_alpha and config.beam > 1:
        alpha, grid = tune_length_alpha(model, data, config, device)
        config = config.replace(length_alpha=alpha)
        out["length_alpha"] = alpha
        out["length_alpha_valid_bleu"] = grid
    for name in splits:
        es = getattr(data, name)
        if es is None:
            continue
        out[name] = score_set(model, data, es, config, device, beam=name != "wmt")
    out.update(activity(model, data.test, config, device))
    test = out.get("test", {})
    out["quality"] = {
        "metric": "bleu",
        "higher_is_better": True,
        "valid": out.get("valid", {}).get("bleu_beam", out.get("valid", {}).get("bleu_greedy")),
        "test": test.get("bleu_beam", test.get("bleu_greedy")),
    }
    return out
