"""Fixtures for the lm tests: tiny made corpora and configs."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from lm.config import LMConfig
from lm.presets import SMOKE


def write_char_corpus(folder: Path, lines_per_split: tuple[int, int, int] = (300, 40, 40)) -> Path:
    """A PTB-char style folder: spaced symbols, `_` between words, the "\\n " ending."""
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in zip(("train", "valid", "test"), lines_per_split):
        lines = []
        for k in range(n):
            ws = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            body = " _ ".join(" ".join(w) for w in ws) + " "
            lines.append(body if k == 0 else " " + body)
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n ")
    return folder


def tiny_config(**changes: object) -> LMConfig:
    base = SMOKE["ptbc"].replace(
        emsize=8, nhid=16, bptt=12, batch_size=4, eval_batch_size=2, test_batch_size=2,
        max_steps_per_epoch=6, train_tokens=0, eval_tokens=0, epochs=2, log_interval=2,
    )  # fmt: skip
    return base.replace(**changes)


@pytest.fixture
def char_folder(tmp_path: Path) -> Path:
    return write_char_corpus(tmp_path / "ptb_char")


@pytest.fixture
def char_corpus(char_folder: Path):
    from lm.data import load_text_folder

    return load_text_folder(char_folder)


@pytest.fixture
def make_config() -> Callable[..., LMConfig]:
    return tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run several times faster on one thread on a shared 2-core machine (two OMP
    threads spin against other processes)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
