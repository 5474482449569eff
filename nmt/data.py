"""The translator's data: split the corpus, train both tokenizers, encode, bucket, batch.

    data = load_data(config, data_dir)              # splits + tokenizers, from the registry
    data = prepare_data(config, pairs)              # the same from pairs in memory (tests)

The corpus is the config's: Tatoeba (cmn_eng, split by source into train / valid / test), or
WMT19 zh-en (`corpus="wmt19"`, the paper preset), SpikingParrot's data: its training shards
(a user-supplied dataset, common.datasets.verify.user_dataset_files) split by source into train
and valid, and the WMT19 validation set (newstest2018, wmt_zh_en_valid) as the test set.
Either way the Chinese side is segmented with jieba first (in worker processes for a large
corpus), each side gets its own byte-level BPE (16,384 ids in the paper preset), and the
training pairs are bucketed by the length DP of nmt.buckets.

Training batches come from nmt.buckets; `batch_tensors` turns a batch's indices into the padded
tensors the translator takes, for training, calibration and evaluation alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nmt.buckets import Buckets, BucketStats, build_buckets, pad_batch, train_batches
from nmt.corpus import (
    Pair,
    group_references,
    read_tatoeba,
    read_wmt_parquet,
    read_wmt_shards,
    split_by_source,
)
from nmt.presets import TranslatorConfig
from nmt.tokenize import PAD, BPETokenizer, segment_zh, train_tokenizer

__all__ = [
    "EvalSet",
    "NMTData",
    "TrainSet",
    "batch_tensors",
    "calibration_batches",
    "check_corpus",
    "epoch_batches",
    "load_data",
    "prepare_data",
    "steps_per_epoch_of",
]


@dataclass
class TrainSet:
    src: list[list[int]]
    tgt: list[list[int]]
    src_len: np.ndarray
    tgt_len: np.ndarray
    buckets: Buckets


@dataclass
class EvalSet:
    """Distinct sources with all their references, and the pairs for teacher-forced loss."""

    sources: list[str]
    references: list[list[str]]
    src_ids: list[list[int]]
    pair_src: list[list[int]]
    pair_tgt: list[list[int]]


@dataclass
class NMTData:
    src_tok: BPETokenizer
    tgt_tok: BPETokenizer
    train: TrainSet
    valid: EvalSet
    test: EvalSet
    wmt: EvalSet | None = None
    info: dict = field(default_factory=dict)


def _subset(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random `limit`-subset of range(n) (all when limit is 0)."""
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _eval_set(
    pairs: Sequence[Pair], src_tok: BPETokenizer, tgt_tok: BPETokenizer, limit: int, seed: int
) -> EvalSet:
    sources, refs = group_references(pairs)
    keep = _subset(len(sources), limit, seed)
    sources = [sources[i] for i in keep]
    refs = [refs[i] for i in keep]
    kept = set(sources)
    pairs = [p for p in pairs if p[0] in kept]
    return EvalSet(
        sources=sources,
        references=refs,
        src_ids=src_tok.encode_batch(sources),
        pair_src=src_tok.encode_batch([p[0] for p in pairs]),
        pair_tgt=tgt_tok.encode_batch([p[1] for p in pairs]),
    )


# Datasets of the WMT19 corpus: the training shards (user-supplied) and the validation set
WMT19_TRAIN = "wmt19_zh_en_train"
WMT_VALID = "wmt_zh_en_valid"
WMT_VALID_FILE = "validation-00000-of-00001.parquet"
# training pairs above which the Chinese side is segmented in worker processes
PARALLEL_SEGMENTATION = 200_000


