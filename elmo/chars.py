"""Tokens as character ids, the way bilm-tf's `UnicodeCharsVocabulary` encodes them.

A token is its UTF-8 bytes (ids 0..255), cut to `max_chars - 2`, between a begin-of-word and an
end-of-word marker, padded to `max_chars` with the padding id. A sentence boundary is no word: it
is the begin-of-sentence or end-of-sentence marker alone between the two word markers. The padding
id has an embedding of its own (bilm-tf's char CNN reads it as any other character), so every
token is exactly `max_chars` ids.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "BOS_CHAR",
    "BOW",
    "EOS_CHAR",
    "EOW",
    "N_CHARS",
    "PAD_CHAR",
    "decode_token",
    "encode_token",
    "encode_tokens",
]

BOS_CHAR, EOS_CHAR, BOW, EOW, PAD_CHAR = 256, 257, 258, 259, 260
N_CHARS = 261  # 256 byte values and the five markers


def encode_token(token: str, max_chars: int, boundary: int | None = None) -> np.ndarray:
    """The `max_chars` character ids of `token` (int16): BOW, its UTF-8 bytes (at most
    max_chars - 2 of them), EOW, padding. `boundary` (BOS_CHAR or EOS_CHAR) encodes a sentence
    boundary instead of the token's spelling."""
    if max_chars < 3:
        raise ValueError(f"max_chars must be >= 3, got {max_chars}")
    if boundary is None:
        body = list(token.encode("utf-8", "ignore")[: max_chars - 2])
    elif boundary in (BOS_CHAR, EOS_CHAR):
        body = [boundary]
    else:
        raise ValueError(f"boundary must be BOS_CHAR or EOS_CHAR, got {boundary!r}")
    code = np.full(max_chars, PAD_CHAR, dtype=np.int16)
    code[0] = BOW
    code[1 : 1 + len(body)] = body
    code[1 + len(body)] = EOW
    return code


def encode_tokens(
    tokens: Iterable[str], max_chars: int, boundaries: dict[str, int] | None = None
) -> np.ndarray:
    """(len(tokens), max_chars) int16: one row per token; a token in `boundaries` is encoded as
    that sentence-boundary marker (e.g. {"</S>": EOS_CHAR})."""
    boundaries = boundaries or {}
    rows = [encode_token(t, max_chars, boundaries.get(t)) for t in tokens]
    if not rows:
        return np.zeros((0, max_chars), dtype=np.int16)
    return np.stack(rows)


def decode_token(code: Iterable[int]) -> str:
    """The token a row of character ids spells (as far as it was kept): its bytes between the
    word markers, decoded as UTF-8 (a multi-byte character cut in two is replaced); a sentence
    boundary reads "<S>" or "</S>". ValueError when the row is not an encoded token."""
    ids = [int(c) for c in code]
    if len(ids) < 3 or ids[0] != BOW or EOW not in ids:
        raise ValueError("not an encoded token: it must start with BOW and hold an EOW")
    end = ids.index(EOW)
    body, pad = ids[1:end], ids[end + 1 :]
    if any(c != PAD_CHAR for c in pad):
        raise ValueError("not an encoded token: only padding may follow EOW")
    if body == [BOS_CHAR]:
        return "<S>"
    if body == [EOS_CHAR]:
        return "</S>"
    if any(not 0 <= c < 256 for c in body):
        raise ValueError("not an encoded token: a marker inside the word")
    return bytes(body).decode("utf-8", "replace")
