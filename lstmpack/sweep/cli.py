"""`python -m compress.sweep`: run a grid of compression points, then build the report.

    python -m compress.sweep --model ptbc --preset cpu --max-paths 1 2 3 4 8 \\
        --gamma 0.25 0.5 1.0 1.75 --bits 32 8 4 [--jobs N] [-- EXTRA compress.run ARGS]
    python -m compress.sweep --model ptbc --max-paths 1 2 3 4 8 --gamma 1.75 --bits 32 \\
        --point 3,1.75,8 3,1.75,4        # a grid plus extra (alpha, gamma, bits) points

Each point is one subprocess of the runner (default `python -m compress.run`) called as

    <runner> --model M --preset P --seed S --max-paths A --gamma G --bits B
             --runs-root RUNS --run-dir RUNS/M/<run-id> [--resume] [EXTRA...]

with run-id `a<alpha>-g<gamma>-b<bits>-<preset>-s<seed>`, plus `-x<hash>` of the EXTRA arguments
that can change a run's numbers (all but --threads, --data-dir, --no-verify and --device).
compress.run trains the dense model of (model, preset, seed) once, into
RUNS/M/dense-<preset>-s<seed>, and reuses it; so the first point of each seed runs alone, and when
its dense model did not come out finished the rest run one at a time rather than N jobs training
the same dense model at once.

A point whose metrics.json says "finished" is skipped; one whose run directory holds a
config.json but is not finished runs again with `--resume`. A runner that exits non-zero (or
exits 0 without a finished metrics.json) gets status "failed" in its metrics.json, with the last
line of its stderr as the error, and the sweep goes on. Runner output goes to
RUNS/M/sweep-logs/<run-id>.{stdout,stderr}.log. At the end `reports` builds the report from
RUNS/M into RUNS/M/report (or --report-out).

With `--launcher submitit` each point is instead a job through submitit (an optional extra:
pip install -e '.[cluster]'): a Slurm job array (`--cluster slurm`, with `--partition`,
`--gpus-per-job`, `--cpus-per-job`, `--mem-gb`, `--time-limit` and `--array-parallelism`), or
submitit's local executor on this machine (`--cluster local`). Jobs with GPUs run compress.run
with `--device cuda`, under torchrun when they have more than one. Finished points are skipped,
half-done ones resumed and failures recorded just the same (lstmpack.sweep.launcher).

Exit code: 0 when every point finished, 1 when some failed, 2 on bad arguments or a report that
could not be built, 130 when interrupted (running points are stopped; rerun to resume them).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from common.cliargs import OneLineParser
from lstmpack.registry import model_folder
from lstmpack.sweep.points import SweepPoint, grid, parse_point, preset_seed
from lstmpack.sweep.runner import DEFAULT_RUNNER, PointResult, PointRunner, run_sweep
from lstmpack.sweep.state import point_state

LAUNCHERS = ("subprocess", "submitit")
# the flags of --launcher submitit, each refused without it
CLUSTER_FLAGS = ("cluster", "partition", "gpus_per_job", "cpus_per_job", "mem_gb", "time_limit",
                 "array_parallelism")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
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
    g = p.add_argument_group("cluster (--launcher submitit)")
    g.add_argument(
        "--launcher",
        default="subprocess",
        choices=LAUNCHERS,
        help="subprocess: each point a process on this machine (default); submitit: each point "
        "a job through submitit (pip install -e '.[cluster]')",
    )
    g.add_argument("--cluster", default=None, help="slurm (default) or local: submitit's executor")
    g.add_argument("--partition", default=None, help="the Slurm partition of the jobs")
    g.add_argument("--gpus-per-job", type=int, default=None, help="GPUs of each job (default 0)")
    g.add_argument("--cpus-per-job", type=int, default=None, help="CPUs of each job")
    g.add_argument("--mem-gb", type=float, default=None, help="memory of each job, GB")
    g.add_argument(
        "--time-limit", type=int, default=None, help="minutes each job may run (default 1440)"
    )
    g.add_argument(
        "--array-parallelism",
        type=int,
        default=None,
        help="jobs of an array that run at once (default: no limit)",
    )
    p.add_argument("--runner", help="command run per point instead of `python -m compress.run`")
    p.add_argument("--report-out", help="report folder (default RUNS_DIR/<model>/report)")
    p.add_argument(
        "--report-formats",
        nargs="+",
        default=["png", "pdf"],
        choices=["png", "pdf", "svg"],
        help="figure formats of the report (default png pdf)",
    )
    p.add_argument("--no-report", action="store_true", help="run the points, build no report")
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
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
        cluster = _cluster(args)
        extra_points = [parse_point(t) for t in args.point]
        only_points = extra_points and not (args.max_paths or args.gamma or args.bits)
        if args.seed is None:
            args.seed = [preset_seed(args.model, args.preset)]
        points = grid(
            args.model,
            args.preset,
            [] if only_points else (args.max_paths or [3]),
            args.gamma or [1.75],
            args.bits or [32],
            args.seed,
            extra_points,
            extra,
        )
        if args.dry_run:
            _dry_run(points, _dry_worker(args, runner, runs_dir, extra, cluster), args.seed)
            return 0
        from tqdm import tqdm

        def report_point(res: PointResult) -> None:
            how = "resumed, " if res.resumed else ""
            if res.status == "failed":
                tqdm.write(f"FAILED   {res.point.run_id} ({how}{res.seconds:.0f} s): {res.error}")
            elif res.status == "finished":
                tqdm.write(f"finished {res.point.run_id} ({how}{res.seconds:.0f} s)")

        result = run_sweep(points, runs_dir, runner=runner, jobs=args.jobs, extra=extra,
                           on_result=report_point, cluster=cluster)  # fmt: skip
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
    if not args.no_report and _report(args, runs_dir) != 0:
        return 2
    return 1 if failed else 0


def _cluster(args: argparse.Namespace):
    """The ClusterConfig of --launcher submitit (None for subprocesses); ValueError naming a
    cluster flag given without it, a bad value, or the missing extra (the pip command)."""
    given = [f for f in CLUSTER_FLAGS if getattr(args, f) is not None]
    if args.launcher != "submitit":
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{flag} is a flag of --launcher submitit; add --launcher submitit")
        return None
    from lstmpack.sweep.launcher import DEFAULT_TIME_MIN, ClusterConfig, load_submitit

    if args.jobs != 1:
        raise ValueError(
            "--jobs is the subprocess launcher's; with --launcher submitit, --array-parallelism "
            "says how many jobs run at once"
        )

    cluster = ClusterConfig(
        cluster=args.cluster or "slurm",
        partition=args.partition,
        gpus_per_job=args.gpus_per_job or 0,
        cpus_per_job=args.cpus_per_job,
        mem_gb=args.mem_gb,
        time_min=DEFAULT_TIME_MIN if args.time_limit is None else args.time_limit,
        array_parallelism=args.array_parallelism or 0,
    )
    load_submitit()  # the missing extra fails here, before any point is looked at
    return cluster


def _dry_worker(args, runner, runs_dir, extra, cluster) -> PointRunner:
    """The PointRunner whose commands the sweep would run: the jobs' own under submitit."""
    if cluster is None:
        return PointRunner(runner, runs_dir, extra, None, args.jobs)
    from lstmpack.sweep.launcher import job_extra, job_runner

    params = " ".join(f"{k}={v}" for k, v in cluster.parameters("compress.sweep").items())
    print(f"submitit {cluster.cluster} jobs: {params}")
    return PointRunner(job_runner(cluster, runner), runs_dir, job_extra(cluster, extra), None, 1)


