"""compress.run's recipe flags at the smoke preset on made data: the joint recipe end to end and
through a SIGKILL, distillation at weight 0, and the flags' checks, run ids and records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from lstmpack.run import cli as R
from lstmpack.run import config as C
from tests.lstmpack.test_run_e2e import REPO, _argv, _kill_when, _read, make_ptb_char
from tests.lstmpack.test_run_errors import _fails, env  # noqa: F401 (a fixture)

JOINT_ID = "a3-g1.75-w8a8-ptq-joint-smoke-s1111"


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("joint")
    data = make_ptb_char(root / "data")
    runs = root / "runs"
    assert R.main(_argv(data, runs, "--recipe", "joint")) == 0
    return {"data": data, "runs": runs, "run_dir": runs / "ptbc" / JOINT_ID}


def test_joint_run_trains_the_dense_schedule_and_records_every_event(joint_run):
    d = joint_run["run_dir"]
    m, cfg = _read(d / "metrics.json"), _read(d / "config.json")["run"]
    assert m["status"] == "finished" and m["packed_gap"] <= 1e-4
    assert cfg["recipe"] == "joint" and cfg["combine"]["prune_factor"] == 0.8
    assert cfg["prune"]["n_events"] == 10
    dense = _read(joint_run["runs"] / "ptbc/dense-smoke-s1111/metrics.json")
    assert m["train"]["steps"] == dense["train"]["steps"]  # the dense run's own budget
    events = m["train"]["events"]
    assert [e["event"] for e in events] == list(range(1, 11))
    for e in events:
        assert e["nonzeros"] > 0 and e["array_columns"] > 0 and 0 < e["packing_efficiency"] <= 1
        assert e["valid_bpc"] is not None and e["valid_step"] >= e["step"]
    assert events[-1]["nonzeros"] == m["nonzero_weights"]
    assert events[-1]["array_columns"] == m["array_columns"]
    assert any(f.name.startswith("events.out.tfevents") for f in (d / "train").iterdir())


def test_the_joint_runs_table_shows_the_dense_row_of_the_same_model(joint_run):
    table = (joint_run["run_dir"] / "table.md").read_text()
    assert "| dense |" in table and f"| {JOINT_ID} |" in table


def test_a_joint_run_killed_with_sigkill_resumes_to_the_same_numbers(joint_run, tmp_path):
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "compress.run",
        *_argv(joint_run["data"], runs, "--recipe", "joint"),
    ]
    # the dense model is reused, as a real joint run reuses it: only the joint stage is killed
    dense = "ptbc/dense-smoke-s1111"
    shutil.copytree(joint_run["runs"] / dense, runs / dense)
    penv = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=penv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    marker = runs / "ptbc" / JOINT_ID / "train" / "checkpoint.pt"  # after the first slice
    killed = _kill_when(proc, marker)
    assert killed, f"the run ended before {marker} appeared: {proc.stderr.read().decode()[-2000:]}"
    assert not (runs / "ptbc" / JOINT_ID / "packed.npz").exists()
    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=penv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    a = _read(joint_run["run_dir"] / "metrics.json")
    b = _read(runs / "ptbc" / JOINT_ID / "metrics.json")
    assert b["quality"] == a["quality"]
    assert (b["nonzero_weights"], b["array_columns"]) == (a["nonzero_weights"], a["array_columns"])
    assert b["train"]["events"] == a["train"]["events"]
    assert b["train"]["valid"] == a["train"]["valid"]
    packed = (runs / "ptbc" / JOINT_ID / "packed.npz").read_bytes()
    assert packed == (joint_run["run_dir"] / "packed.npz").read_bytes()


def test_distillation_at_weight_zero_packs_the_same_bytes_as_no_distillation(joint_run):
    runs = joint_run["runs"]
    assert R.main(_argv(joint_run["data"], runs, "--distill", "off")) == 0
    assert R.main(_argv(joint_run["data"], runs, "--distill", "2,0")) == 0
    # the lm family's posthoc defaults (cosine, lr8, pf0.8) hold for both; only --distill differs
    plain = runs / "ptbc" / "a3-g1.75-w8a8-ptq-ft1-pf0.8-cos-balrow-act-rec-lr8-smoke-s1111"
    kd = runs / "ptbc" / "a3-g1.75-w8a8-ptq-ft1-pf0.8-kd2x0-cos-balrow-act-rec-lr8-smoke-s1111"
    assert (kd / "packed.npz").read_bytes() == (plain / "packed.npz").read_bytes()
    assert _read(kd / "metrics.json")["quality"] == _read(plain / "metrics.json")["quality"]
    assert _read(kd / "metrics.json")["train"]["teacher_time_s"] > 0
    assert _read(kd / "config.json")["run"]["distill"] == [2.0, 0.0]


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--recipe", "hybrid"], "--recipe must be one of posthoc, joint; got 'hybrid'"),
        (["--prune-factor", "0"], "--prune-factor must be in (0, 1]; got 0.0"),
        (["--prune-factor", "1.5"], "--prune-factor must be in (0, 1]; got 1.5"),
        (["--prune-end", "0"], "--prune-end must be in (--prune-start, 1] = (0, 1]; got 0.0"),
        (["--prune-end", "1.2"], "--prune-end must be in (--prune-start, 1] = (0, 1]; got 1.2"),
        (["--prune-end", "nan"], "--prune-end must be in (--prune-start, 1] = (0, 1]; got nan"),
        (["--prune-start", "-0.1"], "--prune-start must be in [0, 1); got -0.1"),
        (["--prune-start", "0.5"], "--prune-end must be in (--prune-start, 1] = (0.5, 1]; got 0.5"),
        (["--l1=-1e-5"], "--l1 must be a finite number >= 0; got -1e-05"),
        (["--distill", "0,1"], "--distill: the temperature T must be > 0"),
        (["--distill", "2,-1"], "--distill: the weight W must be >= 0"),
        (["--distill", "2"], "--distill must be T,W"),
        (["--distill", "two,one"], "--distill must be T,W"),
        (["--recipe", "joint", "--finetune-steps", "5"], "--finetune-steps applies to --recipe"),
        (["--recipe", "joint", "--lr-rewind"], "--lr-rewind applies to --recipe posthoc"),
        (["--recipe", "joint", "--quant", "qat"], "use --quant ptq"),
        (["--recipe", "joint"], "--recipe joint is not implemented for --model fake"),
        (["--distill", "2,1"], "--distill is not implemented for --model fake"),
        (["--lr-rewind"], "--lr-rewind is not implemented for --model fake"),
        (["--l1", "1e-5"], "--l1 is not implemented for --model fake"),
        (["--finetune-schedule", "step"], "--finetune-schedule must be one of constant, cosine"),
        (["--finetune-schedule", "cosine", "--lr-rewind"], "pick one"),
        (["--recipe", "joint", "--finetune-schedule", "cosine"], "--finetune-schedule applies to"),
        (["--finetune-schedule", "cosine"], "--finetune-schedule is not implemented for --model"),
    ],
)
def test_bad_recipe_flags_fail_in_one_line_before_anything_is_written(env, capsys, flags, fragment):  # noqa: F811
    _fails(env, capsys, ["--model", "fake", *flags], fragment)


def _run(*flags: str) -> C.RunConfig:
    return C.run_config_from_args(C.build_parser().parse_args(["--model", "m", *flags]), 1)


def test_recipe_flags_enter_the_run_id_only_away_from_their_defaults():
    assert _run().run_id() == "a3-g1.75-w8a8-ptq-ft1-balrow-act-rec-cpu-s0"
    assert _run("--prune-factor", "1").run_id() == "a3-g1.75-w8a8-ptq-ft1-balrow-act-rec-cpu-s0"
    assert _run("--recipe", "joint").run_id() == "a3-g1.75-w8a8-ptq-joint-cpu-s0"
    assert _run("--recipe", "joint", "--prune-factor", "0.8").run_id().endswith("-joint-cpu-s0")
    full = _run("--prune-factor", "0.8", "--l1", "1e-5", "--no-regrow", "--distill", "2,0.5",
                "--lr-rewind")  # fmt: skip
    assert full.run_id() == (
        "a3-g1.75-w8a8-ptq-ft1-pf0.8-l1_1e-05-noregrow-kd2x0.5-rewind-balrow-act-rec-cpu-s0"
    )
    assert _run("--finetune-schedule", "constant").run_id() == _run().run_id()
    assert _run("--prune-end", "0.5", "--prune-start", "0").run_id() == _run().run_id()
    span = _run("--recipe", "joint", "--prune-start", "0.1", "--prune-end", "0.25")
    assert span.run_id() == "a3-g1.75-w8a8-ptq-joint-from0.1-to0.25-cpu-s0"
    assert C.RunConfig.from_dict(json.loads(json.dumps(span.to_dict()))) == span
    cos = _run("--finetune-schedule", "cosine")
    assert cos.run_id() == "a3-g1.75-w8a8-ptq-ft1-cos-balrow-act-rec-cpu-s0"
    assert C.RunConfig.from_dict(json.loads(json.dumps(cos.to_dict()))) == cos


def test_recipe_settings_stay_out_of_config_json_at_their_defaults_and_round_trip():
    plain = _run().to_dict()
    left_out = {"recipe", "l1", "regrow", "distill", "lr_rewind", "finetune_schedule", "prune_start",
                "prune_end"}  # fmt: skip
    assert not left_out & set(plain)
    assert plain["prune"]["n_events"] == 8 and plain["combine"]["prune_factor"] == 1.0
    joint = _run("--recipe", "joint", "--distill", "3,0.25", "--no-regrow")
    d = json.loads(json.dumps(joint.to_dict()))
    assert d["recipe"] == "joint" and d["distill"] == [3.0, 0.25] and d["regrow"] is False
    assert d["prune"]["n_events"] == 10 and d["combine"]["prune_factor"] == 0.8
    assert C.RunConfig.from_dict(d) == joint


class _Family:
    POSTHOC_DEFAULTS = {"distill": "2,1", "finetune_schedule": "cosine", "lr_scale": 8.0,
                        "prune_factor": 0.8}  # fmt: skip


def _family_run(*flags: str) -> C.RunConfig:
    from lstmpack.run import recipe

    args = C.build_parser().parse_args(["--model", "m", *flags])
    recipe.apply_family_defaults(_Family(), args)
    return C.run_config_from_args(args, 1)


def test_a_familys_posthoc_defaults_fill_only_the_flags_left_unset():
    run = _family_run()
    assert run.distill == (2.0, 1.0) and run.finetune_schedule == "cosine"
    assert run.lr_scale == 8.0 and run.combine.prune_factor == 0.8
    assert run.run_id() == "a3-g1.75-w8a8-ptq-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-cpu-s0"
    given = _family_run("--distill", "off", "--finetune-schedule", "constant", "--lr-scale", "1",
                        "--prune-factor", "1")  # fmt: skip
    assert given == _run()  # every default overridden: the plain run, with the plain id
    assert _family_run("--lr-rewind").finetune_schedule == "constant"  # rewinding sets the rate
    joint = _family_run("--recipe", "joint")  # the defaults are posthoc's only
    assert joint.distill is None and joint.lr_scale == 1.0 and joint.combine.prune_factor == 0.8


@pytest.mark.parametrize(
    "window, steps, first, last",
    [((0, 0.5), 3000, 0, 1499), ((0, 0.25), 3000, 0, 749), ((0, 1), 3000, 0, 2999),
     ((0, 0.5), 301, 0, 149), ((0.25, 0.5), 3000, 749, 1499)],
)  # fmt: skip
def test_the_prune_events_fire_from_the_prune_start_share_to_the_prune_end_share(
    window, steps, first, last
):
    from lstmpack.run.compressed import build_pipeline

    run = _run("--recipe", "joint", "--prune-start", str(window[0]), "--prune-end", str(window[1]))
    pipe, _ = build_pipeline(run, steps)  # joint: one "epoch" of `steps` steps here
    fired = pipe.schedule.event_steps()
    assert (fired[0], fired[-1], len(fired)) == (first, last, 10)
    one = _run("--recipe", "joint", "--prune-start", "0.3", "--prune-schedule", "one-shot")
    assert build_pipeline(one, 3000)[0].schedule.event_steps() == [899]


def test_finetune_steps_beyond_the_finetune_epochs_fail_in_one_line_naming_the_epochs_needed(
    tmp_path, capsys
):
    # the smoke preset's epoch is 10 steps: 25 steps need 3 epochs, not the default 1
    data, runs = make_ptb_char(tmp_path / "data"), tmp_path / "runs"
    assert R.main(_argv(data, runs, "--finetune-steps", "25")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--finetune-steps 25 exceeds the 10 steps of --finetune-epochs 1" in err
    assert "pass --finetune-epochs 3" in err
    assert not (runs / "ptbc").exists() or not any((runs / "ptbc").iterdir())