def _workers() -> int:
    """Processes for segmenting a large corpus: this machine's cores, shared by the torchrun
    processes on it (each prepares the data itself)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(local, 1))


def prepare_data(
    config: TranslatorConfig,
    pairs: Sequence[Pair],
    wmt_pairs: Sequence[Pair] | None = None,
    test_pairs: Sequence[Pair] | None = None,
) -> NMTData:
    """Split `pairs` by source, train both tokenizers on the training split, encode, bucket.
    `test_pairs`: a test set of its own (WMT19's newstest2018); `pairs` then split into train and
    `n_valid` valid sources only."""
    n_test = 0 if test_pairs is not None else config.n_test
    corpus = split_by_source(pairs, config.n_valid, n_test, config.split_seed)
    train_pairs = [corpus.train[i] for i in _subset(len(corpus.train), config.train_limit,
                                                     config.split_seed)]  # fmt: skip
    if not train_pairs:
        raise ValueError("the training split is empty")
    en = [p[0] for p in train_pairs]
    workers = _workers() if len(train_pairs) > PARALLEL_SEGMENTATION else 1
    zh = segment_zh([p[1] for p in train_pairs], processes=workers)
    src_tok = train_tokenizer(en, "en", config.src_vocab, config.bpe_min_frequency)
    tgt_tok = train_tokenizer(zh, "zh", config.tgt_vocab, config.bpe_min_frequency, segmented=True)
    src_all = src_tok.encode_batch(en)
    tgt_all = tgt_tok.encode_batch(zh, segmented=True)
    keep = [
        i for i in range(len(src_all))
        if len(src_all[i]) <= config.max_len and len(tgt_all[i]) <= config.max_len
    ]  # fmt: skip
    src = [src_all[i] for i in keep]
    tgt = [tgt_all[i] for i in keep]
    src_len = np.array([len(s) for s in src], dtype=np.int64)
    tgt_len = np.array([len(t) for t in tgt], dtype=np.int64)
    buckets = build_buckets(
        src_len, tgt_len, config.k_src, config.k_tgt, config.bucket_min, config.bucket_max
    )
    valid = _eval_set(corpus.valid, src_tok, tgt_tok, config.eval_limit, config.split_seed + 1)
    test_set = corpus.test if test_pairs is None else test_pairs
    test = _eval_set(test_set, src_tok, tgt_tok, config.eval_limit, config.split_seed + 2)
    wmt = (
        _eval_set(wmt_pairs, src_tok, tgt_tok, config.wmt_limit, config.split_seed + 3)
        if wmt_pairs
        else None
    )
    info = {
        "pairs": len(pairs),
        "train_pairs": len(train_pairs),
        "train_pairs_kept": len(src),
        "train_pairs_too_long": len(train_pairs) - len(src),
        "valid_pairs": len(corpus.valid),
        "test_pairs": len(test_set),
        "valid_sources": len(valid.sources),
        "test_sources": len(test.sources),
        "wmt_sources": len(wmt.sources) if wmt else 0,
        "src_vocab": src_tok.vocab_size,
        "tgt_vocab": tgt_tok.vocab_size,
        "buckets": _stats_dict(buckets.stats),
    }
    return NMTData(src_tok, tgt_tok, TrainSet(src, tgt, src_len, tgt_len, buckets), valid, test,
                   wmt, info)  # fmt: skip


def _stats_dict(stats: BucketStats) -> dict:
    d = dict(stats.__dict__)
    d["src_edges"] = list(stats.src_edges)
    d["tgt_edges"] = list(stats.tgt_edges)
    return d


def corpus_datasets(config: TranslatorConfig) -> tuple[str, ...]:
    """The catalog datasets (pinned hashes) `config` reads; WMT19's training shards, which the
    catalog cannot pin, are checked by `check_corpus` and `load_data` themselves."""
    if config.corpus == "wmt19":
        return (WMT_VALID,)
    return ("cmn_eng", WMT_VALID) if config.eval_wmt else ("cmn_eng",)


def check_corpus(
    config: TranslatorConfig, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> Path:
    """Every file `config` reads found (and, with `verify`, hash-checked) before anything is
    written: a DatasetError naming the missing or damaged files otherwise. Returns the folder of
    the training data."""
    from common.datasets import dataset_dir
    from common.datasets.verify import user_dataset_files

    # the user's WMT19 shards first: the catalog's sets are one `make data` away
    shards = user_dataset_files(WMT19_TRAIN, data_dir) if config.corpus == "wmt19" else []
    folders = [dataset_dir(name, data_dir, verify=verify) for name in corpus_datasets(config)]
    return shards[0].parent if shards else folders[0]


def load_data(
    config: TranslatorConfig, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> NMTData:
    """The corpus of `config` from the dataset registry, prepared (see `prepare_data`).
    `verify=False` skips the SHA-256 check (for made or partial copies)."""
    from common.datasets import dataset_dir

    if config.corpus == "wmt19":
        from common.datasets.verify import user_dataset_files

        shards = user_dataset_files(WMT19_TRAIN, data_dir)
        newstest = dataset_dir(WMT_VALID, data_dir, verify=verify) / WMT_VALID_FILE
        return prepare_data(config, read_wmt_shards(shards), test_pairs=read_wmt_parquet(newstest))
    pairs = read_tatoeba(dataset_dir("cmn_eng", data_dir, verify=verify) / "cmn.txt")
    wmt = None
    if config.eval_wmt:
        folder = dataset_dir(WMT_VALID, data_dir, verify=verify)
        wmt = read_wmt_parquet(folder / WMT_VALID_FILE)
    return prepare_data(config, pairs, wmt)


def batch_tensors(
    src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]] | None, index: np.ndarray, device
):
    """The pairs at `index` padded: (src, src_len) without `tgt`, else (src, src_len, tgt_in,
    tgt_out) where tgt_in drops each target's last id and tgt_out its first (BOS)."""
    s = [src[i] for i in index]
    src_t = torch.from_numpy(pad_batch(s, PAD)).to(device)
    src_len = torch.tensor([len(x) for x in s], dtype=torch.long, device=device)
    if tgt is None:
        return src_t, src_len
    t = torch.from_numpy(pad_batch([tgt[i] for i in index], PAD)).to(device)
    return src_t, src_len, t[:, :-1], t[:, 1:]


def epoch_batches(config: TranslatorConfig, data: NMTData, epoch: int) -> list[np.ndarray]:
    """The training pairs' index batches of `epoch`, in order: a pure function of the seed and
    the epoch, so a resumed run sees the same batches as an uninterrupted one."""
    ts = data.train
    return train_batches(ts.buckets, ts.src_len, ts.tgt_len, config.batch_size,
                         config.batch_tokens, config.seed, epoch)  # fmt: skip


def steps_per_epoch_of(config: TranslatorConfig, data: NMTData) -> int:
    """Optimizer steps in one epoch (the same for every epoch)."""
    return len(epoch_batches(config, data, 0))


def calibration_batches(data: NMTData, config: TranslatorConfig, n: int, device="cpu"):
    """The first `n` training batches of epoch 0 as (src, src_len, tgt_in) tensors, for
    activation-range calibration: run them with `model(*batch)`."""
    ts = data.train
    return [
        batch_tensors(ts.src, ts.tgt, idx, device)[:3] for idx in epoch_batches(config, data, 0)[:n]
    ]
