"""The data a run reads, over its fault list: a data root chosen and not holding the data (an
empty --data-dir or $LSTMPACK_DATA, a missing folder, a file, an empty folder) fails naming it
and never falls back to another copy; a data file truncated, emptied or overwritten fails its
SHA-256 check in one line naming it, even when an edit kept its size and put its mtime back;
and with --no-verify a file that cannot be parsed, or an empty split, still fails before any
training. Every run logs the data folder it read.

The made PTB-char files stand in for the real ones: the catalog's entry is patched to their
hashes, so verification is real; nothing reads the repository's data/."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import replace

import pytest

import common.datasets as D
from lstmpack.run import cli as R
from tests.faults.conftest import DAMAGE, damage, snapshot
from tests.lstmpack.test_run_e2e import make_ptb_char


def _argv(runs, *extra: str) -> list[str]:
    return ["--model", "ptbc", "--preset", "smoke", "--runs-root", str(runs), "--threads", "1",
            *extra]  # fmt: skip


@pytest.fixture
def data(tmp_path, monkeypatch):
    """Made ptb_char data that verifies: the catalog holds its files' hashes."""
    root = make_ptb_char(tmp_path / "data")
    ds = D.DATASETS["ptb_char"]
    files = tuple(
        replace(f, sha256=hashlib.sha256((root / "ptb_char" / f.path).read_bytes()).hexdigest(),
                size=None)
        for f in ds.files
    )  # fmt: skip
    monkeypatch.setitem(D.DATASETS, "ptb_char", replace(ds, files=files))
    return root


def _fails(one_line_error, argv, tmp_path, *fragments) -> str:
    runs = tmp_path / "runs"
    line = one_line_error(R.main(argv), *fragments)
    assert snapshot(runs) == {}, "a failed data check wrote or trained something"
    return line


ROOTS = {
    "empty string": lambda t: "",
    "missing folder": lambda t: str(t / "nowhere"),
    "a file": lambda t: str(t / "a-file"),
    "empty folder": lambda t: str(t / "empty"),
}
SAYS = {"empty string": "empty", "missing folder": "does not exist",
        "a file": "is a file, not a folder", "empty folder": "has no ptb_char/ folder"}  # fmt: skip


@pytest.mark.parametrize("case", list(ROOTS))
@pytest.mark.parametrize("how", ["--data-dir", "LSTMPACK_DATA"])
def test_a_chosen_data_root_without_the_data_fails_naming_it(
    data, tmp_path, monkeypatch, one_line_error, how, case
):
    # the repository's data/ holds a good copy: it must not be read instead (a repository root
    # of this test's own: the suite's shared one stays empty)
    import common.datasets.verify as verify

    monkeypatch.setattr(verify, "REPO_ROOT", tmp_path / "repo")
    make_ptb_char(verify.REPO_ROOT / "data")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    root = ROOTS[case](tmp_path)
    if how == "--data-dir":
        argv = _argv(tmp_path / "runs", "--data-dir", root)
    else:
        monkeypatch.setenv("LSTMPACK_DATA", root)
        argv = _argv(tmp_path / "runs")
    line = _fails(one_line_error, argv, tmp_path, SAYS[case])
    assert (how if how == "--data-dir" else "$LSTMPACK_DATA") in line
    assert str(verify.REPO_ROOT) not in line


@pytest.mark.parametrize("how", list(DAMAGE))
@pytest.mark.parametrize("name", ["train.txt", "valid.txt", "test.txt"])
def test_a_damaged_data_file_fails_its_hash_in_one_line(data, tmp_path, one_line_error, name, how):
    path = data / "ptb_char" / name
    damage(path, how)
    argv = _argv(tmp_path / "runs", "--data-dir", str(data))
    _fails(one_line_error, argv, tmp_path, str(path), "SHA-256 mismatch")


def test_a_same_size_edit_with_the_mtime_put_back_is_still_caught(data, tmp_path, one_line_error):
    from common.datasets import verify_dataset

    verify_dataset("ptb_char", data / "ptb_char")  # hashed once: the cache holds the good hash
    path = data / "ptb_char" / "valid.txt"
    st = path.stat()
    text = path.read_bytes()
    path.write_bytes(text.replace(b"c a t", b"d o g", 1))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    argv = _argv(tmp_path / "runs", "--data-dir", str(data))
    _fails(one_line_error, argv, tmp_path, str(path), "SHA-256 mismatch")


def test_unverified_data_that_cannot_be_read_fails_before_training(data, tmp_path, one_line_error):
    (data / "ptb_char" / "train.txt").write_bytes(bytes(range(256)) * 20)
    argv = _argv(tmp_path / "runs", "--data-dir", str(data), "--no-verify")
    _fails(one_line_error, argv, tmp_path, f"the data in {data / 'ptb_char'} cannot be read")


def test_an_unverified_empty_split_fails_before_training(data, tmp_path, one_line_error):
    (data / "ptb_char" / "valid.txt").write_text("")
    argv = _argv(tmp_path / "runs", "--data-dir", str(data), "--no-verify")
    _fails(one_line_error, argv, tmp_path, "has an empty valid split")


def test_every_run_logs_the_data_folder_it_read(data, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    argv = _argv(tmp_path / "runs", "--data-dir", str(data), "--finetune-steps", "1")
    assert R.main(argv) == 0
    assert f"data: {data / 'ptb_char'}" in caplog.text
    assert "dense model: training in" in caplog.text and "dense stage" in caplog.text
