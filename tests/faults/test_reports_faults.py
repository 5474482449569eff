"""reports over its fault list: a run record (config.json, metrics.json, hwsim.json, packed.json)
truncated, emptied, overwritten or holding a list is skipped with one warning line naming the
file, and the report is built from the rest; a damaged packed.npz costs Figure 4 only; an --out
that is a file is one line and exit 2. And no silent wrong ratio: a run is compared with the
dense model on its own array and dataflow, packed over its own targets, never another's.

Made records (reports.synthetic), no training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from reports.__main__ import main
from reports.build import _frame
from reports.cycles import cost_on
from reports.records import load_runs, runs_frame
from reports.synthetic import make_sweep, write_run
from reports.tables import comparison_table
from tests.faults.conftest import DAMAGE, JSON_DAMAGE, damage

A3 = "a3-g1.75-b32-cpu-s0"


@pytest.fixture
def runs(tmp_path) -> Path:
    """runs/ptbc: the dense run and alpha 2 and 3 at 32 bits (16x16 arrays)."""
    make_sweep(tmp_path / "runs", alphas=(2, 3), bits=(32,), extra=(), hidden=8)
    return tmp_path / "runs"


CASES = [(f, h) for f in ("config.json", "metrics.json", "hwsim.json", "packed.json")
         for h in JSON_DAMAGE]  # fmt: skip


@pytest.mark.parametrize(("name", "how"), CASES, ids=[f"{f}-{h}" for f, h in CASES])
def test_a_damaged_record_is_skipped_naming_the_file_and_the_rest_reported(runs, name, how):
    run_dir = runs / "ptbc" / A3
    damage(run_dir / name, how)
    frame, kept, _ = _frame(load_runs(runs))
    assert [p for p, _ in kept.skipped] == [run_dir]
    (why,) = [w for _, w in kept.skipped]
    assert name in why and "\n" not in why
    assert sorted(frame["run_id"]) == ["a2-g1.75-b32-cpu-s0", "dense-cpu-s0"]


def test_the_cli_warns_in_one_line_per_skipped_record_and_builds_the_report(runs, tmp_path, capsys):
    damage(runs / "ptbc" / A3 / "metrics.json", "garbage")
    out = tmp_path / "out"
    assert main([str(runs), "--out", str(out), "--formats", "png", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: skipped {runs / 'ptbc' / A3}: ")
    assert "metrics.json: not " in err[0]  # not UTF-8 text, not JSON
    index = (out / "index.md").read_text()
    assert "1 skipped as unreadable" in index and "a2-g1.75-b32-cpu-s0" in index


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_packed_npz_costs_figure_4_only(runs, tmp_path, capsys, how):
    damage(runs / "ptbc" / A3 / "packed.npz", how)  # alpha 3: the run Figure 4 shows
    out = tmp_path / "out"
    assert main([str(runs), "--out", str(out), "--formats", "png", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: not drawn: Figure 4: ")
    assert f"{runs / 'ptbc' / A3 / 'packed.npz'} (or its packed.json) cannot be read" in err[0]
    assert "Figure 4** not drawn" in (out / "index.md").read_text()
    assert A3 in (out / "tables" / "all_runs.csv").read_text()


def test_no_readable_record_at_all_is_one_line_and_exit_2(runs, tmp_path, one_line_error):
    for run_dir in (runs / "ptbc").iterdir():
        damage(run_dir / "metrics.json", "empty")
    one_line_error(main([str(runs), "--out", str(tmp_path / "out")]), "no readable run records")


@pytest.mark.parametrize("where", ["the folder", "a parent"])
def test_an_out_folder_that_is_a_file_is_one_line_and_exit_2(runs, tmp_path, one_line_error, where):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "the folder" else tmp_path / "f" / "report"
    one_line_error(main([str(runs), "--out", str(out)]), f"--out {out}", "is a file")


# --------------------------------------------------------------------------- the baseline


def _table(root: Path):
    return comparison_table(runs_frame(load_runs(root).finished)).set_index("run_id")


def test_a_run_on_another_array_is_compared_with_the_dense_model_on_its_own_array(tmp_path):
    # the dense run was costed on 16x16 (the first run's array); this run on 128x128
    root = tmp_path / "runs" / "ptbc"
    dense = write_run(root / "dense-cpu-s0", kind="dense", hidden=8, array=(16, 16))
    write_run(root / A3, hidden=8, array=(128, 128))
    t = _table(tmp_path / "runs")
    dense_128 = cost_on(dense, "128x128", "ws")[0]
    dense_16 = t.loc["dense-cpu-s0", "cycles"]
    assert dense_128 != dense_16
    assert t.loc[A3, "cycles_ratio"] == pytest.approx(t.loc[A3, "cycles"] / dense_128)


def test_a_runs_own_record_of_its_baseline_gives_its_ratios(tmp_path):
    # compress.run records the dense model it compared with (over its targets, on its array)
    root = tmp_path / "runs" / "ptbc"
    write_run(root / "dense-cpu-s0", kind="dense", hidden=8)
    run_dir = write_run(root / A3, hidden=8)
    m = json.loads((run_dir / "metrics.json").read_text())
    m["dense"] = {"run_id": "dense-cpu-s0", "targets": None, "weights_total": 10,
                  "nonzero_weights": 1000, "array_columns": 50, "packing_efficiency": 1.0,
                  "model_bytes": 4000, "quality": {"valid": 2.0, "test": 2.5},
                  "hwsim_total": {"cycles": 10_000, "energy_pj": 1e6}}  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(m))
    row = _table(tmp_path / "runs").loc[A3]
    assert row["nnz_ratio"] == pytest.approx(row["nonzero_weights"] / 1000)
    assert row["cycles_ratio"] == pytest.approx(row["cycles"] / 10_000)
    assert row["delta_test"] == pytest.approx(row["test"] - 2.5)


def test_a_dense_run_packed_over_other_layers_gives_no_ratio_rather_than_a_wrong_one(tmp_path):
    root = tmp_path / "runs" / "ptbc"
    write_run(root / "dense-cpu-s0", kind="dense", hidden=8)
    run_dir = write_run(root / A3, hidden=8)
    m = json.loads((run_dir / "metrics.json").read_text())
    m["layers"] = m["layers"][:1]  # packed over fewer targets (--targets), no own baseline
    (run_dir / "metrics.json").write_text(json.dumps(m))
    row = _table(tmp_path / "runs").loc[A3]
    assert math.isnan(row["nnz_ratio"]) and math.isnan(row["cycles_ratio"])
    assert row["ratio_baseline"].startswith("none: dense-cpu-s0 packs other layers")
