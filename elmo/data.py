"""ELMo's corpora: word PTB and the 1B Word Benchmark as token-id streams, the token vocabulary
of the softmax, every token's character ids, and the windows a bidirectional LM trains on.

A corpus is a stream: every line's whitespace-separated tokens and one end-of-sentence token
(PTB: "<eos>", as lm.data counts it, so perplexities compare with the AWD-LSTM's; lm1b: "</S>").
The vocabulary is sorted by training frequency, most frequent first (ties: first appearance),
which the sampled softmax's log-uniform sampler assumes; PTB's is closed (a token seen only in
valid or test is appended), lm1b's is a file or the training tokens seen `vocab_min_count` times,
every other token <UNK>. The character CNN reads a token through its row of `chars` (elmo.chars),
the end-of-sentence token encoded as bilm-tf's end-of-sentence marker.

The forward LM reads the stream left to right; the backward LM reads the reversed stream left to
right, which is the stream right to left: each is batchified into `batch_size` columns and cut in
windows of `bptt`, and each carries its LSTM state from one window to the next, so both see the
whole past of their own direction.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elmo.chars import EOS_CHAR, encode_tokens
from elmo.config import ELMoConfig

__all__ = [
    "LM1B_TEST",
    "LM1B_VALID",
    "PTB_DATASET",
    "ELMoData",
    "batchify",
    "by_frequency",
    "check_sizes",
    "count_tokens",
    "encode_lines",
    "lm1b_files",
    "load_data",
    "load_lm1b",
    "load_ptb",
    "read_vocab_file",
    "window",
    "window_starts",
]

PTB_DATASET = "ptb_word"
PTB_EOS = "<eos>"
LM1B_EOS, LM1B_UNK = "</S>", "<UNK>"
_HELDOUT = "heldout-monolingual.tokenized.shuffled/news.en.heldout-{:05d}-of-00050"
LM1B_TEST = _HELDOUT.format(0)  # the benchmark's published test set
LM1B_VALID = _HELDOUT.format(1)
LM1B_TRAIN = "training-monolingual.tokenized.shuffled/news.en-{:05d}-of-00100"


@dataclass(frozen=True)
class ELMoData:
    """Three 1-D LongTensors of token ids, the vocabulary (id -> token, most frequent first) and
    `chars`, the (vocabulary, max_chars) int16 character ids of every token."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: tuple[str, ...]
    chars: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def char_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., max_chars) int64 character ids of the token ids `ids` (any shape)."""
        return self.chars[ids.cpu()].long().to(ids.device)


# --------------------------------------------------------------------------- reading


def _lines(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield line.split()


def count_tokens(paths: Iterable[Path], eos: str) -> Counter[str]:
    """Token counts over the files' lines, one `eos` per line."""
    counts: Counter[str] = Counter()
    for path in paths:
        n = 0
        for words in _lines(path):
            counts.update(words)
            n += 1
        counts[eos] += n
    return counts


def by_frequency(counts: Counter[str], min_count: int = 1) -> list[str]:
    """The tokens counted at least `min_count` times, most frequent first; ties keep the order
    the counter first saw them in (Counter.most_common's sort is stable)."""
    return [tok for tok, n in counts.most_common() if n >= min_count]


def encode_lines(
    paths: Iterable[Path], index: dict[str, int], eos: str, unk: str | None = None
) -> torch.Tensor:
    """The token ids of the files' lines, each followed by `eos`; a token outside `index` is
    `unk`, or a ValueError naming it and its file when `unk` is None."""
    eos_id = index[eos]
    unk_id = None if unk is None else index[unk]
    chunks: list[np.ndarray] = []
    for path in paths:
        ids: list[int] = []
        for words in _lines(path):
            if unk_id is None:
                try:
                    ids.extend(index[w] for w in words)
                except KeyError as e:
                    raise ValueError(
                        f"{path}: token {e.args[0]!r} is not in the vocabulary"
                    ) from None
            else:
                ids.extend(index.get(w, unk_id) for w in words)
            ids.append(eos_id)
        chunks.append(np.asarray(ids, dtype=np.int64))
    return torch.from_numpy(np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64))


