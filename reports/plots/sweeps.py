"""Figure 3: packing efficiency and quality against gamma and against alpha."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from reports.plots.frame import (
    dense_rows,
    draw_anchors,
    efficiency_limits,
    quality,
    reference_bits,
    run_meta,
    styles_by_alpha,
    ylabel,
)
from reports.plots.style import new_figure, style


def _sweep_lines(comp: pd.DataFrame, x: str, by: str) -> dict[float, pd.DataFrame]:
    """Runs grouped by `by`, kept where `x` takes at least two values."""
    out = {}
    for value, grp in comp.groupby(by):
        if grp[x].nunique() >= 2:
            out[value] = grp.groupby(x, as_index=False).mean(numeric_only=True).sort_values(x)
    return out


def fig_sweeps(df: pd.DataFrame) -> Figure | None:
    """As in the column-combining paper: packing efficiency and quality against gamma (one line
    per alpha) and against alpha (one line per gamma), at the common bit width. Seeds averaged."""
    ref = reference_bits(df) if df["kind"].eq("compressed").any() else None
    if ref is None:
        return None
    comp = df[(df["kind"] == "compressed") & (df["bits"] == ref)].copy()
    comp["quality"] = quality(comp)
    gamma_lines = _sweep_lines(comp, "gamma", "alpha")
    alpha_lines = _sweep_lines(comp, "alpha", "gamma")
    if not gamma_lines and not alpha_lines:
        return None
    model, preset, metric, hib = run_meta(df)
    # Only the sweeps the runs hold: an empty panel pair would take half the figure.
    panels = [
        (lines, x, sym, title, xlabel)
        for lines, x, sym, title, xlabel in (
            (
                gamma_lines,
                "gamma",
                "α",
                "γ sweep",
                "γ (conflict budget: pruned weights per group / rows)",
            ),
            (
                alpha_lines,
                "alpha",
                "γ",
                "α sweep",
                "α (max_paths: columns combined per array column)",
            ),
        )
        if lines
    ]
    fig = new_figure(5.2 * len(panels) + 0.4, 6.6)
    axes = fig.subplots(2, len(panels), sharex="col", squeeze=False)
    dense = dense_rows(df)
    alpha_styles = styles_by_alpha(df)
    for col, (lines, x, legend_sym, title, xlabel) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        for i, (value, grp) in enumerate(sorted(lines.items())):
            # Lines per alpha keep the alpha's style from Figures 1 and 2.
            st = alpha_styles.get((int(value), ref), style(i)) if x == "gamma" else style(i)
            label = f"{legend_sym}={value:g}"
            top.plot(grp[x], grp["packing_efficiency"], label=label, markersize=7, **st)
            bottom.plot(grp[x], grp["quality"], label=label, markersize=7, **st)
        efficiency_limits(top, [v for g in lines.values() for v in g["packing_efficiency"]])
        if x == "alpha":
            bottom.set_xticks(sorted({int(v) for g in lines.values() for v in g["alpha"]}))
        if not dense.empty:
            bottom.axhline(
                quality(dense).iloc[0],
                color="black",
                linestyle=":",
                linewidth=1.0,
                label="dense baseline",
            )
        draw_anchors(bottom, df)
        top.set_title(title)
        top.set_ylabel("packing efficiency\n(nonzeros / packed array cells)")
        bottom.set_ylabel(ylabel(df))
        bottom.set_xlabel(xlabel)
        for ax in (top, bottom):
            ax.grid(True, color="0.9")
        bottom.legend(fontsize=8, loc="best", handlelength=3.5)
    sep = ": " if len(panels) > 1 else "\n"  # one panel column is too narrow for one line
    fig.suptitle(f"{model} ({preset} preset){sep}column-combining parameters, {ref}-bit weights")
    return fig
