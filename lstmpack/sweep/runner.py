"""Running a sweep's points, the first point of each seed alone (it trains the dense model the
others reuse): by default each one a subprocess of the runner on this machine, `jobs` at a time
(`SubprocessLauncher`); with a `ClusterConfig`, each one a job through submitit
(lstmpack.sweep.launcher). Either way a point's outcome is read from its run directory the same
way (`PointRunner.outcome`): finished, or failed with the reason recorded in its metrics.json."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lstmpack.registry import model_folder
from lstmpack.sweep.points import SweepPoint
from lstmpack.sweep.state import mark_failed, point_state, read_record

if TYPE_CHECKING:
    from lstmpack.sweep.launcher import ClusterConfig

# The command's name, as users read it in warnings ("WARNING compress.sweep: ...").
log = logging.getLogger("compress.sweep")

DEFAULT_RUNNER = (sys.executable, "-m", "compress.run")


@dataclass(frozen=True)
class PointResult:
    point: SweepPoint
    status: str  # "finished" | "failed" | "skipped"
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False


@dataclass
class SweepResult:
    results: list[PointResult] = field(default_factory=list)
    interrupted: bool = False

    def by_status(self, status: str) -> list[PointResult]:
        return [r for r in self.results if r.status == status]


def last_line(text: str) -> str:
    """The last non-empty line (progress bars redraw with \\r, so split on it too)."""
    for line in reversed(text.replace("\r", "\n").split("\n")):
        if line.strip():
            return line.strip()
    return ""


class PointRunner:
    """Runs points as subprocesses and can stop the ones still running."""

    def __init__(
        self,
        runner: Sequence[str],
        runs_dir: Path,
        extra: Sequence[str],
        env: dict | None,
        jobs: int = 1,
    ):
        self.runner, self.runs_dir, self.extra, self.env = list(runner), runs_dir, list(extra), env
        # N jobs each using every core would fight over them: split the cores between the jobs.
        self.threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def command(self, point: SweepPoint, resume: bool, alone: bool = False) -> list[str]:
        """The runner's command line; `alone`: no other point runs beside it (all cores)."""
        cmd = [*self.runner, *point.args(), "--runs-root", str(self.runs_dir)]
        cmd += ["--run-dir", str(point.run_dir(self.runs_dir))]
        if resume:
            cmd.append("--resume")
        if self.threads is not None and not alone and "--threads" not in self.extra:
            cmd += ["--threads", str(self.threads)]
        return [*cmd, *self.extra]

    def log_paths(self, point: SweepPoint) -> tuple[Path, Path]:
        # Not in the run dir: compress.run refuses a non-empty run dir it is not resuming.
        logs = self.runs_dir / model_folder(point.model) / "sweep-logs"
        return logs / f"{point.run_id}.stdout.log", logs / f"{point.run_id}.stderr.log"

    def run(self, point: SweepPoint, resume: bool, alone: bool = False) -> PointResult:
        run_dir = point.run_dir(self.runs_dir)
        cmd = self.command(point, resume, alone)
        out_path, err_path = self.log_paths(point)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        before = read_record(run_dir / "metrics.json")
        start = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            with self._lock:
                if self.stopping:
                    return PointResult(point, "skipped", "sweep interrupted", 0.0, resume)
                proc = subprocess.Popen(
                    cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env
                )
                self._live.add(proc)
            try:
                rc = proc.wait()
            finally:
                with self._lock:
                    self._live.discard(proc)
        seconds = time.monotonic() - start
        if self.stopping:
            return PointResult(point, "skipped", "sweep interrupted", seconds, resume)
        return self.outcome(point, rc, cmd, before, seconds, resume)

    def outcome(
        self,
        point: SweepPoint,
        rc: int | None,
        cmd: Sequence[str],
        before: dict | None,
        seconds: float,
        resume: bool,
        error: str | None = None,
    ) -> PointResult:
        """The point's result once its runner has ended with exit code `rc` (None: it never
        ended, `error` says why): finished when its metrics.json says so, else failed, with the
        reason recorded in metrics.json (`before`: that file as it was before the attempt)."""
        run_dir = point.run_dir(self.runs_dir)
        metrics = read_record(run_dir / "metrics.json") or {}
        if rc == 0 and metrics.get("status") == "finished":
            return PointResult(point, "finished", None, seconds, resume)
        if error is None and rc == 0:
            error = f"runner exited 0 but metrics.json status is {metrics.get('status')!r}, not 'finished'"
        elif error is None:
            err_path = self.log_paths(point)[1]
            stderr = (
                err_path.read_text(encoding="utf-8", errors="replace") if err_path.is_file() else ""
            )
            error = last_line(stderr) or (
                f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
            )
        error = mark_failed(run_dir, error, rc, cmd, before)
        return PointResult(point, "failed", error, seconds, resume)

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._live:
                proc.terminate()


