"""Made Multi30k folders: a word-for-word German-English toy language in the dataset's layout."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

LEXICON = {
    "a": "ein", "the": "der", "dog": "hund", "cat": "katze", "man": "mann", "woman": "frau",
    "child": "kind", "runs": "läuft", "sits": "sitzt", "plays": "spielt", "on": "auf",
    "in": "in", "grass": "gras", "street": "straße", "park": "park", "with": "mit",
    "ball": "ball", "red": "roter", "small": "kleiner", "big": "großer", ".": ".",
}  # fmt: skip
SUBJECTS = ["dog", "cat", "man", "woman", "child"]
PLACES = ["grass", "street", "park"]
ADJECTIVES = ["red", "small", "big"]


def sentence(rng: random.Random) -> list[str]:
    words = [rng.choice(["a", "the"])]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words += [rng.choice(SUBJECTS), rng.choice(["runs", "sits", "plays"])]
    if rng.random() < 0.6:
        words += [rng.choice(["on", "in"]), "the", rng.choice(PLACES)]
    if rng.random() < 0.3:
        words += ["with", "a", "ball"]
    return words + ["."]


def make_multi30k(root: Path, sizes: tuple[int, int, int] = (300, 30, 30), seed: int = 0) -> Path:
    """root/multi30k/{train,val,test_2016_flickr}.lc.norm.tok.{de,en}; returns root."""
    rng = random.Random(seed)
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    for stem, n in zip(("train", "val", "test_2016_flickr"), sizes):
        en = [sentence(rng) for _ in range(n)]
        de = [[LEXICON[w] for w in s] for s in en]
        for lang, sents in (("en", en), ("de", de)):
            text = "\n".join(" ".join(s) for s in sents) + "\n"
            (folder / f"{stem}.lc.norm.tok.{lang}").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def m30k_root(tmp_path: Path) -> Path:
    return make_multi30k(tmp_path / "data")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these models are tiny, and two threads on a busy 2-core machine wait on
    each other (OpenMP barriers) far longer than they compute. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
