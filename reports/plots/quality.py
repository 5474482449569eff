"""Figures 1 and 2: nonzero weights against quality, and cycles and energy against quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.plots.frame import (
    dense_rows,
    draw_anchors,
    draw_dense,
    draw_small_dense,
    num_text,
    pareto_front,
    quality,
    reference_bits,
    run_meta,
    series_label,
    small_dense_rows,
    styles_by_alpha,
    ylabel,
)
from reports.plots.style import marker_size, new_figure


def fig_sparsity_quality(df: pd.DataFrame) -> Figure | None:
    """Nonzero weights (% of the dense count) against quality, one line per alpha (other bit
    widths as their own series), the dense baseline starred."""
    comp = df[df["kind"] == "compressed"]
    if comp.empty:
        return None
    model, preset, metric, _ = run_meta(df)
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    ref = reference_bits(df)
    styles = styles_by_alpha(df)
    x_all = 100.0 * df["nonzero_weights"] / df["weights_total"]
    q_all = quality(df)
    for i, (key, st) in enumerate(styles.items()):
        sel = (comp["alpha"] == key[0]) & (comp["bits"] == key[1])
        idx = comp.index[sel]
        order = np.argsort(x_all[idx].to_numpy(), kind="stable")
        xs, ys = x_all[idx].to_numpy()[order], q_all[idx].to_numpy()[order]
        size = marker_size(i, len(styles))
        ax.plot(
            xs, ys, label=series_label(key[0], key[1], ref), markersize=size, linewidth=1.5, **st
        )
    for i in dense_rows(df).index[:1]:
        draw_dense(ax, x_all[i], q_all[i])
    draw_anchors(ax, df)
    ax.set_xlabel("nonzero weights (% of the dense model's weights)")
    ax.set_ylabel(ylabel(df))
    ax.set_title(f"{model} ({preset} preset): sparsity against quality")
    ax.grid(True, color="0.9")
    ax.legend(fontsize=8, loc="best", handlelength=3.5)
    return fig


# --- figure 2: cycles, energy and array columns against quality ---------------------------------

# column -> what the "every run: the same ..." note calls it
_COST_NAMES = {"cycles": "cycles", "energy_pj": "energy", "array_columns": "array columns"}


def fig_cost_quality(df: pd.DataFrame) -> Figure | None:
    """Cycles, energy and array columns against quality, every run a point, the Pareto front drawn
    through the runs nothing beats on both cost and quality (the baselines included); the
    equal-columns small dense runs are a series of their own."""
    if df["kind"].eq("compressed").sum() == 0:
        return None
    model, preset, metric, hib = run_meta(df)
    fig = new_figure(15.5, 4.4)
    axes = fig.subplots(1, 3, sharey=True)
    ref = reference_bits(df)
    styles = styles_by_alpha(df)
    q = quality(df)
    hw = df["array"].iloc[0] or "?"
    for ax, col, scale, xlabel in (
        (axes[0], "cycles", 1.0, f"cycles per workload (hwsim, {hw} array)"),
        (axes[1], "energy_pj", 1e-6, "energy per workload (µJ, hwsim 45 nm table)"),
        (axes[2], "array_columns", 1.0, "array columns (packed groups of the targeted matrices)"),
    ):
        x = df[col] * scale
        for key, st in styles.items():
            sel = (df["kind"] == "compressed") & (df["alpha"] == key[0]) & (df["bits"] == key[1])
            ax.plot(
                x[sel],
                q[sel],
                label=series_label(key[0], key[1], ref),
                markersize=7,
                color=st["color"],
                marker=st["marker"],
                linestyle="none",
            )
        front = pareto_front(x.to_numpy(), q.to_numpy(), hib)
        fx, fq = x.to_numpy()[front], q.to_numpy()[front]
        order = np.argsort(fx, kind="stable")
        ax.plot(
            fx[order],
            fq[order],
            drawstyle="steps-post",
            color="black",
            linewidth=1.6,
            marker="o",
            markersize=13,
            markerfacecolor="none",
            markeredgewidth=1.2,
            label="Pareto front",
            zorder=4,
        )
        for i in dense_rows(df).index[:1]:
            draw_dense(ax, x[i], q[i])
        small = small_dense_rows(df).index
        draw_small_dense(ax, x[small], q[small])
        draw_anchors(ax, df)
        if x.nunique() == 1:
            # e.g. matrices that fit one array tile whatever the packing: say so, or the reader
            # hunts for a spread that is not there.
            ax.text(
                0.02,
                0.02,
                f"every run: the same {_COST_NAMES[col]} ({num_text(x.iloc[0])})",
                transform=ax.transAxes,
                fontsize=8,
                color="0.3",
            )
        ax.set_xlabel(xlabel)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
        ax.grid(True, color="0.9")
    axes[0].set_ylabel(ylabel(df))
    axes[2].legend(fontsize=8, loc="best")
    fig.suptitle(f"{model} ({preset} preset): hardware cost against quality")
    return fig
