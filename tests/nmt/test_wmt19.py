"""The translator's paper corpus, WMT19 zh-en, on small made shards: the user-supplied training
shards found under the data root and checked (the whole set, each a parquet file of the
`translation` {en, zh} column), SpikingParrot's preprocessing on them (jieba first, a BPE per
side, the bucket DP), newstest2018 as the test set; and, without the files, one line naming them
and where they go, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.datasets import DatasetCorruptError, DatasetMissingError
from common.datasets.verify import user_dataset_files
from lstmpack.run import cli as run_cli
from nmt.corpus import read_wmt_shards
from nmt.data import check_corpus, load_data
from nmt.presets import PRESETS, TranslatorConfig
from nmt.tokenize import segment_zh
from nmt.train import main as nmt_train
from tests.nmt.nmt_ddp_worker import made_pairs

SOURCE = "https://huggingface.co/datasets/wmt/wmt19/tree/main/zh-en"
CONFIG = TranslatorConfig(
    preset="tiny", corpus="wmt19", eval_wmt=True, n_valid=6, max_len=16, src_vocab=280,
    tgt_vocab=300, bpe_min_frequency=1, embed=16, hidden=24, k_src=2, k_tgt=2, bucket_min=1,
    batch_size=16, epochs=1, eval_batch_size=32, beam=2, threads=1,
)  # fmt: skip
NEWSTEST = [
    ("The cat sat.", "猫坐着。"),
    ("I like tea.", "我喜欢茶。"),
    ("We see dogs.", "我们看见狗。"),
]


def write_parquet(path: Path, pairs, column: str = "translation") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"en": en, "zh": zh} for en, zh in pairs]
    pq.write_table(pa.table({column: rows}), path)
    return path


def made_root(root: Path, shards: int = 2, names: str = "train-{i:05d}-of-{n:05d}.parquet") -> Path:
    """A data root with the training pairs in `shards` shards and a made validation set."""
    pairs = made_pairs()
    for i in range(shards):
        write_parquet(root / "wmt19_zh_en_train" / names.format(i=i, n=shards), pairs[i::shards])
    write_parquet(root / "wmt_zh_en_valid" / "validation-00000-of-00001.parquet", NEWSTEST)
    return root


def test_the_shards_are_found_in_order_and_read_whole(tmp_path):
    # HuggingFace's newer names carry a hash: train-00000-of-00002-<hash>.parquet
    root = made_root(tmp_path, names="train-{i:05d}-of-{n:05d}-0123abcd.parquet")
    files = user_dataset_files("wmt19_zh_en_train", root)
    assert [f.name[:20] for f in files] == ["train-00000-of-00002", "train-00001-of-00002"]
    assert sorted(read_wmt_shards(files)) == sorted(made_pairs())


def test_paper_preprocessing_on_made_shards(tmp_path):
    root = made_root(tmp_path)
    assert check_corpus(CONFIG, root, verify=False) == root / "wmt19_zh_en_train"
    data = load_data(CONFIG, root, verify=False)
    info = data.info
    assert info["pairs"] == len(made_pairs())
    # train and valid from the shards, split by source; newstest2018 (the valid set) is the test
    assert info["valid_sources"] == 6 and info["test_pairs"] == len(NEWSTEST)
    assert data.test.sources == [en for en, _ in NEWSTEST] and data.wmt is None
    assert info["train_pairs"] + info["valid_pairs"] == len(made_pairs())
    # jieba first: BPE merges never cross its words, and Chinese decodes without their spaces
    ids = data.tgt_tok.encode("我喜欢茶。")
    assert data.tgt_tok.decode(ids) == "我喜欢茶。"
    assert info["buckets"]["kept"] == info["train_pairs_kept"]
    assert PRESETS["paper"].corpus == "wmt19"
    assert PRESETS["paper"].src_vocab == PRESETS["paper"].tgt_vocab == 16384


def test_segmentation_in_worker_processes_gives_the_same_words():
    texts = [zh for _, zh in made_pairs()[:12]]
    assert segment_zh(texts, processes=2, chunk=5) == segment_zh(texts)


def test_without_the_shards_one_line_names_them_and_where_they_go(tmp_path):
    with pytest.raises(DatasetMissingError) as e:
        user_dataset_files("wmt19_zh_en_train", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"put every shard, train-NNNNN-of-MMMMM.parquet, from {SOURCE} in " in msg
    assert str(tmp_path / "wmt19_zh_en_train") in msg


def test_an_incomplete_or_mixed_set_and_a_wrong_file_are_refused(tmp_path):
    root = made_root(tmp_path, shards=3)
    (root / "wmt19_zh_en_train" / "train-00001-of-00003.parquet").unlink()
    with pytest.raises(DatasetMissingError, match=r"2 of 3 shards, missing train-00001-of-00003"):
        user_dataset_files("wmt19_zh_en_train", root)
    write_parquet(root / "wmt19_zh_en_train" / "train-00001-of-00004.parquet", made_pairs())
    with pytest.raises(DatasetCorruptError, match="mixes shards of sets of 3 and 4"):
        user_dataset_files("wmt19_zh_en_train", root)
    (root / "wmt19_zh_en_train" / "train-00001-of-00004.parquet").unlink()
    write_parquet(root / "wmt19_zh_en_train" / "train-00001-of-00003.parquet", made_pairs(), "text")
    with pytest.raises(DatasetCorruptError, match="no column 'translation'"):
        user_dataset_files("wmt19_zh_en_train", root)
    (root / "wmt19_zh_en_train" / "train-00001-of-00003.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetCorruptError, match="not a parquet file"):
        user_dataset_files("wmt19_zh_en_train", root)


def test_nmt_train_paper_without_the_files_is_one_line_before_anything_is_written(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = nmt_train(["--preset", "paper", "--data-dir", str(tmp_path), "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "wmt19_zh_en_train" in err[0] and SOURCE in err[0]
    assert not run_dir.exists()


def test_compress_run_paper_without_the_shards_is_one_line(tmp_path, capsys):
    root = tmp_path / "data"
    write_parquet(root / "wmt_zh_en_valid" / "validation-00000-of-00001.parquet", NEWSTEST)
    argv = ["--model", "nmt", "--preset", "paper", "--data-dir", str(root), "--no-verify",
            "--runs-root", str(tmp_path / "runs")]  # fmt: skip
    assert run_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset 'wmt19_zh_en_train'" in err[0] and SOURCE in err[0]
    assert not (tmp_path / "runs").exists()