def dense_dir(point: SweepPoint, runs_dir: Path, extra: Sequence[str]) -> Path:
    """The dense run a point reuses: compress.run names it by precision too, which the
    arguments after `--` may set (`--precision bf16`: dense-<preset>-s<seed>-bf16)."""
    from lstmpack.run.config import dense_folder_name

    precision = "fp32"
    for i, arg in enumerate(extra):
        name, eq, value = arg.partition("=")
        if name == "--precision":
            precision = value if eq else (extra[i + 1] if i + 1 < len(extra) else precision)
    return point.dense_dir(runs_dir).with_name(
        dense_folder_name(point.preset, point.seed, precision)
    )


class Launcher(Protocol):
    """How a sweep's points run: `run_batch` runs `batch` (`serial`: one at a time), calling
    `done` with each point's result as it comes; `stop` ends the points still running."""

    def run_batch(
        self,
        batch: list[SweepPoint],
        states: dict[SweepPoint, str],
        serial: bool,
        done: Callable[[PointResult], None],
    ) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class SubprocessLauncher:
    """Each point a subprocess of the runner on this machine, `jobs` at a time."""

    def __init__(self, worker: PointRunner, jobs: int) -> None:
        self.worker, self.jobs = worker, jobs
        self.pool = ThreadPoolExecutor(max_workers=jobs)

    def run_batch(
        self,
        batch: list[SweepPoint],
        states: dict[SweepPoint, str],
        serial: bool,
        done: Callable[[PointResult], None],
    ) -> None:
        queue = list(batch)
        width = 1 if serial else self.jobs
        alone = min(width, len(batch)) == 1
        pending: set[Future] = set()
        while queue or pending:
            while queue and len(pending) < width:
                p = queue.pop(0)
                pending.add(self.pool.submit(self.worker.run, p, states[p] == "resume", alone))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done(fut.result())

    def stop(self) -> None:
        self.worker.stop()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def run_sweep(
    points: Sequence[SweepPoint],
    runs_dir: str | os.PathLike,
    *,
    runner: Sequence[str] = DEFAULT_RUNNER,
    jobs: int = 1,
    extra: Sequence[str] = (),
    env: dict | None = None,
    progress: bool = True,
    on_result: Callable[[PointResult], None] | None = None,
    cluster: ClusterConfig | None = None,
) -> SweepResult:
    """Run the points not yet finished, `jobs` at a time (or, with `cluster`, as submitit jobs);
    the first point of each seed first, on its own (it trains the dense model the others reuse).
    Returns every point's result."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    from tqdm import tqdm

    runs_dir = Path(runs_dir)
    states = {p: point_state(p, runs_dir) for p in points}  # validates every dir before any work
    result = SweepResult()
    todo = []
    for p in points:
        if states[p] == "finished":
            result.results.append(PointResult(p, "skipped", "already finished"))
        else:
            todo.append(p)
    # The first point of each seed trains (or finds) its dense model; the others reuse it.
    first = [next(p for p in todo if p.seed == s) for s in dict.fromkeys(p.seed for p in todo)]
    rest = [p for p in todo if p not in first]
    launcher: Launcher
    if cluster is None:
        launcher = SubprocessLauncher(PointRunner(runner, runs_dir, extra, env, jobs), jobs)
    else:
        from lstmpack.sweep.launcher import SubmititLauncher

        launcher = SubmititLauncher(cluster, runner, runs_dir, extra, env)
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        desc="sweep",
        unit="run",
        disable=not progress,
    )
    failed = 0

    def done(res: PointResult) -> None:
        nonlocal failed
        result.results.append(res)
        failed += res.status == "failed"
        bar.update(1)
        bar.set_postfix(failed=failed)
        if on_result is not None:
            on_result(res)

    def run_all(batch: list[SweepPoint], serial: bool = False) -> None:
        if batch:
            launcher.run_batch(batch, states, serial, done)

    try:
        run_all(first)
        no_dense = [
            p
            for p in rest
            if (read_record(dense_dir(p, runs_dir, extra) / "metrics.json") or {}).get("status")
            != "finished"
        ]
        if no_dense and jobs > 1:
            log.warning(
                "no finished dense model for %d point(s); running them one at a time so that "
                "they do not train the same dense model at once",
                len(no_dense),
            )
        run_all([p for p in rest if p not in no_dense])
        run_all(no_dense, serial=True)
    except KeyboardInterrupt:
        # Stop the children (or cancel the jobs) before waiting for what waits on them.
        launcher.stop()
        result.interrupted = True
    finally:
        launcher.close()
        bar.close()
    return result
