from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lm.data import (
    EOS,
    batchify,
    get_batch,
    load_corpus,
    load_enwik8_folder,
    load_text_folder,
    sample_seq_len,
)


def test_text_loader_counts_eos_per_line_including_trailing_space_line(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a b _ c\n a\n ")  # 4 + 1 + 1 + 0 tokens + 3 eos
    (tmp_path / "valid.txt").write_text("b z\n")  # file ending in "\n": one line only
    (tmp_path / "test.txt").write_text("c")
    corpus = load_text_folder(tmp_path)
    assert corpus.train.numel() == 4 + 1 + 3
    assert corpus.valid.numel() == 3
    assert corpus.test.numel() == 2
    # ids in order of first appearance over train, valid, test
    assert corpus.vocab == ("a", "b", "_", "c", EOS, "z")
    assert corpus.train.tolist() == [0, 1, 2, 3, 4, 0, 4, 4]
    assert corpus.train.dtype == torch.long


def test_text_loader_names_missing_file(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a\n")
    with pytest.raises(ValueError, match="valid.txt"):
        load_text_folder(tmp_path)


def test_batchify_columns_are_contiguous_slices_and_remainder_dropped() -> None:
    data = torch.arange(23)
    b = batchify(data, 4)
    assert b.shape == (5, 4)
    assert b[:, 1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="too few"):
        batchify(torch.arange(5), 4)


def test_get_batch_targets_are_next_tokens_and_clipped_at_end() -> None:
    src = batchify(torch.arange(40), 2)  # 20 rows
    x, y = get_batch(src, 15, 10)
    assert x.shape == (4, 2)  # clipped: rows 15..18, targets up to row 19
    assert torch.equal(y, x + 1)


def test_sample_seq_len_follows_the_published_distribution() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([sample_seq_len(rng, 70) for _ in range(20000)])
    assert draws.min() >= 5
    half = np.mean(draws < 52)  # the bptt/2 branch sits around 35
    assert 0.03 < half < 0.07
    assert abs(np.mean(draws[draws >= 52]) - 69.5) < 0.3  # int() truncates N(70, 5)
    assert sample_seq_len(np.random.default_rng(1), 1) == 5


def _fake_enwik8(n: int) -> bytes:
    rng = np.random.default_rng(3)
    text = rng.choice(np.frombuffer(b"abcdefgh <>[]\n\xc3\xa9", dtype=np.uint8), size=n)
    return text.tobytes()


def test_enwik8_reads_raw_bytes_and_splits_train_valid_test(tmp_path: Path) -> None:
    raw = _fake_enwik8(300_000)
    (tmp_path / "enwik8").write_bytes(raw)
    corpus = load_enwik8_folder(tmp_path, (200_000, 50_000, 50_000))
    assert [len(s) for s in (corpus.train, corpus.valid, corpus.test)] == [200_000, 50_000, 50_000]
    symbols = sorted(set(raw))
    assert corpus.vocab_size == len(symbols)
    decoded = bytes(
        symbols[i] for i in torch.cat([corpus.train, corpus.valid, corpus.test]).tolist()
    )
    assert decoded == raw


def test_enwik8_reads_the_zip_when_no_raw_file(tmp_path: Path) -> None:
    raw = _fake_enwik8(30_000)
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("enwik8", raw)
    corpus = load_enwik8_folder(tmp_path, (20_000, 5_000, 5_000))
    assert corpus.test.numel() == 5_000
    assert corpus.valid[0].item() == sorted(set(raw)).index(raw[20_000])


def test_enwik8_rejects_a_file_of_the_wrong_size(tmp_path: Path) -> None:
    (tmp_path / "enwik8").write_bytes(_fake_enwik8(1000))
    with pytest.raises(ValueError, match="1,000 bytes"):
        load_enwik8_folder(tmp_path)  # default splits need 100,000,000


def test_load_corpus_finds_a_made_enwik8_through_the_registry(tmp_path: Path) -> None:
    (tmp_path / "enwik8").mkdir()
    (tmp_path / "enwik8" / "enwik8").write_bytes(_fake_enwik8(3000))
    corpus = load_corpus("enwik8", tmp_path, verify=False, enwik8_splits=(2000, 500, 500))
    assert corpus.train.numel() == 2000
    with pytest.raises(ValueError, match="unknown model"):
        load_corpus("ptb", tmp_path)


@pytest.mark.parametrize(
    ("model", "train", "valid", "test", "vocab_size"),
    [
        ("ptbc", 5_017_483, 393_043, 442_424, 50),  # PTB char
        ("ptbw", 929_589, 73_760, 82_430, 10_000),  # PTB word
    ],
)
def test_real_ptb_has_published_token_counts(
    real_data_root: Path, model: str, train: int, valid: int, test: int, vocab_size: int
) -> None:
    corpus = load_corpus(model, real_data_root)
    assert corpus.train.numel() == train
    assert corpus.valid.numel() == valid
    assert corpus.test.numel() == test
    assert corpus.vocab_size == vocab_size
