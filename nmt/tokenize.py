"""Byte-level BPE tokenizers for the translator, one per language.

As in SpikingParrot: the `tokenizers` library's BPE with a byte-level alphabet; normalizer
NFKC + lowercase; pre-tokenizer whitespace, punctuation, individual digits, byte-level (prefix
space). Chinese is segmented with jieba first and the words joined by spaces, so BPE merges never
cross a jieba word boundary. Special ids are fixed: [PAD]=0, [BOS]=1, [EOS]=2, [UNK]=3.

`encode` returns ids with BOS and EOS around them (the original's template post-processor);
`decode` drops special ids and, for Chinese, removes the spaces that jieba segmentation put
between words and turns the ASCII punctuation NFKC made of full-width marks back into full-width
(，！？：；（）), so hypotheses compare with raw references.

(The original's normalizer also lists StripAccents then NFD. StripAccents before NFD is a no-op on
composed characters, and the trailing NFD only undoes the composition NFKC has just done, so both
are left out and the text stays composed: NFKC + lowercase.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from common.atomic import atomic_copy_into

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SPECIAL_TOKENS",
    "UNK",
    "BPETokenizer",
    "segment_zh",
    "train_tokenizer",
]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
LANGUAGES = ("en", "zh")

# jieba's word gaps: any space not between two ASCII letters/digits ("iphone x" keeps its one).
_SEGMENT_SPACE = re.compile(r"(?<![A-Za-z0-9])\s+|\s+(?![A-Za-z0-9])")
# NFKC folds full-width punctuation to ASCII; Chinese references use the full-width forms.
_FULLWIDTH = str.maketrans(
    {",": "，", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"}
)
_ASCII_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])[,:](?=[0-9])")
# The digits pre-tokenizer splits numbers into single digits, which decode space-separated.
_SPACE_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])\s+(?=[0-9])")


def _restore_fullwidth(text: str) -> str:
    keep = {m.start() for m in _ASCII_BETWEEN_DIGITS.finditer(text)}
    return "".join(c if i in keep else c.translate(_FULLWIDTH) for i, c in enumerate(text))


_jieba_ready = False
# sentences per task of a parallel segmentation: large enough that sending them costs little
# next to segmenting them
SEGMENT_CHUNK = 20_000


def _segment(texts: Sequence[str]) -> list[str]:
    global _jieba_ready
    import jieba  # imported lazily: loading its dictionary takes seconds

    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_ready = True
    return [" ".join(w for w in jieba.lcut(t) if not w.isspace()) for t in texts]


def segment_zh(texts: Iterable[str], processes: int = 1, chunk: int = SEGMENT_CHUNK) -> list[str]:
    """Chinese sentences segmented by jieba, words joined by single spaces.

    With `processes` > 1 and more than one `chunk` of sentences, chunks are segmented in that
    many worker processes, as SpikingParrot's preprocessing does: jieba is pure Python, and one
    core segments about 2 * 10^4 news sentences a second (measured on a 40-character sentence),
    so WMT19's tens of millions take the better part of an hour on one. The result is the same,
    in the same order."""
    texts = list(texts)
    if processes <= 1 or len(texts) <= chunk:
        return _segment(texts)
    import multiprocessing

    parts = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    # spawned workers import this module only (no torch), whatever threads the parent runs
    with multiprocessing.get_context("spawn").Pool(min(processes, len(parts))) as pool:
        return [s for part in pool.map(_segment, parts) for s in part]


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")


def _new_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Whitespace(),
            pre_tokenizers.Punctuation(),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


class BPETokenizer:
    """A trained BPE model for one language, with BOS/EOS framing and clean decoding."""

    def __init__(self, tokenizer: Tokenizer, language: str) -> None:
        _check_language(language)
        for i, name in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(name) != i:
                raise ValueError(
                    f"tokenizer must map {name} to id {i}, got {tokenizer.token_to_id(name)}"
                )
        self.tokenizer = tokenizer
        self.language = language

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return segment_zh(texts) if self.language == "zh" else list(texts)

    def encode_batch(self, texts: Sequence[str], segmented: bool = False) -> list[list[int]]:
        """Ids of each text framed as [BOS] ... [EOS]. `segmented`: Chinese already jieba'd."""
        prepared = list(texts) if segmented else self._prepare(texts)
        encs = self.tokenizer.encode_batch(prepared, add_special_tokens=False)
        return [[BOS, *e.ids, EOS] for e in encs]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, stopping at the first EOS and skipping PAD/BOS/UNK-free specials."""
        ids = [int(i) for i in ids]
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        text = self.tokenizer.decode([i for i in ids if i not in (PAD, BOS)]).strip()
        text = " ".join(text.split())
        if self.language == "zh":
            text = _SPACE_BETWEEN_DIGITS.sub("", _SEGMENT_SPACE.sub("", text))
            text = _restore_fullwidth(text)
        return text

    def save(self, path: str | Path) -> None:
        """Write the tokenizer JSON atomically (the library writes only to a file name)."""
        atomic_copy_into(path, self.tokenizer.save)

    @classmethod
    def load(cls, path: str | Path, language: str) -> BPETokenizer:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no tokenizer file at {path}")
        return cls(Tokenizer.from_file(str(path)), language)


def train_tokenizer(
    texts: Sequence[str],
    language: str,
    vocab_size: int,
    min_frequency: int = 2,
    segmented: bool = False,
) -> BPETokenizer:
    """Train a byte-level BPE of at most `vocab_size` ids on `texts` (the training split only)."""
    _check_language(language)
    if vocab_size < 260 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be >= {260 + len(SPECIAL_TOKENS)} (256 bytes + specials), "
            f"got {vocab_size}"
        )
    if not texts:
        raise ValueError("cannot train a tokenizer on no texts")
    tok = _new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    prepared = list(texts) if segmented or language == "en" else segment_zh(texts)
    tok.train_from_iterator(prepared, trainer=trainer)
    return BPETokenizer(tok, language)
