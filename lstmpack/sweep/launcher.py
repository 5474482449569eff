"""`compress.sweep --launcher submitit`: each point of a sweep a job through submitit.

On a Slurm cluster (`--cluster slurm`) the points of a batch go in as one job array, each job
running the point's compress.run command (the one the subprocess launcher would run, with
`--device cuda` when the jobs have GPUs and under `torchrun --nproc_per_node G` when they have
G > 1) with its output in RUNS/<model>/sweep-logs/ as always; `--cluster local` runs the same
jobs through submitit's local executor, on this machine (what the tests use). The sweep waits
for its jobs, then reads each point's outcome from its run directory exactly as it does for a
subprocess: finished, or failed with the reason recorded in metrics.json (a job that Slurm
killed, or that timed out, is failed with submitit's reason). The order is the sweep's: the
first point of each seed alone (it trains the dense model the others reuse), then the rest as
one array; points whose dense model did not finish one at a time. Interrupted, the sweep cancels
its jobs.

The run directories and the logs must be on a file system the submitting machine and the nodes
share (they are the same paths on both), and the repository installed on the nodes as here.

submitit is an optional extra (`pip install -e '.[cluster]'`): the default install, the other
launcher and the tests that do not ask for it never import it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmpack.registry import model_folder
from lstmpack.sweep.points import SweepPoint
from lstmpack.sweep.runner import DEFAULT_RUNNER, PointResult, PointRunner
from lstmpack.sweep.state import read_record

CLUSTERS = ("slurm", "local")
INSTALL_HINT = "pip install -e '.[cluster]'"
DEFAULT_TIME_MIN = 24 * 60


@dataclass(frozen=True)
class ClusterConfig:
    """Where and with what each point's job runs: the `--cluster`, `--partition`,
    `--gpus-per-job`, `--cpus-per-job`, `--mem-gb`, `--time-limit` (minutes) and
    `--array-parallelism` (jobs of an array running at once; 0: no limit) flags."""

    cluster: str = "slurm"
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int = DEFAULT_TIME_MIN
    array_parallelism: int = 0
    poll_s: float = 5.0  # how often the sweep asks whether its jobs have ended

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ValueError(
                f"--cluster must be one of {', '.join(CLUSTERS)}; got {self.cluster!r}"
            )
        if self.partition is not None and not self.partition.strip():
            raise ValueError("--partition is empty; name a Slurm partition or leave it out")
        if self.gpus_per_job < 0:
            raise ValueError(f"--gpus-per-job must be >= 0; got {self.gpus_per_job}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise ValueError(f"--cpus-per-job must be >= 1; got {self.cpus_per_job}")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise ValueError(f"--mem-gb must be > 0; got {self.mem_gb}")
        if self.time_min < 1:
            raise ValueError(f"--time-limit must be >= 1 minute; got {self.time_min}")
        if self.array_parallelism < 0:
            raise ValueError(
                f"--array-parallelism must be >= 0 (0: no limit); got {self.array_parallelism}"
            )

    def parameters(self, name: str, serial: bool = False) -> dict[str, Any]:
        """submitit.AutoExecutor.update_parameters of a job array (`serial`: one job at a time);
        the slurm_ ones are ignored by the local executor."""
        params: dict[str, Any] = {"name": name, "timeout_min": self.time_min,
                                  "gpus_per_node": self.gpus_per_job, "nodes": 1,
                                  "tasks_per_node": 1}  # fmt: skip
        if self.cpus_per_job is not None:
            params["cpus_per_task"] = self.cpus_per_job
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.partition is not None:
            params["slurm_partition"] = self.partition
        if serial:
            params["slurm_array_parallelism"] = 1
        elif self.array_parallelism:
            params["slurm_array_parallelism"] = self.array_parallelism
        return params


def load_submitit() -> Any:
    """The submitit module; ValueError (one line naming the pip command) when the optional extra
    is not installed."""
    try:
        import submitit
    except ImportError:
        raise ValueError(
            f"--launcher submitit needs submitit, an optional extra: {INSTALL_HINT}"
        ) from None
    return submitit


def job_runner(cluster: ClusterConfig, runner: Sequence[str]) -> list[str]:
    """The command a job runs a point with: the runner, under torchrun when the job has more than
    one GPU and the runner is compress.run's (a runner of one's own is run as given)."""
    runner = list(runner)
    if cluster.gpus_per_job > 1 and runner == list(DEFAULT_RUNNER):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(cluster.gpus_per_job), "-m", "compress.run"]  # fmt: skip
    return runner


def job_extra(cluster: ClusterConfig, extra: Sequence[str]) -> list[str]:
    """The compress.run arguments of every job: `--device cuda` when the jobs have GPUs and
    `--threads` the job's CPUs for a one-process job, unless the arguments after `--` say."""
    out = list(extra)
    names = {a.partition("=")[0] for a in out}
    if cluster.gpus_per_job > 0 and "--device" not in names:
        out += ["--device", "cuda"]
    if cluster.cpus_per_job and cluster.gpus_per_job <= 1 and "--threads" not in names:
        out += ["--threads", str(cluster.cpus_per_job)]
    return out


