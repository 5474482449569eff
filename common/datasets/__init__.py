"""Dataset registry: which files each dataset has, their SHA-256, where to get them, where they live.

The data root is one folder: the `data_dir` argument (the CLIs' --data-dir) when given, else
$LSTMPACK_DATA when set, else `data/` in the repository. An explicit choice is never passed over:
one that is empty, missing, a file or lacks the dataset fails, naming it.

`python -m compress.datasets check [--data-dir D] [--full]` prints a table (verified / missing /
corrupt); hashes are cached by size, mtime, inode and ctime, and --full hashes every file again;
`python -m compress.datasets fetch [NAMES] [--mirror DIR]` copies from a local mirror or downloads,
verifying every file before it is renamed into place, so nothing half-written is ever left behind.
"""

# One module per job: `catalog` (the table of datasets and hashes, and the errors), `verify` (the
# data roots, finding a dataset, hashing with a cache, checking), `fetch` (mirror copy and
# download, staged) and `cli`. This package re-exports their public names so that callers import
# from `common.datasets` alone. Values a test replaces (REPO_ROOT, _hash_stream) are read where
# they are defined, in `verify`: patch them there, not here.

from __future__ import annotations

from common.datasets.catalog import (
    DATASETS,
    ENWIK8_SHA256,
    ENWIK8_SIZE,
    ENWIK8_ZIP_SIZE,
    FETCH_HINT,
    DataFile,
    Dataset,
    DatasetCorruptError,
    DatasetError,
    DatasetMissingError,
    DownloadError,
    get_dataset,
)
from common.datasets.fetch import download, fetch_dataset
from common.datasets.verify import (
    CHUNK,
    ENV_VAR,
    REPO_ROOT,
    CheckRow,
    check_all,
    data_root,
    dataset_dir,
    file_sha256,
    find_dataset,
    resolve_data_root,
    verify_dataset,
)

__all__ = [
    "CHUNK",
    "DATASETS",
    "ENV_VAR",
    "ENWIK8_SHA256",
    "ENWIK8_SIZE",
    "ENWIK8_ZIP_SIZE",
    "FETCH_HINT",
    "REPO_ROOT",
    "CheckRow",
    "DataFile",
    "Dataset",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetMissingError",
    "DownloadError",
    "check_all",
    "data_root",
    "dataset_dir",
    "download",
    "fetch_dataset",
    "file_sha256",
    "find_dataset",
    "get_dataset",
    "resolve_data_root",
    "verify_dataset",
]
