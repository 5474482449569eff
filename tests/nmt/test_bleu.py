"""sacreBLEU wrappers: zh tokenisation, signature, multi-reference, chrF."""

from __future__ import annotations

import pytest

from nmt.bleu import corpus_bleu, corpus_chrf, to_streams


def test_signature_names_zh_tokenizer_and_is_in_the_printed_text():
    s = corpus_bleu(["我喜欢猫。"], [["我喜欢猫。"]])
    assert "tok:zh" in s.signature and "nrefs:1" in s.signature
    assert s.signature in s.text
    assert s.score == pytest.approx(100.0)


def test_multi_reference_scores_against_the_closest_reference():
    hyps = ["他们在读书。", "我想要一杯茶。"]
    single = corpus_bleu(hyps, [["他们在看电视。"], ["我要咖啡。"]])
    multi = corpus_bleu(
        hyps, [["他们在看电视。", "他们在读书。"], ["我要咖啡。", "我想要一杯茶。"]]
    )
    assert multi.score == pytest.approx(100.0)
    assert single.score < multi.score
    assert "nrefs:2" in multi.signature


def test_variable_reference_counts_pad_with_none():
    assert to_streams([["a", "b"], ["c"]], 2) == [["a", "c"], ["b", None]]
    s = corpus_bleu(["我喜欢猫。", "你好。"], [["我喜欢猫。", "我爱猫。"], ["你好。"]])
    assert s.score == pytest.approx(100.0)
    assert "nrefs:var" in s.signature


def test_chrf_is_characterwise_and_signed():
    perfect = corpus_chrf(["我喜欢猫。"], [["我喜欢猫。"]])
    partial = corpus_chrf(["我喜欢狗。"], [["我喜欢猫。"]])
    assert perfect.score == pytest.approx(100.0)
    assert 0 < partial.score < 100
    assert "chrF" in partial.text and partial.signature


def test_reference_shape_errors():
    with pytest.raises(ValueError, match="one reference list per hypothesis"):
        corpus_bleu(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="list of reference lists"):
        corpus_bleu(["a"], ["a"])
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu(["a"], [[]])
