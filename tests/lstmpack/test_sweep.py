"""compress.sweep driven by a fake runner that writes made run records (no compress.run)."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from lstmpack.sweep.cli import main
from lstmpack.sweep.points import SweepPoint, grid, parse_point
from lstmpack.sweep.runner import PointRunner, last_line
from lstmpack.sweep.state import point_state
from reports.synthetic import write_run

# Behaves like compress.run at its edges: refuses a non-empty run dir without --resume and a
# --resume without config.json, trains (here: writes) the dense record under --runs-root once.
FAKE_RUNNER = r"""
import argparse, json, os, sys, time
from pathlib import Path
from reports.synthetic import write_run

p = argparse.ArgumentParser()
for flag in ("--model", "--preset", "--runs-root", "--run-dir"):
    p.add_argument(flag)
for flag in ("--seed", "--max-paths", "--bits"):
    p.add_argument(flag, type=int)
p.add_argument("--gamma", type=float)
p.add_argument("--resume", action="store_true")
a, extra = p.parse_known_args()
log = os.environ["FAKE_LOG"]
def note(what):
    with open(log, "a") as f:
        f.write(json.dumps({"what": what, "t": time.time(), "argv": sys.argv[1:]}) + "\n")
note("start")
run_dir = Path(a.run_dir)
if a.resume and not (run_dir / "config.json").is_file():
    sys.exit("compress.run: error: --resume: nothing to resume")
if not a.resume and run_dir.exists() and any(run_dir.iterdir()):
    sys.exit("compress.run: error: already holds a run")
dense = Path(a.runs_root) / a.model / f"dense-{a.preset}-s{a.seed}"
if not (dense / "metrics.json").is_file():
    time.sleep(0.3)
    write_run(dense, model=a.model, preset=a.preset, seed=a.seed, kind="dense", hidden=8, packed=False)
if str(a.max_paths) in os.environ.get("FAKE_FAIL_ALPHAS", "").split(","):
    sys.stderr.write("fine-tune: 10%\r fine-tune: 50%\rTraceback (most recent call last):\n")
    sys.stderr.write(f"RuntimeError: made-up failure at alpha {a.max_paths}\n\n")
    sys.exit(1)
half = os.environ.get("FAKE_HALF_ALPHA") == str(a.max_paths)
write_run(run_dir, model=a.model, preset=a.preset, seed=a.seed, alpha=a.max_paths, gamma=a.gamma,
          bits=a.bits, hidden=8, packed=False, status="running" if half else "finished")
note("end")
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> dict:
    script = tmp_path / "fake_run.py"
    script.write_text(FAKE_RUNNER)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_FAIL_ALPHAS", raising=False)
    monkeypatch.delenv("FAKE_HALF_ALPHA", raising=False)
    return {"runner": f"{sys.executable} {script}", "log": log, "runs": tmp_path / "runs"}


def _calls(log: Path, what: str = "start") -> list[list[str]]:
    if not log.is_file():
        return []
    return [e["argv"] for e in map(json.loads, log.read_text().splitlines()) if e["what"] == what]


def _run_ids(calls: list[list[str]]) -> list[str]:
    return [Path(c[c.index("--run-dir") + 1]).name for c in calls]


def _sweep(fake: dict, *extra: str, alphas=("1", "3", "8")) -> int:
    argv = [
        "--model",
        "ptbc",
        "--preset",
        "cpu",
        "--seed",
        "0",
        "--max-paths",
        *alphas,
        "--gamma",
        "1.75",
    ]
    argv += ["--bits", "32", "--runs-dir", str(fake["runs"]), "--runner", fake["runner"], *extra]
    return main(argv)


def test_grid_holds_every_setting_once_with_deterministic_run_ids():
    points = grid("ptbc", "cpu", [1, 3, 3], [1.75, 0.5], [32, 8], seeds=[0])
    assert len(points) == 2 * 2 * 2
    assert points[0].run_id == "a1-g1.75-b32-cpu-s0"
    assert [p.run_id for p in points].count("a3-g0.5-b8-cpu-s0") == 1
    p = SweepPoint("ptbc", "cpu", 1, 3, 1.0, 4)
    assert p.run_id == "a3-g1-b4-cpu-s1"
    assert p.args() == [
        "--model", "ptbc", "--preset", "cpu", "--seed", "1", "--max-paths", "3", "--gamma", "1",
        "--bits", "4", "--act-bits", "8", "--quant", "qat",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "bits, quant",
    [
        (32, ["--bits", "32", "--act-bits", "32", "--quant", "off"]),
        (8, ["--bits", "8", "--act-bits", "8", "--quant", "ptq"]),
        (4, ["--bits", "4", "--act-bits", "8", "--quant", "qat"]),
    ],
)
def test_bits_map_to_float_ptq_or_qat_runs(bits, quant):
    assert SweepPoint("ptbc", "cpu", 0, 3, 1.75, bits).args()[-6:] == quant


