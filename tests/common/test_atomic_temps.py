"""The temp file an atomic write leaves when its process is killed before the rename is removed
when the run starts again (compress.run's run and dense folders, lm.train's and nmt.train's run
folders); files with similar names, and temps another process may still be writing, stay."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from common import atomic
from common.atomic import atomic_write_bytes, is_temp_name, remove_stale_temps

STALE = [".checkpoint.pt.abcd1234.tmp", "train/.metrics.json.k2_x9zq0.tmp"]
# names a run may hold that are not atomic_write's temps (none a trainer reads)
SIMILAR = [
    "keep.pt",
    ".keep.pt.tmp",  # no random part
    "keep.pt.abcd1234.tmp",  # no leading dot
    ".keep.pt.ABCD1234.tmp",  # mkstemp draws lower case only
    ".keep.pt.abcd123.tmp",  # seven characters
    ".keep.pt.abcd1234.tmp.bak",
    "train/events.out.tfevents.1700000000.host.1.0",
]


def _make(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"half a file")


def _left(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


def test_the_pattern_matches_the_names_atomic_write_really_gives(tmp_path, monkeypatch):
    made = []
    real = tempfile.mkstemp

    def recording(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        made.append(Path(name).name)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", recording)

    def cut_off(fh):
        fh.write(b"half")
        raise KeyboardInterrupt  # as close to a kill as a test gets: the temp is removed here

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(tmp_path / "metrics.json", cut_off)
    assert len(made) == 1 and made[0].startswith(".metrics.json.") and is_temp_name(made[0])
    assert not any(is_temp_name(n) for n in SIMILAR)


def test_a_stale_temp_goes_and_files_with_similar_names_stay(tmp_path):
    _make(tmp_path, STALE + SIMILAR)
    (tmp_path / ".adir.abcd1234.tmp").mkdir()  # a folder of that name is not a temp file
    (tmp_path / ".link.abcd1234.tmp").symlink_to(tmp_path / "keep.pt")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == sorted(STALE)
    assert _left(tmp_path) == set(SIMILAR) | {".link.abcd1234.tmp"}
    assert (tmp_path / ".adir.abcd1234.tmp").is_dir() and (tmp_path / "keep.pt").is_file()
    assert remove_stale_temps(tmp_path / "nowhere") == []


def test_a_shared_folder_keeps_a_temp_that_may_still_be_written(tmp_path):
    _make(tmp_path, STALE)
    old = time.time() - 3600
    os.utime(tmp_path / STALE[0], (old, old))
    assert remove_stale_temps(tmp_path, min_age_s=600) == [tmp_path / STALE[0]]
    assert _left(tmp_path) == {STALE[1]}  # touched a moment ago: another writer's, maybe


def test_writes_after_the_cleanup_are_untouched(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"whole")
    assert remove_stale_temps(tmp_path) == [] and _left(tmp_path) == {"a.bin"}


# --------------------------------------------------------------------------- where runs start


def test_lm_train_run_clears_a_killed_writes_temp_on_resume(tmp_path):
    from lm.data import load_text_folder
    from lm.rundir import train_run
    from tests.lm.conftest import tiny_config, write_char_corpus

    corpus = load_text_folder(write_char_corpus(tmp_path / "ptb_char", (60, 10, 10)))
    run = tmp_path / "run"
    cfg = tiny_config(epochs=0)  # a resumable run without a training step
    train_run(cfg, run, corpus=corpus, tensorboard=False)
    _make(run, STALE + SIMILAR)
    train_run(cfg, run, corpus=corpus, tensorboard=False, resume=True)
    assert not set(STALE) & _left(run) and set(SIMILAR) <= _left(run)


def test_nmt_train_clears_a_killed_writes_temp_on_resume(tmp_path):
    from nmt.data import prepare_data
    from nmt.training import build_model, train
    from tests.nmt.test_nmt_train import TINY, made_pairs

    data = prepare_data(TINY, made_pairs())
    run = tmp_path / "run"
    _make(run, STALE + SIMILAR)
    model = build_model(TINY, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(model, data, TINY, run, resume=True, epochs=0, progress=False)
    assert not set(STALE) & _left(run) and set(SIMILAR) <= _left(run)


def test_compress_run_clears_its_run_folder_and_the_dense_folders_old_temps(tmp_path, monkeypatch):
    from lstmpack.run import cli, small_dense

    run_dir, dense_dir = tmp_path / "a2", tmp_path / "dense"
    _make(run_dir, STALE + SIMILAR)
    _make(dense_dir, STALE)
    old = time.time() - 3600
    os.utime(dense_dir / STALE[0], (old, old))

    seen = {}

    def stage(ctx):  # the first stage: what is left when the stages start
        seen["run"], seen["dense"] = _left(run_dir), _left(dense_dir)
        raise RuntimeError("stop here")

    monkeypatch.setattr(small_dense, "config_record", lambda ctx: {"kind": "small_dense"})
    monkeypatch.setattr(small_dense, "small_dense_stage", stage)
    ctx = SimpleNamespace(
        spec=None, cfg=None, run=SimpleNamespace(small_dense=True), run_dir=run_dir,
        dense_dir=dense_dir, args=SimpleNamespace(resume=True), takeover=None,
        data_folder=tmp_path, runtime=SimpleNamespace(device="cpu", precision="fp32"),
        world=SimpleNamespace(size=1),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="stop here"):
        cli.run(ctx)
    assert seen["run"] == set(SIMILAR) | {"config.json", "metrics.json"}
    assert seen["dense"] == {STALE[1]}  # fresh: another run's write in progress, maybe
