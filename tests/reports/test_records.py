from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reports.records import load_run, load_runs, runs_frame
from reports.synthetic import write_run


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_load_runs_splits_runs_by_status(made_sweep: Path, add_failed_run):
    add_failed_run("RuntimeError: out of memory")
    write_run(made_sweep / "ptbc" / "a2-g1.75-b4-cpu-s0", alpha=2, bits=4, status="running")
    runs = load_runs(made_sweep)
    assert len(runs.finished) == 1 + 5 * 2 + 2
    assert [r.run_id for r in runs.failed] == ["a8-g1.75-b4-cpu-s0"]
    assert runs.failed[0].error == "RuntimeError: out of memory"
    assert [r.run_id for r in runs.running] == ["a2-g1.75-b4-cpu-s0"]


def test_frame_row_carries_the_record_values(made_sweep_ro: Path):
    run_dir = made_sweep_ro / "ptbc" / "a3-g1.75-b8-cpu-s0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    hwsim = json.loads((run_dir / "hwsim.json").read_text())
    row = runs_frame([load_run(run_dir)]).iloc[0]
    assert (row["alpha"], row["gamma"], row["bits"], row["kind"]) == (3, 1.75, 8, "compressed")
    assert row["nonzero_weights"] == metrics["nonzero_weights"]
    assert row["array_columns"] == metrics["array_columns"]
    assert row["test"] == metrics["quality"]["test"]
    assert row["metric"] == "bpc" and not row["higher_is_better"]
    assert row["cycles"] == hwsim["total"]["cycles"]
    assert row["energy_pj"] == hwsim["total"]["energy_pj"]


def test_dense_run_has_no_alpha_and_float_bits(made_sweep_ro: Path):
    row = runs_frame([load_run(made_sweep_ro / "ptbc" / "dense-cpu-s0")]).iloc[0]
    assert row["kind"] == "dense" and row["bits"] == 32
    assert row["alpha"] != row["alpha"]  # NaN: a dense run has no alpha


# (file, edit, the error it must raise): one case a line, so the table reads as one.
# fmt: off
MALFORMED = [
    ("metrics.json", lambda d: d["quality"].pop("metric"), r"metrics\.json: missing key 'quality\.metric'"),
    ("metrics.json", lambda d: d.update(nonzero_weights="many"), r"metrics\.json: key 'nonzero_weights' must be number"),
    ("metrics.json", lambda d: d.update(status="done"), r"metrics\.json: key 'status' must be one of"),
    ("metrics.json", lambda d: d["quality"].update(higher_is_better=True), r"higher_is_better"),
    ("config.json", lambda d: d["compress"].pop("gamma"), r"config\.json: missing key 'compress\.gamma'"),
    ("config.json", lambda d: d.update(kind="sparse"), r"config\.json: key 'kind' must be one of"),
    ("hwsim.json", lambda d: d["total"].pop("cycles"), r"hwsim\.json: missing key 'total\.cycles'"),
]
# fmt: on


@pytest.mark.parametrize(("file", "edit", "message"), MALFORMED)
def test_a_malformed_record_is_skipped_naming_file_and_key(made_sweep: Path, file, edit, message):
    run_dir = made_sweep / "ptbc" / "a2-g0.5-b32-cpu-s0"
    before = len(load_runs(made_sweep).finished)
    _edit(run_dir / file, edit)
    with pytest.raises(ValueError, match=message) as info:
        load_run(run_dir)  # one run alone: the error itself
    assert str(run_dir / file) in str(info.value)
    runs = load_runs(made_sweep)  # a whole folder: skipped, the rest read
    assert [(p, re.search(message, why) is not None) for p, why in runs.skipped] == [
        (run_dir, True)
    ]
    assert len(runs.finished) == before - 1


def test_a_missing_or_broken_file_skips_its_run_naming_the_file(made_sweep: Path):
    run_dir = made_sweep / "ptbc" / "a4-g0.5-b32-cpu-s0"

    def reason() -> str:
        (skipped,) = load_runs(made_sweep).skipped
        assert skipped[0] == run_dir
        return skipped[1]

    (run_dir / "hwsim.json").unlink()
    assert re.search(r"hwsim\.json: missing", reason())
    (run_dir / "hwsim.json").write_text("{not json")
    assert re.search(r"hwsim\.json: not valid JSON", reason())
    (run_dir / "metrics.json").unlink()
    assert re.search(rf"{run_dir.name}/metrics\.json: missing", reason())


def test_trainer_record_without_run_keys_is_ignored_not_fatal(made_sweep: Path):
    lm = made_sweep / "lm" / "ptbc-cpu"
    lm.mkdir(parents=True)
    (lm / "config.json").write_text(json.dumps({"hidden_size": 8, "epochs": 3}))
    (lm / "metrics.json").write_text(json.dumps({"valid_bpc": 1.4}))
    runs = load_runs(made_sweep)
    assert [p for p, _ in runs.ignored] == [lm]


def test_folder_without_records_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no run records"):
        load_runs(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        load_runs(tmp_path / "nope")