def test_default_seed_is_the_presets_so_the_dense_model_is_shared_with_compress_run(
    capsys, tmp_path
):
    from lstmpack.registry import get_spec

    seed = get_spec("ptbc").config("cpu").seed
    assert main(["--model", "ptbc", "--runs-dir", str(tmp_path), "--dry-run"]) == 0
    assert f"a3-g1.75-b32-cpu-s{seed}" in capsys.readouterr().out


def test_extra_points_join_the_grid_once():
    points = grid("ptbc", "cpu", [1, 3], [1.75], [32], points=[(3, 1.75, 8), (3, 1.75, 32)])
    assert [p.run_id for p in points] == [
        "a1-g1.75-b32-cpu-s0",
        "a3-g1.75-b32-cpu-s0",
        "a3-g1.75-b8-cpu-s0",
    ]
    assert parse_point("3,1.75,4") == (3, 1.75, 4)
    with pytest.raises(ValueError, match="ALPHA,GAMMA,BITS"):
        parse_point("3,1.75")
    with pytest.raises(ValueError, match="--bits"):
        grid("ptbc", "cpu", [], [], [], points=[(3, 1.75, 1)])


def test_point_option_alone_runs_only_those_points(fake, capsys):
    argv = [
        "--model",
        "ptbc",
        "--seed",
        "0",
        "--point",
        "3,1.75,8",
        "3,1.75,4",
        "--runs-dir",
        str(fake["runs"]),
    ]
    assert main([*argv, "--runner", fake["runner"], "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(ln.split("--run-dir ")[1].split()[0]).name for ln in lines] == [
        "a3-g1.75-b8-cpu-s0",
        "a3-g1.75-b4-cpu-s0",
    ]


@pytest.mark.parametrize(
    ("alphas", "gammas", "bits", "message"),
    [
        ([0], [1.0], [8], "--max-paths"),
        ([3], [-1.0], [8], "--gamma"),
        ([3], [1.0], [33], "--bits"),
        ([], [1.0], [8], "empty"),
    ],
)
def test_grid_rejects_bad_settings(alphas, gammas, bits, message):
    with pytest.raises(ValueError, match=message):
        grid("ptbc", "cpu", alphas, gammas, bits)


def test_sweep_records_a_failed_point_goes_on_and_builds_the_report(
    fake, tmp_path, monkeypatch, capsys
):
    import reports.build
    from reports.records import load_runs

    built = {}

    def fake_build(runs_dir, out, formats):
        # Drawing figures is the report tests' business; here: built once, from these records.
        built.update(runs=load_runs(runs_dir), out=out, formats=formats)
        return types.SimpleNamespace(index=Path(out) / "index.md")

    monkeypatch.setattr(reports.build, "build_report", fake_build)
    monkeypatch.setenv("FAKE_FAIL_ALPHAS", "8")
    out = tmp_path / "report"
    assert _sweep(fake, "--jobs", "2", "--report-out", str(out), "--report-formats", "png") == 1
    runs = fake["runs"] / "ptbc"
    failed = json.loads((runs / "a8-g1.75-b32-cpu-s0" / "metrics.json").read_text())
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert failed["error"] == "RuntimeError: made-up failure at alpha 8"
    for rid in ("a1-g1.75-b32-cpu-s0", "a3-g1.75-b32-cpu-s0", "dense-cpu-s0"):
        assert json.loads((runs / rid / "metrics.json").read_text())["status"] == "finished"
    printed = capsys.readouterr().out
    assert "2 finished, 1 failed" in printed and f"report: {out / 'index.md'}" in printed
    assert built["out"] == out and built["formats"] == ["png"]
    assert sorted(r.run_id for r in built["runs"].finished) == [
        "a1-g1.75-b32-cpu-s0",
        "a3-g1.75-b32-cpu-s0",
        "dense-cpu-s0",
    ]
    assert [(r.run_id, r.error) for r in built["runs"].failed] == [
        ("a8-g1.75-b32-cpu-s0", "RuntimeError: made-up failure at alpha 8")
    ]
    assert "RuntimeError" in (runs / "sweep-logs" / "a8-g1.75-b32-cpu-s0.stderr.log").read_text()


def test_first_point_runs_alone_so_the_dense_model_is_trained_once(fake):
    assert _sweep(fake, "--jobs", "3", "--no-report") == 0
    starts = {rid: c for rid, c in zip(_run_ids(_calls(fake["log"])), range(10))}
    log = [json.loads(line) for line in fake["log"].read_text().splitlines()]
    first_end = next(e["t"] for e in log if e["what"] == "end")
    later_starts = [e["t"] for e in log if e["what"] == "start"][1:]
    assert list(starts)[0] == "a1-g1.75-b32-cpu-s0"
    assert all(t >= first_end for t in later_starts)


def test_second_sweep_skips_finished_resumes_unfinished_and_retries_failed(fake, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_ALPHAS", "8")
    monkeypatch.setenv("FAKE_HALF_ALPHA", "3")
    assert _sweep(fake, "--no-report") == 1
    runs = fake["runs"] / "ptbc"
    half = json.loads((runs / "a3-g1.75-b32-cpu-s0" / "metrics.json").read_text())
    assert half["status"] == "failed" and "not 'finished'" in half["error"]
    fake["log"].unlink()
    monkeypatch.delenv("FAKE_FAIL_ALPHAS")
    monkeypatch.delenv("FAKE_HALF_ALPHA")
    assert _sweep(fake, "--no-report") == 0
    calls = dict(zip(_run_ids(_calls(fake["log"])), _calls(fake["log"])))
    assert set(calls) == {"a3-g1.75-b32-cpu-s0", "a8-g1.75-b32-cpu-s0"}  # a1 was finished
    assert "--resume" in calls["a3-g1.75-b32-cpu-s0"]  # its run dir holds a config.json
    assert "--resume" not in calls["a8-g1.75-b32-cpu-s0"]  # only the sweep's failure record
    for rid in calls:
        assert json.loads((runs / rid / "metrics.json").read_text())["status"] == "finished"


def test_point_of_other_settings_in_the_run_dir_is_refused(fake, capsys):
    write_run(fake["runs"] / "ptbc" / "a3-g1.75-b32-cpu-s0", alpha=2, hidden=8, packed=False)
    assert _sweep(fake, "--no-report") == 2
    assert "holds a run of other settings than point a3-g1.75-b32-cpu-s0" in capsys.readouterr().err
    assert _calls(fake["log"]) == []


def test_dry_run_prints_each_command_with_its_state(fake, capsys):
    write_run(fake["runs"] / "ptbc" / "a1-g1.75-b32-cpu-s0", alpha=1, hidden=8, packed=False)
    # (--no-verify changes no number: the run-ids stay those of the points without it)
    assert _sweep(fake, "--dry-run", "--", "--no-verify") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["finished", "new", "new"]
    assert lines[1].endswith(
        f"--run-dir {fake['runs'] / 'ptbc' / 'a3-g1.75-b32-cpu-s0'} --no-verify"
    )
    assert f"--runs-root {fake['runs']}" in lines[1]


def test_sweep_state_of_a_run_dir():
    point = SweepPoint("ptbc", "cpu", 0, 3, 1.75, 8)
    assert point.run_dir("/nonexistent/runs").name == "a3-g1.75-b8-cpu-s0"
    assert point_state(point, "/nonexistent/runs") == "new"


def test_stop_ends_a_running_point_without_a_failure_record(tmp_path: Path):
    runner = PointRunner([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, [], None)
    point = SweepPoint("ptbc", "cpu", 0, 3, 1.75, 8)
    out = {}
    thread = threading.Thread(target=lambda: out.update(res=runner.run(point, False)))
    t0 = time.monotonic()
    thread.start()
    while not runner._live and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    runner.stop()
    thread.join(20)
    assert out["res"].status == "skipped" and time.monotonic() - t0 < 20
    assert not (point.run_dir(tmp_path) / "metrics.json").exists()


def test_last_line_skips_blank_lines_and_progress_redraws():
    assert last_line("a\r b\rTraceback\nValueError: x\n\n") == "ValueError: x"
    assert last_line("") == ""


def test_every_flag_the_sweep_passes_is_accepted_by_compress_run(tmp_path: Path):
    from lstmpack.run.config import build_parser

    runner = PointRunner(
        ["python", "-m", "compress.run"], tmp_path, ["--finetune-epochs", "1"], None, jobs=2
    )
    for resume in (False, True):
        cmd = runner.command(SweepPoint("ptbc", "cpu", 0, 3, 1.75, 8), resume)
        args = build_parser().parse_args(cmd[3:])
        assert (args.model, args.preset, args.seed, args.max_paths, args.gamma, args.bits) == (
            "ptbc",
            "cpu",
            0,
            3,
            1.75,
            8,
        )
        assert Path(args.run_dir) == tmp_path / "ptbc" / "a3-g1.75-b8-cpu-s0"
        assert Path(args.runs_root) == tmp_path and args.resume is resume
        assert args.threads >= 1 and args.finetune_epochs == 1


def test_jobs_split_the_cores_unless_threads_are_given(tmp_path: Path):
    point = SweepPoint("ptbc", "cpu", 0, 3, 1.75, 8)
    assert "--threads" not in PointRunner(["r"], tmp_path, [], None, jobs=1).command(point, False)
    assert "--threads" in PointRunner(["r"], tmp_path, [], None, jobs=2).command(point, False)
    assert "--threads" not in PointRunner(["r"], tmp_path, [], None, jobs=2).command(
        point, False, alone=True
    )
    cmd = PointRunner(["r"], tmp_path, ["--threads", "3"], None, jobs=2).command(point, False)
    assert cmd.count("--threads") == 1 and cmd[-2:] == ["--threads", "3"]
