"""Shared fixtures. Tests that need the real datasets read them through $LSTMPACK_DATA."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def real_data_root() -> Path:
    """The real data root, or skip: the default run must pass on a machine without the data."""
    root = os.environ.get("LSTMPACK_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("LSTMPACK_DATA is not set to a data folder")
    return Path(root)


@pytest.fixture(autouse=True)
def _reset_flush_denormal():
    """The training CLIs flush denormals (a process-wide CPU flag) for speed; tests that call a
    CLI's main() in-process must not hand that flag to later tests, whose hypothesis float
    strategies refuse to run without subnormals."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)
