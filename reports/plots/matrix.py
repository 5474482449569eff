"""Figure 4: one weight matrix before and after combining, read from a run's packed files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from common.packed import PackedLayer, read_figures
from reports.plots.style import new_figure


def read_packed_layer(run_dir: str | os.PathLike, layer: str | None = None) -> PackedLayer:
    """One layer of a run's packed.json + packed.npz (the first LSTM or GRU layer when `layer`
    is None), read and checked by `common.packed`."""
    stem = Path(run_dir) / "packed"
    if layer is None:
        _, figures = read_figures(stem.with_name("packed.json"))
        gated = [fig for fig in figures if fig.kind in GATE_NAMES]
        layer = (gated or figures)[0].name
    return PackedLayer.load(stem, layer)


GROUP_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")
ZERO, REMOVED = 0, 1
# the gate blocks of each recurrent kind, in row order (common.packed.GATES counts them)
GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def empty_rows_note(layer: PackedLayer) -> str:
    """How many rows compression left with no weight (per gate for an LSTM or a GRU, where such
    a row is a gate stuck at its bias)."""
    empty = ~(layer.control >= 0).any(axis=1)
    gates = GATE_NAMES.get(layer.kind)
    if gates is None:
        return f"Rows left with no weight: {int(empty.sum())} of {layer.rows}"
    blocks = np.split(empty, len(gates))
    counts = ", ".join(f"{g} {int(b.sum())}" for g, b in zip(gates, blocks))
    return f"Gate rows left with no weight: {counts} (of {layer.rows // len(gates)} per gate)"


def matrix_images(
    layer: PackedLayer, before: np.ndarray | None, max_rows: int = 64, max_cols: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Images for the figure: (columns of the first groups, grouped; packed groups) over the first
    `max_rows` rows. Cell codes: 0 zero, 1 removed (nonzero in `before`, not kept), 2+k kept in a
    group of colour k. Also returns the shown column ids and the number of groups shown."""
    rows = min(layer.rows, max_rows)
    shown_groups, ncols = 0, 0
    for g in range(layer.groups):
        size = int(layer.group_ptr[g + 1] - layer.group_ptr[g])
        if shown_groups and ncols + size > max_cols:
            break
        shown_groups, ncols = shown_groups + 1, ncols + size
    col_ids = layer.group_cols[: layer.group_ptr[shown_groups]]
    group_of = np.repeat(np.arange(shown_groups), np.diff(layer.group_ptr[: shown_groups + 1]))
    kept = layer.nonzero_pattern()[:rows][:, col_ids]
    colour = 2 + (group_of % len(GROUP_COLORS))
    left = np.where(kept, colour[None, :], ZERO)
    if before is not None:
        left = np.where(~kept & before[:rows][:, col_ids], REMOVED, left)
    packed = layer.control[:rows, :shown_groups] >= 0
    right = np.where(packed, 2 + (np.arange(shown_groups) % len(GROUP_COLORS))[None, :], ZERO)
    return left, right, col_ids, shown_groups


def fig_matrix(
    run_dir: str | os.PathLike,
    run_id: str,
    layer: str | None = None,
    dense_dir: str | os.PathLike | None = None,
    max_rows: int = 64,
    max_cols: int = 64,
) -> tuple[Figure, str]:
    """One layer before and after combining, and a caption saying what is cropped."""
    pl = read_packed_layer(run_dir, layer)
    before, before_note = None, "no dense run's packed file, so removed weights are not shown"
    if dense_dir is not None and (Path(dense_dir) / "packed.json").is_file():
        dense = read_packed_layer(dense_dir, pl.name)
        if (dense.rows, dense.cols) == (pl.rows, pl.cols):
            before = dense.nonzero_pattern()
            before_note = "light gray = nonzero in the dense run, removed by compression"
    left, right, col_ids, shown = matrix_images(pl, before, max_rows, max_cols)
    rows = left.shape[0]
    cmap = ListedColormap(["white", "#c8c8c8", *GROUP_COLORS])
    # Cells are equally wide within a panel; the packed panel gets a floor on its width so that
    # its title and ticks fit even when it holds a handful of groups.
    ratios = [max(left.shape[1], 1), max(right.shape[1], 0.4 * left.shape[1], 1)]
    fig = new_figure(10.0, 5.6)
    axes = fig.subplots(1, 2, width_ratios=ratios)
    for ax, img in zip(axes, (left, right)):
        ax.imshow(
            img,
            cmap=cmap,
            vmin=-0.5,
            vmax=len(GROUP_COLORS) + 1.5,
            interpolation="nearest",
            aspect="auto",
        )
    axes[0].set_ylabel(f"weight-matrix rows (outputs; first {rows} of {pl.rows})")
    # White rules between groups make each group's band of columns visible in grayscale too.
    for b in np.diff(pl.group_ptr[: shown + 1]).cumsum()[:-1]:
        axes[0].axvline(b - 0.5, color="white", linewidth=0.8)
    axes[0].set_title(
        f"before: {len(col_ids)} of {pl.cols} input columns, in group order", fontsize=10
    )
    axes[1].set_title(f"after: {shown} of {pl.groups} groups,\none array column each", fontsize=10)
    axes[0].set_xlabel("shown input columns, reordered by group (colour = group)")
    axes[1].set_xlabel("packed array columns")
    handles = [
        Patch(facecolor=GROUP_COLORS[0], label="kept weight (colour = its group)"),
        Patch(facecolor="white", edgecolor="0.5", label="zero"),
    ]
    if before is not None:
        handles.insert(1, Patch(facecolor="#c8c8c8", label="removed (nonzero in dense run)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(
        f"{run_id}, layer {pl.name}: {pl.rows}×{pl.cols} → {pl.rows}×{pl.groups} array columns (α={pl.max_paths}, γ={pl.gamma:g})",
        fontsize=11,
    )
    if rows == pl.rows and shown == pl.groups:
        crop = "The whole matrix is shown"
    else:
        crop = (
            f"Cropped for legibility: the first {rows} of {pl.rows} rows and the first {shown} of "
            f"{pl.groups} groups ({len(col_ids)} of {pl.cols} columns)"
        )
    caption = (
        f"Layer {pl.name} of run {run_id} ({pl.rows}×{pl.cols} weights, {pl.groups} groups, "
        f"α={pl.max_paths}, γ={pl.gamma:g}). {crop}; left, those columns in group order; right, "
        f"the same groups packed into one array column each. {before_note.capitalize()}. "
        f"{empty_rows_note(pl)}."
    )
    return fig, caption
