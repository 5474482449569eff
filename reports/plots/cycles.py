"""Figure 6: cycles against alpha on four square arrays, from each run's packed.json.

On an array as wide as the matrices, every alpha past the one that brings each K under the array
height gives the same cycles (the sweep's flat line); smaller arrays fold K several times, and
there each combined column saved is a fold saved. One line per array shows both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.cycles import ARRAYS, cycles_column
from reports.plots.frame import (
    dense_rows,
    draw_small_dense,
    reference_bits,
    run_meta,
    small_dense_rows,
)
from reports.plots.style import DENSE_STYLE, new_figure, style

DEFAULT_GAMMA = 1.75  # compress.run's default: the setting a tie between settings falls to


def alpha_series(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The compressed runs the lines go through, and a note naming their setting: the runs at the
    common bit width and at the (gamma, sparsity) most runs share (ties: gamma nearest 1.75, then
    the lower sparsity), so that a line varies alpha alone. Empty when no run has cycles."""
    comp = df[(df["kind"] == "compressed") & df[cycles_column(ARRAYS[0])].notna()]
    if comp.empty:
        return comp, ""
    bits = reference_bits(comp)
    pool = comp[comp["bits"] == bits]
    counts = pool.groupby(["gamma", "sparsity"]).size()
    gamma, sparsity = max(
        counts.index, key=lambda k: (counts[k], -abs(k[0] - DEFAULT_GAMMA), -k[1])
    )
    runs = pool[(pool["gamma"] == gamma) & (pool["sparsity"] == sparsity)]
    note = f"γ={gamma:g}" + (f", sparsity {sparsity:g}" if sparsity else "") + f", {bits}-bit"
    return runs, note


def fig_cycles_alpha(df: pd.DataFrame) -> Figure | None:
    """Cycles per workload against alpha, one line per array of reports.cycles.ARRAYS (runs of one
    setting, seeds averaged); the dense model starred at alpha 1 and the small dense models as
    hollow crosses at their column reduction (dense columns / their columns)."""
    if cycles_column(ARRAYS[0]) not in df:
        return None
    runs, note = alpha_series(df)
    if runs.empty:
        return None
    model, preset, _, _ = run_meta(df)
    fig = new_figure(6.8, 4.8)
    ax = fig.add_subplot()
    dense = dense_rows(df)
    small = small_dense_rows(df)
    for i, array in enumerate(ARRAYS):
        col = cycles_column(array)
        line = runs.groupby("alpha")[col].mean().dropna()
        ax.plot(line.index, line.to_numpy(), label=f"{array} array", markersize=7, **style(i))
        if not dense.empty and np.isfinite(dense[col].iloc[0]):
            label = "dense baseline" if i == 0 else "_nolegend_"
            ax.plot([1], [dense[col].iloc[0]], label=label, zorder=5, **DENSE_STYLE)
        if not dense.empty and not small.empty:
            shown = small[small[col].notna()]
            reduction = dense["array_columns"].iloc[0] / shown["array_columns"]
            draw_small_dense(ax, reduction, shown[col])
    # the arrays first, then one entry for each baseline, however many arrays drew it
    entries = dict(zip(*reversed(ax.get_legend_handles_labels())))
    keep = sorted(entries.items(), key=lambda e: not e[0].endswith(" array"))
    ax.set_yscale("log")
    ax.set_xticks(sorted({int(a) for a in runs["alpha"]} | {1}))
    ax.set_xlabel("α (max_paths: columns combined per array column)")
    dataflow = str(df["dataflow"].iloc[0] or "ws").upper()
    ax.set_ylabel(f"cycles per workload (hwsim, {dataflow}, log scale)")
    ax.set_title(f"{model} ({preset} preset): cycles against α on four arrays")
    ax.grid(True, which="both", color="0.9")
    labels, handles = zip(*keep)
    ax.legend(handles, labels, fontsize=8, loc="best", title=f"runs at {note}", title_fontsize=8)
    return fig
