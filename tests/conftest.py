"""Shared fixtures.

No test sees the machine's datasets or caches unless it says so: every test runs with
$LSTMPACK_DATA unset, the repository's data root pointed at an empty folder and the hash cache
($LSTMPACK_CACHE) in a temporary folder, so the suite passes the same before and after
`make demo` fills data/, and never reads ~/.cache. A test that needs the real datasets asks for
the `real_data_root` fixture, which skips unless $LSTMPACK_DATA names a data folder; only such a
test keeps $LSTMPACK_DATA in its environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Read once, before any test unsets it: real_data_root reports the folder the suite was given.
REAL_DATA = os.environ.get("LSTMPACK_DATA")


@pytest.fixture
def real_data_root() -> Path:
    """The real data root, or skip: the default run must pass on a machine without the data."""
    if not REAL_DATA or not Path(REAL_DATA).is_dir():
        pytest.skip("LSTMPACK_DATA is not set to a data folder")
    return Path(REAL_DATA)


@pytest.fixture(autouse=True)
def _isolate_from_the_machine(request, monkeypatch, tmp_path_factory):
    """Hide the repo's data/, $LSTMPACK_DATA and the user's hash cache from every test (see the
    module docstring). The stand-ins are fresh for each test (not its tmp_path, which is the
    test's own), so what one test leaves there no other sees. Subprocesses inherit the
    environment part; the repo root is patched in this process only, so a subprocess test passes
    its data folder explicitly."""
    import common.datasets.verify as verify

    base = tmp_path_factory.mktemp("isolated")
    repo, cache = base / "repo", base / "cache"
    repo.mkdir()
    monkeypatch.setattr(verify, "REPO_ROOT", repo)
    monkeypatch.setenv("LSTMPACK_CACHE", str(cache))
    if "real_data_root" not in request.fixturenames:
        monkeypatch.delenv("LSTMPACK_DATA", raising=False)


@pytest.fixture(autouse=True)
def _reset_flush_denormal():
    """The training CLIs flush denormals (a process-wide CPU flag) for speed; tests that call a
    CLI's main() in-process must not hand that flag to later tests, whose hypothesis float
    strategies refuse to run without subnormals."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)