def _char_table(vocab: tuple[str, ...], eos: str, max_chars: int) -> torch.Tensor:
    return torch.from_numpy(encode_tokens(vocab, max_chars, {eos: EOS_CHAR}))


def _prefix(ids: torch.Tensor, n: int) -> torch.Tensor:
    return ids[:n].clone() if n else ids


# --------------------------------------------------------------------------- PTB


def load_ptb(folder: str | os.PathLike, cfg: ELMoConfig) -> ELMoData:
    """Word PTB from `folder` (train.txt, valid.txt, test.txt, Mikolov's files)."""
    folder = Path(folder)
    paths = [folder / f"{split}.txt" for split in ("train", "valid", "test")]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"corpus file {path} does not exist (need train.txt, valid.txt, "
                             f"test.txt)")  # fmt: skip
    vocab = by_frequency(count_tokens(paths[:1], PTB_EOS))
    seen = set(vocab)
    for tok in by_frequency(count_tokens(paths[1:], PTB_EOS)):  # a closed vocabulary, as lm's
        if tok not in seen:
            vocab.append(tok)
            seen.add(tok)
    index = {tok: i for i, tok in enumerate(vocab)}
    train, valid, test = (encode_lines([p], index, PTB_EOS) for p in paths)
    return _data(cfg, train, valid, test, tuple(vocab), PTB_EOS, {"corpus": "ptb"})


def _data(
    cfg: ELMoConfig,
    train: torch.Tensor,
    valid: torch.Tensor,
    test: torch.Tensor,
    vocab: tuple[str, ...],
    eos: str,
    info: dict[str, Any],
) -> ELMoData:
    """The splits cut to cfg's prefixes, with the vocabulary's character ids and a summary."""
    train = _prefix(train, cfg.train_tokens)
    valid, test = _prefix(valid, cfg.eval_tokens), _prefix(test, cfg.eval_tokens)
    info = {**info, "vocab": len(vocab), "train_tokens": len(train), "valid_tokens": len(valid),
            "test_tokens": len(test)}  # fmt: skip
    return ELMoData(train, valid, test, vocab, _char_table(vocab, eos, cfg.max_chars), info)


# --------------------------------------------------------------------------- lm1b


def lm1b_files(cfg: ELMoConfig) -> tuple[tuple[str, ...], str, str]:
    """(training shards, valid shard, test shard) of `cfg`, relative to the lm1b folder: the
    first `train_shards` training shards (0: all 99), heldout 00001 and heldout 00000."""
    n = cfg.train_shards or 99
    return tuple(LM1B_TRAIN.format(i) for i in range(1, n + 1)), LM1B_VALID, LM1B_TEST


def read_vocab_file(path: Path) -> list[str]:
    """A vocabulary file: the first whitespace-separated field of every non-empty line, in the
    file's order (bilm-tf's and the benchmark's vocabularies list the most frequent first).
    ValueError naming the file when it repeats a token or lacks </S> or <UNK>."""
    words = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]  # fmt: skip
    if len(set(words)) != len(words):
        dup = next(w for i, w in enumerate(words) if w in words[:i])
        raise ValueError(f"vocabulary file {path} lists {dup!r} twice")
    for need in (LM1B_EOS, LM1B_UNK):
        if need not in words:
            raise ValueError(f"vocabulary file {path} has no {need}")
    return words


