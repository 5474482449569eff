"""Shared fixtures. Tests that need the real datasets read them through $LSTMPACK_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def real_data_root() -> Path:
    """The real data root, or skip: the default run must pass on a machine without the data."""
    root = os.environ.get("LSTMPACK_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("LSTMPACK_DATA is not set to a data folder")
    return Path(root)
