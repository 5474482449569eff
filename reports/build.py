"""The report: tables and figures for every (model, preset) under a runs folder, and OUT/index.md.

    OUT/index.md                                   one page linking everything
    OUT/tables/<model>-<preset>.{md,csv,tex}       comparison table
    OUT/tables/all_runs.csv                        every finished run, every column of the records
    OUT/figures/<model>-<preset>-<figure>.{png,pdf}

Only run records are read (config.json, metrics.json, hwsim.json, and packed.json/.npz for the
matrix figure); never a checkpoint.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from common.atomic import atomic_write_text
from reports import plots, tables
from reports.records import RunRecord, RunSet, load_runs, read_json, record_row, skip_reason

log = logging.getLogger(__name__)

FIGURES = {
    "sparsity_quality": "Figure 1",
    "cost_quality": "Figure 2",
    "sweeps": "Figure 3",
    "matrix": "Figure 4",
    "spiking": "Figure 5",
    "cycles_alpha": "Figure 6",
}


@dataclass
class GroupReport:
    model: str
    preset: str
    table: pd.DataFrame
    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, tuple[list[Path], str]] = field(
        default_factory=dict
    )  # key -> (files, caption)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> reason
    damaged: str = ""  # why a figure was left out for a damaged file, else ""


@dataclass
class Report:
    out: Path
    index: Path
    runs: RunSet
    groups: list[GroupReport]
    # damaged files met while drawing (a figure left out): one line each, for the CLI to print
    warnings: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def spike_rates_of(rec: RunRecord) -> dict[str, float]:
    """Layer -> input spike rate: metrics.json's spike_rates, else the packed.json layers'
    input_spike_rate (where compress.run records them), else nothing."""
    rates = rec.metrics.get("spike_rates")
    if rates:
        return {str(k): float(v) for k, v in rates.items()}
    path = rec.run_dir / "packed.json"
    if not path.is_file():
        return {}
    layers = read_json(path).get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"{path}: key 'layers' must be a list")
    return {
        str(e["name"]): float(e["input_spike_rate"])
        for e in layers
        if isinstance(e, dict) and isinstance(e.get("input_spike_rate"), int | float)
    }


def _pick_matrix_run(df: pd.DataFrame, wanted: str | None) -> pd.Series | None:
    """The run Figure 4 shows: `wanted`, else a combined run (alpha > 1) with a packed file at
    the common bit width, preferring compress.run's default alpha 3 and gamma 1.75, then the
    largest alpha. (alpha 1 does not combine: its picture would show nothing.)"""
    if wanted is not None:
        match = df[df["run_id"] == wanted]
        return None if match.empty else match.iloc[0]
    comp = df[(df["kind"] == "compressed") & (df["alpha"] > 1)]
    comp = comp[[(Path(d) / "packed.json").is_file() for d in comp["run_dir"]]]
    if comp.empty:
        return None
    ref = plots.reference_bits(df)
    pool = comp[comp["bits"] == ref] if (comp["bits"] == ref).any() else comp
    pool = pool.assign(
        _not3=pool["alpha"] != 3, _neg_alpha=-pool["alpha"], _dg=(pool["gamma"] - 1.75).abs()
    )
    return pool.sort_values(["_not3", "_neg_alpha", "_dg", "run_id"]).iloc[0]


def _damaged_packed(*run_dirs: str | os.PathLike | None) -> str | None:
    """The first packed.npz (or packed.json) of `run_dirs` that cannot be read, else None."""
    from common.packed import PackedModel

    for d in run_dirs:
        if d is not None and (Path(d) / "packed.json").is_file():
            try:
                PackedModel.load(Path(d) / "packed")
            except Exception:  # whatever it raises, this is the file that failed
                return f"{Path(d) / 'packed.npz'} (or its packed.json) cannot be read"
    return None


def _captions(df: pd.DataFrame) -> dict[str, str]:
    model, preset, metric, hib = plots._meta(df)
    qual = tables.quality_label(metric, hib, plots.quality_split(df))
    ref = plots.reference_bits(df) if df["kind"].eq("compressed").any() else 32
    anchors = plots.anchors_for(model, preset, metric)
    anchor_note = (
        " The dashed gray line is the published number ("
        + "; ".join(a.label for a in anchors)
        + ")."
        if anchors
        else " No published anchor is drawn: anchors apply only to the paper preset."
        if preset != "paper"
        else f" No published anchor is known for {model} ({metric})."
    )
    return {
        "sparsity_quality": f"Nonzero weights (% of the dense model's targeted weights) against {qual}; one line per α (runs at other bit widths as their own series). The star and dotted line mark the dense baseline.{anchor_note}",
        "cost_quality": f"hwsim cycles and energy per workload, and the array columns of the packed model, against {qual}; every run is a point, the black step line with rings is the Pareto front (no run is both cheaper and better). The hollow crosses are the equal-columns small dense models (compress.run --small-dense), the baseline combining must beat at equal cycles.{anchor_note}",
        "sweeps": f"Column-combining parameters at {ref}-bit weights: packing efficiency and {qual} against γ (one line per α) and against α (one line per γ), for whichever of the two the runs vary; seeds averaged. The dotted line is the dense baseline.",
        "cycles_alpha": "hwsim cycles per workload against α on 16x16, 32x32, 64x64 and 128x128 arrays, each run's packed.json simulated again (hwsim defaults beside array and dataflow; runs of the setting in the legend, seeds averaged). The star at α=1 is the dense model, the hollow crosses the small dense models at their column reduction (dense columns / their columns). Where one array fold already holds every K, more combining buys no cycles.",
        "spiking": "Spike rate at each layer's input (one marker per run, the dense run starred; runs side by side within a layer) and the split of work between multiply-accumulates and spike-driven accumulates (per token, or per hwsim workload when metrics.json has no per-token counts). Rates come from metrics.json, else from packed.json.",
    }


def _group_report(
    df: pd.DataFrame,
    out: Path,
    formats: Sequence[str],
    matrix_run: str | None,
    matrix_layer: str | None,
    spike_rates: dict,
) -> GroupReport:
    model, preset = str(df["model"].iloc[0]), str(df["preset"].iloc[0])
    slug = _slug(f"{model}-{preset}")
    table = tables.comparison_table(df)
    rep = GroupReport(model, preset, table)
    caption = f"{model}, {preset} preset: one row per run, dense first; ratios are run / dense."
    rep.tables["md"] = atomic_write_text(out / "tables" / f"{slug}.md", tables.to_markdown(table))
    rep.tables["csv"] = atomic_write_text(out / "tables" / f"{slug}.csv", tables.to_csv(table))
    rep.tables["tex"] = atomic_write_text(
        out / "tables" / f"{slug}.tex", tables.to_latex(table, caption, f"tab:{slug}")
    )
    fig_dir = out / "figures"
    captions = _captions(df)
    builders = {
        "sparsity_quality": (lambda: plots.fig_sparsity_quality(df), "no compressed runs"),
        "cost_quality": (lambda: plots.fig_cost_quality(df), "no compressed runs"),
        "sweeps": (lambda: plots.fig_sweeps(df), "no series in which γ or α takes two values"),
        "spiking": (
            lambda: plots.fig_spiking(df, spike_rates),
            "no spiking runs (no spike_rates in metrics.json)",
        ),
        "cycles_alpha": (
            lambda: plots.fig_cycles_alpha(df),
            "no compressed run has packed.json",
        ),
    }
    for key, (build, reason) in builders.items():
        fig = build()
        if fig is None:
            rep.skipped[key] = reason
            continue
        rep.figures[key] = (
            plots.save_figure(fig, fig_dir, f"{slug}-{key}", formats),
            captions[key],
        )
    pick = _pick_matrix_run(df, matrix_run)
    if pick is None:
        rep.skipped["matrix"] = (
            f"run {matrix_run!r} is not among these runs"
            if matrix_run
            else "no combined run (alpha > 1) has packed.json/packed.npz"
        )
    elif not (Path(pick["run_dir"]) / "packed.json").is_file():
        rep.skipped["matrix"] = f"run {pick['run_id']} has no packed.json/packed.npz"
    else:
        dense = df[(df["kind"] == "dense") & (df["seed"] == pick["seed"])]
        dense_dir = dense["run_dir"].iloc[0] if not dense.empty else None
        try:
            fig, cap = plots.fig_matrix(
                pick["run_dir"], str(pick["run_id"]), matrix_layer, dense_dir
            )
        except (ValueError, OSError) as e:  # common.packed's DamagedFileError is a ValueError
            # a damaged packed.npz costs the one figure drawn from it, not the report
            where = _damaged_packed(pick["run_dir"], dense_dir) or str(pick["run_dir"])
            rep.skipped["matrix"] = rep.damaged = skip_reason(f"Figure 4: {where}: {e}")
            return rep
        if matrix_run is None:
            cap += " Run chosen as α=3 at γ≈1.75 when present, else the largest α; another with --matrix-run."
        rep.figures["matrix"] = (plots.save_figure(fig, fig_dir, f"{slug}-matrix", formats), cap)
    return rep


def _rel(path: Path, out: Path) -> str:
    return path.relative_to(out).as_posix()


def _index(report_groups: list[GroupReport], runs: RunSet, out: Path, runs_dir: Path) -> str:
    n = len(runs.finished) + len(runs.failed) + len(runs.running)
    lines = [
        "# LSTMPack report",
        "",
        f"Built by `python -m reports` from the run records under `{runs_dir}`: {n} runs "
        f"({len(runs.finished)} finished, {len(runs.failed)} failed, {len(runs.running)} running"
        + (f"; {len(runs.skipped)} skipped as unreadable" if runs.skipped else "")
        + "). "
        "Only config.json, metrics.json, hwsim.json (and packed.json/.npz for Figure 4) are read.",
        "",
        "All finished runs, every column: [tables/all_runs.csv](tables/all_runs.csv)."
        if runs.finished
        else "No finished runs: nothing to tabulate or plot.",
        "",
    ]
    for g in report_groups:
        t = g.table
        dense = t[t["kind"] == "dense"]
        lines += [f"## {g.model}, {g.preset} preset", ""]
        metric = str(t["metric"].iloc[0])
        lines.append(
            f"Quality: {tables.quality_label(metric, bool(t['higher_is_better'].iloc[0]))}. "
            + (
                f"Dense baseline: `{dense['run_id'].iloc[0]}`; ratio columns are run / dense, Δ is run − dense."
                if not dense.empty
                else 'No dense baseline (config kind "dense") among these runs: the ratio columns are empty.'
            )
        )
        lines += [
            "",
            "Table: " + " · ".join(f"[{k.upper()}]({_rel(p, out)})" for k, p in g.tables.items()),
            "",
        ]
        lines += [tables.to_markdown(t), ""]
        for key, label in FIGURES.items():
            if key in g.figures:
                files, caption = g.figures[key]
                png = next((p for p in files if p.suffix == ".png"), files[0])
                others = " · ".join(f"[{p.suffix[1:].upper()}]({_rel(p, out)})" for p in files)
                title = f"{label} ({g.model}, {g.preset})"
                lines += [
                    f"**{title}.** {caption} ({others})",
                    "",
                    f"![{title}]({_rel(png, out)})",
                    "",
                ]
            elif key in g.skipped:
                lines += [f"**{label}** not drawn: {g.skipped[key]}.", ""]
    if runs.failed:
        lines += ["## Failed runs", ""]
        for r in runs.failed:
            lines.append(f"- `{r.name}`: {r.error or 'no error message recorded'}")
        lines.append("")
    if runs.running:
        lines += ['## Unfinished runs (status "running"; not in the tables)', ""]
        lines += [f"- `{r.name}`" for r in runs.running] + [""]
    if runs.ignored:
        lines += ["## Folders ignored", ""]
        lines += [f"- `{p}`: {why}" for p, why in runs.ignored] + [""]
    if runs.skipped:
        lines += ["## Records skipped (damaged or malformed; not in the tables)", ""]
        lines += [f"- `{p}`: {why}" for p, why in runs.skipped] + [""]
    return "\n".join(lines)


def _frame(runs: RunSet) -> tuple[pd.DataFrame, RunSet, dict[str, dict[str, float]]]:
    """The finished runs as a frame, with their spike rates; a run whose packed.json cannot be
    read (the cycles and spike rates come from it) moves to the skipped runs."""
    rows, kept, skipped, spikes = [], [], list(runs.skipped), {}
    for rec in runs.finished:
        try:
            row, rates = record_row(rec), spike_rates_of(rec)
        except (ValueError, KeyError, TypeError) as e:
            skipped.append((rec.run_dir, skip_reason(str(e))))
            continue
        rows.append(row)
        kept.append(rec)
        spikes[str(rec.run_dir)] = rates
    runs = replace(runs, finished=tuple(kept), skipped=tuple(skipped))
    return pd.DataFrame(rows), runs, spikes


def build_report(
    runs_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    matrix_run: str | None = None,
    matrix_layer: str | None = None,
) -> Report:
    """Read every run record under `runs_dir` and write tables, figures and index.md to `out`.
    A malformed or damaged record is skipped with a warning naming the file (listed in
    index.md); ValueError only when no record can be read at all."""
    runs_dir, out = Path(runs_dir), Path(out)
    runs = load_runs(runs_dir)
    groups: list[GroupReport] = []
    frame, runs, spikes = _frame(runs)
    if not frame.empty:
        atomic_write_text(out / "tables" / "all_runs.csv", frame.to_csv(index=False))
        for _, df in frame.groupby(["model", "preset"], sort=True):
            groups.append(
                _group_report(
                    df.reset_index(drop=True), out, formats, matrix_run, matrix_layer, spikes
                )
            )
    index = atomic_write_text(out / "index.md", _index(groups, runs, out, runs_dir))
    warnings = [g.damaged for g in groups if g.damaged]
    return Report(out, index, runs, groups, warnings)
