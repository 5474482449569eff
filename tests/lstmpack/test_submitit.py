"""compress.sweep --launcher submitit: each point a job through submitit.

The end-to-end test runs the smoke preset through submitit's own local executor (skipped where
the optional extra is not installed: the default install and CI never need it). The others put
a stand-in `submitit` module in its place, which runs each job in this process at once, so the
launcher's part (job parameters, commands, outcomes, failures, skipping) is tested everywhere.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from lstmpack.sweep.cli import main
from lstmpack.sweep.launcher import ClusterConfig, job_extra, job_runner
from lstmpack.sweep.runner import DEFAULT_RUNNER
from tests.lstmpack.test_run_e2e import make_ptb_char
from tests.lstmpack.test_sweep import FAKE_RUNNER

SMOKE = ["--model", "ptbc", "--preset", "smoke", "--max-paths", "1", "3", "--gamma", "1.75",
         "--bits", "32"]  # fmt: skip


@pytest.mark.timeout(600)
def test_the_local_executor_runs_the_smoke_sweep_then_skips_it(tmp_path, capsys):
    pytest.importorskip("submitit")
    data = make_ptb_char(tmp_path / "data")
    runs = tmp_path / "runs"
    argv = [*SMOKE, "--runs-dir", str(runs), "--no-report", "--launcher", "submitit",
            "--cluster", "local", "--cpus-per-job", "1", "--time-limit", "30", "--",
            "--data-dir", str(data), "--no-verify"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "sweep: 2 finished, 0 failed, 0 skipped" in out
    for alpha in (1, 3):
        run_dir = runs / "ptbc" / f"a{alpha}-g1.75-b32-smoke-s1111"
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"
        assert (run_dir / "table.md").is_file()
        # the job ran the point's command with the job's CPUs as its threads
        config = json.loads((run_dir / "config.json").read_text())
        assert config["compress"]["max_paths"] == alpha
    logs = runs / "ptbc" / "sweep-logs"
    assert (logs / "a3-g1.75-b32-smoke-s1111.stdout.log").read_text().count("| dense |") == 1
    assert any((logs / "submitit").iterdir())  # submitit's own files, beside the sweep's logs
    assert main(argv) == 0  # all finished: nothing is submitted again
    assert "sweep: 0 finished, 0 failed, 2 skipped" in capsys.readouterr().out


# --------------------------------------------------------------------------- a stand-in submitit


class FakeJob:
    """Runs the job's call at once; `crash` stands for a job that Slurm killed."""

    count = 0

    def __init__(self, fn, args, crash: str | None) -> None:
        FakeJob.count += 1
        self.job_id = f"{1000 + FakeJob.count}_0"
        self._error = RuntimeError(crash) if crash else None
        self._value = None if crash else fn(*args)

    def done(self) -> bool:
        return True

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self, check: bool = True) -> None:
        pass


@pytest.fixture
def fake_submitit(monkeypatch, tmp_path):
    """A `submitit` whose AutoExecutor records its folder, cluster, parameters and calls."""
    seen: dict = {"executors": [], "params": [], "commands": [], "crash": set()}

    class AutoExecutor:
        def __init__(self, folder, cluster=None):
            seen["executors"].append((Path(folder), cluster))

        def update_parameters(self, **params):
            seen["params"].append(params)

        def map_array(self, fn, *iterables):
            jobs = []
            for args in zip(*iterables):
                seen["commands"].append(args[0])
                run_id = Path(args[0][args[0].index("--run-dir") + 1]).name
                crash = "job killed: TIMEOUT\nmore" if run_id in seen["crash"] else None
                jobs.append(FakeJob(fn, args, crash))
            return jobs

    monkeypatch.setitem(sys.modules, "submitit", types.SimpleNamespace(AutoExecutor=AutoExecutor))
    script = tmp_path / "fake_run.py"
    script.write_text(FAKE_RUNNER)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("FAKE_FAIL_ALPHAS", raising=False)
    monkeypatch.delenv("FAKE_HALF_ALPHA", raising=False)
    seen["runner"] = f"{sys.executable} {script}"
    seen["runs"] = tmp_path / "runs"
    return seen


def _fake_sweep(seen: dict, *flags: str, alphas=("1", "3", "8")) -> int:
    argv = ["--model", "ptbc", "--preset", "cpu", "--seed", "0", "--max-paths", *alphas,
            "--gamma", "1.75", "--bits", "32", "--runs-dir", str(seen["runs"]), "--runner",
            seen["runner"], "--no-report", "--launcher", "submitit", *flags]  # fmt: skip
    return main(argv)


def test_jobs_carry_the_cluster_flags_and_the_first_point_runs_alone(fake_submitit, capsys):
    flags = ["--partition", "gpu", "--gpus-per-job", "1", "--cpus-per-job", "4", "--mem-gb",
             "16", "--time-limit", "90", "--array-parallelism", "5"]  # fmt: skip
    assert _fake_sweep(fake_submitit, *flags) == 0
    assert "sweep: 3 finished, 0 failed, 0 skipped" in capsys.readouterr().out
    folder, cluster = fake_submitit["executors"][0]
    assert cluster == "slurm" and folder == fake_submitit["runs"] / "ptbc/sweep-logs/submitit"
    first, rest = fake_submitit["params"]
    assert first == rest == {
        "name": "compress.sweep", "timeout_min": 90, "gpus_per_node": 1, "nodes": 1,
        "tasks_per_node": 1, "cpus_per_task": 4, "mem_gb": 16.0, "slurm_partition": "gpu",
        "slurm_array_parallelism": 5,
    }  # fmt: skip
    commands = fake_submitit["commands"]
    assert [Path(c[c.index("--run-dir") + 1]).name for c in commands] == [
        "a1-g1.75-b32-cpu-s0", "a3-g1.75-b32-cpu-s0", "a8-g1.75-b32-cpu-s0",
    ]  # fmt: skip
    # a GPU job: compress.run on cuda; one process of the job's 4 CPUs
    assert all(c[-4:] == ["--device", "cuda", "--threads", "4"] for c in commands)