def _dry_run(points: Sequence[SweepPoint], worker: PointRunner, seeds: Sequence[int]) -> None:
    """Print each point's state and the command the sweep would run for it."""
    seeds_seen: set[int] = set()
    for p in points:
        state = point_state(p, worker.runs_dir)
        # As run_sweep does: the first unfinished point of a seed runs on its own.
        alone = state != "finished" and p.seed not in seeds_seen and len(set(seeds)) == 1
        if state != "finished":
            seeds_seen.add(p.seed)
        print(f"{state:8s} {shlex.join(worker.command(p, state == 'resume', alone))}")


def _report(args: argparse.Namespace, runs_dir: Path) -> int:
    """Build the report from the model's runs and print its tables of this preset; 2 when it
    could not be built."""
    from reports.build import build_report
    from reports.tables import to_markdown

    out = (
        Path(args.report_out) if args.report_out else runs_dir / model_folder(args.model) / "report"
    )
    try:
        report = build_report(runs_dir / model_folder(args.model), out, formats=args.report_formats)
    except ValueError as e:
        sys.stderr.write(f"error: report not built: {e}\n")
        return 2
    for run_dir, why in getattr(getattr(report, "runs", None), "skipped", ()):
        sys.stderr.write(f"warning: report skipped {run_dir}: {why}\n")
    for g in getattr(report, "groups", []):
        if g.preset == args.preset:
            print(f"\n{g.model}, {g.preset} preset:\n\n{to_markdown(g.table)}")
    print(f"report: {report.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
