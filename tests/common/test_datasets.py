"""Dataset registry: root resolution, verification, the downloader, and the real data."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import common.datasets as D
from common.datasets import verify
from common.datasets.cli import main as cli_main


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test gets its own hash cache and no inherited data root."""
    monkeypatch.setenv("LSTMPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(D.ENV_VAR, raising=False)
    # Patched where it is read (the lookup module), not on the package that re-exports it.
    monkeypatch.setattr(verify, "REPO_ROOT", tmp_path / "repo")


def _empty_registry(monkeypatch) -> None:
    """Every module holds the one DATASETS dict: empty it in place. Deleted last to first, since
    monkeypatch restores in reverse: the registry's order (the check table's) comes back as it was."""
    for name in reversed(list(D.DATASETS)):
        monkeypatch.delitem(D.DATASETS, name)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_dataset(monkeypatch, files: dict[str, bytes], **kw) -> D.Dataset:
    ds = D.Dataset(
        name="toy",
        folder="toy",
        files=tuple(D.DataFile(p, _sha(b), member=f"inner/{p}") for p, b in files.items()),
        url=kw.pop("url", "http://127.0.0.1:9/none"),
        **kw,
    )
    monkeypatch.setitem(D.DATASETS, "toy", ds)
    return ds


def _write(root: Path, files: dict[str, bytes]) -> None:
    (root / "toy").mkdir(parents=True, exist_ok=True)
    for p, b in files.items():
        (root / "toy" / p).write_bytes(b)


FILES = {"train.txt": b"hello world\n", "test.txt": b"bye\n"}


def test_data_dir_argument_wins_over_env_and_repo(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    for name in ("arg", "env", "repo/data"):
        _write(tmp_path / name, FILES)
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "env"))
    assert D.dataset_dir("toy", tmp_path / "arg") == tmp_path / "arg" / "toy"


def test_env_wins_over_repo_data_when_no_argument(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "env", FILES)
    _write(tmp_path / "repo/data", FILES)
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "env"))
    assert D.dataset_dir("toy") == tmp_path / "env" / "toy"


def test_repo_data_is_used_only_when_no_root_is_chosen(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "repo/data", FILES)
    assert D.dataset_dir("toy") == tmp_path / "repo/data/toy"


def _file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file"


def _lacking(tmp_path: Path) -> Path:
    _write(tmp_path / "lacking", {"train.txt": FILES["train.txt"]})
    return tmp_path / "lacking"


# an explicit root that does not hold the dataset -> what the one line says about it
EXPLICIT = [
    ("missing", lambda t: t / "nowhere", "does not exist"),
    ("a file", _file, "is a file, not a folder"),
    ("empty folder", lambda t: t / "empty", "has no toy/ folder"),
    ("lacking a file", _lacking, "has toy/ without test.txt"),
]


@pytest.mark.parametrize(("case", "make", "why"), EXPLICIT, ids=[c[0] for c in EXPLICIT])
@pytest.mark.parametrize("how", ["--data-dir", "$LSTMPACK_DATA"])
def test_an_explicit_root_without_the_data_fails_naming_it_never_falls_back(
    tmp_path, monkeypatch, how, case, make, why
):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "repo/data", FILES)  # a good copy the lookup must NOT fall back to
    (tmp_path / "empty").mkdir()
    root = make(tmp_path)
    if how == "--data-dir":
        args = (root,)
    else:
        monkeypatch.setenv(D.ENV_VAR, str(root))
        args = ()
    with pytest.raises(D.DatasetMissingError) as e:
        D.dataset_dir("toy", *args)
    msg = str(e.value)
    assert "\n" not in msg and f"{how} {root}" in msg and why in msg, msg
    assert f"fetch toy --data-dir {root}" in msg
    assert "repo" not in msg.replace(str(tmp_path), "")


