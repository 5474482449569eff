"""Corpora: Tatoeba split by source sentence; references grouped per source."""

from __future__ import annotations

import pytest

from nmt.corpus import group_references, read_tatoeba, read_wmt_parquet, split_by_source


def made_pairs(n_sources: int = 60) -> list[tuple[str, str]]:
    pairs = []
    for i in range(n_sources):
        for k in range(1 + i % 3):  # some sources have several translations
            pairs.append((f"sentence {i}.", f"句子{i}之{k}。"))
    return pairs


def test_split_puts_every_source_in_exactly_one_split():
    pairs = made_pairs()
    c = split_by_source(pairs, n_valid=10, n_test=12, seed=3)
    srcs = [{en for en, _ in split} for split in (c.train, c.valid, c.test)]
    assert not (srcs[0] & srcs[1]) and not (srcs[0] & srcs[2]) and not (srcs[1] & srcs[2])
    assert len(srcs[1]) == 10 and len(srcs[2]) == 12
    assert len(c.train) + len(c.valid) + len(c.test) == len(pairs)


def test_split_is_seeded():
    pairs = made_pairs()
    assert split_by_source(pairs, 5, 5, 1) == split_by_source(pairs, 5, 5, 1)
    assert split_by_source(pairs, 5, 5, 1) != split_by_source(pairs, 5, 5, 2)


def test_all_translations_of_a_test_source_are_its_references():
    pairs = made_pairs()
    c = split_by_source(pairs, 5, 20, 0)
    sources, refs = group_references(c.test)
    for en, rs in zip(sources, refs):
        assert rs == [zh for e, zh in pairs if e == en]


def test_split_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="leaves no training source"):
        split_by_source(made_pairs(10), 5, 5, 0)


def test_read_tatoeba_three_columns(tmp_path):
    f = tmp_path / "cmn.txt"
    f.write_text("Hi.\t嗨。\tCC-BY attribution\nRun.\t跑。\tx\n", encoding="utf-8")
    assert read_tatoeba(f) == [("Hi.", "嗨。"), ("Run.", "跑。")]
    (tmp_path / "bad.txt").write_text("only one column\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected en"):
        read_tatoeba(tmp_path / "bad.txt")


def test_real_tatoeba_split_by_source(real_data_root):
    pairs = read_tatoeba(real_data_root / "cmn_eng" / "cmn.txt")
    assert len(pairs) == 29155
    c = split_by_source(pairs, 1000, 1500, 0)
    test_src = {en for en, _ in c.test}
    assert len(test_src) == 1500
    assert not test_src & {en for en, _ in c.train}
    assert not test_src & {en for en, _ in c.valid}
    _, refs = group_references(c.test)
    assert sum(len(r) for r in refs) == len(set(c.test))
    assert max(len(r) for r in refs) > 1  # Tatoeba has sources with several translations


def test_real_wmt_valid_reads(real_data_root):
    pairs = read_wmt_parquet(
        real_data_root / "wmt_zh_en_valid" / "validation-00000-of-00001.parquet"
    )
    assert len(pairs) == 3981
