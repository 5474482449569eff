"""Multi30k task 1, German to English: the tokenized, lowercased files, vocabularies and batches.

The files (`{train,val,test_2016_flickr}.lc.norm.tok.{de,en}`, one sentence per line, the lines
of a split's two files parallel) are already tokenized and lowercased: a sentence is its
whitespace-separated tokens. Vocabularies come from the training split alone (a word seen fewer
than `min_freq` times is <unk>), with <pad>, <unk>, <bos> and <eos> first. The references BLEU
scores against are the target lines as they are in the files, unknown words included.

Batches hold sentences of one source length: the encoder is bidirectional, and its reverse
direction would otherwise read the padding of a shorter sentence before the sentence itself.
Within a length the pairs are ordered by target length, so that little target padding is left.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SPECIALS",
    "SPLIT_FILES",
    "UNK",
    "Multi30kData",
    "Split",
    "Vocab",
    "batch_tensors",
    "length_batches",
    "load_folder",
    "load_multi30k",
]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
SRC, TGT = "de", "en"
# our split name -> the file stem of the registry's multi30k dataset
SPLIT_FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}


@dataclass(frozen=True)
class Vocab:
    """Tokens by id (`itos`, the specials first) and the reverse map."""

    itos: tuple[str, ...]
    stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.itos[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {self.itos[:4]}")
        object.__setattr__(self, "stoi", {tok: i for i, tok in enumerate(self.itos)})

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int) -> Vocab:
        """The tokens seen at least `min_freq` times, most frequent first (ties by the token,
        so the same corpus always gives the same ids)."""
        counts = Counter(tok for sent in sentences for tok in sent)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls(SPECIALS + tuple(t for t in kept if t not in SPECIALS))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.stoi.get(t, UNK) for t in tokens], dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]


@dataclass(frozen=True)
class Split:
    """Sentence pairs as token ids (no <bos>/<eos>) and the target lines as written."""

    src: tuple[np.ndarray, ...]
    tgt: tuple[np.ndarray, ...]
    references: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.src)

    @property
    def src_lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.src], dtype=np.int64)

    @property
    def tgt_lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.tgt], dtype=np.int64)


@dataclass(frozen=True)
class Multi30kData:
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: Split
    valid: Split
    test: Split
    info: dict


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"{path}: missing (Multi30k needs {path.name} in {path.parent})")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _read_split(folder: Path, split: str) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """(source tokens, target tokens, target lines) of a split; ValueError naming the files
    when their lines are not parallel, or an evaluated split has an empty source line."""
    stem = SPLIT_FILES[split]
    src_path, tgt_path = (folder / f"{stem}.lc.norm.tok.{lang}" for lang in (SRC, TGT))
    src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise ValueError(
            f"{src_path.name} has {len(src_lines)} lines but {tgt_path.name} {len(tgt_lines)}: "
            f"the two sides of a split must be parallel"
        )
    src, tgt, refs = [], [], []
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines)):
        s_tok, t_tok = s.split(), t.split()
        if not s_tok or not t_tok:
            if split == "train":  # nothing to learn from; an evaluated split keeps every line
                continue
            raise ValueError(f"{src_path.name} / {tgt_path.name} line {i + 1}: an empty sentence")
        src.append(s_tok)
        tgt.append(t_tok)
        refs.append(" ".join(t_tok))
    return src, tgt, refs


def load_folder(folder: str | os.PathLike, min_freq: int = 2, max_len: int = 0) -> Multi30kData:
    """The three splits of the folder and the vocabularies of its training split. `max_len`
    (0 = none) leaves training pairs with a longer side out."""
    folder = Path(folder)
    raw = {split: _read_split(folder, split) for split in SPLIT_FILES}
    src_tr, tgt_tr, refs_tr = raw["train"]
    if max_len:
        keep = [i for i, (s, t) in enumerate(zip(src_tr, tgt_tr)) if max(len(s), len(t)) <= max_len]
        src_tr, tgt_tr = [src_tr[i] for i in keep], [tgt_tr[i] for i in keep]
        refs_tr = [refs_tr[i] for i in keep]
        raw["train"] = (src_tr, tgt_tr, refs_tr)
    if not src_tr:
        raise ValueError(f"{folder}: no training pairs left (max_len={max_len})")
    src_vocab, tgt_vocab = Vocab.build(src_tr, min_freq), Vocab.build(tgt_tr, min_freq)

    def encode(split: str) -> Split:
        src, tgt, refs = raw[split]
        return Split(
            tuple(src_vocab.encode(s) for s in src),
            tuple(tgt_vocab.encode(t) for t in tgt),
            tuple(refs),
        )

    splits = {split: encode(split) for split in SPLIT_FILES}
    info = {
        "src_vocab": len(src_vocab),
        "tgt_vocab": len(tgt_vocab),
        **{f"{split}_pairs": len(s) for split, s in splits.items()},
        "min_freq": min_freq,
        "max_len": max_len,
        "test_mean_src_len": float(np.mean(splits["test"].src_lengths)),
        "test_mean_tgt_len": float(np.mean(splits["test"].tgt_lengths)),
    }
    return Multi30kData(src_vocab, tgt_vocab, splits["train"], splits["valid"], splits["test"],
                        info)  # fmt: skip


def load_multi30k(cfg, data_dir: str | os.PathLike | None, verify: bool = True) -> Multi30kData:
    """The registry's multi30k dataset under the data root (`data_dir`, else $LSTMPACK_DATA,
    else the repository's data/), its files checked against their SHA-256 unless not `verify`."""
    from common.datasets import dataset_dir

    folder = dataset_dir("multi30k", data_dir, verify=verify)
    return load_folder(folder, cfg.min_freq, cfg.max_len)


