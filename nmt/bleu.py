"""BLEU and chrF through sacreBLEU, with the signature that makes a score reproducible.

BLEU uses sacreBLEU's `tokenize="zh"` (each CJK character a token, the rest 13a), as for
WMT zh targets; chrF uses sacreBLEU's defaults (character 6-grams, beta 2, whitespace ignored).
References are given per hypothesis as a list of strings, one or more: a source with several
translations in the corpus is scored against all of them (sacreBLEU's variable-reference mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Score", "corpus_bleu", "corpus_chrf", "to_streams"]


@dataclass(frozen=True)
class Score:
    """A corpus score, its sacreBLEU signature and the full sacreBLEU line."""

    score: float
    signature: str
    text: str


def to_streams(references: Sequence[Sequence[str]], n_hyp: int) -> list[list[str | None]]:
    """Per-hypothesis reference lists -> sacreBLEU's reference streams (None where a sentence
    has fewer references than the most referenced one)."""
    if len(references) != n_hyp:
        raise ValueError(
            f"need one reference list per hypothesis: {n_hyp} hypotheses, "
            f"{len(references)} reference lists"
        )
    if any(isinstance(r, str) for r in references):
        raise ValueError("references must be a list of reference lists, not a list of strings")
    if any(len(r) == 0 for r in references):
        raise ValueError("every hypothesis needs at least one reference")
    depth = max((len(r) for r in references), default=1)
    return [[r[k] if k < len(r) else None for r in references] for k in range(depth)]


def corpus_bleu(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], tokenize: str = "zh"
) -> Score:
    """sacreBLEU corpus BLEU of `hypotheses` against per-hypothesis reference lists."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=tokenize)
    result = metric.corpus_score(list(hypotheses), to_streams(references, len(hypotheses)))
    sig = str(metric.get_signature())
    return Score(float(result.score), sig, f"{result} {sig}")


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Score:
    """sacreBLEU corpus chrF (default chrF2) against per-hypothesis reference lists."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), to_streams(references, len(hypotheses)))
    sig = str(metric.get_signature())
    return Score(float(result.score), sig, f"{result} {sig}")
