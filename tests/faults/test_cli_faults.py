"""The other CLIs over their fault lists (lm.train, nmt.train, nmt.names, hwsim, compress.sweep,
compress.datasets): a bad flag value, a run directory that holds a run (without --resume) or a
damaged one (with it), a folder flag naming a file: each is one line naming the flag or the file,
exit code 2, before anything is written or trained. And every flag of every CLI has a help text.

No training and no real data: the runs are made of their files, the checkpoints are torch.save
files of a small dict."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from common.datasets.cli import build_parser as datasets_parser
from common.datasets.cli import main as datasets_main
from hwsim.__main__ import build_parser as hwsim_parser
from hwsim.__main__ import main as hwsim_main
from lm.presets import get_preset
from lm.train import build_parser as lm_parser
from lm.train import main as lm_main
from lstmpack.run.config import build_parser as run_parser
from lstmpack.sweep.cli import build_parser as sweep_parser
from lstmpack.sweep.cli import main as sweep_main
from nmt.names.cli import _parser as names_parser
from nmt.names.cli import main as names_main
from nmt.presets import PRESETS as NMT_PRESETS
from nmt.train import _parser as nmt_parser
from nmt.train import main as nmt_main
from reports.__main__ import build_parser as reports_parser
from reports.synthetic import build_parser as synthetic_parser
from tests.faults.conftest import DAMAGE, JSON_DAMAGE, damage, snapshot

PARSERS = {
    "compress.run": run_parser,
    "lm.train": lm_parser,
    "nmt.train": nmt_parser,
    "nmt.names": names_parser,
    "reports": reports_parser,
    "hwsim": hwsim_parser,
    "compress.sweep": sweep_parser,
    "compress.datasets": datasets_parser,
    "reports.synthetic": synthetic_parser,
}


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield action


@pytest.mark.parametrize("name", list(PARSERS))
def test_every_flag_of_every_cli_has_a_help_string(name):
    bare = [
        a.option_strings or a.dest
        for a in _actions(PARSERS[name]())
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert bare == [], f"{name}: flags without help: {bare}"


def _checkpoint(path) -> None:
    """A whole torch.save file, to be damaged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.arange(4096.0)}, "step": 3}, path)


# --------------------------------------------------------------------------- lm.train

LM_FLAGS = [
    (["--lr", "abc"], "--lr takes a number; got 'abc'"),
    (["--threads", "-1"], "--threads -1: threads must be >= 0"),
    (["--when", "x"], "--when takes integers"),
    (["--epochs", "1.5"], "--epochs takes an integer; got '1.5'"),
    (["--model", "ptbx"], "argument --model: invalid choice: 'ptbx'"),
    (["--data-dir", ""], "--data-dir is empty"),
]


@pytest.mark.parametrize(("flags", "says"), LM_FLAGS, ids=[" ".join(f) for f, _ in LM_FLAGS])
def test_lm_train_bad_flag_is_one_line_naming_it(tmp_path, one_line_error, flags, says):
    argv = ["--model", "ptbc", "--preset", "smoke", "--run-dir", str(tmp_path / "run"), *flags]
    one_line_error(_exit_code(lm_main, argv), says)
    assert not (tmp_path / "run").exists()


def _exit_code(main, argv) -> int:
    """main's return value, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


@pytest.fixture
def lm_run(tmp_path):
    """An lm.train run directory as a finished run leaves it (config.json, checkpoints)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(get_preset("ptbc", "smoke").to_dict()))
    _checkpoint(run / "checkpoint.pt")
    _checkpoint(run / "best.pt")
    return run


def test_lm_train_refuses_a_run_directory_that_holds_a_run(lm_run, one_line_error):
    before = snapshot(lm_run)
    argv = ["--model", "ptbc", "--preset", "smoke", "--run-dir", str(lm_run)]
    one_line_error(lm_main(argv), f"{lm_run} already holds a run", "--resume")
    assert snapshot(lm_run) == before


@pytest.mark.parametrize(
    ("name", "how"),
    [(f, h) for f in ("checkpoint.pt", "best.pt") for h in DAMAGE]
    + [("config.json", h) for h in JSON_DAMAGE],
)
def test_lm_train_resume_of_a_damaged_run_is_one_line_naming_the_file(
    lm_run, one_line_error, name, how
):
    damage(lm_run / name, how)
    before = snapshot(lm_run)
    argv = ["--model", "ptbc", "--preset", "smoke", "--run-dir", str(lm_run), "--resume"]
    one_line_error(lm_main(argv), str(lm_run / name), "delete")
    assert snapshot(lm_run) == before


def test_lm_train_run_dir_naming_a_file_is_one_line(tmp_path, one_line_error):
    (tmp_path / "f").write_text("x")
    argv = ["--model", "ptbc", "--preset", "smoke", "--run-dir", str(tmp_path / "f")]
    one_line_error(lm_main(argv), f"--run-dir {tmp_path / 'f'} is a file")


# --------------------------------------------------------------------------- nmt.train

