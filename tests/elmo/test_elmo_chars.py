"""Tokens as character ids (bilm-tf's encoding): a token comes back from its ids, long tokens are
cut to max_chars - 2 bytes, a sentence boundary is its marker, and a row that is not an encoded
token is refused."""

from __future__ import annotations

import numpy as np
import pytest

from elmo.chars import (
    BOS_CHAR,
    BOW,
    EOS_CHAR,
    EOW,
    N_CHARS,
    PAD_CHAR,
    decode_token,
    encode_token,
    encode_tokens,
)


@pytest.mark.parametrize("token", ["the", "N", "<unk>", "mr.", "café", "naïve-ish", "a"])
def test_a_token_round_trips_through_its_character_ids(token):
    code = encode_token(token, 16)
    assert code.dtype == np.int16 and code.shape == (16,)
    assert decode_token(code) == token
    n = len(token.encode("utf-8"))
    assert code[0] == BOW and code[n + 1] == EOW and (code[n + 2 :] == PAD_CHAR).all()
    assert list(code[1 : n + 1]) == list(token.encode("utf-8"))


def test_a_long_token_keeps_its_first_max_chars_minus_two_bytes():
    code = encode_token("multibillion-dollar", 8)
    assert list(code) == [BOW, *b"multib", EOW]
    assert decode_token(code) == "multib"


def test_a_sentence_boundary_is_its_marker_between_the_word_markers():
    rows = encode_tokens(["</S>", "<S>", "x"], 5, {"</S>": EOS_CHAR, "<S>": BOS_CHAR})
    assert rows.tolist() == [
        [BOW, EOS_CHAR, EOW, PAD_CHAR, PAD_CHAR],
        [BOW, BOS_CHAR, EOW, PAD_CHAR, PAD_CHAR],
        [BOW, ord("x"), EOW, PAD_CHAR, PAD_CHAR],
    ]
    assert [decode_token(r) for r in rows] == ["</S>", "<S>", "x"]
    assert rows.max() < N_CHARS


@pytest.mark.parametrize(
    "row",
    [[ord("a"), EOW, PAD_CHAR], [BOW, ord("a"), PAD_CHAR], [BOW, EOW, ord("a")],
     [BOW, PAD_CHAR, EOW]],
)  # fmt: skip
def test_a_row_that_is_not_an_encoded_token_is_refused(row):
    with pytest.raises(ValueError, match="not an encoded token"):
        decode_token(row)


def test_too_few_characters_for_the_markers_is_refused():
    with pytest.raises(ValueError, match="max_chars must be >= 3"):
        encode_token("a", 2)
