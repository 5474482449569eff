"""`python -m compress.sweep`: run a grid of compression points, then build the report.

    python -m compress.sweep --model ptbc --preset cpu --max-paths 1 2 3 4 8 \\
        --gamma 0.25 0.5 1.0 1.75 --bits 32 8 4 [--jobs N] [-- EXTRA compress.run ARGS]
    python -m compress.sweep --model ptbc --max-paths 1 2 3 4 8 --gamma 1.75 --bits 32 \\
        --point 3,1.75,8 3,1.75,4        # a grid plus extra (alpha, gamma, bits) points

Each point is one subprocess of the runner (default `python -m compress.run`) called as

    <runner> --model M --preset P --seed S --max-paths A --gamma G --bits B
             --runs-root RUNS --run-dir RUNS/M/<run-id> [--resume] [EXTRA...]

with run-id `a<alpha>-g<gamma>-b<bits>-<preset>-s<seed>`. compress.run trains the dense model of
(model, preset, seed) once, into RUNS/M/dense-<preset>-s<seed>, and reuses it; so the first point
of each seed runs alone, and when its dense model did not come out finished the rest run one at
a time rather than N jobs training the same dense model at once.

A point whose metrics.json says "finished" is skipped; one whose run directory holds a
config.json but is not finished runs again with `--resume`. A runner that exits non-zero (or
exits 0 without a finished metrics.json) gets status "failed" in its metrics.json, with the last
line of its stderr as the error, and the sweep goes on. Runner output goes to
RUNS/M/sweep-logs/<run-id>.{stdout,stderr}.log. At the end `reports` builds the report from
RUNS/M into RUNS/M/report (or --report-out).

Exit code: 0 when every point finished, 1 when some failed, 2 on bad arguments or a report that
could not be built, 130 when interrupted (running points are stopped; rerun to resume them).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_RUNNER = (sys.executable, "-m", "compress.run")
WEIGHT_BITS = (*range(2, 17), 32)
# Marks a metrics.json the sweep wrote itself (a point that failed before its runner wrote any
# record), so the next sweep may clear it and start that point afresh.
WRITTEN_BY = "compress.sweep"


@dataclass(frozen=True)
class SweepPoint:
    """One compressed run of the grid."""

    model: str
    preset: str
    seed: int
    alpha: int
    gamma: float
    bits: int

    @property
    def run_id(self) -> str:
        return f"a{self.alpha}-g{self.gamma:g}-b{self.bits}-{self.preset}-s{self.seed}"

    def run_dir(self, runs_dir: str | os.PathLike) -> Path:
        return Path(runs_dir) / self.model / self.run_id

    def dense_dir(self, runs_dir: str | os.PathLike) -> Path:
        return Path(runs_dir) / self.model / f"dense-{self.preset}-s{self.seed}"

    def args(self) -> list[str]:
        """The runner's flags for this point (without the run dir and --resume).

        Bits follow the issue's recipes: 32 is a float model (weights and activations), 8 is
        post-training quantization of weights and activations, fewer bits are quantization-aware
        fine-tuning of the weights with 8-bit activations.
        """
        if self.bits >= 32:
            quant = ["--bits", "32", "--act-bits", "32", "--quant", "off"]
        elif self.bits >= 8:
            quant = ["--bits", str(self.bits), "--act-bits", "8", "--quant", "ptq"]
        else:
            quant = ["--bits", str(self.bits), "--act-bits", "8", "--quant", "qat"]
        return [
            "--model", self.model, "--preset", self.preset, "--seed", str(self.seed),
            "--max-paths", str(self.alpha), "--gamma", f"{self.gamma:g}", *quant,
        ]  # fmt: skip


def _check_setting(alpha: int, gamma: float, bits: int) -> None:
    if not isinstance(alpha, int) or alpha < 1:
        raise ValueError(f"--max-paths must be integers >= 1, got {alpha!r}")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"--gamma must be finite numbers >= 0, got {gamma!r}")
    if bits not in WEIGHT_BITS:
        raise ValueError(f"--bits must be 32 (float) or an integer width 2..16, got {bits!r}")


def grid(
    model: str,
    preset: str,
    alphas: Sequence[int],
    gammas: Sequence[float],
    bits: Sequence[int],
    seeds: Sequence[int] = (0,),
    points: Sequence[tuple[int, float, int]] = (),
) -> list[SweepPoint]:
    """Every (seed, alpha, gamma, bits) in that nesting order, then the extra (alpha, gamma,
    bits) `points` of each seed; duplicates dropped. Empty alphas/gammas/bits with `points`
    gives just those points."""
    settings = [(a, g, b) for a in alphas for g in gammas for b in bits] + list(points)
    if not settings or not seeds:
        raise ValueError("the grid is empty: give --max-paths, --gamma and --bits, or --point")
    for a, g, b in settings:
        _check_setting(a, g, b)
    out: list[SweepPoint] = []
    for s in seeds:
        for a, g, b in settings:
            p = SweepPoint(model, preset, int(s), int(a), float(g), int(b))
            if p not in out:
                out.append(p)
    return out


def _preset_seed(model: str, preset: str) -> int:
    from compress.registry import get_spec

    return int(get_spec(model).config(preset).seed)


def parse_point(text: str) -> tuple[int, float, int]:
    """ALPHA,GAMMA,BITS, e.g. 3,1.75,8."""
    parts = text.split(",")
    try:
        alpha, gamma, bits = int(parts[0]), float(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        raise ValueError(
            f"--point must be ALPHA,GAMMA,BITS such as 3,1.75,8; got {text!r}"
        ) from None
    if len(parts) != 3:
        raise ValueError(f"--point must be ALPHA,GAMMA,BITS such as 3,1.75,8; got {text!r}")
    return alpha, gamma, bits


def _read_json(path: Path) -> dict | None:
    import json

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
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
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


def _mark_failed(
    run_dir: Path, error: str, exit_code: int | None, command: Sequence[str], before: dict | None
) -> str:
    """Set metrics.json to status "failed"; returns the error recorded. A failure the runner
    recorded itself in this attempt (metrics.json changed since `before`) keeps its own message,
    which knows more than the last line of stderr."""
    from reports.records import write_json_atomic

    metrics = _read_json(run_dir / "metrics.json") or {}
    if metrics != (before or {}) and metrics.get("status") == "failed" and metrics.get("error"):
        error = str(metrics["error"])
    metrics.update({"status": "failed", "error": error, "exit_code": exit_code})
    metrics["command"] = list(command)
    if not (run_dir / "config.json").is_file():
        metrics["written_by"] = WRITTEN_BY
    write_json_atomic(run_dir / "metrics.json", metrics)
    return error


class _Runner:
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
        logs = self.runs_dir / point.model / "sweep-logs"
        return logs / f"{point.run_id}.stdout.log", logs / f"{point.run_id}.stderr.log"

    def run(self, point: SweepPoint, resume: bool, alone: bool = False) -> PointResult:
        run_dir = point.run_dir(self.runs_dir)
        cmd = self.command(point, resume, alone)
        out_path, err_path = self.log_paths(point)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        before = _read_json(run_dir / "metrics.json")
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
        metrics = _read_json(run_dir / "metrics.json") or {}
        if rc == 0 and metrics.get("status") == "finished":
            return PointResult(point, "finished", None, seconds, resume)
        if rc == 0:
            error = f"runner exited 0 but metrics.json status is {metrics.get('status')!r}, not 'finished'"
        else:
            stderr = err_path.read_text(encoding="utf-8", errors="replace")
            error = last_line(stderr) or (
                f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
            )
        error = _mark_failed(run_dir, error, rc, cmd, before)
        return PointResult(point, "failed", error, seconds, resume)

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._live:
                proc.terminate()


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
) -> SweepResult:
    """Run the points not yet finished, `jobs` at a time; the first point of each seed first, on
    its own (it trains the dense model the others reuse). Returns every point's result."""
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
    worker = _Runner(runner, runs_dir, extra, env, jobs)
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        desc="sweep",
        unit="run",
        disable=not progress,
    )
    failed = 0
    pool = ThreadPoolExecutor(max_workers=jobs)

    def run_all(batch: list[SweepPoint], serial: bool = False) -> None:
        nonlocal failed
        queue = list(batch)
        width = 1 if serial else jobs
        alone = min(width, len(batch)) == 1
        pending: set[Future] = set()
        while queue or pending:
            while queue and len(pending) < width:
                p = queue.pop(0)
                pending.add(pool.submit(worker.run, p, states[p] == "resume", alone))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                result.results.append(res)
                failed += res.status == "failed"
                bar.update(1)
                bar.set_postfix(failed=failed)
                if on_result is not None:
                    on_result(res)

    try:
        run_all(first)
        no_dense = [
            p
            for p in rest
            if (_read_json(p.dense_dir(runs_dir) / "metrics.json") or {}).get("status")
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
        # Stop the children before waiting for the threads that wait on them.
        worker.stop()
        result.interrupted = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m compress.sweep",
        description=__doc__.splitlines()[0],
        epilog="Arguments after `--` go to every compress.run call unchanged.",
    )
    p.add_argument("--model", required=True, help="model name, as for compress.run")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | paper (default cpu)")
    p.add_argument("--max-paths", type=int, nargs="+", metavar="ALPHA", help="alphas (default 3)")
    p.add_argument("--gamma", type=float, nargs="+", help="conflict budgets (default 1.75)")
    p.add_argument("--bits", type=int, nargs="+", help="weight bits, 32 = float (default 32)")
    p.add_argument(
        "--seed", type=int, nargs="+", default=None, help="seeds (default: the preset's seed)"
    )
    p.add_argument(
        "--point",
        nargs="+",
        default=[],
        metavar="A,G,B",
        help="extra points beside the grid, e.g. --point 3,1.75,8 3,1.75,4; with --point alone "
        "(no --max-paths/--gamma/--bits) only these points run",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="points run at once (default 1); with N > 1 each gets --threads cores/N unless "
        "--threads is among the arguments after --",
    )
    p.add_argument("--runs-dir", default="runs", help="run records go to RUNS_DIR/<model>/<run-id>")
    p.add_argument("--runner", help="command run per point instead of `python -m compress.run`")
    p.add_argument("--report-out", help="report folder (default RUNS_DIR/<model>/report)")
    p.add_argument(
        "--report-formats", nargs="+", default=["png", "pdf"], choices=["png", "pdf", "svg"]
    )
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print each point's command and state")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    runner = shlex.split(args.runner) if args.runner else list(DEFAULT_RUNNER)
    runs_dir = Path(args.runs_dir)
    try:
        extra_points = [parse_point(t) for t in args.point]
        only_points = extra_points and not (args.max_paths or args.gamma or args.bits)
        if args.seed is None:
            # compress.run's default: the model preset's own seed, so the sweep reuses the
            # same dense model a plain `compress.run` trains or finds
            args.seed = [_preset_seed(args.model, args.preset)]
        points = grid(
            args.model,
            args.preset,
            [] if only_points else (args.max_paths or [3]),
            args.gamma or [1.75],
            args.bits or [32],
            args.seed,
            extra_points,
        )
        if args.dry_run:
            worker = _Runner(runner, runs_dir, extra, None, args.jobs)
            seeds_seen: set[int] = set()
            for p in points:
                state = point_state(p, runs_dir)
                # As run_sweep does: the first unfinished point of a seed runs on its own.
                alone = (
                    state != "finished" and p.seed not in seeds_seen and len(set(args.seed)) == 1
                )
                if state != "finished":
                    seeds_seen.add(p.seed)
                print(f"{state:8s} {shlex.join(worker.command(p, state == 'resume', alone))}")
            return 0
        from tqdm import tqdm

        def report_point(res: PointResult) -> None:
            how = "resumed, " if res.resumed else ""
            if res.status == "failed":
                tqdm.write(f"FAILED   {res.point.run_id} ({how}{res.seconds:.0f} s): {res.error}")
            elif res.status == "finished":
                tqdm.write(f"finished {res.point.run_id} ({how}{res.seconds:.0f} s)")

        result = run_sweep(
            points, runs_dir, runner=runner, jobs=args.jobs, extra=extra, on_result=report_point
        )
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if result.interrupted:
        sys.stderr.write(
            "interrupted: running points were stopped; run the same command to resume\n"
        )
        return 130
    finished, failed = result.by_status("finished"), result.by_status("failed")
    skipped = result.by_status("skipped")
    print(
        f"sweep: {len(finished)} finished, {len(failed)} failed, {len(skipped)} skipped (already finished)"
    )
    for r in failed:
        print(f"  failed: {r.point.run_id}: {r.error}")
    if not args.no_report:
        from reports.build import build_report

        out = Path(args.report_out) if args.report_out else runs_dir / args.model / "report"
        try:
            report = build_report(runs_dir / args.model, out, formats=args.report_formats)
        except ValueError as e:
            sys.stderr.write(f"error: report not built: {e}\n")
            return 2
        from reports.tables import to_markdown

        for g in getattr(report, "groups", []):
            if g.preset == args.preset:
                print(f"\n{g.model}, {g.preset} preset:\n\n{to_markdown(g.table)}")
        print(f"report: {report.index}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
