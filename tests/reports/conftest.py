"""Made run records for the report tests (no training): a small ptbc sweep built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reports.synthetic import make_sweep, write_run


@pytest.fixture(scope="session")
def made_sweep_ro(tmp_path_factory) -> Path:
    """runs/ptbc/...: dense, alpha {1,2,3,4,8} x gamma {0.5, 1.75} at 32 bits, 8/4 bits at alpha 3.
    Shared by the tests: read it, never change it (use `made_sweep` to change records)."""
    root = tmp_path_factory.mktemp("runs")
    make_sweep(root, gammas=(0.5, 1.75), hidden=8, sparsity=0.5)
    return root


@pytest.fixture
def made_sweep(made_sweep_ro: Path, tmp_path: Path) -> Path:
    """A private copy of the made sweep, free to break."""
    dst = tmp_path / "runs"
    shutil.copytree(made_sweep_ro, dst)
    return dst


@pytest.fixture
def add_failed_run(made_sweep: Path):
    """`add(error)` adds to `made_sweep` a point (alpha 8, 4 bits, run-id a8-g1.75-b4-cpu-s0) that
    failed with `error`; returns its run directory."""

    def add(error: str) -> Path:
        run_dir = made_sweep / "ptbc" / "a8-g1.75-b4-cpu-s0"
        return write_run(run_dir, alpha=8, bits=4, status="failed", error=error)

    return add
