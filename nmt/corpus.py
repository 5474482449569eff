"""English-Chinese corpora: Tatoeba cmn-eng (split by source sentence), WMT19 zh-en's training
shards (the paper preset's corpus) and its validation set (newstest2018).

Tatoeba lists one line per (English, Chinese) pair, and an English sentence with several Chinese
translations appears on several lines. Splitting by line would put the same source in train and
test, so the split is by distinct English sentence: a source and all its translations go to one
split, and a test source is scored against all its translations (multi-reference BLEU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Pair",
    "ParallelCorpus",
    "group_references",
    "read_tatoeba",
    "read_wmt_parquet",
    "read_wmt_shards",
    "split_by_source",
]

Pair = tuple[str, str]


def read_tatoeba(path: str | Path) -> list[Pair]:
    """(English, Chinese) pairs of a manythings.org `cmn.txt` (en TAB zh TAB attribution)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no Tatoeba file at {path}")
    pairs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                raise ValueError(
                    f"{path}:{lineno}: expected en<TAB>zh[<TAB>attribution], got {line!r}"
                )
            en, zh = cols[0].strip(), cols[1].strip()
            if en and zh:
                pairs.append((en, zh))
    return pairs


def read_wmt_parquet(path: str | Path) -> list[Pair]:
    """(English, Chinese) pairs of a HuggingFace WMT parquet file (column `translation`)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no parquet file at {path}")
    rows = pq.read_table(path, columns=["translation"]).column("translation").to_pylist()
    return [(r["en"].strip(), r["zh"].strip()) for r in rows if r["en"].strip() and r["zh"].strip()]


def read_wmt_shards(paths: Sequence[str | Path]) -> list[Pair]:
    """The (English, Chinese) pairs of WMT parquet shards, in shard order (pairs with an empty
    side left out, as `read_wmt_parquet` does)."""
    pairs: list[Pair] = []
    for path in paths:
        pairs.extend(read_wmt_parquet(path))
    return pairs


@dataclass(frozen=True)
class ParallelCorpus:
    """The three splits, each a list of pairs (a source may repeat within a split)."""

    train: tuple[Pair, ...]
    valid: tuple[Pair, ...]
    test: tuple[Pair, ...]


def split_by_source(pairs: Sequence[Pair], n_valid: int, n_test: int, seed: int) -> ParallelCorpus:
    """Split so that no English source is in two splits: `n_valid` and `n_test` distinct sources
    (chosen by a seeded permutation of the sources in first-appearance order), the rest train."""
    if n_valid < 0 or n_test < 0:
        raise ValueError(f"n_valid and n_test must be >= 0, got {n_valid} and {n_test}")
    sources = list(dict.fromkeys(en for en, _ in pairs))
    if n_valid + n_test >= len(sources):
        raise ValueError(
            f"n_valid + n_test = {n_valid + n_test} leaves no training source out of "
            f"{len(sources)} distinct sources"
        )
    order = np.random.default_rng(seed).permutation(len(sources))
    which = {}
    for rank, i in enumerate(order):
        which[sources[i]] = 2 if rank < n_test else 1 if rank < n_test + n_valid else 0
    splits: tuple[list[Pair], list[Pair], list[Pair]] = ([], [], [])
    for p in pairs:
        splits[which[p[0]]].append(p)
    return ParallelCorpus(tuple(splits[0]), tuple(splits[1]), tuple(splits[2]))


def group_references(pairs: Sequence[Pair]) -> tuple[list[str], list[list[str]]]:
    """Distinct sources (first-appearance order) and, for each, all its translations."""
    refs: dict[str, list[str]] = {}
    for en, zh in pairs:
        refs.setdefault(en, [])
        if zh not in refs[en]:
            refs[en].append(zh)
    return list(refs), list(refs.values())
