"""The suite cannot see the machine's datasets or caches (tests/conftest.py): a test that does
not ask for `real_data_root` finds no $LSTMPACK_DATA, no data/ in the repository and no hash cache
under the user's home, whatever `make demo` or the environment left there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import common.datasets.verify as verify
from common.datasets import DatasetMissingError, find_dataset, resolve_data_root

REPO = Path(__file__).resolve().parents[1]


def test_the_repository_data_root_is_an_empty_folder_outside_the_repo():
    root = resolve_data_root(None)
    assert root == verify.REPO_ROOT / "data"
    assert REPO not in root.parents and not root.exists()


def test_no_dataset_is_found_without_a_data_dir_even_when_the_repo_holds_one():
    # (.ci/run runs this file again after filling the repository's data/ with ptb_char)
    with pytest.raises(DatasetMissingError) as err:
        find_dataset("ptb_char")
    assert str(REPO / "data") not in str(err.value)


def test_lstmpack_data_is_unset_and_the_hash_cache_is_a_temporary_folder():
    assert "LSTMPACK_DATA" not in os.environ
    cache = Path(os.environ["LSTMPACK_CACHE"])
    assert Path.home() not in cache.parents
    assert verify._cache_path().parent == cache


def test_subprocesses_inherit_the_isolation():
    env_of_child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('LSTMPACK_DATA'), "
         "os.environ['LSTMPACK_CACHE'])"],  # fmt: skip
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert env_of_child == ["None", os.environ["LSTMPACK_CACHE"]]


def test_a_test_that_asks_for_the_real_data_keeps_lstmpack_data(real_data_root):
    assert Path(os.environ["LSTMPACK_DATA"]) == real_data_root
