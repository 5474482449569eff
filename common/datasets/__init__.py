"""Dataset registry: which files each dataset has, their SHA-256, where to get them, where they live.

Data root lookup, per dataset: the `data_dir` argument (the CLIs' --data-dir), then $LSTMPACK_DATA,
then `data/` in the repository; the first candidate holding the dataset's files wins.

`python -m compress.datasets check [--data-dir D]` prints a table (verified / missing / corrupt);
`python -m compress.datasets fetch [NAMES] [--mirror DIR]` copies from a local mirror or downloads,
verifying every file before it is renamed into place, so nothing half-written is ever left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV_VAR = "LSTMPACK_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_HINT = "make data (or: python -m compress.datasets fetch {name})"
CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, relative to the dataset's folder."""

    path: str
    sha256: str
    # Where the file sits in the downloaded archive, when the download is an archive.
    member: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Dataset:
    """A dataset: a folder of files under the data root, and how to obtain them.

    `url` is either an archive (`archive` = "zip" or "tgz", files named by their `member`) or, when
    `archive` is None, a base address to which each file's `member` (or path) is appended.
    `alternatives` lists files that may stand in for the whole set (enwik8 may be the raw file or
    its zip); the dataset is present when all `files` are, or when one alternative is.
    """

    name: str
    folder: str
    files: tuple[DataFile, ...]
    url: str
    archive: str | None = None
    alternatives: tuple[DataFile, ...] = ()
    description: str = ""


_NAMES_SHA = {
    "Arabic": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese": "49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e",
    "Czech": "145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e",
    "Dutch": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian": "43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3",
    "Scottish": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese": "f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d",
}

_MULTI30K_SHA = {
    "train.lc.norm.tok.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
    "train.lc.norm.tok.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
    "val.lc.norm.tok.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
    "val.lc.norm.tok.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
    "test_2016_flickr.lc.norm.tok.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    "test_2016_flickr.lc.norm.tok.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
}

ENWIK8_SHA256 = "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8"
ENWIK8_SIZE = 100_000_000
ENWIK8_ZIP_SIZE = 36_445_475

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="ptb_char",
            folder="ptb_char",
            description="Penn Treebank, character level (Mikolov; AWD-LSTM pennchar)",
            url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
            archive="tgz",
            files=(
                DataFile(
                    "train.txt",
                    "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
                    "./simple-examples/data/ptb.char.train.txt",
                ),
                DataFile(
                    "valid.txt",
                    "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
                    "./simple-examples/data/ptb.char.valid.txt",
                ),
                DataFile(
                    "test.txt",
                    "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
                    "./simple-examples/data/ptb.char.test.txt",
                ),
            ),
        ),
        Dataset(
            name="ptb_word",
            folder="ptb_word",
            description="Penn Treebank, word level (Mikolov)",
            url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
            archive="tgz",
            files=(
                DataFile(
                    "train.txt",
                    "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                    "./simple-examples/data/ptb.train.txt",
                ),
                DataFile(
                    "valid.txt",
                    "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                    "./simple-examples/data/ptb.valid.txt",
                ),
                DataFile(
                    "test.txt",
                    "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                    "./simple-examples/data/ptb.test.txt",
                ),
            ),
        ),
        Dataset(
            name="enwik8",
            folder="enwik8",
            description="First 10^8 bytes of the English Wikipedia dump (Hutter prize)",
            url="http://mattmahoney.net/dc/enwik8.zip",
            archive="zip",
            files=(DataFile("enwik8", ENWIK8_SHA256, "enwik8", ENWIK8_SIZE),),
            # The zip as downloaded may stand in for the raw file: its member is hashed instead.
            alternatives=(DataFile("enwik8.zip", ENWIK8_SHA256, "enwik8", ENWIK8_ZIP_SIZE),),
        ),
        Dataset(
            name="names",
            folder="names",
            description="Surnames of 18 languages (PyTorch char-RNN tutorial)",
            url="https://download.pytorch.org/tutorial/data.zip",
            archive="zip",
            files=tuple(
                DataFile(f"{lang}.txt", sha, f"data/names/{lang}.txt")
                for lang, sha in sorted(_NAMES_SHA.items())
            ),
        ),
        Dataset(
            name="cmn_eng",
            folder="cmn_eng",
            description="Tatoeba English-Mandarin pairs (manythings.org cmn.txt, 2022 release)",
            url="https://www.manythings.org/anki/cmn-eng.zip",
            archive="zip",
            files=(
                DataFile(
                    "cmn.txt",
                    "9da1af87e3e61650aa38595e60baef3a4e3a18ed239a7ef4a764c0a87c7ddeff",
                    "cmn.txt",
                ),
            ),
        ),
        Dataset(
            name="wmt_zh_en_valid",
            folder="wmt_zh_en_valid",
            description="WMT19 zh-en validation (newstest2018), HuggingFace parquet",
            url="https://huggingface.co/datasets/wmt/wmt19/resolve/main/zh-en/",
            files=(
                DataFile(
                    "validation-00000-of-00001.parquet",
                    "338679811a459e781d91b2b10af0f43922f8fd9e118086cf3377b249978e1c2b",
                ),
            ),
        ),
        Dataset(
            name="multi30k",
            folder="multi30k",
            description="Multi30k task 1, tokenized and lowercased, de-en",
            url="https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/tok/",
            files=tuple(DataFile(f, sha) for f, sha in _MULTI30K_SHA.items()),
        ),
    )
}


