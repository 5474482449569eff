"""The surname data: names folded to the tutorial's 58 symbols, the two splits, and batches.

Two splits, both reported:
- "tutorial": the tutorial's own, the first 80% of each language's file trains and the rest
  tests. The files are nearly alphabetical, and 46.8% of that test set is Russian.
- "stratified": a seeded random 80/20 split within each language.
"""

from __future__ import annotations

import math
import os
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nmt.names.config import SPLITS, NamesConfig

__all__ = [
    "LETTERS",
    "NamesData",
    "batch_stream",
    "load_names",
    "majority_baseline",
    "to_ascii",
]

LETTERS = string.ascii_letters + " .,;'-"
_INDEX = {ch: i for i, ch in enumerate(LETTERS)}


def to_ascii(name: str) -> str:
    """Strip accents (NFD, drop combining marks) and keep only LETTERS, as the tutorial."""
    return "".join(
        ch
        for ch in unicodedata.normalize("NFD", name)
        if unicodedata.category(ch) != "Mn" and ch in _INDEX
    )


@dataclass(frozen=True)
class NamesData:
    """Names with their class labels, letters as indices into LETTERS (padded with 0)."""

    names: tuple[str, ...]
    labels: np.ndarray  # int64 [N]
    codes: np.ndarray  # int64 [N, max_len]
    lengths: np.ndarray  # int64 [N]

    @classmethod
    def from_names(cls, names: list[str], labels: list[int]) -> NamesData:
        lengths = np.array([len(n) for n in names], dtype=np.int64)
        if len(names) and lengths.min() < 1:
            raise ValueError("every name needs at least one letter after ASCII folding")
        codes = np.zeros((len(names), int(lengths.max()) if len(names) else 1), dtype=np.int64)
        for row, name in enumerate(names):
            codes[row, : len(name)] = [_INDEX[ch] for ch in name]
        return cls(tuple(names), np.asarray(labels, dtype=np.int64), codes, lengths)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> NamesData:
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        width = max(int(lengths.max()), 1) if len(index) else 1
        return NamesData(
            tuple(self.names[i] for i in index),
            self.labels[index],
            self.codes[index, :width],
            lengths,
        )

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu"):
        """(one-hot x [T, B, 58], lengths [B], labels [B]) for the names at `index`."""
        lengths = self.lengths[index]
        steps = int(lengths.max())
        codes = torch.from_numpy(self.codes[index, :steps].T.copy())
        x = F.one_hot(codes, len(LETTERS)).to(device=device, dtype=torch.float32)
        return x, torch.from_numpy(lengths), torch.from_numpy(self.labels[index]).to(device)


def _names_folder(data_dir: str | os.PathLike | None) -> Path:
    # A folder of <Language>.txt files is used as given (tests, other copies); anything else
    # is a data root for the dataset registry, which verifies the real files' SHA-256.
    if data_dir is not None and any(Path(data_dir).glob("*.txt")):
        return Path(data_dir)
    from common.datasets import dataset_dir

    return dataset_dir("names", data_dir)


def load_names(
    data_dir: str | os.PathLike | None, split: str = "stratified", seed: int = 0
) -> tuple[NamesData, NamesData, tuple[str, ...]]:
    """(train, test, classes). `data_dir` is the names folder itself or a data root
    (resolved, and checked against its SHA-256, by common.datasets). Classes are the file
    stems in sorted order; lines are read as the tutorial (strip, split on newlines)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {', '.join(SPLITS)}")
    folder = _names_folder(data_dir)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise ValueError(f"no <Language>.txt files in {folder}")
    classes = tuple(f.stem for f in files)
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, path in enumerate(files):
        lines = path.read_text(encoding="utf-8").strip().split("\n")
        names = [to_ascii(line) for line in lines]
        cut = int(len(names) * 0.8)
        order = np.arange(len(names)) if split == "tutorial" else rng.permutation(len(names))
        for part, idx in (("train", order[:cut]), ("test", order[cut:])):
            parts[part][0].extend(names[i] for i in idx)
            parts[part][1].extend([label] * len(idx))
    train = NamesData.from_names(*parts["train"])
    test = NamesData.from_names(*parts["test"])
    return train, test, classes


def majority_baseline(train: NamesData, test: NamesData) -> float:
    """Test accuracy of always answering the most common training class."""
    top = int(np.bincount(train.labels).argmax())
    return float(np.mean(test.labels == top))


def _bucketed_epoch(data: NamesData, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Batches of similar length (little padding), in a seeded random order per epoch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data))
    order = order[np.argsort(data.lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_stream(data: NamesData, config: NamesConfig, start_step: int) -> Iterator[np.ndarray]:
    """The index batches of steps start_step, start_step + 1, ...; a pure function of the
    seed and the step, so a resumed run sees the same data as an uninterrupted one."""
    if config.sampling == "class_uniform":
        by_class = [np.flatnonzero(data.labels == k) for k in range(int(data.labels.max()) + 1)]
        step = start_step
        while True:
            rng = np.random.default_rng([config.seed, 1, step])
            ks = rng.integers(len(by_class), size=config.batch_size)
            yield np.array([by_class[k][rng.integers(len(by_class[k]))] for k in ks])
            step += 1
    per_epoch = math.ceil(len(data) / config.batch_size)
    epoch, offset = divmod(start_step, per_epoch)
    while True:
        batches = _bucketed_epoch(data, config.batch_size, config.seed, epoch)
        yield from batches[offset:]
        offset = 0
        epoch += 1
