"""Cycles on four arrays (Figure 6, the cycles columns of the tables) and the equal-columns small
dense runs as their own row kind and series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.config import HwConfig
from hwsim.simulate import simulate
from hwsim.workload import from_packed_json
from reports import plots
from reports.cycles import ARRAYS, CYCLES_COLUMNS, cycles_on_arrays
from reports.records import load_runs, runs_frame
from reports.synthetic import make_sweep, write_run
from reports.tables import comparison_table, to_csv, to_latex, to_markdown

SMALL = "small-dense-cpu-s0-h6"


def _frame(root: Path):
    return runs_frame(load_runs(root).finished)


def _header(md: str) -> list[str]:
    return [h.strip() for h in md.splitlines()[0].strip("|").split("|")]


@pytest.fixture(scope="module")
def wide_sweep(tmp_path_factory) -> Path:
    """Layers wider than the small arrays (hidden 64: K up to 128), alpha 1..8, a small dense run,
    on a 128x128 array as compress.run's default."""
    root = tmp_path_factory.mktemp("wide")
    make_sweep(root, alphas=(1, 2, 3, 4, 8), extra=(), hidden=64, array=(128, 128))
    write_run(root / "ptbc" / SMALL, kind="small_dense", hidden=6, array=(128, 128))
    return root


@pytest.fixture(scope="module")
def wide(wide_sweep: Path):
    return _frame(wide_sweep).set_index("run_id", drop=False)


def test_cycles_on_arrays_are_hwsims_cycles_of_the_packed_file(wide_sweep: Path):
    run = wide_sweep / "ptbc" / "a3-g1.75-b32-cpu-s0"
    got = cycles_on_arrays(run)
    workload = from_packed_json(run / "packed.json")
    for array, col in zip(ARRAYS, CYCLES_COLUMNS):
        r, c = map(int, array.split("x"))
        assert got[col] == simulate(workload, HwConfig(rows=r, cols=c)).total.cycles
    (run / "packed.json").rename(run / "moved.json")
    try:
        assert all(math.isnan(v) for v in cycles_on_arrays(run).values())
    finally:
        (run / "moved.json").rename(run / "packed.json")


def test_combining_saves_cycles_on_small_arrays_and_not_on_wide_ones(wide):
    comp = wide[wide["kind"] == "compressed"].sort_values("alpha")
    assert comp["cycles_16x16"].is_monotonic_decreasing
    assert comp["cycles_16x16"].iloc[-1] < comp["cycles_16x16"].iloc[0]
    # one fold of 128 rows holds every K (at most 128): alpha buys nothing there
    assert comp["cycles_128x128"].nunique() == 1


def test_table_names_the_array_in_every_cycles_column(wide):
    table = comparison_table(wide.reset_index(drop=True))
    header = _header(to_markdown(table))
    cycles = [h for h in header if "cycles" in h]
    assert cycles == ["cycles @128x128", "cycles @32x32", "cycles / dense @128x128"]
    assert "array" not in header  # one array for every run: named in the headers instead
    tex = to_latex(table)
    assert "cycles @128x128 & cycles @32x32" in tex
    csv = to_csv(table).splitlines()[0].split(",")
    assert all(c in csv for c in CYCLES_COLUMNS)
    row = table.set_index("run_id").loc["a2-g1.75-b32-cpu-s0"]
    assert row["cycles_32x32"] == wide.loc["a2-g1.75-b32-cpu-s0", "cycles_32x32"]


def test_table_says_each_runs_array_when_the_arrays_differ(made_sweep: Path):
    write_run(made_sweep / "ptbc" / "a2-g1.75-b32-cpu-s0-32", alpha=2, hidden=8, array=(32, 32))
    header = _header(to_markdown(comparison_table(_frame(made_sweep))))
    assert "cycles @each run's array" in header and "array" in header
    assert "cycles @32x32" in header  # still shown: not every run's own array


