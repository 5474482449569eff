"""compress.run over its fault list: every bad value of a flag, and every file it reads back
(the dense run's records, weights, packed baseline and checkpoints; the run's own on --resume)
truncated, emptied or overwritten, fails before anything is trained or written: exit code 2, one
line naming the flag or the file and what to do. A damaged file never leaves a run stuck: doing
what the line says lets the same command finish. And no silent wrong number: the dense baseline
follows the run's targets and array, and every setting that changes a result is in the run id.

Made PTB-char data and the smoke preset throughout; nothing reads the repository's data/."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from lstmpack.run import cli as R
from lstmpack.run import config as C
from lstmpack.sweep.points import grid
from tests.faults.conftest import DAMAGE, JSON_DAMAGE, damage, snapshot
from tests.lstmpack.test_run_e2e import _argv, make_ptb_char

RNN0 = r"^rnns\.0$"
# a second run that reuses the trained dense model (quick: no quantization)
OTHER = ["--max-paths", "2", "--quant", "off"]
DENSE = "dense-smoke-s1111"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A runs root as the issue found it: a run with --targets first (it trains the dense
    model), then a default run. Read it; copy it (`runs`) to change it."""
    root = tmp_path_factory.mktemp("faults")
    data = make_ptb_char(root / "data")
    runs = root / "runs"
    assert R.main(_argv(data, runs, "--targets", RNN0)) == 0
    assert R.main(_argv(data, runs)) == 0
    by = {p.name: p for p in (runs / "ptbc").iterdir()}
    return {
        "data": data,
        "runs": runs,
        "targets_run": next(p for n, p in by.items() if "-t" in n and n != DENSE),
        "default_run": by["a3-g1.75-w8a8-ptq-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"],
    }


@pytest.fixture
def runs(trained, tmp_path) -> Path:
    """A private copy of the trained runs root."""
    shutil.copytree(trained["runs"], tmp_path / "runs")
    return tmp_path / "runs"


def _fails(one_line_error, argv: list[str], root: Path, *fragments: str) -> str:
    before = snapshot(root)
    line = one_line_error(R.main(argv), *fragments)
    assert snapshot(root) == before, "a failed check wrote or trained something"
    return line


def _dense_row(run_dir: Path) -> str:
    return next(ln for ln in (run_dir / "table.md").read_text().splitlines() if "| dense |" in ln)


# --------------------------------------------------------------------------- wrong numbers


def test_the_dense_row_is_packed_over_the_runs_own_targets(trained):
    # the first run (--targets) trained the dense model; the default run must not inherit its
    # packing: 17,408 nonzeros and 160 columns for the whole smoke model, 6,144 and 48 for rnns.0
    assert "| dense | 17,408 | 160 |" in _dense_row(trained["default_run"])
    assert "| dense | 6,144 | 48 |" in _dense_row(trained["targets_run"])
    dense = json.loads((trained["runs"] / "ptbc" / DENSE / "metrics.json").read_text())
    assert (dense["nonzero_weights"], dense["array_columns"]) == (17408, 160)
    own = json.loads((trained["targets_run"] / "metrics.json").read_text())["dense"]
    assert (own["nonzero_weights"], own["targets"], own["layers"]) == (6144, RNN0, ["rnns.0"])


def test_a_dense_run_packed_with_another_runs_targets_is_packed_again(trained, runs):
    # a dense folder made before the fix holds the packing of whichever run trained it
    dense = runs / "ptbc" / DENSE
    sub = next(dense.glob("targets-*"))
    for ext in (".json", ".npz"):
        shutil.copy(sub / f"packed{ext}", dense / f"packed{ext}")
    assert R.main(_argv(trained["data"], runs, *OTHER)) == 0
    run_dir = runs / "ptbc" / "a2-g1.75-fp-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"
    assert "| dense | 17,408 | 160 |" in _dense_row(run_dir)
    assert json.loads((dense / "metrics.json").read_text())["nonzero_weights"] == 17408