def load_lm1b(folder: str | os.PathLike, cfg: ELMoConfig) -> ELMoData:
    """The 1B Word Benchmark from its unpacked folder (see lm1b_files); the vocabulary from
    cfg.vocab_file, else the training tokens seen cfg.vocab_min_count times and <UNK>."""
    folder = Path(folder)
    train_names, valid_name, test_name = lm1b_files(cfg)
    train_paths = [folder / name for name in train_names]
    if cfg.vocab_file:
        vocab_path = Path(cfg.vocab_file)
        vocab_path = vocab_path if vocab_path.is_absolute() else folder / vocab_path
        if not vocab_path.is_file():
            raise ValueError(f"vocab_file {vocab_path} does not exist")
        vocab = read_vocab_file(vocab_path)
    else:
        counts = count_tokens(train_paths, LM1B_EOS)
        counts.pop(LM1B_UNK, None)  # counted again below, as what every rare token becomes
        vocab = by_frequency(counts, cfg.vocab_min_count)
        if LM1B_EOS not in vocab:
            vocab.append(LM1B_EOS)
        vocab.append(LM1B_UNK)
    index = {tok: i for i, tok in enumerate(vocab)}
    train = encode_lines(train_paths, index, LM1B_EOS, LM1B_UNK)
    valid = encode_lines([folder / valid_name], index, LM1B_EOS, LM1B_UNK)
    test = encode_lines([folder / test_name], index, LM1B_EOS, LM1B_UNK)
    info = {"corpus": "lm1b", "train_shards": len(train_paths),
            "vocab_file": cfg.vocab_file or None}  # fmt: skip
    return _data(cfg, train, valid, test, tuple(vocab), LM1B_EOS, info)


def load_data(
    cfg: ELMoConfig, data_dir: str | os.PathLike | None = None, *, verify: bool = True
) -> ELMoData:
    """The corpus of `cfg` under the data root in use: word PTB through the dataset registry
    (verified unless `verify` is False), or the lm1b files `cfg` reads, each checked present
    (common.datasets.verify.user_text_files: no hash is pinned for them)."""
    if cfg.corpus == "ptb":
        from common.datasets import dataset_dir

        return load_ptb(dataset_dir(PTB_DATASET, data_dir, verify=verify), cfg)
    from common.datasets.catalog import LM1B
    from common.datasets.verify import user_text_files

    train_names, valid_name, test_name = lm1b_files(cfg)
    paths = user_text_files(LM1B, data_dir, (*train_names, valid_name, test_name))
    return load_lm1b(paths[0].parents[1], cfg)


# --------------------------------------------------------------------------- batches


def check_sizes(data: ELMoData, cfg: ELMoConfig) -> None:
    """ValueError, before anything trains, when a split is too short for its streams: two
    tokens per training stream (batch_size of them) and per evaluation stream."""
    for split, streams in (("train", cfg.batch_size), ("valid", cfg.eval_batch_size),
                           ("test", cfg.eval_batch_size)):  # fmt: skip
        n = getattr(data, split).size(0)
        if n < 2 * streams:
            what = "batch_size" if split == "train" else "eval_batch_size"
            raise ValueError(f"the {split} split has {n} tokens, too few for {what} {streams} "
                             f"(two tokens a stream)")  # fmt: skip


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) -> (N // batch_size, batch_size): column b is the b-th contiguous slice of the
    stream; the remainder is dropped. ValueError when fewer than two rows would be left."""
    rows = ids.size(0) // batch_size
    if rows < 2:
        raise ValueError(f"{ids.size(0)} tokens are too few for {batch_size} streams (need two "
                         f"tokens a stream)")  # fmt: skip
    return ids[: rows * batch_size].view(batch_size, rows).t().contiguous()


def window_starts(source: torch.Tensor, bptt: int) -> list[int]:
    """The first rows of the windows of `source` (rows, batch): 0, bptt, 2 bptt, ... while a
    window has a row to predict."""
    return list(range(0, source.size(0) - 1, bptt))


def window(source: torch.Tensor, start: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows start .. start + bptt of `source` and their next tokens (same shape), clipped at
    the end of the stream."""
    n = min(bptt, source.size(0) - 1 - start)
    return source[start : start + n], source[start + 1 : start + 1 + n]
