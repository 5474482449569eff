"""What a point's run directory says about it: new, finished or to resume; and the failure
record the sweep writes when a runner could not write its own."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from common.atomic import atomic_write_json
from lstmpack.sweep.points import SweepPoint

# Marks a metrics.json the sweep wrote itself (a point that failed before its runner wrote any
# record), so the next sweep may clear it and start that point afresh.
WRITTEN_BY = "compress.sweep"


def read_record(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing, unreadable or not an object: a
    half-made run directory is the sweep's normal business, not an error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def point_state(point: SweepPoint, runs_dir: str | os.PathLike) -> str:
    """ "new", "finished" (skip it) or "resume" (its run dir holds a config.json, unfinished).
    Raises ValueError when the run dir holds a run of other settings, rather than skip or resume
    it. A run dir holding only the sweep's own failure record is cleared and counts as new."""
    run_dir = point.run_dir(runs_dir)
    if not run_dir.exists():
        return "new"
    config = read_record(run_dir / "config.json")
    metrics = read_record(run_dir / "metrics.json")
    if config is None:
        if (
            metrics is not None
            and metrics.get("written_by") == WRITTEN_BY
            and len(list(run_dir.iterdir())) == 1
        ):
            (run_dir / "metrics.json").unlink()
            run_dir.rmdir()
            return "new"
        return "resume"  # not ours to clear: the runner will say what is wrong with it
    comp = config.get("compress") or {}
    have = (
        config.get("model"),
        config.get("preset"),
        config.get("seed"),
        comp.get("max_paths"),
        comp.get("bits"),
    )
    want = (point.model, point.preset, point.seed, point.alpha, point.bits)
    g = comp.get("gamma")
    if have != want or not (
        isinstance(g, int | float) and math.isclose(g, point.gamma, abs_tol=1e-9)
    ):
        raise ValueError(
            f"{run_dir / 'config.json'}: holds a run of other settings than point {point.run_id}; "
            "move it away or use another --runs-dir"
        )
    if metrics is not None and metrics.get("status") == "finished":
        return "finished"
    return "resume"


def mark_failed(
    run_dir: Path, error: str, exit_code: int | None, command: Sequence[str], before: dict | None
) -> str:
    """Set metrics.json to status "failed"; returns the error recorded. A failure the runner
    recorded itself in this attempt (metrics.json changed since `before`) keeps its own message,
    which knows more than the last line of stderr."""
    metrics = read_record(run_dir / "metrics.json") or {}
    if metrics != (before or {}) and metrics.get("status") == "failed" and metrics.get("error"):
        error = str(metrics["error"])
    metrics.update({"status": "failed", "error": error, "exit_code": exit_code})
    metrics["command"] = list(command)
    if not (run_dir / "config.json").is_file():
        metrics["written_by"] = WRITTEN_BY
    atomic_write_json(run_dir / "metrics.json", metrics)
    return error
