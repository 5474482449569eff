"""Corpora for the AWD-LSTM language models, and the batching the published trainer uses.

Token counting follows the published `data.py`: every line of a text split contributes its
whitespace-separated symbols plus one `<eos>`, including a last line that holds only a space (the
PTB char files end with "\\n "), and symbols get ids in order of first appearance over train,
valid, test. enwik8 is read as raw bytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

EOS = "<eos>"

# Model name -> dataset name in the dataset registry (common.datasets).
DATASET_OF_MODEL = {"ptbc": "ptb_char", "ptbw": "ptb_word", "enwik8": "enwik8"}

ENWIK8_SPLITS = (90_000_000, 5_000_000, 5_000_000)


@dataclass(frozen=True)
class Corpus:
    """Three 1-D LongTensors of token ids and the vocabulary (id -> symbol)."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


class _Vocabulary:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.symbols: list[str] = []

    def encode_lines(self, lines: Iterable[str]) -> torch.Tensor:
        index, symbols = self.index, self.symbols
        ids: list[int] = []
        append = ids.append
        for line in lines:
            for sym in line.split() + [EOS]:
                i = index.get(sym)
                if i is None:
                    i = index[sym] = len(symbols)
                    symbols.append(sym)
                append(i)
        return torch.tensor(ids, dtype=torch.long)


def _split_lines(text: str) -> list[str]:
    # The published loader iterates the file object, so a file ending in "\n" has no extra empty
    # line while a file ending in "\n " has a last line " " (which still yields an <eos>).
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def load_text_folder(folder: str | Path) -> Corpus:
    """Read `train.txt`, `valid.txt`, `test.txt` of a PTB-style folder (char or word level)."""
    folder = Path(folder)
    vocab = _Vocabulary()
    splits = []
    for name in ("train", "valid", "test"):
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise ValueError(
                f"corpus file {path} does not exist (need train.txt, valid.txt, test.txt)"
            )
        splits.append(vocab.encode_lines(_split_lines(path.read_text(encoding="utf-8"))))
    return Corpus(*splits, vocab=tuple(vocab.symbols))


def read_enwik8_bytes(folder: str | Path) -> bytes:
    """The raw enwik8 bytes from `enwik8` or, failing that, the `enwik8` member of `enwik8.zip`."""
    folder = Path(folder)
    raw = folder / "enwik8"
    if raw.is_file():
        return raw.read_bytes()
    zipped = folder / "enwik8.zip"
    if zipped.is_file():
        with zipfile.ZipFile(zipped) as zf:
            if "enwik8" not in zf.namelist():
                raise ValueError(
                    f"{zipped} has no member named 'enwik8' (members: {zf.namelist()})"
                )
            return zf.read("enwik8")
    raise ValueError(f"neither {raw} nor {zipped} exists")


def load_enwik8_folder(folder: str | Path, splits: tuple[int, int, int] = ENWIK8_SPLITS) -> Corpus:
    """enwik8 as bytes: the first `splits[0]` bytes train, the next `splits[1]` valid, the last
    `splits[2]` test. The file must hold exactly `sum(splits)` bytes, so a truncated copy cannot
    pass for the real one. The vocabulary is the distinct byte values of the file, sorted."""
    if len(splits) != 3 or any(int(s) <= 1 for s in splits):
        raise ValueError(
            f"enwik8 splits must be three sizes > 1 (train, valid, test), got {splits}"
        )
    data = read_enwik8_bytes(folder)
    total = sum(splits)
    if len(data) != total:
        raise ValueError(
            f"enwik8 in {folder} has {len(data):,} bytes but the splits {tuple(splits)} need "
            f"exactly {total:,}"
        )
    arr = np.frombuffer(data, dtype=np.uint8)
    present = np.flatnonzero(np.bincount(arr, minlength=256))
    lut = np.full(256, -1, dtype=np.int64)
    lut[present] = np.arange(len(present))
    ids = torch.from_numpy(lut[arr])
    a, b = splits[0], splits[0] + splits[1]
    vocab = tuple(f"0x{int(v):02x}" for v in present)
    return Corpus(ids[:a].clone(), ids[a:b].clone(), ids[b:].clone(), vocab=vocab)


def load_corpus(
    model_name: str,
    data_dir: str | Path | None = None,
    *,
    verify: bool = True,
    enwik8_splits: tuple[int, int, int] = ENWIK8_SPLITS,
) -> Corpus:
    """Load the corpus of `model_name` ("ptbc", "ptbw" or "enwik8") through the dataset registry:
    `data_dir` is a data root (the CLI's --data-dir); see `common.datasets.dataset_dir`."""
    if model_name not in DATASET_OF_MODEL:
        raise ValueError(f"unknown model {model_name!r}; known: {', '.join(DATASET_OF_MODEL)}")
    from common.datasets import dataset_dir

    folder = dataset_dir(DATASET_OF_MODEL[model_name], data_dir, verify=verify)
    if model_name == "enwik8":
        return load_enwik8_folder(folder, enwik8_splits)
    return load_text_folder(folder)


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) -> (N // batch_size, batch_size): column b is the b-th contiguous slice of the
    stream; the remainder that does not fill a row is dropped, as in the published code."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    nrows = data.size(0) // batch_size
    if nrows < 2:
        raise ValueError(
            f"{data.size(0)} tokens are too few for batch size {batch_size} (need >= 2 rows)"
        )
    return data[: nrows * batch_size].view(batch_size, nrows).t().contiguous()


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows i .. i+seq_len of a batchified stream and the next-token targets (same shape),
    clipped at the end of the stream."""
    seq_len = min(seq_len, source.size(0) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]


def sample_seq_len(rng: np.random.Generator, bptt: int) -> int:
    """The published variable BPTT: bptt with probability 0.95, bptt/2 otherwise, then a normal
    draw around it with std 5, at least 5. The learning rate is scaled by seq_len / bptt."""
    base = bptt if rng.random() < 0.95 else bptt / 2.0
    return max(5, int(rng.normal(base, 5)))