NMT_FLAGS = [
    (["--set", "lr=abc"], "--set lr=abc: lr takes a number; got 'abc'"),
    (["--set", "epochs=1.5"], "--set epochs=1.5: epochs takes an integer"),
    (["--set", "eval_wmt=maybe"], "eval_wmt takes true or false"),
    (["--set", "lrr=1"], "--set lrr: no such setting; did you mean lr?"),
    (["--set", "lr"], "--set expects key=value"),
    (["--set", "lr=-1"], "--set lr=-1: need lr > 0"),
    (["--eval-splits", "bogus"], "--eval-splits takes a comma-separated list of valid, test"),
    (["--data-dir", ""], "--data-dir is empty"),
    (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
]


@pytest.mark.parametrize(("flags", "says"), NMT_FLAGS, ids=[" ".join(f) for f, _ in NMT_FLAGS])
def test_nmt_train_bad_flag_is_one_line_naming_it_before_any_training(
    tmp_path, one_line_error, flags, says
):
    argv = ["--run-dir", str(tmp_path / "run"), *flags]
    one_line_error(_exit_code(nmt_main, argv), says)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("left", ["checkpoint", "finished metrics"])
def test_nmt_train_refuses_a_run_directory_that_holds_a_run(tmp_path, one_line_error, left):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(NMT_PRESETS["smoke"].to_json())
    if left == "checkpoint":
        _checkpoint(run / "checkpoint.pt")
    else:
        (run / "metrics.json").write_text(json.dumps({"status": "finished"}))
    before = snapshot(run)
    one_line_error(nmt_main(["--run-dir", str(run)]), f"{run} already holds a run", "--resume")
    assert snapshot(run) == before


@pytest.mark.parametrize("how", list(DAMAGE))
def test_nmt_train_resume_of_a_damaged_checkpoint_is_one_line(tmp_path, one_line_error, how):
    run = tmp_path / "run"
    _checkpoint(run / "checkpoint.pt")
    damage(run / "checkpoint.pt", how)
    before = snapshot(run)
    one_line_error(
        nmt_main(["--run-dir", str(run), "--resume"]),
        str(run / "checkpoint.pt"),
        "delete it to train this run from the start",
    )
    assert snapshot(run) == before


# --------------------------------------------------------------------------- nmt.names

NAMES_FLAGS = [
    (["--threads", "-1"], "--threads must be >= 1 (torch threads); got -1"),
    (["--seed", "-1"], "--seed must be >= 0; got -1"),
    (["--steps", "0"], "--steps 0: steps must be >= 1"),
    (["--lr", "0"], "--lr 0.0: lr must be > 0"),
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--data-dir", ""], "--data-dir is empty"),
]


@pytest.mark.parametrize(("flags", "says"), NAMES_FLAGS, ids=[" ".join(f) for f, _ in NAMES_FLAGS])
def test_nmt_names_bad_flag_is_one_line_naming_it(tmp_path, one_line_error, flags, says):
    argv = ["--preset", "smoke", "--runs-dir", str(tmp_path / "runs"), *flags]
    one_line_error(_exit_code(names_main, argv), says)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("how", list(DAMAGE))
def test_nmt_names_damaged_checkpoint_is_one_line_before_loading_data(
    tmp_path, one_line_error, how
):
    ckpt = tmp_path / "runs" / "names" / "smoke-gate-stratified-seed0" / "checkpoint.pt"
    _checkpoint(ckpt)
    damage(ckpt, how)
    argv = ["--preset", "smoke", "--runs-dir", str(tmp_path / "runs")]
    one_line_error(names_main(argv), str(ckpt), "delete it")


def test_nmt_names_runs_dir_naming_a_file_is_one_line(tmp_path, one_line_error):
    (tmp_path / "f").write_text("x")
    argv = ["--preset", "smoke", "--runs-dir", str(tmp_path / "f")]
    one_line_error(names_main(argv), f"--runs-dir {tmp_path / 'f'} is a file")


# --------------------------------------------------------------------------- hwsim, sweep, data


@pytest.mark.parametrize("how", list(JSON_DAMAGE))
def test_hwsim_of_a_damaged_packed_file_is_one_line_naming_it(tmp_path, one_line_error, how):
    path = tmp_path / "packed.json"
    path.write_text(json.dumps({"format": "lstmpack.packed/1", "layers": []}, indent=2))
    damage(path, how)
    one_line_error(hwsim_main(["--packed", str(path)]), str(path))


SWEEP_FLAGS = [
    (["--jobs", "0"], "--jobs must be >= 1; got 0"),
    (["--gamma", "inf"], "--gamma must be finite numbers >= 0"),
    (["--bits", "17"], "--bits must be 32 (float) or an integer width 2..16"),
    (["--point", "3,x,8"], "--point must be ALPHA,GAMMA,BITS"),
    (["--max-paths", "x"], "argument --max-paths: invalid int value: 'x'"),
]


@pytest.mark.parametrize(("flags", "says"), SWEEP_FLAGS, ids=[" ".join(f) for f, _ in SWEEP_FLAGS])
def test_compress_sweep_bad_flag_is_one_line_naming_it(tmp_path, one_line_error, flags, says):
    argv = ["--model", "ptbc", "--seed", "0", "--runs-dir", str(tmp_path / "runs"), *flags]
    one_line_error(_exit_code(sweep_main, argv), says)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["fetch", "ptb_char", "--data-dir", ""], "--data-dir is empty"),
        (["check", "--data-dir", "A-FILE"], "is a file, not a folder"),
        (["fetch", "ptb_char", "--data-dir", "A-FILE"], "is a file, not a folder"),
        (["verify"], "argument cmd: invalid choice: 'verify'"),
    ],
)
def test_compress_datasets_bad_root_or_command_is_one_line(tmp_path, one_line_error, argv, says):
    (tmp_path / "A-FILE").write_text("x")
    argv = [str(tmp_path / "A-FILE") if a == "A-FILE" else a for a in argv]
    one_line_error(_exit_code(datasets_main, argv), says)