def test_an_empty_data_dir_or_env_var_is_an_error_not_the_repo_copy(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "repo/data", FILES)
    with pytest.raises(D.DatasetMissingError, match="--data-dir is empty"):
        D.dataset_dir("toy", "")
    monkeypatch.setenv(D.ENV_VAR, "")
    with pytest.raises(D.DatasetMissingError, match=r"\$LSTMPACK_DATA is set but empty"):
        D.dataset_dir("toy")


def test_missing_dataset_message_names_the_root_and_the_fetch_command(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    with pytest.raises(D.DatasetMissingError) as e:
        D.dataset_dir("toy")
    msg = str(e.value)
    assert "'toy'" in msg and "\n" not in msg and str(tmp_path / "repo" / "data") in msg
    assert "no --data-dir given and $LSTMPACK_DATA not set" in msg
    assert "make data" in msg and "fetch toy" in msg


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="ptb_char"):
        D.dataset_dir("ptb_chars")


def test_hash_mismatch_names_file_and_both_hashes_and_leaves_file(tmp_path, monkeypatch):
    ds = _fake_dataset(monkeypatch, FILES)
    _write(tmp_path, {**FILES, "test.txt": b"tampered\n"})
    with pytest.raises(D.DatasetCorruptError) as e:
        D.dataset_dir("toy", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "toy" / "test.txt") in msg
    assert ds.files[1].sha256 in msg and _sha(b"tampered\n") in msg
    assert (tmp_path / "toy" / "test.txt").read_bytes() == b"tampered\n"


def test_verify_false_skips_hashing(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path, {**FILES, "test.txt": b"made by a test\n"})
    assert D.dataset_dir("toy", tmp_path, verify=False) == tmp_path / "toy"


def test_hash_cache_is_keyed_by_size_and_mtime(tmp_path, monkeypatch):
    f = tmp_path / "f.bin"
    f.write_bytes(b"a" * 100)
    first = D.file_sha256(f)
    calls = []
    real = verify._hash_stream
    monkeypatch.setattr(verify, "_hash_stream", lambda read: calls.append(1) or real(read))
    assert D.file_sha256(f) == first and calls == []  # served from the cache
    f.write_bytes(b"b" * 101)  # size changes: recomputed
    assert D.file_sha256(f) == _sha(b"b" * 101) and calls == [1]
    st = f.stat()
    f.write_bytes(b"c" * 101)  # same size, new mtime: recomputed
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert D.file_sha256(f) == _sha(b"c" * 101) and calls == [1, 1]


def test_a_same_size_edit_with_its_mtime_set_back_is_hashed_again(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"a" * 100)
    first = D.file_sha256(f)
    st = f.stat()
    f.write_bytes(b"b" * 100)  # in place: same inode, same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the mtime put back
    assert (f.stat().st_mtime_ns, f.stat().st_size) == (st.st_mtime_ns, st.st_size)
    assert D.file_sha256(f) == _sha(b"b" * 100) != first  # ctime moved: not served stale


def test_a_replaced_file_with_size_and_mtime_copied_is_hashed_again(tmp_path):
    f, other = tmp_path / "f.bin", tmp_path / "other.bin"
    f.write_bytes(b"a" * 100)
    first = D.file_sha256(f)
    other.write_bytes(b"b" * 100)
    st = f.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, f)  # a new inode under the old name
    assert D.file_sha256(f) == _sha(b"b" * 100) != first


def test_check_full_hashes_every_file_again_whatever_the_cache_says(tmp_path, monkeypatch, capsys):
    _empty_registry(monkeypatch)
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "root", FILES)
    assert cli_main(["check", "--data-dir", str(tmp_path / "root")]) == 0
    calls = []
    real = verify._hash_stream
    monkeypatch.setattr(verify, "_hash_stream", lambda read: calls.append(1) or real(read))
    assert cli_main(["check", "--data-dir", str(tmp_path / "root")]) == 0
    assert calls == []  # served from the cache
    assert cli_main(["check", "--data-dir", str(tmp_path / "root"), "--full"]) == 0
    assert len(calls) == len(FILES)
    out = capsys.readouterr().out
    assert f"data root: {tmp_path / 'root'} (--data-dir; every file hashed again)" in out


