"""ELMo's corpora on made files: word PTB's stream and vocabulary (by frequency, one <eos> a line,
closed over the three splits), every token's character ids, the backward stream as the reversed
corpus, and the 1B Word Benchmark's loader on a made unpacked archive (training shards, heldout
00000 as the test set and 00001 as the validation set, the vocabulary counted or read from a
file, <UNK>), with one-line errors naming what is missing."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from common.datasets import DatasetCorruptError, DatasetMissingError
from common.datasets.catalog import DATASETS, LM1B
from elmo.chars import EOS_CHAR, decode_token
from elmo.data import (
    LM1B_TEST,
    LM1B_VALID,
    batchify,
    check_sizes,
    load_data,
    window,
    window_starts,
)
from elmo.training import train_streams
from tests.elmo.conftest import HELDOUT, TRAIN_SHARD, make_lm1b, smoke, write_lines


def _words(path) -> list[str]:
    return [w for line in path.read_text().splitlines() for w in [*line.split(), "<eos>"]]


def test_ptb_is_one_stream_with_an_eos_a_line_and_a_vocabulary_by_frequency(ptb_root):
    data = load_data(smoke(), ptb_root, verify=False)
    train = _words(ptb_root / "ptb_word" / "train.txt")
    assert [data.vocab[i] for i in data.train.tolist()] == train
    counts = Counter(train)
    freqs = [counts[w] for w in data.vocab if w in counts]
    assert freqs == sorted(freqs, reverse=True)  # most frequent first: the sampler's order
    for split in ("valid", "test"):  # closed: every token of valid and test has an id
        words = _words(ptb_root / "ptb_word" / f"{split}.txt")
        assert [data.vocab[i] for i in getattr(data, split).tolist()] == words
    assert data.info == {"corpus": "ptb", "vocab": data.vocab_size, "train_tokens": len(train),
                         "valid_tokens": len(data.valid), "test_tokens": len(data.test)}  # fmt: skip


def test_every_token_has_its_character_ids_and_eos_is_the_end_of_sentence_marker(ptb_root):
    data = load_data(smoke(max_chars=8), ptb_root, verify=False)
    assert data.chars.shape == (data.vocab_size, 8)
    for i, word in enumerate(data.vocab):
        expected = "</S>" if word == "<eos>" else word.encode()[:6].decode("utf-8", "replace")
        assert decode_token(data.chars[i].tolist()) == expected
    assert data.chars[data.vocab.index("<eos>"), 1] == EOS_CHAR
    ids = data.train[:12].view(3, 4)
    assert data.char_ids(ids).shape == (3, 4, 8) and data.char_ids(ids).dtype == torch.int64


def test_prefixes_of_the_splits_are_taken_when_asked(ptb_root):
    data = load_data(smoke(train_tokens=500, eval_tokens=100), ptb_root, verify=False)
    full = load_data(smoke(), ptb_root, verify=False)
    assert torch.equal(data.train, full.train[:500]) and torch.equal(data.test, full.test[:100])


def test_the_backward_stream_reads_the_corpus_right_to_left():
    data = type("D", (), {"train": torch.arange(40)})()
    cfg = smoke(batch_size=4)
    streams = train_streams(data, cfg)
    assert torch.equal(streams["fwd"][:, 0], torch.arange(10))
    assert torch.equal(streams["bwd"][:, 0], torch.arange(39, 29, -1))
    # next tokens: the forward stream's are the following ids, the backward one's the previous
    x, y = window(streams["bwd"], 0, 3)
    assert torch.equal(y, x - 1)


def test_windows_cover_every_next_token_once():
    source = batchify(torch.arange(50), 5)  # 10 rows
    starts = window_starts(source, 4)
    assert starts == [0, 4, 8]
    targets = torch.cat([window(source, s, 4)[1] for s in starts])
    assert torch.equal(targets, source[1:])


def test_too_few_tokens_for_the_streams_is_one_line(ptb_root):
    data = load_data(smoke(eval_tokens=7), ptb_root, verify=False)
    with pytest.raises(ValueError, match="the valid split has 7 tokens, too few for "
                                         "eval_batch_size 4"):  # fmt: skip
        check_sizes(data, smoke(eval_tokens=7))


# --------------------------------------------------------------------------- lm1b


def test_the_lm1b_entry_names_the_published_layout_and_stays_out_of_fetch():
    assert "lm1b" not in DATASETS  # not fetched by `make data`, nor hash-checked
    assert len(LM1B.files) == 101
    assert LM1B.files[0] == TRAIN_SHARD.format(1) and LM1B.files[98] == TRAIN_SHARD.format(99)
    assert LM1B.files[99:] == (HELDOUT.format(0), HELDOUT.format(1))
    assert (LM1B_TEST, LM1B_VALID) == (HELDOUT.format(0), HELDOUT.format(1))
    assert LM1B.url.endswith("1-billion-word-language-modeling-benchmark-r13output.tar.gz")


def test_lm1b_trains_on_its_shards_and_tests_on_heldout_00000(tmp_path):
    root = make_lm1b(tmp_path, shards=3)
    cfg = smoke(corpus="lm1b", train_shards=3, vocab_min_count=2)
    data = load_data(cfg, root)
    folder = root / "lm1b"
    train = [w for i in (1, 2, 3) for w in _lm1b_words(folder / TRAIN_SHARD.format(i))]
    counts = Counter(train)
    kept = {w for w, n in counts.items() if n >= 2}
    assert set(data.vocab) == kept | {"<UNK>"} and data.vocab[-1] == "<UNK>"
    decoded = [data.vocab[i] for i in data.train.tolist()]
    assert decoded == [w if w in kept else "<UNK>" for w in train]
    test = _lm1b_words(folder / HELDOUT.format(0))
    assert [data.vocab[i] for i in data.test.tolist()] == [
        w if w in kept else "<UNK>" for w in test
    ]
    valid = _lm1b_words(folder / HELDOUT.format(1))
    assert len(data.valid) == len(valid)
    assert data.info["train_shards"] == 3 and data.info["corpus"] == "lm1b"


def _lm1b_words(path) -> list[str]:
    return [w for line in path.read_text().splitlines() for w in [*line.split(), "</S>"]]


def test_lm1b_reads_a_vocabulary_file_in_its_order(tmp_path):
    root = make_lm1b(tmp_path, shards=1)
    (root / "lm1b" / "vocab.txt").write_text("</S> 100\n<UNK> 50\nthe 40\ncat 3\n")
    data = load_data(smoke(corpus="lm1b", train_shards=1, vocab_file="vocab.txt"), root)
    assert data.vocab == ("</S>", "<UNK>", "the", "cat")
    words = _lm1b_words(root / "lm1b" / TRAIN_SHARD.format(1))
    assert [data.vocab[i] for i in data.train.tolist()] == [
        w if w in data.vocab else "<UNK>" for w in words
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("the\n</S>\n", "has no <UNK>"), ("the\n<UNK>\n</S>\nthe\n", "lists 'the' twice")],
)
def test_a_bad_vocabulary_file_is_named(tmp_path, text, message):
    root = make_lm1b(tmp_path, shards=1)
    (root / "lm1b" / "v.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_data(smoke(corpus="lm1b", train_shards=1, vocab_file="v.txt"), root)


def test_all_99_training_shards_are_read_by_default(tmp_path):
    root = make_lm1b(tmp_path, shards=99, lines=1)
    data = load_data(smoke(corpus="lm1b", vocab_min_count=1), root)
    assert data.info["train_shards"] == 99
    assert int((data.train == data.vocab.index("</S>")).sum()) == 99  # one line a shard


def test_a_missing_lm1b_shard_is_one_line_naming_it_and_the_download(tmp_path):
    root = make_lm1b(tmp_path, shards=2)
    with pytest.raises(DatasetMissingError) as e:
        load_data(smoke(corpus="lm1b", train_shards=3), root)
    msg = str(e.value)
    assert "\n" not in msg and TRAIN_SHARD.format(3) in msg and LM1B.url in msg
    assert str(root / "lm1b") in msg
    (root / "lm1b" / HELDOUT.format(0)).unlink()
    with pytest.raises(DatasetMissingError, match="news.en.heldout-00000-of-00050"):
        load_data(smoke(corpus="lm1b", train_shards=2), root)


def test_an_empty_lm1b_file_is_named(tmp_path):
    root = make_lm1b(tmp_path, shards=1)
    (root / "lm1b" / HELDOUT.format(1)).write_text("")
    with pytest.raises(DatasetCorruptError, match="heldout-00001-of-00050 is empty"):
        load_data(smoke(corpus="lm1b", train_shards=1), root)


def test_no_lm1b_folder_says_where_it_goes(tmp_path):
    write_lines(tmp_path / "other" / "x.txt", 1, __import__("random").Random(0))
    with pytest.raises(DatasetMissingError, match="it has no lm1b/"):
        load_data(smoke(corpus="lm1b"), tmp_path)
