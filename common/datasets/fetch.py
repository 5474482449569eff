"""Fetching a dataset: from a local mirror or by download, verified before anything lands.

Every file is staged in a temporary folder beside the target and renamed into place only after all
hashes check out, so a failure (a truncated transfer, a wrong hash, a network error) leaves the
target as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

from common.datasets.catalog import Dataset, DatasetCorruptError, DownloadError, get_dataset
from common.datasets.verify import CHUNK, file_sha256, present_files, verify_dataset

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A temporary folder beside `folder`, removed whatever happens."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, renamed into place only when complete (and its hash matches).

    A truncated transfer (fewer bytes than Content-Length), a network error or a wrong hash raises
    DownloadError and leaves nothing at `dest` nor any temporary file beside it.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
                total = resp.headers.get("Content-Length")
                total = int(total) if total is not None else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # http.client raises IncompleteRead (an OSError-free HTTPException) on short bodies
            # in some paths; it is caught below.
            raise DownloadError(f"download of {url} failed: {e}") from None
        except Exception as e:  # http.client.HTTPException and friends
            raise DownloadError(f"download of {url} failed: {type(e).__name__}: {e}") from None
        if total is not None and received != total:
            raise DownloadError(
                f"download of {url} truncated: received {received} of {total} bytes"
            )
        if sha256 is not None and h.hexdigest() != sha256:
            raise DownloadError(
                f"download of {url}: SHA-256 mismatch, expected {sha256}, actual {h.hexdigest()}"
            )
        os.replace(tmp, dest)
        return dest
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _extract_member(archive: Path, kind: str, member: str, dest: Path) -> None:
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    elif kind == "tgz":
        with tarfile.open(archive, "r:gz") as tf:
            names = {member, member.removeprefix("./"), "./" + member.removeprefix("./")}
            info = next((m for m in tf.getmembers() if m.name in names), None)
            if info is None or not info.isfile():
                raise DownloadError(f"{archive} has no file {member!r}")
            src = tf.extractfile(info)
            assert src is not None  # isfile() checked above
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    else:
        raise ValueError(f"unknown archive kind {kind!r}; allowed: zip, tgz")


def _check_staged(ds: Dataset, staged: Path) -> None:
    for f in ds.files:
        actual = file_sha256(staged / f.path, use_cache=False)
        if actual != f.sha256:
            raise DatasetCorruptError(
                f"{ds.name}/{f.path}: SHA-256 mismatch, expected {f.sha256}, actual {actual}; "
                f"nothing was written"
            )


def _commit_staged(ds: Dataset, staged: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in ds.files:
        os.replace(staged / f.path, folder / f.path)


def fetch_dataset(
    name: str,
    root: Path,
    *,
    mirror: Path | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Put dataset `name` under `root`, verified. Returns how: "present", "mirror" or "download".

    Files are staged in a temporary folder beside the target and renamed into place only after
    every hash checks out, so a failure leaves the target as it was.
    """
    ds = get_dataset(name)
    folder = Path(root) / ds.folder
    if present_files(ds, folder) is not None:
        try:
            verify_dataset(name, folder)
            return "present"
        except DatasetCorruptError:
            log.warning("%s: present but corrupt, fetching again", name)
    with _staging(folder) as staged:
        src_folder = Path(mirror) / ds.folder if mirror is not None else None
        if src_folder is not None and present_files(ds, src_folder) == ds.files:
            for f in ds.files:
                shutil.copyfile(src_folder / f.path, staged / f.path)
            how = "mirror"
        else:
            url = base_url or ds.url
            if ds.archive is not None:
                archive = staged / (".archive." + ds.archive)
                download(url, archive, progress=progress, timeout=timeout)
                for f in ds.files:
                    _extract_member(archive, ds.archive, f.member or f.path, staged / f.path)
            else:
                for f in ds.files:
                    download(
                        url.rstrip("/") + "/" + (f.member or f.path),
                        staged / f.path,
                        sha256=f.sha256,
                        progress=progress,
                        timeout=timeout,
                    )
            how = "download"
        _check_staged(ds, staged)
        _commit_staged(ds, staged, folder)
    return how
