"""Finding a dataset on disk and checking its files against the catalog's SHA-256.

The data root is ONE folder: the `data_dir` argument (the CLIs' --data-dir) when given, else
$LSTMPACK_DATA when set, else `data/` in the repository. An explicit choice is never passed over
for the next one: a --data-dir or $LSTMPACK_DATA that is empty, missing, a file, or lacks the
dataset fails naming it, so a run never reads another copy than the one it was pointed at.
Hashing a large file takes seconds, so each hash is cached by path, size, mtime, inode and ctime
(`check --full` hashes again regardless).

A user-supplied dataset (catalog.USER_DATASETS: no pinned hashes) is found the same way, under the
same one data root, and checked by `user_dataset_files`: the whole set of shards present, each a
parquet file with the expected columns (its footer only is read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_text
from common.datasets.catalog import (
    DATASETS,
    FETCH_HINT,
    USER_DATASETS,
    DataFile,
    Dataset,
    DatasetCorruptError,
    DatasetMissingError,
    UserDataset,
    UserTextDataset,
    get_dataset,
)

ENV_VAR = "LSTMPACK_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHUNK = 1 << 20
REPO_LABEL = "the repository's data/"


def data_root(data_dir: str | os.PathLike | None = None) -> tuple[str, Path]:
    """(label, folder) of the data root in use: --data-dir, else $LSTMPACK_DATA, else the repo's
    data/. An explicit choice that is empty raises DatasetMissingError naming it; whether it
    holds anything is find_dataset's check."""
    if data_dir is not None:
        if not str(data_dir).strip():
            raise DatasetMissingError(
                "--data-dir is empty; give a data folder, or leave the flag out to use "
                f"${ENV_VAR} or {REPO_LABEL}"
            )
        return "--data-dir", Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env is not None:
        if not env.strip():
            # an empty variable is most often a script's unset path: it must not quietly mean
            # "the repository's copy"
            raise DatasetMissingError(
                f"${ENV_VAR} is set but empty; point it at a data folder, or unset it to use "
                f"{REPO_LABEL}"
            )
        return f"${ENV_VAR}", Path(env).expanduser()
    return REPO_LABEL, REPO_ROOT / "data"


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root in use (see data_root); it need not exist yet (fetch creates it)."""
    return data_root(data_dir)[1]


def present_files(ds: Dataset, folder: Path) -> tuple[DataFile, ...] | None:
    """The files of `ds` that `folder` holds: all of `files`, else one alternative, else None."""
    if all((folder / f.path).is_file() for f in ds.files):
        return ds.files
    for alt in ds.alternatives:
        if (folder / alt.path).is_file():
            return (alt,)
    return None


def find_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of dataset `name` under the data root in use; DatasetMissingError naming the
    root, what is wrong with it, and the command that fetches the dataset there."""
    ds = get_dataset(name)
    label, root = data_root(data_dir)
    folder = root / ds.folder
    if present_files(ds, folder) is not None:
        return folder
    if not root.exists():
        why = "does not exist"
    elif not root.is_dir():
        why = "is a file, not a folder"
    elif not folder.is_dir():
        why = f"has no {ds.folder}/ folder"
    else:
        missing = [f.path for f in ds.files if not (folder / f.path).is_file()]
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        why = f"has {ds.folder}/ without {shown}"
    if label == REPO_LABEL:
        hint = FETCH_HINT.format(name=name)
        where = f"{label} {root} (no --data-dir given and ${ENV_VAR} not set)"
    else:
        hint = f"python -m compress.datasets fetch {name} --data-dir {root}"
        where = f"{label} {root}"
    raise DatasetMissingError(
        f"dataset {name!r} not found in {where}: it {why}. Fetch it with: {hint}"
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
# cache folder, keyed by path and trusted while the file's size, mtime, inode and ctime are all
# unchanged. mtime alone can be set back by anyone (touch -d, cp -p, an editor that restores it);
# ctime cannot be set from user space, and an edit by replacement changes the inode.
STAMP = ("size", "mtime_ns", "ino", "ctime_ns")


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


def _stamp(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
            "ctime_ns": st.st_ctime_ns}  # fmt: skip


def file_sha256(
    path: Path, member: str | None = None, *, use_cache: bool = True, refresh: bool = False
) -> str:
    """SHA-256 of a file (or of one member of a zip), cached by path, size, mtime, inode and
    ctime. `refresh`: hash again whatever the cache says, and store the new hash."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}::{member or ''}"
    stamp = _stamp(st)
    cache = _load_cache() if use_cache else {}
    hit = cache.get(key)
    if (
        not refresh
        and isinstance(hit, dict)
        and all(hit.get(k) == stamp[k] for k in STAMP)
        and isinstance(hit.get("sha256"), str)
    ):
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


def verify_dataset(name: str, folder: Path, *, full: bool = False) -> list[Path]:
    """Check every file of `name` in `folder`; returns the files, raises on a mismatch.
    `full`: hash every file again instead of trusting the cache."""
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
        actual = file_sha256(path, f.member if is_alt else None, refresh=full)
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


def check_all(data_dir: str | os.PathLike | None = None, *, full: bool = False) -> list[CheckRow]:
    """One row per dataset of the catalog, under the data root in use; `full` hashes every file
    again instead of trusting the cache."""
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
            verify_dataset(name, folder, full=full)
            rows.append(CheckRow(name, "verified", str(folder), size))
        except DatasetCorruptError as e:
            rows.append(CheckRow(name, "corrupt", str(folder), size, str(e)))
    return rows


# --------------------------------------------------------------------------- user-supplied sets


def _shards_of(ds: UserDataset, folder: Path) -> dict[int, tuple[int, Path]]:
    """{index: (count, path)} of the shards named <split>-NNNNN-of-MMMMM[-hash].parquet."""
    name = re.compile(rf"{re.escape(ds.split)}-(\d+)-of-(\d+)(?:-[0-9a-zA-Z]+)?\.parquet")
    found: dict[int, tuple[int, Path]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        m = name.fullmatch(path.name)
        if m is not None and path.is_file():
            found[int(m.group(1))] = (int(m.group(2)), path)
    return found


def _check_schema(ds: UserDataset, path: Path) -> None:
    """DatasetCorruptError naming `path` unless it is a parquet file whose `ds.column` is a
    struct holding `ds.fields` (the footer alone is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    want = f"column {ds.column!r}, a struct of {', '.join(ds.fields)}"
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # ArrowInvalid and OSError say the same to a user
        raise DatasetCorruptError(
            f"{path}: not a parquet file ({' '.join(str(e).split())[:120]}); download it again"
        ) from None
    if ds.column not in schema.names:
        raise DatasetCorruptError(
            f"{path}: no {want} (columns: {', '.join(schema.names)}); download it again"
        )
    kind = schema.field(ds.column).type
    if not pa.types.is_struct(kind) or not all(kind.get_field_index(f) >= 0 for f in ds.fields):
        raise DatasetCorruptError(f"{path}: {ds.column!r} is {kind}, not {want}; download it again")


def user_dataset_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The shards of user-supplied dataset `name` under the data root in use, in order, once the
    whole set is there and every shard has the expected columns. DatasetMissingError (one line:
    the files, where they go, where they come from) or DatasetCorruptError otherwise."""
    ds = USER_DATASETS.get(name)
    if ds is None:
        raise ValueError(f"unknown user dataset {name!r}; known: {', '.join(USER_DATASETS)}")
    label, root = data_root(data_dir)
    folder = root / ds.folder
    pattern = f"{ds.split}-NNNNN-of-MMMMM.parquet"
    where = f"{label} {root}" + (
        f" (no --data-dir given and ${ENV_VAR} not set)" if label == REPO_LABEL else ""
    )
    shards = _shards_of(ds, folder)
    if not shards:
        why = (
            f"its {ds.folder}/ holds no {pattern}"
            if folder.is_dir()
            else (f"it has no {ds.folder}/ folder")
        )
        raise DatasetMissingError(
            f"dataset {name!r} ({ds.description}) not found in {where}: {why}. It is not "
            f"fetched for you: put every shard, {pattern}, from {ds.source} in {folder}/"
        )
    counts = sorted({count for count, _ in shards.values()})
    if len(counts) > 1:
        raise DatasetCorruptError(
            f"{folder} mixes shards of sets of {' and '.join(map(str, counts))}: keep one "
            "download's shards only"
        )
    total = counts[0]
    if max(shards) >= total:
        raise DatasetCorruptError(
            f"{shards[max(shards)][1]}: shard {max(shards)} of a set of {total}; its name is wrong"
        )
    missing = [i for i in range(total) if i not in shards]
    if missing:
        shown = ", ".join(f"{ds.split}-{i:05d}-of-{total:05d}.parquet" for i in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetMissingError(
            f"dataset {name!r} is incomplete in {folder}: {len(shards)} of {total} shards, "
            f"missing {shown}{more}; put them there (from {ds.source})"
        )
    paths = [shards[i][1] for i in range(total)]
    for path in paths:
        _check_schema(ds, path)
    return paths


def user_text_files(
    ds: UserTextDataset,
    data_dir: str | os.PathLike | None = None,
    files: tuple[str, ...] | None = None,
) -> list[Path]:
    """The paths of `files` (default: every file `ds` names) under the data root in use, once each
    is there and not empty. DatasetMissingError otherwise, one line: the root, what is missing,
    and how to unpack the download into place (no hash is pinned: catalog.UserTextDataset)."""
    wanted = ds.files if files is None else files
    unknown = [f for f in wanted if f not in ds.files]
    if unknown:
        raise ValueError(f"{ds.name} has no file {unknown[0]!r}")
    label, root = data_root(data_dir)
    folder = root / ds.folder
    where = f"{label} {root}" + (
        f" (no --data-dir given and ${ENV_VAR} not set)" if label == REPO_LABEL else ""
    )
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        shown = ", ".join(missing[:2]) + (
            f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        )
        why = f"its {ds.folder}/ lacks {shown}" if folder.is_dir() else f"it has no {ds.folder}/"
        raise DatasetMissingError(
            f"dataset {ds.name!r} ({ds.description}) not found in {where}: {why}. It is not "
            f"fetched for you: download {ds.url}, unpack it and move its {ds.archive_root}/ to "
            f"{folder}/"
        )
    empty = [f for f in wanted if (folder / f).stat().st_size == 0]
    if empty:
        raise DatasetCorruptError(f"{folder / empty[0]} is empty; unpack the download again")
    return [folder / f for f in wanted]
