"""Files written so that a reader sees the old version or the new one, never half of one.

Every run record, checkpoint, packed file and download goes through `atomic_write`: a temporary
file in the same folder (so the rename cannot cross file systems), flushed and fsynced, made 0644
(mkstemp's 0600 would hide shared run records from other users), then renamed over the target.
A failure at any point removes the temporary file and leaves the target as it was; a process
killed before the rename cannot, and `remove_stale_temps` clears what it left when the run starts
again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(fd, name) of a temp file beside `path` that replaces `path` when the block ends, or is
    removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield fd, tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# The names `_replacing` gives its temp files: "." + the target's name + "." + mkstemp's eight
# random characters + ".tmp". Only names of exactly this form are ever removed as leftovers.
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one `atomic_write` gives its temp files."""
    return _TEMP_NAME.fullmatch(name) is not None


def remove_stale_temps(folder: str | os.PathLike, *, min_age_s: float = 0.0) -> list[Path]:
    """Delete the temp files of atomic writes cut off by a kill in `folder` and its subfolders;
    returns the paths removed.

    Only regular files named as `atomic_write` names its temps, untouched for `min_age_s` seconds
    or more: a folder with one writer (a run directory, cleared by that writer when it starts)
    passes 0; a folder several processes may write at once passes a margin no live write lasts
    (a write keeps touching its temp until the rename). Symbolic links are neither followed nor
    removed."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    cutoff = time.time() - min_age_s
    for root, _, files in os.walk(folder):
        for name in files:
            if not is_temp_name(name):
                continue
            path = Path(root) / name
            try:
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode) or st.st_mtime > cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:  # renamed into place or removed since it was listed
                continue
            log.info("removed %s: the temp file of a write that was cut off", path)
            removed.append(path)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call `write(fh)` on a binary temp file beside `path`, then rename it into place.

    The parent folder is created when missing. Returns the path written."""
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """`obj` as indented JSON with a final newline. The keyword arguments are json.dumps's: the
    records already on disk were written with different ones, and rewriting them the same way
    keeps them byte-identical."""
    text = json.dumps(
        obj, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=default
    )
    return atomic_write_text(path, text + "\n")


def atomic_copy_into(path: str | os.PathLike, save: Callable[[str], object]) -> Path:
    """For writers that insist on a file name rather than a file object (tokenizers' save):
    `save(tmp_name)` writes a temp file beside `path`, which is then renamed into place."""
    with _replacing(path) as (fd, tmp):
        os.close(fd)
        save(tmp)
    return Path(path)


def jsonable(x: Any) -> Any:
    """json.dumps `default` for numpy and torch scalars and arrays."""
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
