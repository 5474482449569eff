from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reports import plots
from reports.records import load_runs, runs_frame
from reports.synthetic import make_sweep, write_run


def _frame(root: Path):
    return runs_frame(load_runs(root).finished)


def _lines(ax) -> dict[str, np.ndarray]:
    return {
        ln.get_label(): ln.get_xydata()
        for ln in ax.get_lines()
        if not ln.get_label().startswith("_")
    }


def _records(root: Path) -> list[tuple[dict, dict, dict]]:
    out = []
    for d in sorted((root / "ptbc").iterdir()):
        out.append(
            tuple(
                json.loads((d / f).read_text())
                for f in ("config.json", "metrics.json", "hwsim.json")
            )
        )
    return out


def test_pareto_front_keeps_only_unbeaten_points():
    cost = [1, 2, 3, 4, 2]
    lower_better = [5.0, 3.0, 3.0, 1.0, 4.0]
    front = plots.pareto_front(cost, lower_better, higher_is_better=False)
    assert front.tolist() == [True, True, False, True, False]
    higher_better = [1.0, 3.0, 2.0, 4.0, 3.0]
    front = plots.pareto_front(cost, higher_better, higher_is_better=True)
    assert front.tolist() == [True, True, False, True, True]


def test_sparsity_figure_has_one_series_per_alpha_with_each_runs_point(made_sweep_ro: Path):
    fig = plots.fig_sparsity_quality(_frame(made_sweep_ro))
    lines = _lines(fig.axes[0])
    assert set(lines) == {
        "α=1",
        "α=2",
        "α=3",
        "α=3, 8-bit",
        "α=3, 4-bit",
        "α=4",
        "α=8",
        "dense baseline",
    }
    want = sorted(
        (100 * m["nonzero_weights"] / m["weights_total"], m["quality"]["test"])
        for c, m, _ in _records(made_sweep_ro)
        if c["kind"] == "compressed"
        and c["compress"]["max_paths"] == 3
        and c["compress"]["bits"] == 32
    )
    np.testing.assert_allclose(lines["α=3"], np.array(want))
    dense = next(m for c, m, _ in _records(made_sweep_ro) if c["kind"] == "dense")
    assert lines["dense baseline"].tolist() == [[100.0, dense["quality"]["test"]]]
    ax = fig.axes[0]
    assert (
        "%" in ax.get_xlabel() and "BPC" in ax.get_ylabel() and "lower is better" in ax.get_ylabel()
    )


def test_cost_figure_pareto_line_is_the_unbeaten_runs(made_sweep_ro: Path):
    fig = plots.fig_cost_quality(_frame(made_sweep_ro))
    cycles_ax = fig.axes[0]
    front = _lines(cycles_ax)["Pareto front"]
    pts = [(h["total"]["cycles"], m["quality"]["test"]) for _, m, h in _records(made_sweep_ro)]
    unbeaten = sorted(
        p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)
    )
    np.testing.assert_allclose(sorted(map(tuple, front.tolist())), unbeaten)
    assert "cycles" in cycles_ax.get_xlabel() and "µJ" in fig.axes[1].get_xlabel()
    n_points = sum(len(xy) for label, xy in _lines(cycles_ax).items() if label.startswith("α="))
    assert n_points == len(pts) - 1  # every compressed run is a point


def test_published_anchor_drawn_only_for_the_paper_preset(tmp_path: Path):
    for preset in ("cpu", "paper"):
        write_run(tmp_path / preset / "ptbc" / "dense", preset=preset, kind="dense", hidden=8)
        write_run(tmp_path / preset / "ptbc" / "a2", preset=preset, alpha=2, hidden=8)
    cpu = _lines(plots.fig_sparsity_quality(_frame(tmp_path / "cpu")).axes[0])
    paper = _lines(plots.fig_sparsity_quality(_frame(tmp_path / "paper")).axes[0])
    assert not any(k.startswith("published") for k in cpu)
    anchor = [v for k, v in paper.items() if k.startswith("published")]
    assert len(anchor) == 1 and anchor[0][:, 1].tolist() == [1.175, 1.175]