def test_runs_on_other_arrays_dataflows_or_targets_get_their_own_ids_and_dense_costs(trained, runs):
    data = trained["data"]
    assert R.main(_argv(data, runs, "--array", "16x16", "--dataflow", "os")) == 0
    run_dir = (
        runs
        / "ptbc"
        / "a3-g1.75-w8a8-ptq-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-arr16x16-os-smoke-s1111"
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["dense"]["hw"] == {"rows": 16, "cols": 16, "dataflow": "os"}
    default = json.loads((trained["default_run"] / "metrics.json").read_text())
    assert m["dense"]["hwsim_total"]["cycles"] != default["dense"]["hwsim_total"]["cycles"]


# (flags) -> each must change the run's numbers' record AND its run id; every flag of the
# parser that changes a RunConfig must be here (checked below)
SETTINGS = [
    ["--max-paths", "2"], ["--gamma", "0.5"], ["--sparsity", "0.2"],
    ["--prune-schedule", "cubic"], ["--prune-events", "4"], ["--gate-aware"],
    ["--section-size", "256"], ["--strategy", "reference"], ["--bits", "4"],
    ["--act-bits", "16"], ["--quant", "qat"], ["--finetune-epochs", "3"],
    ["--finetune-steps", "7"], ["--lr-scale", "0.5"], ["--targets", RNN0],
    ["--array", "16x16"], ["--dataflow", "os"], ["--seed", "5"], ["--recipe", "joint"],
    ["--prune-factor", "0.5"], ["--prune-start", "0.2"], ["--prune-end", "0.4"], ["--l1", "1e-4"], ["--no-regrow"], ["--distill", "2,0.5"],
    ["--lr-rewind"], ["--finetune-schedule", "cosine"], ["--balance", "gate"],
    ["--keep", "magnitude"], ["--no-reconstruct"], ["--small-dense", "100"],
    ["--precision", "bf16"],
]  # fmt: skip
# flags that change no number of a run (where things are, how it runs; --model and --preset are
# folders and id parts of their own), and --reconstruct, the posthoc default (--no-reconstruct
# is above)
NEUTRAL = {"--model", "--preset", "--data-dir", "--no-verify", "--run-dir", "--runs-root",
           "--resume", "--threads", "--device", "--help", "-h", "--reconstruct"}  # fmt: skip


def _run_config(*flags: str):
    args = C.build_parser().parse_args(["--model", "ptbc", "--preset", "smoke", *flags])
    run = C.run_config_from_args(args, 1, 1111)
    if args.small_dense is not None:
        run = C.replace(run, small_dense=C.parse_columns(args.small_dense))
    return run


def test_every_setting_that_changes_a_result_changes_the_run_id():
    default = _run_config()
    assert default.run_id() == "a3-g1.75-w8a8-ptq-ft1-balrow-act-rec-smoke-s1111"  # as before
    ids = {default.run_id()}
    for flags in SETTINGS:
        run = _run_config(*flags)
        assert run != default, flags
        assert run.run_id() not in ids, (flags, run.run_id())
        ids.add(run.run_id())
    listed = {f[0] for f in SETTINGS} | NEUTRAL
    every = {o for a in C.build_parser()._actions for o in a.option_strings}
    assert every - listed == set(), "a new flag: add it to SETTINGS (or NEUTRAL)"


def test_sweep_ids_carry_the_arguments_after_the_double_dash():
    (plain,) = grid("ptbc", "smoke", [3], [1.75], [8])
    (neutral,) = grid("ptbc", "smoke", [3], [1.75], [8], extra=["--threads", "1", "--no-verify"])
    (arr,) = grid("ptbc", "smoke", [3], [1.75], [8], extra=["--array", "16x16"])
    (tgt,) = grid("ptbc", "smoke", [3], [1.75], [8], extra=["--targets", RNN0])
    assert plain.run_id == neutral.run_id == "a3-g1.75-b8-smoke-s0"
    assert len({plain.run_id, arr.run_id, tgt.run_id}) == 3
    assert arr.run_id.startswith("a3-g1.75-b8-smoke-s0-x")


# --------------------------------------------------------------------------- bad flags

# (flags, what the one line must say): every one is found before anything is written
FLAG_FAULTS = [
    (["--targets", "("], "--targets '(' is not a valid regular expression"),
    (["--targets", "^nothing$"], "--targets '^nothing$' matches no"),
    (["--gamma", "inf"], "--gamma must be a finite number >= 0; got inf"),
    (["--gamma", "nan"], "--gamma must be a finite number >= 0; got nan"),
    (["--gamma", "abc"], "argument --gamma: invalid float value: 'abc'"),
    (["--bits", "17"], "--bits must be in 2..16, or 32 for float; got 17"),
    (["--bits", "31"], "--bits must be in 2..16, or 32 for float; got 31"),
    (["--act-bits", "24"], "--act-bits must be in 2..16, or 32 for float; got 24"),
    (["--threads", "-1"], "--threads must be >= 1 (torch threads); got -1"),
    (["--threads", "0"], "--threads must be >= 1 (torch threads); got 0"),
    (["--seed", "-3"], "--seed must be >= 0; got -3"),
    (["--lr-scale", "inf"], "--lr-scale must be a finite number > 0; got inf"),
    (["--prune-events", "0"], "--prune-events must be >= 1; got 0"),
    (["--section-size", "0"], "--section-size must be >= 1; got 0"),
    (["--prune-schedule", "weekly"], "--prune-schedule must be one of cubic, linear, one-shot"),
    (["--finetune-steps", "-1"], "--finetune-steps must be >= 0"),
    (["--device", "tpu"], "--device must be one of auto | cpu | cuda | cuda:N; got 'tpu'"),
    (["--device", "cuda:99"], "--device cuda:99: "),  # no CUDA here, or not 100 GPUs
    (["--precision", "half"], "--precision must be one of fp32, bf16, fp16; got 'half'"),
    (["--precision", "fp16"], "--precision fp16 needs a CUDA device"),
    (["--small-dense", "0"], "--small-dense takes a number of array columns >= 1"),
    (["--array", "0x4"], "--array must look like RxC"),
    (["--distill", "2"], "--distill must be T,W"),
    (["--l1", "inf"], "--l1 must be a finite number >= 0"),
    (["--prune-factor", "2"], "--prune-factor must be in (0, 1]"),
    (["--keep", "best"], "--keep must be one of"),
    (["--recipe", "fast"], "--recipe must be one of"),
]


@pytest.mark.parametrize(("flags", "says"), FLAG_FAULTS, ids=[" ".join(f) for f, _ in FLAG_FAULTS])
def test_a_bad_flag_value_is_one_line_before_anything_is_written(
    tmp_path, one_line_error, flags, says
):
    data = make_ptb_char(tmp_path / "data")
    _fails(one_line_error, _argv(data, tmp_path / "runs", *flags), tmp_path, says)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flag", ["--run-dir", "--runs-root"])
def test_a_run_folder_flag_naming_a_file_is_one_line(tmp_path, one_line_error, flag):
    data = make_ptb_char(tmp_path / "data")
    (tmp_path / "a-file").write_text("x")
    argv = [*_argv(data, tmp_path / "runs"), flag, str(tmp_path / "a-file")]
    _fails(one_line_error, argv, tmp_path, f"{flag} {tmp_path / 'a-file'}", "is a file")


# --------------------------------------------------------------------------- a failed start


def test_a_start_that_failed_before_training_does_not_block_the_corrected_command(
    trained, runs, caplog
):
    run_dir = runs / "ptbc" / "a2-g1.75-fp-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"run": {"combine": {"gamma": "inf"}}}))
    (run_dir / "metrics.json").write_text(json.dumps({"status": "failed", "error": "bad"}))
    caplog.set_level(logging.INFO)
    assert R.main(_argv(trained["data"], runs, *OTHER)) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"
    assert f"taking over {run_dir}: it failed before training" in caplog.text
    assert "dense model: reused" in caplog.text and "data: " in caplog.text


def test_a_failed_run_with_training_state_still_needs_resume(trained, runs, one_line_error):
    run_dir = runs / "ptbc" / "a2-g1.75-fp-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"
    (run_dir / "train").mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"status": "failed", "error": "bad"}))
    _fails(one_line_error, _argv(trained["data"], runs, *OTHER), runs, "pass --resume")