def test_check_of_a_data_dir_that_is_not_a_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for root, why in ((tmp_path / "f", "is a file"), (tmp_path / "none", "does not exist")):
        assert cli_main(["check", "--data-dir", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(root) in err and why in err


def test_check_table_reports_verified_missing_and_corrupt(tmp_path, monkeypatch):
    _empty_registry(monkeypatch)
    _fake_dataset(monkeypatch, FILES)
    other = replace(D.DATASETS["toy"], name="gone", folder="gone")
    bad = replace(D.DATASETS["toy"], name="bad", folder="bad")
    monkeypatch.setitem(D.DATASETS, "gone", other)
    monkeypatch.setitem(D.DATASETS, "bad", bad)
    _write(tmp_path, FILES)
    (tmp_path / "bad").mkdir()
    for p in FILES:
        (tmp_path / "bad" / p).write_bytes(b"x")
    rows = {r.name: r for r in D.check_all(tmp_path)}
    assert rows["toy"].status == "verified" and rows["toy"].bytes == sum(map(len, FILES.values()))
    assert rows["gone"].status == "missing"
    assert rows["bad"].status == "corrupt" and "mismatch" in rows["bad"].detail


def test_enwik8_zip_stands_in_for_the_raw_file(tmp_path, monkeypatch):
    payload = b"<mediawiki>" + bytes(range(256)) * 10
    ds = replace(
        D.DATASETS["enwik8"],
        files=(D.DataFile("enwik8", _sha(payload), "enwik8"),),
        alternatives=(D.DataFile("enwik8.zip", _sha(payload), "enwik8"),),
    )
    monkeypatch.setitem(D.DATASETS, "enwik8", ds)
    (tmp_path / "enwik8").mkdir()
    with zipfile.ZipFile(tmp_path / "enwik8" / "enwik8.zip", "w") as zf:
        zf.writestr("enwik8", payload)
    assert D.dataset_dir("enwik8", tmp_path) == tmp_path / "enwik8"


def test_registry_covers_the_agreed_layout():
    assert set(D.DATASETS) == {
        "ptb_char", "ptb_word", "enwik8", "names", "cmn_eng", "wmt_zh_en_valid", "multi30k"
    }  # fmt: skip
    assert len(D.DATASETS["names"].files) == 18
    assert len(D.DATASETS["multi30k"].files) == 6
    assert D.DATASETS["enwik8"].files[0].size == 100_000_000
    assert D.DATASETS["enwik8"].alternatives[0].size == 36_445_475


# --------------------------------------------------------------------------- downloader


class _Server:
    """A real HTTP server on 127.0.0.1 serving in-memory bodies; `truncate` cuts a body short."""

    def __init__(self):
        self.bodies: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                body = outer.bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in outer.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_success_writes_the_verified_file(server, tmp_path):
    body = os.urandom(300_000)
    server.bodies["/f.bin"] = body
    out = D.download(server.url + "/f.bin", tmp_path / "f.bin", sha256=_sha(body), progress=False)
    assert out.read_bytes() == body
    assert _leftovers(tmp_path) == ["f.bin"]


def test_truncated_download_raises_and_leaves_nothing(server, tmp_path):
    server.bodies["/f.bin"] = os.urandom(300_000)
    server.truncate.add("/f.bin")
    with pytest.raises(D.DownloadError, match="truncated|failed"):
        D.download(server.url + "/f.bin", tmp_path / "f.bin", progress=False)
    assert _leftovers(tmp_path) == []


def test_wrong_hash_download_raises_and_leaves_nothing(server, tmp_path):
    server.bodies["/f.bin"] = b"not what was promised"
    with pytest.raises(D.DownloadError, match="SHA-256 mismatch"):
        D.download(server.url + "/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert _leftovers(tmp_path) == []


def test_http_error_raises_download_error(server, tmp_path):
    with pytest.raises(D.DownloadError, match="404"):
        D.download(server.url + "/missing", tmp_path / "f.bin", progress=False)
    assert _leftovers(tmp_path) == []


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p, b in files.items():
            zf.writestr(f"inner/{p}", b)
    return buf.getvalue()


def test_fetch_archive_over_http_extracts_and_verifies(server, tmp_path, monkeypatch):
    server.bodies["/toy.zip"] = _zip_of(FILES)
    _fake_dataset(monkeypatch, FILES, url=server.url + "/toy.zip", archive="zip")
    assert D.fetch_dataset("toy", tmp_path / "root", progress=False) == "download"
    assert D.dataset_dir("toy", tmp_path / "root") == tmp_path / "root" / "toy"
    assert _leftovers(tmp_path / "root") == ["test.txt", "toy", "train.txt"]
    assert D.fetch_dataset("toy", tmp_path / "root", progress=False) == "present"


def test_fetch_archive_with_a_wrong_member_hash_leaves_nothing(server, tmp_path, monkeypatch):
    server.bodies["/toy.zip"] = _zip_of({**FILES, "test.txt": b"different\n"})
    _fake_dataset(monkeypatch, FILES, url=server.url + "/toy.zip", archive="zip")
    with pytest.raises(D.DatasetCorruptError, match="nothing was written"):
        D.fetch_dataset("toy", tmp_path / "root", progress=False)
    assert _leftovers(tmp_path / "root") == []


def test_fetch_plain_files_over_http(server, tmp_path, monkeypatch):
    for p, b in FILES.items():
        server.bodies[f"/base/inner/{p}"] = b
    _fake_dataset(monkeypatch, FILES, url=server.url + "/base/")
    assert D.fetch_dataset("toy", tmp_path / "root", progress=False) == "download"
    assert (tmp_path / "root/toy/train.txt").read_bytes() == FILES["train.txt"]


def test_fetch_truncated_plain_file_leaves_target_untouched(server, tmp_path, monkeypatch):
    for p, b in FILES.items():
        server.bodies[f"/base/inner/{p}"] = b * 10_000
    server.truncate.add("/base/inner/test.txt")
    _fake_dataset(monkeypatch, {p: b * 10_000 for p, b in FILES.items()}, url=server.url + "/base/")
    with pytest.raises(D.DownloadError):
        D.fetch_dataset("toy", tmp_path / "root", progress=False)
    assert _leftovers(tmp_path / "root") == []


def test_fetch_prefers_the_mirror(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)  # its URL is unreachable: only the mirror can work
    _write(tmp_path / "mirror", FILES)
    how = D.fetch_dataset("toy", tmp_path / "root", mirror=tmp_path / "mirror", progress=False)
    assert how == "mirror"
    assert D.dataset_dir("toy", tmp_path / "root") == tmp_path / "root" / "toy"


def test_fetch_refuses_a_corrupt_mirror_copy(tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, FILES)
    _write(tmp_path / "mirror", {**FILES, "train.txt": b"corrupt"})
    with pytest.raises(D.DatasetCorruptError):
        D.fetch_dataset("toy", tmp_path / "root", mirror=tmp_path / "mirror", progress=False)
    assert _leftovers(tmp_path / "root") == []


# --------------------------------------------------------------------------- CLI


def test_cli_missing_dataset_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    _fake_dataset(monkeypatch, FILES)
    code = cli_main(["fetch", "toy", "--data-dir", str(tmp_path / "root")])
    out = capsys.readouterr()
    assert code == 1 and "FAILED" in out.out and "Traceback" not in out.out + out.err


def test_cli_optional_dataset_failure_does_not_fail(tmp_path, monkeypatch, capsys):
    _empty_registry(monkeypatch)
    _fake_dataset(monkeypatch, FILES)
    code = cli_main(["fetch", "--data-dir", str(tmp_path / "root"), "--optional", "toy"])
    assert code == 0 and "skipped" in capsys.readouterr().out


def test_cli_unknown_dataset_exits_2(capsys):
    assert cli_main(["fetch", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