class DatasetError(ValueError):
    """A dataset problem a user can fix; its message is one line, fit to print as is."""


class DatasetMissingError(DatasetError):
    pass


class DatasetCorruptError(DatasetError):
    pass


class DownloadError(DatasetError):
    pass


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None


# --------------------------------------------------------------------------- data root


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


def _present_files(ds: Dataset, folder: Path) -> tuple[DataFile, ...] | None:
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
        if _present_files(ds, folder) is not None:
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


# --------------------------------------------------------------------------- hashing


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
        path.parent.mkdir(parents=True, exist_ok=True)
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
    files = _present_files(ds, folder)
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
        files = _present_files(DATASETS[name], folder) or ()
        size = sum((folder / f.path).stat().st_size for f in files)
        try:
            verify_dataset(name, folder)
            rows.append(CheckRow(name, "verified", str(folder), size))
        except DatasetCorruptError as e:
            rows.append(CheckRow(name, "corrupt", str(folder), size, str(e)))
    return rows


# --------------------------------------------------------------------------- writing safely


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run records are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A temporary folder beside `folder`, removed whatever happens."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- downloading


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
    if _present_files(ds, folder) is not None:
        try:
            verify_dataset(name, folder)
            return "present"
        except DatasetCorruptError:
            log.warning("%s: present but corrupt, fetching again", name)
    with _staging(folder) as staged:
        src_folder = Path(mirror) / ds.folder if mirror is not None else None
        if src_folder is not None and _present_files(ds, src_folder) == ds.files:
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


# --------------------------------------------------------------------------- CLI


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _cmd_check(args: argparse.Namespace) -> int:
    rows = check_all(args.data_dir)
    width = max(len(r.name) for r in rows)
    print(f"{'dataset':<{width}}  {'status':<8}  {'size':>9}  folder")
    for r in rows:
        size = _fmt_bytes(r.bytes) if r.bytes else "-"
        print(f"{r.name:<{width}}  {r.status:<8}  {size:>9}  {r.folder or '-'}")
    for r in rows:
        if r.status == "corrupt":
            print(f"  {r.detail}")
    return 1 if any(r.status == "corrupt" for r in rows) else 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    names = args.names or list(DATASETS)
    for n in names + list(args.optional):
        get_dataset(n)
    root = resolve_data_root(args.data_dir)
    mirror = Path(args.mirror) if args.mirror and Path(args.mirror).is_dir() else None
    if args.mirror and mirror is None:
        print(f"mirror {args.mirror} not found; downloading from the canonical addresses")
    failed = []
    for n in names:
        try:
            how = fetch_dataset(n, root, mirror=mirror, progress=sys.stderr.isatty())
            print(f"{n:<16} {how:<9} {root / DATASETS[n].folder}")
        except DatasetError as e:
            optional = n in args.optional
            print(f"{n:<16} {'skipped' if optional else 'FAILED':<9} {e}")
            if not optional:
                failed.append(n)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compress.datasets", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check", help="verify every dataset: verified / missing / corrupt")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("fetch", help="copy from a mirror or download, verified")
    p.add_argument("names", nargs="*", help=f"datasets (default all): {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="target root (default: the resolved root)")
    p.add_argument("--mirror", default=None, help="a local folder laid out like the data root")
    p.add_argument(
        "--optional",
        nargs="*",
        default=[],
        metavar="NAME",
        help="datasets whose failure is reported but does not fail the command",
    )
    p.set_defaults(func=_cmd_fetch)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
