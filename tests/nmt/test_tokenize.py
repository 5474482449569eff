"""Tokenizers: fixed special ids, BOS/EOS framing, clean Chinese decoding, save/load."""

from __future__ import annotations

import pytest

from nmt.tokenize import BOS, EOS, PAD, UNK, BPETokenizer, segment_zh, train_tokenizer

EN = ["I like cats.", "You see 12 dogs!", "We want tea, please.", "They read books."] * 5
ZH = ["我喜欢猫。", "你看见十二只狗！", "我们想要茶，好吗？", "他们读 2024 本书。"] * 5


@pytest.fixture(scope="module")
def toks():
    return train_tokenizer(EN, "en", 300), train_tokenizer(ZH, "zh", 300)


def test_special_tokens_have_fixed_ids(toks):
    for tok in toks:
        t = tok.tokenizer
        assert [t.token_to_id(s) for s in ("[PAD]", "[BOS]", "[EOS]", "[UNK]")] == [
            PAD, BOS, EOS, UNK,
        ]  # fmt: skip


def test_encode_frames_with_bos_eos_and_uses_no_specials_inside(toks):
    en, zh = toks
    for tok, text in ((en, EN[0]), (zh, ZH[0])):
        ids = tok.encode(text)
        assert ids[0] == BOS and ids[-1] == EOS
        assert all(i > UNK for i in ids[1:-1])


def test_english_is_lowercased_and_digits_split(toks):
    en, _ = toks
    pieces = en.tokenizer.encode("Cats 12", add_special_tokens=False).tokens
    assert "".join(pieces).replace("Ġ", "") == "cats12"
    assert en.decode(en.encode("You see 12 dogs!")) == "you see 1 2 dogs !"


def test_chinese_decodes_without_segmentation_spaces(toks):
    _, zh = toks
    # NFKC folds ！，？ to ASCII; decoding restores them and removes jieba's word gaps.
    assert [zh.decode(zh.encode(t)) for t in ZH[:4]] == [
        "我喜欢猫。", "你看见十二只狗！", "我们想要茶，好吗？", "他们读2024本书。",
    ]  # fmt: skip
    assert zh.decode(zh.encode("我用 iPhone X 打电话")) == "我用iphone x打电话"


def test_decode_stops_at_eos_and_skips_pad_bos(toks):
    _, zh = toks
    ids = zh.encode("我喜欢猫。")
    assert zh.decode([BOS, *ids[1:], 99, PAD]) == "我喜欢猫。"


def test_segment_zh_splits_words():
    assert segment_zh(["我喜欢猫。"])[0].split() == ["我", "喜欢", "猫", "。"]


def test_save_load_roundtrip(toks, tmp_path):
    _, zh = toks
    zh.save(tmp_path / "zh.json")
    again = BPETokenizer.load(tmp_path / "zh.json", "zh")
    assert again.encode(ZH[1]) == zh.encode(ZH[1])


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(EN, "en", 100)
    with pytest.raises(ValueError, match="language"):
        train_tokenizer(EN, "fr", 300)
    with pytest.raises(ValueError, match="no texts"):
        train_tokenizer([], "en", 300)