def test_a_failed_point_and_a_killed_job_are_recorded_and_the_sweep_goes_on(
    fake_submitit, monkeypatch, capsys
):
    monkeypatch.setenv("FAKE_FAIL_ALPHAS", "3")
    fake_submitit["crash"].add("a8-g1.75-b32-cpu-s0")
    assert _fake_sweep(fake_submitit, "--cluster", "local") == 1
    out = capsys.readouterr().out
    assert "sweep: 1 finished, 2 failed, 0 skipped" in out
    runs = fake_submitit["runs"] / "ptbc"
    failed = json.loads((runs / "a3-g1.75-b32-cpu-s0" / "metrics.json").read_text())
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert failed["error"] == "RuntimeError: made-up failure at alpha 3"  # the runner's last line
    killed = json.loads((runs / "a8-g1.75-b32-cpu-s0" / "metrics.json").read_text())
    assert killed["status"] == "failed" and killed["exit_code"] is None
    assert (
        killed["error"].startswith("submitit job ")
        and "RuntimeError: job killed: TIMEOUT" in (killed["error"])
    )
    # the next sweep skips the finished point and runs the two failed ones again
    fake_submitit["crash"].clear()
    monkeypatch.delenv("FAKE_FAIL_ALPHAS")
    assert _fake_sweep(fake_submitit, "--cluster", "local") == 0
    assert "sweep: 2 finished, 0 failed, 1 skipped" in capsys.readouterr().out


def test_a_serial_batch_is_one_job_at_a_time(fake_submitit):
    # the points whose dense model did not finish: each its own array of one job, in turn
    from lstmpack.sweep.launcher import SubmititLauncher
    from lstmpack.sweep.points import grid

    points = grid("ptbc", "cpu", [1, 3], [1.75], [32])
    launcher = SubmititLauncher(ClusterConfig(array_parallelism=4), fake_submitit["runner"].split(),
                                fake_submitit["runs"], [])  # fmt: skip
    results = []
    launcher.run_batch(points, {p: "new" for p in points}, True, results.append)
    assert [r.status for r in results] == ["finished", "finished"]
    assert [p["slurm_array_parallelism"] for p in fake_submitit["params"]] == [1, 1]
    assert len(fake_submitit["commands"]) == 2 and len(fake_submitit["executors"]) == 2


def test_a_multi_gpu_job_runs_compress_run_under_torchrun():
    two = ClusterConfig(gpus_per_job=2, cpus_per_job=8)
    cmd = job_runner(two, DEFAULT_RUNNER)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       "-m", "compress.run"]  # fmt: skip
    # each torchrun process sets its own threads; --device given after -- is kept
    assert job_extra(two, ["--device", "cuda:0"]) == ["--device", "cuda:0"]
    assert job_extra(two, []) == ["--device", "cuda"]
    assert job_runner(two, ["my-runner"]) == ["my-runner"]  # one's own runner runs as given
    assert job_extra(ClusterConfig(cpus_per_job=2), []) == ["--threads", "2"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--partition", "gpu"], "--partition is a flag of --launcher submitit"),
        (["--launcher", "submitit", "--cluster", "pbs"], "--cluster must be one of slurm, local"),
        (["--launcher", "submitit", "--gpus-per-job", "-1"], "--gpus-per-job must be >= 0"),
        (["--launcher", "submitit", "--time-limit", "0"], "--time-limit must be >= 1 minute"),
        (["--launcher", "submitit", "--jobs", "4"], "with --launcher submitit, --array-parall"),
    ],
)
def test_a_bad_cluster_flag_is_one_line(fake_submitit, tmp_path, capsys, flags, says):
    argv = [*SMOKE, "--runs-dir", str(tmp_path / "runs"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "runs").exists()


def test_without_the_extra_the_launcher_names_the_pip_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    argv = [*SMOKE, "--runs-dir", str(tmp_path / "runs"), "--launcher", "submitit"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --launcher submitit needs submitit, an optional extra: pip install -e '.[cluster]'"
    ]
    assert not (tmp_path / "runs").exists()


def test_dry_run_shows_the_jobs_commands(fake_submitit, tmp_path, capsys):
    argv = [*SMOKE, "--runs-dir", str(tmp_path / "runs"), "--launcher", "submitit",
            "--gpus-per-job", "2", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("submitit slurm jobs: name=compress.sweep timeout_min=1440")
    assert all("torch.distributed.run" in ln and ln.endswith("--device cuda") for ln in lines[1:])
    assert not fake_submitit["commands"]  # nothing submitted


def test_the_dense_run_a_point_waits_for_carries_the_precision(tmp_path):
    from lstmpack.sweep.points import grid
    from lstmpack.sweep.runner import dense_dir

    (p,) = grid("ptbc", "cpu", [3], [1.75], [8], seeds=[1111])
    assert dense_dir(p, tmp_path, []).name == "dense-cpu-s1111"
    assert dense_dir(p, tmp_path, ["--precision", "bf16"]).name == "dense-cpu-s1111-bf16"
    assert dense_dir(p, tmp_path, ["--precision=fp16"]).name == "dense-cpu-s1111-fp16"