def test_small_dense_row_follows_dense_and_is_named_in_the_alpha_column(wide):
    table = comparison_table(wide.reset_index(drop=True))
    assert list(table["kind"][:2]) == ["dense", "small_dense"]
    assert (table["kind"][2:] == "compressed").all()
    md = to_markdown(table).splitlines()
    alpha = _header("\n".join(md)).index("α")
    assert md[3].strip("|").split("|")[alpha].strip() == "small dense"
    small, dense = wide.loc[SMALL], wide.loc["dense-cpu-s0"]
    assert table.loc[1, "delta_test"] == pytest.approx(small["test"] - dense["test"])
    body = to_latex(table).split(r"\midrule")
    assert body[2].count(r"\\") == len(table) - 2  # the rule comes after both baselines


def test_cycles_figure_has_one_line_per_array_through_the_packed_cycles(wide):
    fig = plots.fig_cycles_alpha(wide.reset_index(drop=True))
    ax = fig.axes[0]
    lines = {ln.get_label(): ln.get_xydata() for ln in ax.get_lines()}
    comp = wide[wide["kind"] == "compressed"].sort_values("alpha")
    for array in ARRAYS:
        xy = lines[f"{array} array"]
        assert xy[:, 0].tolist() == comp["alpha"].tolist()
        assert xy[:, 1].tolist() == comp[f"cycles_{array}"].tolist()
    dense = [ln.get_xydata() for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert sorted(xy[0, 1] for xy in dense) == sorted(
        wide.loc["dense-cpu-s0", [f"cycles_{a}" for a in ARRAYS]]
    )
    assert all(xy[0, 0] == 1 for xy in dense)
    assert ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [*(f"{a} array" for a in ARRAYS), "dense baseline", plots.SMALL_DENSE_LABEL]


def test_cycles_figure_puts_small_dense_at_its_column_reduction(wide):
    fig = plots.fig_cycles_alpha(wide.reset_index(drop=True))
    crosses = [
        ln.get_xydata()[0]
        for ln in fig.axes[0].get_lines()
        if ln.get_label() == plots.SMALL_DENSE_LABEL
    ]
    small, dense = wide.loc[SMALL], wide.loc["dense-cpu-s0"]
    reduction = dense["array_columns"] / small["array_columns"]
    np.testing.assert_allclose(
        sorted(map(tuple, crosses)), sorted((reduction, small[f"cycles_{a}"]) for a in ARRAYS)
    )


def test_cycles_figure_follows_one_setting_and_names_it(made_sweep_ro: Path):
    df = _frame(made_sweep_ro)  # gamma 0.5 and 1.75 at every alpha, 8 and 4 bits at alpha 3
    runs, note = plots.alpha_series(df)
    assert set(runs["gamma"]) == {1.75} and set(runs["bits"]) == {32}
    assert note == "γ=1.75, sparsity 0.5, 32-bit"
    fig = plots.fig_cycles_alpha(df)
    assert fig.axes[0].get_legend().get_title().get_text() == f"runs at {note}"


def test_cycles_figure_skipped_without_packed_files(tmp_path: Path):
    write_run(tmp_path / "ptbc" / "dense", kind="dense", hidden=8, packed=False)
    write_run(tmp_path / "ptbc" / "a2", alpha=2, hidden=8, packed=False)
    assert plots.fig_cycles_alpha(_frame(tmp_path)) is None


def test_cost_figure_draws_small_dense_as_its_own_series(wide):
    fig = plots.fig_cost_quality(wide.reset_index(drop=True))
    small = wide.loc[SMALL]
    for ax, col in ((fig.axes[0], "cycles"), (fig.axes[2], "array_columns")):
        lines = {ln.get_label(): ln.get_xydata() for ln in ax.get_lines()}
        assert lines[plots.SMALL_DENSE_LABEL].tolist() == [[small[col], small["test"]]]
        alpha_points = sum(len(xy) for k, xy in lines.items() if k.startswith("α="))
        assert alpha_points == (wide["kind"] == "compressed").sum()
    assert "array columns" in fig.axes[2].get_xlabel()
