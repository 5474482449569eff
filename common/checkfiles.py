"""Reading back what a run wrote earlier (JSON records, torch checkpoints), with one clear line
when a file is damaged: which file, what is wrong with it, and what to do.

The training CLIs call these before any training starts, so a truncated checkpoint or a garbage
record costs seconds and a one-line message, not a traceback after a trained stage. Nothing here
imports torch: a checkpoint is checked as the zip archive torch.save writes.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any


class DamagedFileError(ValueError):
    """A file written earlier cannot be read back; the message names it and says what to do."""


def read_json_object(path: str | os.PathLike, fix: str) -> dict[str, Any]:
    """The JSON object in `path`; DamagedFileError "<path>: <what is wrong>; <fix>" when the file
    is unreadable, empty, not JSON, or holds something other than an object."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path}: not UTF-8 text; {fix}") from None
    except OSError as e:
        raise DamagedFileError(f"{path}: cannot be read ({e.strerror or e}); {fix}") from None
    if not text.strip():
        raise DamagedFileError(f"{path}: empty; {fix}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DamagedFileError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}); {fix}"
        ) from None
    if not isinstance(data, dict):
        raise DamagedFileError(
            f"{path}: holds a JSON {type(data).__name__} where an object is expected; {fix}"
        )
    return data


def json_status(path: str | os.PathLike) -> str | None:
    """The "status" of the JSON record at `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else None


def check_torch_file(path: str | os.PathLike, fix: str) -> None:
    """DamagedFileError "<path>: <what is wrong>; <fix>" unless `path` is a whole torch.save file.

    torch.save writes a zip archive whose directory sits at its end: a truncated, emptied or
    overwritten file has none, and a file damaged in the middle fails a member's CRC. Both are
    checked in one read of the file, without loading torch."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DamagedFileError(f"{path}: empty; {fix}")
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except DamagedFileError:
        raise
    except OSError as e:
        raise DamagedFileError(f"{path}: cannot be read ({e.strerror or e}); {fix}") from None
    except Exception:  # BadZipFile, zlib.error, EOFError, ...: all say the same to a user
        raise DamagedFileError(
            f"{path}: not a complete torch file (truncated or overwritten); {fix}"
        ) from None
    if bad is not None:
        raise DamagedFileError(f"{path}: damaged (member {bad} fails its checksum); {fix}")


def check_trainer_run_dir(run_dir: Path, resume: bool) -> None:
    """A family trainer's --run-dir, before anything is written: refuse a file where the folder
    should be, a run there without --resume (its checkpoint and metrics would be overwritten),
    and a damaged checkpoint on --resume. ValueError, one line."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {run_dir} is a file, not a folder")
    ckpt = run_dir / "checkpoint.pt"
    if not resume:
        if ckpt.exists() or json_status(run_dir / "metrics.json") is not None:
            raise ValueError(
                f"{run_dir} already holds a run; pass --resume to continue it, or choose "
                f"another --run-dir"
            )
    elif ckpt.exists():
        check_torch_file(ckpt, "delete it to train this run from the start")