def length_batches(
    split: Split, batch_size: int, *, seed: int | None = None, epoch: int = 0
) -> list[np.ndarray]:
    """Index batches of one source length each, at most `batch_size` pairs, ordered by target
    length within a length. With `seed`: the pairs of a length and the batches are shuffled, a
    pure function of (seed, epoch), so a resumed run sees the batches an uninterrupted one does;
    without: a fixed order (evaluation)."""
    rng = np.random.default_rng([seed, epoch]) if seed is not None else None
    src_len, tgt_len = split.src_lengths, split.tgt_lengths
    order = rng.permutation(len(split)) if rng is not None else np.arange(len(split))
    # by source length, then target length; the permutation breaks the remaining ties
    order = order[np.lexsort((tgt_len[order], src_len[order]))]
    batches = []
    for length in np.unique(src_len):
        same = order[src_len[order] == length]
        batches.extend(same[i : i + batch_size] for i in range(0, len(same), batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _padded(rows: Sequence[np.ndarray], width: int) -> torch.Tensor:
    out = np.full((width, len(rows)), PAD, dtype=np.int64)
    for j, row in enumerate(rows):
        out[: len(row), j] = row
    return torch.from_numpy(out)


def batch_tensors(
    split: Split, idx: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src [S, B], src_len [B], tgt_in [T, B], tgt_out [T, B]), time first: tgt_in starts with
    <bos>, tgt_out ends with <eos>, both padded with <pad>."""
    src = [split.src[i] for i in idx]
    tgt = [split.tgt[i] for i in idx]
    src_len = torch.tensor([len(s) for s in src], dtype=torch.long)
    width = max(len(t) for t in tgt) + 1
    tgt_in = _padded([np.concatenate(([BOS], t)) for t in tgt], width)
    tgt_out = _padded([np.concatenate((t, [EOS])) for t in tgt], width)
    src_t = _padded(src, int(src_len.max()))
    return src_t.to(device), src_len.to(device), tgt_in.to(device), tgt_out.to(device)
