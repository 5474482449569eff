from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from reports.records import load_runs, runs_frame
from reports.synthetic import write_run
from reports.tables import comparison_table, to_csv, to_latex, to_markdown


def _table(root: Path) -> pd.DataFrame:
    return comparison_table(runs_frame(load_runs(root).finished))


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_dense_row_first_then_runs_ordered_by_alpha_gamma_bits(made_sweep_ro: Path):
    t = _table(made_sweep_ro)
    assert list(t["run_id"][:1]) == ["dense-cpu-s0"]
    comp = t.iloc[1:]
    keys = list(zip(comp["alpha"], comp["gamma"], -comp["bits"]))
    assert keys == sorted(keys)
    assert len(t) == 1 + 10 + 2


def test_ratios_are_run_over_dense_from_the_records(made_sweep_ro: Path):
    t = _table(made_sweep_ro).set_index("run_id")
    run = made_sweep_ro / "ptbc" / "a3-g1.75-b4-cpu-s0"
    dense = made_sweep_ro / "ptbc" / "dense-cpu-s0"
    m, md = _json(run / "metrics.json"), _json(dense / "metrics.json")
    h, hd = _json(run / "hwsim.json"), _json(dense / "hwsim.json")
    row = t.loc["a3-g1.75-b4-cpu-s0"]
    assert row["nnz_ratio"] == pytest.approx(m["nonzero_weights"] / md["nonzero_weights"])
    assert row["cycles_ratio"] == pytest.approx(h["total"]["cycles"] / hd["total"]["cycles"])
    assert row["energy_ratio"] == pytest.approx(h["total"]["energy_pj"] / hd["total"]["energy_pj"])
    assert row["bytes_ratio"] == pytest.approx(m["model_bytes"] / md["model_bytes"])
    assert row["delta_test"] == pytest.approx(m["quality"]["test"] - md["quality"]["test"])
    assert row["energy_uj"] == pytest.approx(h["total"]["energy_pj"] / 1e6)
    assert t.loc["dense-cpu-s0", "cycles_ratio"] == 1.0


def test_markdown_has_the_issue_columns_and_one_line_per_run(made_sweep_ro: Path):
    t = _table(made_sweep_ro)
    md = to_markdown(t)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(t)
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    for col in (
        "model",
        "α",
        "γ",
        "bits",
        "nonzero weights",
        "array columns",
        "packing eff.",
        "test BPC ↓",
        "cycles @16x16",  # the made runs' own array (hwsim.json)
        "cycles @32x32",  # simulated from packed.json
        "util.",
        "energy (µJ)",
        "model bytes",
        "cycles / dense @16x16",
    ):
        assert col in header, col
    dense_cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert dense_cells[0] == "dense-cpu-s0" and dense_cells[header.index("α")] == "dense"
    m = _json(made_sweep_ro / "ptbc" / "dense-cpu-s0" / "metrics.json")
    assert dense_cells[header.index("nonzero weights")] == f"{m['nonzero_weights']:,}"


def test_csv_reads_back_to_the_table(made_sweep_ro: Path):
    t = _table(made_sweep_ro)
    back = pd.read_csv(io.StringIO(to_csv(t)))
    assert list(back["run_id"]) == list(t["run_id"])
    assert back["test"].tolist() == pytest.approx(t["test"].tolist())
    assert back["nonzero_weights"].tolist() == t["nonzero_weights"].tolist()


def test_latex_is_booktabs_with_escaped_cells(made_sweep_ro: Path):
    t = _table(made_sweep_ro)
    tex = to_latex(t, caption="ptbc runs_with_underscore", label="tab:ptbc")
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"$\alpha$" in tex
    assert r"runs\_with\_underscore" in tex
    body = tex.split(r"\midrule", 1)[1]
    assert body.count(r"\\") == len(t)  # one row per run


def test_setting_that_varies_gets_a_column_only_then(made_sweep: Path):
    assert "sparsity" not in _table(made_sweep).columns
    write_run(made_sweep / "ptbc" / "a3-g1.75-b32-cpu-s0-sp", alpha=3, sparsity=0.8, hidden=8)
    t = _table(made_sweep)
    assert "sparsity" in t.columns
    assert "sparsity" in to_markdown(t).splitlines()[0]


def test_without_dense_run_the_ratios_are_blank(tmp_path: Path):
    write_run(tmp_path / "ptbc" / "a2-g1.75-b32-cpu-s0", alpha=2, hidden=8)
    t = _table(tmp_path)
    assert t["cycles_ratio"].isna().all()
    assert "| a2-g1.75-b32-cpu-s0 |" in to_markdown(t)


def test_table_refuses_mixed_models(made_sweep: Path):
    write_run(made_sweep / "ptbw" / "a2-g1.75-b32-cpu-s0", model="ptbw", alpha=2, hidden=8)
    with pytest.raises(ValueError, match="one model and preset"):
        _table(made_sweep)