# --------------------------------------------------------------------------- damaged files

# (file under the runs root, how damaged, the flags of the command that reads it)
DENSE_FILES = [
    (f"{DENSE}/metrics.json", JSON_DAMAGE, OTHER),
    (f"{DENSE}/config.json", JSON_DAMAGE, OTHER),
    (f"{DENSE}/model.pt", DAMAGE, OTHER),
    (f"{DENSE}/packed.json", JSON_DAMAGE, OTHER),
    (f"{DENSE}/packed.npz", DAMAGE, OTHER),
    (f"{DENSE}/targets-*/packed.json", JSON_DAMAGE, [*OTHER, "--targets", RNN0]),
    (f"{DENSE}/targets-*/packed.npz", DAMAGE, [*OTHER, "--targets", RNN0]),
]
CASES = [(f, how, flags) for f, kinds, flags in DENSE_FILES for how in kinds]


@pytest.mark.parametrize(
    ("name", "how", "flags"), CASES, ids=[f"{f.split('/', 1)[1]}-{h}" for f, h, _ in CASES]
)
def test_a_damaged_file_of_the_dense_run_is_one_line_naming_it(
    trained, runs, one_line_error, name, how, flags
):
    (path,) = (runs / "ptbc").glob(name)
    damage(path, how)
    _fails(one_line_error, _argv(trained["data"], runs, *flags), runs, str(path.parent), "delete")