def test_sweep_figure_has_gamma_and_alpha_series(made_sweep_ro: Path):
    df = _frame(made_sweep_ro)
    fig = plots.fig_sweeps(df)
    gamma_top, alpha_top = fig.axes[0], fig.axes[1]
    assert set(_lines(gamma_top)) == {"α=1", "α=2", "α=3", "α=4", "α=8"}
    assert set(_lines(alpha_top)) == {"γ=0.5", "γ=1.75"}
    want = df[
        (df["kind"] == "compressed") & (df["bits"] == 32) & (df["gamma"] == 1.75)
    ].sort_values("alpha")
    got = _lines(alpha_top)["γ=1.75"]
    assert got[:, 0].tolist() == want["alpha"].tolist()
    assert got[:, 1].tolist() == pytest.approx(want["packing_efficiency"].tolist())


def test_sweep_figure_draws_only_the_sweep_the_runs_hold(tmp_path: Path):
    make_sweep(tmp_path, alphas=(1, 3), gammas=(1.75,), extra=(), hidden=8)
    fig = plots.fig_sweeps(_frame(tmp_path))
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "α sweep"
    assert set(_lines(fig.axes[0])) == {"γ=1.75"}


def test_sweep_figure_skipped_without_a_sweep(tmp_path: Path):
    write_run(tmp_path / "ptbc" / "dense", kind="dense", hidden=8)
    write_run(tmp_path / "ptbc" / "a2", alpha=2, hidden=8)
    assert plots.fig_sweeps(_frame(tmp_path)) is None


def test_matrix_images_match_the_packed_arrays(made_sweep_ro: Path):
    run = made_sweep_ro / "ptbc" / "a3-g1.75-b32-cpu-s0"
    layer = plots.read_packed_layer(run)
    dense = plots.read_packed_layer(made_sweep_ro / "ptbc" / "dense-cpu-s0", layer.name)
    left, right, cols, shown = plots.matrix_images(
        layer, dense.nonzero_pattern(), max_rows=16, max_cols=10
    )
    assert left.shape == (16, len(cols)) and right.shape == (16, shown) and len(cols) <= 10
    kept = layer.control[:16, :shown] >= 0
    # Each packed cell is one kept weight in its own group's columns.
    assert (left >= 2).sum() == kept.sum() == (right >= 2).sum()
    before = dense.nonzero_pattern()[:16][:, cols]
    assert ((left == plots.REMOVED) | (left >= 2)).sum() == before.sum()
    g = 0
    for j, c in enumerate(cols):
        while c not in layer.group_cols[layer.group_ptr[g] : layer.group_ptr[g + 1]]:
            g += 1
        assert set(np.unique(left[:, j])) <= {
            plots.ZERO,
            plots.REMOVED,
            2 + g % len(plots.GROUP_COLORS),
        }


def test_matrix_figure_needs_the_npz(made_sweep: Path):
    run = made_sweep / "ptbc" / "a3-g1.75-b32-cpu-s0"
    fig, caption = plots.fig_matrix(run, "a3-g1.75-b32-cpu-s0", max_rows=16, max_cols=12)
    assert (
        "first 16 of 32 rows" in caption
        and "Cropped" in caption
        and "removed weights are not shown" in caption
    )
    (run / "packed.npz").unlink()
    with pytest.raises(ValueError, match=r"packed\.npz: missing"):
        plots.fig_matrix(run, "a3-g1.75-b32-cpu-s0")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        plots.read_packed_layer(run, "nope")