def run_command(command: Sequence[str], stdout: str, stderr: str) -> int:
    """A job's body, on the node: run one point's command with its output in the sweep's log
    files; returns its exit code."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        return subprocess.run(
            list(command), stdout=out, stderr=err, stdin=subprocess.DEVNULL, check=False
        ).returncode


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


class SubmititLauncher:
    """Runs batches of points as submitit job arrays and reads their outcomes (a `Launcher` of
    lstmpack.sweep.runner)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        runner: Sequence[str],
        runs_dir: Path,
        extra: Sequence[str],
        env: dict | None = None,
    ) -> None:
        self.submitit = load_submitit()
        self.cluster = cluster
        # one process per job, whatever --jobs: the job's own CPUs are its --threads
        self.worker = PointRunner(job_runner(cluster, runner), runs_dir, job_extra(cluster, extra),
                                  env, jobs=1)  # fmt: skip
        self.runs_dir = Path(runs_dir)
        self._jobs: list[Any] = []

    def folder(self, point: SweepPoint) -> Path:
        """submitit's own files (the pickled calls, its job logs): beside the sweep's logs."""
        return self.runs_dir / model_folder(point.model) / "sweep-logs" / "submitit"

    def run_batch(
        self,
        batch: list[SweepPoint],
        states: dict[SweepPoint, str],
        serial: bool,
        done: Callable[[PointResult], None],
    ) -> None:
        if serial:  # one array of one job at a time: the next sees the dense model of the last
            for p in batch:
                self._run_array([p], states, done, serial=True)
        else:
            self._run_array(batch, states, done, serial=False)

    def _run_array(
        self,
        batch: list[SweepPoint],
        states: dict[SweepPoint, str],
        done: Callable[[PointResult], None],
        serial: bool,
    ) -> None:
        executor = self.submitit.AutoExecutor(
            folder=self.folder(batch[0]), cluster=self.cluster.cluster
        )
        executor.update_parameters(**self.cluster.parameters("compress.sweep", serial))
        commands, outs, errs, befores, resumes = [], [], [], [], []
        for p in batch:
            resume = states[p] == "resume"
            out, err = self.worker.log_paths(p)
            out.parent.mkdir(parents=True, exist_ok=True)
            commands.append(self.worker.command(p, resume, alone=True))
            outs.append(str(out))
            errs.append(str(err))
            befores.append(read_record(p.run_dir(self.runs_dir) / "metrics.json"))
            resumes.append(resume)
        start = time.monotonic()
        jobs = executor.map_array(run_command, commands, outs, errs)
        self._jobs.extend(jobs)
        pending = dict(enumerate(jobs))
        while pending:
            for i, job in list(pending.items()):
                if not job.done():
                    continue
                del pending[i]
                rc, error = None, None
                try:
                    rc = int(job.result())
                except Exception as e:  # the job itself failed: killed, timed out, lost
                    error = f"submitit job {job.job_id}: {_first_line(e)}"
                done(self.worker.outcome(batch[i], rc, commands[i], befores[i],
                                         time.monotonic() - start, resumes[i], error))  # fmt: skip
            if pending:
                time.sleep(self.cluster.poll_s)

    def stop(self) -> None:
        """Cancel every job not yet ended (a job that ended already is left alone)."""
        for job in self._jobs:
            try:
                if not job.done():
                    job.cancel(check=False)
            except Exception:  # cancelling is best effort: the sweep is being interrupted
                pass

    def close(self) -> None:
        self._jobs.clear()