# (file, what the line says to delete): after doing it, the same command finishes
RECOVER = [
    (f"{DENSE}/metrics.json", "metrics.json"),
    (f"{DENSE}/config.json", "config.json"),
    (f"{DENSE}/model.pt", "model.pt"),
    (f"{DENSE}/packed.npz", "packed.json and packed.npz"),
]


@pytest.mark.parametrize(("name", "deleted"), RECOVER, ids=[n for n, _ in RECOVER])
def test_deleting_the_damaged_file_as_told_lets_the_run_finish(
    trained, runs, one_line_error, name, deleted
):
    path = runs / "ptbc" / name
    damage(path, "truncated")
    argv = _argv(trained["data"], runs, *OTHER)
    one_line_error(R.main(argv), f"delete {deleted}" if " and " in deleted else "delete it")
    for f in deleted.split(" and "):
        (path.parent / f).unlink()
    assert R.main(argv) == 0
    run_dir = runs / "ptbc" / "a2-g1.75-fp-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"
    assert "| dense | 17,408 | 160 |" in _dense_row(run_dir)


@pytest.mark.parametrize("how", list(DAMAGE))
@pytest.mark.parametrize("ckpt", ["checkpoint.pt", "best.pt"])
def test_a_damaged_checkpoint_of_an_unfinished_dense_run_is_one_line(
    trained, runs, one_line_error, ckpt, how
):
    dense = runs / "ptbc" / DENSE
    (dense / "metrics.json").write_text(json.dumps({"status": "running", "error": None}))
    damage(dense / "train" / ckpt, how)
    line = _fails(one_line_error, _argv(trained["data"], runs, *OTHER), runs)
    assert str(dense / "train" / ckpt) in line
    assert f"delete {dense / 'train'} to train the dense model afresh" in line


# the compressed run's own files, read by --resume
@pytest.mark.parametrize("how", list(JSON_DAMAGE))
@pytest.mark.parametrize("name", ["metrics.json", "config.json"])
def test_a_damaged_record_of_the_run_on_resume_is_one_line(
    trained, runs, one_line_error, name, how
):
    run_dir = runs / "ptbc" / trained["default_run"].name
    damage(run_dir / name, how)
    argv = [*_argv(trained["data"], runs), "--resume"]
    _fails(one_line_error, argv, runs, str(run_dir / name), "delete")


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_fine_tune_checkpoint_on_resume_is_one_line(trained, runs, one_line_error, how):
    run_dir = runs / "ptbc" / trained["default_run"].name
    (run_dir / "metrics.json").write_text(json.dumps({"status": "running", "error": None}))
    damage(run_dir / "train" / "checkpoint.pt", how)
    argv = [*_argv(trained["data"], runs), "--resume"]
    _fails(
        one_line_error, argv, runs, str(run_dir / "train" / "checkpoint.pt"),
        "delete it to restart the fine-tune stage",
    )  # fmt: skip


def test_a_finished_run_without_its_table_on_resume_is_one_line(trained, runs, one_line_error):
    run_dir = runs / "ptbc" / trained["default_run"].name
    (run_dir / "table.md").unlink()
    argv = [*_argv(trained["data"], runs), "--resume"]
    _fails(one_line_error, argv, runs, "table.md: missing", "delete")
