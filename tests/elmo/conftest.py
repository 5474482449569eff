"""Made corpora for the ELMo tests: word PTB's layout (a toy grammar's sentences, one a line) and
the 1B Word Benchmark's unpacked folder (a few shards), under a made data root."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from elmo.config import preset_config

SUBJECTS = ["the cat", "a dog", "the man", "mr. smith", "the company", "a bank"]
VERBS = ["sees", "buys", "sells", "likes", "owns"]
OBJECTS = ["the house", "a car", "N shares", "the bonds", "a café", "<unk>"]
ENDINGS = ["", "today", "for N dollars", "in new york"]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(ENDINGS)]
    return " ".join(w for w in words if w)


def write_lines(path: Path, n: int, rng: random.Random, lead: str = " ") -> None:
    """`n` sentences, one a line; PTB's lines start and end with a space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{lead}{sentence(rng)} \n" for _ in range(n)), encoding="utf-8")


def make_ptb(root: Path, sizes: tuple[int, int, int] = (600, 80, 80), seed: int = 0) -> Path:
    """root/ptb_word/{train,valid,test}.txt; returns root."""
    rng = random.Random(seed)
    for split, n in zip(("train", "valid", "test"), sizes):
        write_lines(root / "ptb_word" / f"{split}.txt", n, rng)
    return root


TRAIN_SHARD = "training-monolingual.tokenized.shuffled/news.en-{:05d}-of-00100"
HELDOUT = "heldout-monolingual.tokenized.shuffled/news.en.heldout-{:05d}-of-00050"


def make_lm1b(root: Path, shards: int = 99, lines: int = 6, seed: int = 0) -> Path:
    """root/lm1b/ as the benchmark's archive unpacks: `shards` training shards (the first ones)
    and heldout shards 00000 (test) and 00001 (valid); returns root."""
    rng = random.Random(seed)
    folder = root / "lm1b"
    for i in range(1, shards + 1):
        write_lines(folder / TRAIN_SHARD.format(i), lines, rng, lead="")
    for i in (0, 1):
        write_lines(folder / HELDOUT.format(i), lines, rng, lead="")
    return root


def smoke(**changes: object):
    """The smoke preset on made data: every split whole (the made ones are small)."""
    return preset_config("smoke", **{"train_tokens": 0, "eval_tokens": 0, **changes})


@pytest.fixture
def ptb_root(tmp_path: Path) -> Path:
    return make_ptb(tmp_path / "data")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these models are tiny, and two threads on a busy 2-core machine wait on
    each other far longer than they compute. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