def test_spiking_figure_shows_rates_and_mac_ac_split(tmp_path: Path):
    make_sweep(tmp_path, model="nmt", alphas=(2,), extra=(), hidden=8)
    runs = load_runs(tmp_path)
    rates = {str(r.run_dir): r.metrics["spike_rates"] for r in runs.finished}
    df = runs_frame(runs.finished)
    fig = plots.fig_spiking(df, rates)
    lines = _lines(fig.axes[0])
    assert set(lines) == {"dense-cpu-s0", "a2-g1.75-b32-cpu-s0"}
    dense = next(r for r in runs.finished if r.run_id == "dense-cpu-s0")
    assert lines["dense-cpu-s0"][:, 1].tolist() == pytest.approx(
        [100 * v for v in dense.metrics["spike_rates"].values()]
    )
    bars = fig.axes[1].patches
    assert len(bars) == 4  # MAC and accumulate bars for two runs
    suffix = fig.axes[1].get_xlabel().removeprefix("operations per token")
    scale = {"": 1.0, " (thousands)": 1e3, " (millions)": 1e6}[suffix]
    assert bars[0].get_width() * scale == pytest.approx(dense.metrics["macs_per_token"])
    assert bars[2].get_width() * scale == pytest.approx(dense.metrics["acs_per_token"])
    assert plots.fig_spiking(_frame(tmp_path).assign(run_dir="x"), {}) is None


def test_save_figure_writes_png_and_pdf(made_sweep_ro: Path, tmp_path: Path):
    fig = plots.fig_sparsity_quality(_frame(made_sweep_ro))
    paths = plots.save_figure(fig, tmp_path, "fig1")
    assert [p.name for p in paths] == ["fig1.png", "fig1.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:5] == b"%PDF-"


def test_made_packed_files_load_with_compress_packing_and_patterns_agree(made_sweep_ro: Path):
    # The made records follow PACKED_FORMAT closely enough for the pipeline's own loader, and the
    # report's reading of a layer gives the nonzero pattern the pipeline would unpack.
    from compress.packing import PackedModel, unpack_dense

    run = made_sweep_ro / "ptbc" / "a3-g1.75-b8-cpu-s0"
    for layer in PackedModel.load(run / "packed").layers:
        mine = plots.read_packed_layer(run, layer.name)
        np.testing.assert_array_equal(mine.nonzero_pattern(), unpack_dense(layer) != 0)


def test_spiking_figure_falls_back_to_packed_rates_and_hwsim_counts(tmp_path: Path):
    # compress.run records spike rates in packed.json (input_spike_rate) and op counts in
    # hwsim.json; metrics.json may carry neither.
    from reports.build import spike_rates_of

    make_sweep(tmp_path, model="nmt", alphas=(2,), extra=(), hidden=8)
    for metrics in tmp_path.glob("nmt/*/metrics.json"):
        data = json.loads(metrics.read_text())
        data.update(spike_rates=None, macs_per_token=None, acs_per_token=None)
        metrics.write_text(json.dumps(data))
    runs = load_runs(tmp_path)
    rates = {str(r.run_dir): spike_rates_of(r) for r in runs.finished}
    packed = json.loads((tmp_path / "nmt" / "dense-cpu-s0" / "packed.json").read_text())
    want = {
        e["name"]: e["input_spike_rate"]
        for e in packed["layers"]
        if e["input_spike_rate"] is not None
    }
    assert rates[str(tmp_path / "nmt" / "dense-cpu-s0")] == want and want
    fig = plots.fig_spiking(runs_frame(runs.finished), rates)
    assert fig.axes[1].get_xlabel().startswith("operations per workload (hwsim)")
    hw = json.loads((tmp_path / "nmt" / "dense-cpu-s0" / "hwsim.json").read_text())["total"]
    suffix = fig.axes[1].get_xlabel().removeprefix("operations per workload (hwsim)")
    scale = {"": 1.0, " (thousands)": 1e3, " (millions)": 1e6}[suffix]
    assert fig.axes[1].patches[0].get_width() * scale == pytest.approx(hw["macs"])
