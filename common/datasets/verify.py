"""Finding a dataset on disk and checking its files against the catalog's SHA-256.

Data root lookup, per dataset: the `data_dir` argument (the CLIs' --data-dir), then $LSTMPACK_DATA,
then `data/` in the repository; the first candidate holding the dataset's files wins. Hashing a
large file takes seconds, so each hash is cached by path, size and mtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_text
from common.datasets.catalog import (
    DATASETS,
    FETCH_HINT,
    DataFile,
    Dataset,
    DatasetCorruptError,
    DatasetMissingError,
    get_dataset,
)

ENV_VAR = "LSTMPACK_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHUNK = 1 << 20


def candidate_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
    """The three places searched, in order, as (label, path or None when not given)."""
    env = os.environ.get(ENV_VAR)
    return [
        ("--data-dir", Path(data_dir).expanduser() if data_dir else None),
        (f"${ENV_VAR}", Path(env).expanduser() if env else None),
        ("repo data/", REPO_ROOT / "data"),
    ]


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root that wins when no particular dataset is asked for: the first one given."""
    for _, path in candidate_roots(data_dir):
        if path is not None:
            return path
    raise AssertionError("unreachable: the repo data/ candidate is always given")


def present_files(ds: Dataset, folder: Path) -> tuple[DataFile, ...] | None:
    """The files of `ds` that `folder` holds: all of `files`, else one alternative, else None."""
    if all((folder / f.path).is_file() for f in ds.files):
        return ds.files
    for alt in ds.alternatives:
        if (folder / alt.path).is_file():
            return (alt,)
    return None


def find_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of dataset `name` under the first root that holds all its files."""
    ds = get_dataset(name)
    searched = []
    for label, root in candidate_roots(data_dir):
        if root is None:
            searched.append(f"{label} (not set)")
            continue
        folder = root / ds.folder
        if present_files(ds, folder) is not None:
            return folder
        searched.append(f"{label} {folder}")
    raise DatasetMissingError(
        f"dataset {name!r} not found; searched: {'; '.join(searched)}. "
        f"Fetch it with: {FETCH_HINT.format(name=name)}"
    )


def dataset_dir(
    name: str, data_dir: str | os.PathLike | None = None, *, verify: bool = True
) -> Path:
    """The verified folder of dataset `name`; raises DatasetMissingError or DatasetCorruptError."""
    folder = find_dataset(name, data_dir)
    if verify:
        verify_dataset(name, folder)
    return folder


# Hashing: a large file takes seconds, so each hash is kept in a small JSON cache under the user's
# cache folder, keyed by path and trusted while the file's size and mtime are unchanged.


def _cache_path() -> Path:
    base = os.environ.get("LSTMPACK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lstmpack"
    )
    return Path(base) / "sha256-cache.json"


def _load_cache() -> dict[str, dict]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _store_cache(cache: dict[str, dict]) -> None:
    # The cache only saves time: failing to write it must never fail a load.
    path = _cache_path()
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(cache, indent=0, sort_keys=True))


def _hash_stream(read: Callable[[int], bytes]) -> str:
    h = hashlib.sha256()
    while chunk := read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path, member: str | None = None, *, use_cache: bool = True) -> str:
    """SHA-256 of a file (or of one member of a zip), cached by path, size and mtime."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}::{member or ''}"
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache = _load_cache() if use_cache else {}
    hit = cache.get(key)
    if hit and hit.get("size") == stamp["size"] and hit.get("mtime_ns") == stamp["mtime_ns"]:
        return hit["sha256"]
    if member is None:
        with open(path, "rb") as fh:
            digest = _hash_stream(fh.read)
    else:
        with zipfile.ZipFile(path) as zf, zf.open(member) as fh:
            digest = _hash_stream(fh.read)
    if use_cache:
        cache[key] = {**stamp, "sha256": digest}
        _store_cache(cache)
    return digest


def verify_dataset(name: str, folder: Path) -> list[Path]:
    """Check every file of `name` in `folder`; returns the files, raises on a mismatch."""
    ds = get_dataset(name)
    files = present_files(ds, folder)
    if files is None:
        raise DatasetMissingError(
            f"dataset {name!r} is incomplete in {folder}. Fetch it with: "
            f"{FETCH_HINT.format(name=name)}"
        )
    checked = []
    for f in files:
        path = folder / f.path
        is_alt = f in ds.alternatives
        if f.size is not None and path.stat().st_size != f.size:
            raise DatasetCorruptError(
                f"{path}: size {path.stat().st_size} bytes, expected {f.size}; the file was left "
                f"as it is"
            )
        actual = file_sha256(path, f.member if is_alt else None)
        if actual != f.sha256:
            what = f"{path}" + (f" (member {f.member})" if is_alt else "")
            raise DatasetCorruptError(
                f"{what}: SHA-256 mismatch, expected {f.sha256}, actual {actual}; the file was "
                f"left as it is"
            )
        checked.append(path)
    return checked


@dataclass
class CheckRow:
    name: str
    status: str  # verified | missing | corrupt
    folder: str
    bytes: int
    detail: str = ""


def check_all(data_dir: str | os.PathLike | None = None) -> list[CheckRow]:
    rows = []
    for name in DATASETS:
        try:
            folder = find_dataset(name, data_dir)
        except DatasetMissingError as e:
            rows.append(CheckRow(name, "missing", "", 0, str(e)))
            continue
        files = present_files(DATASETS[name], folder) or ()
        size = sum((folder / f.path).stat().st_size for f in files)
        try:
            verify_dataset(name, folder)
            rows.append(CheckRow(name, "verified", str(folder), size))
        except DatasetCorruptError as e:
            rows.append(CheckRow(name, "corrupt", str(folder), size, str(e)))
    return rows
