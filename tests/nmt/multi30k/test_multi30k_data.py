"""Multi30k data: vocabularies from the training split, batches of one source length, and the
files' problems named in one line."""

from __future__ import annotations

import numpy as np
import pytest

from nmt.multi30k.data import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    Vocab,
    batch_tensors,
    length_batches,
    load_folder,
)


def test_vocabularies_come_from_train_with_a_minimum_frequency(m30k_root):
    folder = m30k_root / "multi30k"
    (folder / "train.lc.norm.tok.en").write_text("a dog runs .\na dog sits .\nzebra .\n")
    (folder / "train.lc.norm.tok.de").write_text("ein hund läuft .\nein hund sitzt .\nzebra .\n")
    data = load_folder(folder, min_freq=2)
    assert data.tgt_vocab.itos == SPECIALS + (".", "a", "dog")  # most frequent first, then a-z
    assert data.tgt_vocab.encode(["zebra", "dog"]).tolist() == [UNK, 6]
    # the references are the lines as written, unknown words included
    assert data.train.references[2] == "zebra ."
    assert data.test.references[0] in (folder / "test_2016_flickr.lc.norm.tok.en").read_text()


def test_a_vocabulary_is_the_same_for_the_same_corpus_and_keeps_the_specials_first():
    sents = [["b", "a"], ["a", "c"], ["c", "b"]]
    assert Vocab.build(sents, 1) == Vocab.build(list(reversed(sents)), 1)
    with pytest.raises(ValueError, match="starts with"):
        Vocab(("a", "b"))


def test_batches_hold_one_source_length_and_are_a_function_of_seed_and_epoch(m30k_root):
    data = load_folder(m30k_root / "multi30k")
    batches = length_batches(data.train, 8, seed=3, epoch=1)
    lengths = data.train.src_lengths
    assert all(len(set(lengths[b])) == 1 and len(b) <= 8 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(data.train)))
    again = length_batches(data.train, 8, seed=3, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = length_batches(data.train, 8, seed=3, epoch=2)
    assert any(not np.array_equal(a, b) for a, b in zip(batches, other))


def test_batch_tensors_are_time_first_with_bos_and_eos(m30k_root):
    data = load_folder(m30k_root / "multi30k")
    idx = length_batches(data.train, 4)[0]
    src, src_len, tgt_in, tgt_out = batch_tensors(data.train, idx)
    assert src.shape == (int(src_len[0]), len(idx)) and (src_len == src_len[0]).all()
    assert (tgt_in[0] == BOS).all()
    for j, i in enumerate(idx):
        n = len(data.train.tgt[i])
        assert tgt_out[n, j] == EOS and (tgt_out[n + 1 :, j] == PAD).all()
        assert tgt_in[1 : n + 1, j].tolist() == data.train.tgt[i].tolist()


def test_lines_that_are_not_parallel_are_named(m30k_root):
    folder = m30k_root / "multi30k"
    path = folder / "val.lc.norm.tok.de"
    path.write_text(path.read_text() + "noch eine zeile .\n")
    with pytest.raises(ValueError, match=r"val.lc.norm.tok.de has 31 lines but val.lc.norm"):
        load_folder(folder)


def test_an_empty_sentence_is_dropped_from_train_and_refused_in_a_scored_split(m30k_root):
    folder = m30k_root / "multi30k"
    for lang in ("de", "en"):
        path = folder / f"train.lc.norm.tok.{lang}"
        path.write_text("\n" + path.read_text())
    assert len(load_folder(folder).train) == 300
    path = folder / "test_2016_flickr.lc.norm.tok.de"
    path.write_text("\n" + path.read_text().split("\n", 1)[1])
    with pytest.raises(ValueError, match="line 1: an empty sentence"):
        load_folder(folder)


def test_a_missing_file_is_named(m30k_root):
    (m30k_root / "multi30k" / "train.lc.norm.tok.en").unlink()
    with pytest.raises(ValueError, match="train.lc.norm.tok.en: missing"):
        load_folder(m30k_root / "multi30k")
