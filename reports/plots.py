"""Figures from run records: matplotlib Figure objects (Agg canvas, no pyplot state).

Every series has a label, a distinct marker and line style (readable in grayscale), axes carry
units, the dense baseline is drawn as a black star plus a dotted line, and published anchors
are drawn only for runs of the matching model on the "paper" preset. Each function returns the
Figure, or None when the runs hold nothing to draw (the caller says why in the index).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reports.records import read_json
from reports.tables import quality_label

# Okabe-Ito colours (colour-blind safe), ordered so neighbours differ in lightness too.
# Black is kept for the dense baseline and the Pareto front.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#7F4F24", "#999999")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
DENSE_STYLE = {"marker": "*", "markersize": 15, "color": "black", "linestyle": "none"}
DPI = 150


@dataclass(frozen=True)
class Anchor:
    """A published result drawn as a reference line."""

    model: str
    metric: str
    value: float
    label: str


# Drawn only for preset "paper": a cpu-preset model is smaller and trained shorter, and a line at
# the paper's number beside it would read as a failure to reproduce.
ANCHORS = (
    Anchor("ptbc", "bpc", 1.175, "published dense AWD-LSTM, 1.175 BPC"),
    Anchor("ptbw", "ppl", 58.8, "published dense AWD-LSTM, 58.8 ppl"),
    Anchor("nmt", "bleu", 36.51, "published dense, 36.51 BLEU (WMT19)"),
)


def anchors_for(model: str, preset: str, metric: str) -> list[Anchor]:
    if preset != "paper":
        return []
    return [a for a in ANCHORS if a.model == model and a.metric == metric]


def style(i: int) -> dict:
    return {
        "color": COLORS[i % len(COLORS)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def marker_size(i: int, n: int) -> float:
    """Earlier series get bigger markers, so runs that land on the same point stay visible as
    nested markers instead of hiding one another."""
    return 6.0 + 5.0 * (n - 1 - i) / max(n - 1, 1)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure, out_dir: str | os.PathLike, stem: str, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Write `stem.<fmt>` for each format (PNG at 150 dpi); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {}  # same records, same bytes
        fig.savefig(path, dpi=DPI, format=fmt, metadata=meta)
        paths.append(path)
    return paths


# --- helpers over the runs frame ---------------------------------------------------------------


def quality_split(df: pd.DataFrame) -> str:
    """Which split the figures plot: "test", else "valid" when some run lacks a test figure."""
    if df["test"].notna().all():
        return "test"
    if df["valid"].notna().all():
        return "valid"
    return "test (valid where test is missing)"


def quality(df: pd.DataFrame) -> pd.Series:
    if quality_split(df) == "valid":
        return df["valid"]
    return df["test"].where(df["test"].notna(), df["valid"])


def _meta(df: pd.DataFrame) -> tuple[str, str, str, bool]:
    row = df.iloc[0]
    return str(row["model"]), str(row["preset"]), str(row["metric"]), bool(row["higher_is_better"])


def _ylabel(df: pd.DataFrame) -> str:
    _, _, metric, hib = _meta(df)
    return quality_label(metric, hib, quality_split(df))


def reference_bits(df: pd.DataFrame) -> int:
    """The weight width most compressed runs share (ties: the wider), for figures that vary
    alpha and gamma only."""
    comp = df[df["kind"] == "compressed"]
    counts = comp["bits"].value_counts()
    return int(max(counts.index, key=lambda b: (counts[b], b)))


def series_label(alpha: int, bits: int, ref_bits: int) -> str:
    return f"α={alpha}" if bits == ref_bits else f"α={alpha}, {bits}-bit"


def _alpha_styles(df: pd.DataFrame) -> dict[tuple[int, int], dict]:
    comp = df[df["kind"] == "compressed"]
    keys = sorted(
        {(int(a), int(b)) for a, b in zip(comp["alpha"], comp["bits"])}, key=lambda k: (k[0], -k[1])
    )
    return {k: style(i) for i, k in enumerate(keys)}


def _draw_dense(ax, x: float, y: float) -> None:
    ax.plot([x], [y], label="dense baseline", zorder=5, **DENSE_STYLE)
    ax.axhline(y, color="black", linestyle=":", linewidth=1.0, zorder=1)


def _draw_anchors(ax, df: pd.DataFrame) -> list[Anchor]:
    model, preset, metric, _ = _meta(df)
    found = anchors_for(model, preset, metric)
    for a in found:
        ax.axhline(a.value, color="0.35", linestyle=(0, (8, 3)), linewidth=1.2, label=a.label)
    return found


def _dense_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["kind"] == "dense"]


def _num_text(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def _efficiency_limits(ax, values: Sequence[float]) -> None:
    """At least 0.1 of packing efficiency on the axis, so a change in the third decimal does not
    look like a trend."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if hi - lo < 0.1:
        mid = (lo + hi) / 2
        lo, hi = max(0.0, mid - 0.05), min(1.0, mid + 0.05) + 0.005
        ax.set_ylim(lo, hi)


def _unit(largest: float) -> tuple[float, str]:
    """A divisor and its axis-label suffix, so tick labels stay short."""
    for scale, name in ((1e9, "billions"), (1e6, "millions"), (1e3, "thousands")):
        if largest >= scale:
            return scale, f" ({name})"
    return 1.0, ""


def pareto_front(
    cost: Sequence[float], qual: Sequence[float], higher_is_better: bool
) -> np.ndarray:
    """Boolean mask of the points no other point beats: at most the cost and at least the quality,
    strictly better in one."""
    c = np.asarray(cost, dtype=float)
    q = np.asarray(qual, dtype=float)
    if not higher_is_better:
        q = -q
    keep = np.isfinite(c) & np.isfinite(q)  # a run without a number is on no front
    for i in np.flatnonzero(keep):
        dominated = (c <= c[i]) & (q >= q[i]) & ((c < c[i]) | (q > q[i]))
        keep[i] = not dominated[keep].any()
    return keep


# --- figure 1: nonzero weights against quality ---------------------------------------------------


def fig_sparsity_quality(df: pd.DataFrame) -> Figure | None:
    """Nonzero weights (% of the dense count) against quality, one line per alpha (other bit
    widths as their own series), the dense baseline starred."""
    comp = df[df["kind"] == "compressed"]
    if comp.empty:
        return None
    model, preset, metric, _ = _meta(df)
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    ref = reference_bits(df)
    styles = _alpha_styles(df)
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
    for i in _dense_rows(df).index[:1]:
        _draw_dense(ax, x_all[i], q_all[i])
    _draw_anchors(ax, df)
    ax.set_xlabel("nonzero weights (% of the dense model's weights)")
    ax.set_ylabel(_ylabel(df))
    ax.set_title(f"{model} ({preset} preset): sparsity against quality")
    ax.grid(True, color="0.9")
    ax.legend(fontsize=8, loc="best", handlelength=3.5)
    return fig


# --- figure 2: cycles and energy against quality -------------------------------------------------


def fig_cost_quality(df: pd.DataFrame) -> Figure | None:
    """Cycles and energy against quality, every run a point, the Pareto front drawn through the
    runs nothing beats on both cost and quality (dense included)."""
    if df["kind"].eq("compressed").sum() == 0:
        return None
    model, preset, metric, hib = _meta(df)
    fig = new_figure(11.0, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    ref = reference_bits(df)
    styles = _alpha_styles(df)
    q = quality(df)
    hw = df["array"].iloc[0] or "?"
    for ax, col, scale, xlabel in (
        (axes[0], "cycles", 1.0, f"cycles per workload (hwsim, {hw} array)"),
        (axes[1], "energy_pj", 1e-6, "energy per workload (µJ, hwsim 45 nm table)"),
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
        for i in _dense_rows(df).index[:1]:
            _draw_dense(ax, x[i], q[i])
        _draw_anchors(ax, df)
        if x.nunique() == 1:
            # e.g. matrices that fit one array tile whatever the packing: say so, or the reader
            # hunts for a spread that is not there.
            ax.text(
                0.02,
                0.02,
                f"every run: the same {col.split('_')[0]} ({_num_text(x.iloc[0])})",
                transform=ax.transAxes,
                fontsize=8,
                color="0.3",
            )
        ax.set_xlabel(xlabel)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
        ax.grid(True, color="0.9")
    axes[0].set_ylabel(_ylabel(df))
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{model} ({preset} preset): hardware cost against quality")
    return fig


# --- figure 3: gamma sweep and alpha sweep --------------------------------------------------------


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
    model, preset, metric, hib = _meta(df)
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
    dense = _dense_rows(df)
    alpha_styles = _alpha_styles(df)
    for col, (lines, x, legend_sym, title, xlabel) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        for i, (value, grp) in enumerate(sorted(lines.items())):
            # Lines per alpha keep the alpha's style from Figures 1 and 2.
            st = alpha_styles.get((int(value), ref), style(i)) if x == "gamma" else style(i)
            label = f"{legend_sym}={value:g}"
            top.plot(grp[x], grp["packing_efficiency"], label=label, markersize=7, **st)
            bottom.plot(grp[x], grp["quality"], label=label, markersize=7, **st)
        _efficiency_limits(top, [v for g in lines.values() for v in g["packing_efficiency"]])
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
        _draw_anchors(bottom, df)
        top.set_title(title)
        top.set_ylabel("packing efficiency\n(nonzeros / packed array cells)")
        bottom.set_ylabel(_ylabel(df))
        bottom.set_xlabel(xlabel)
        for ax in (top, bottom):
            ax.grid(True, color="0.9")
        bottom.legend(fontsize=8, loc="best", handlelength=3.5)
    sep = ": " if len(panels) > 1 else "\n"  # one panel column is too narrow for one line
    fig.suptitle(f"{model} ({preset} preset){sep}column-combining parameters, {ref}-bit weights")
    return fig


# --- figure 4: a weight matrix before and after combining ------------------------------------------


@dataclass(frozen=True)
class PackedLayer:
    name: str
    rows: int
    cols: int
    group_ptr: np.ndarray
    group_cols: np.ndarray
    control: np.ndarray
    max_paths: int
    gamma: float

    @property
    def groups(self) -> int:
        return len(self.group_ptr) - 1

    def nonzero_pattern(self) -> np.ndarray:
        """rows x cols boolean: where the packed layer keeps a weight."""
        nz = np.zeros((self.rows, self.cols), dtype=bool)
        r, g = np.nonzero(self.control >= 0)
        nz[r, self.control[r, g]] = True
        return nz


def read_packed_layer(run_dir: str | os.PathLike, layer: str | None = None) -> PackedLayer:
    """One layer of a run's packed.json + packed.npz (the first LSTM layer when `layer` is None)."""
    run_dir = Path(run_dir)
    meta_path, npz_path = run_dir / "packed.json", run_dir / "packed.npz"
    meta = read_json(meta_path)
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{meta_path}: key 'layers' must be a non-empty list")
    names = [str(entry.get("name")) for entry in layers if isinstance(entry, dict)]
    if layer is None:
        lstm = [e for e in layers if isinstance(e, dict) and e.get("kind") == "lstm"]
        entry = (lstm or layers)[0]
    else:
        match = [e for e in layers if isinstance(e, dict) and e.get("name") == layer]
        if not match:
            raise ValueError(
                f"{meta_path}: no layer named {layer!r}; layers are {', '.join(names)}"
            )
        entry = match[0]
    name = str(entry.get("name"))
    for key in ("rows", "cols"):
        if not isinstance(entry.get(key), int):
            raise ValueError(f"{meta_path}: key 'layers[{name}].{key}' must be int")
    if not npz_path.is_file():
        raise ValueError(f"{npz_path}: missing (packed.json is there without its arrays)")
    with np.load(npz_path) as npz:
        try:
            ptr, cols, control = (
                np.asarray(npz[f"{name}/{k}"]) for k in ("group_ptr", "group_cols", "control")
            )
        except KeyError as e:
            raise ValueError(f"{npz_path}: missing array {e.args[0]}") from None
    rows = int(entry["rows"])
    if control.ndim != 2 or control.shape != (rows, len(ptr) - 1) or ptr[-1] != len(cols):
        raise ValueError(
            f"{npz_path}: arrays of layer {name!r} disagree: control {control.shape}, {len(ptr) - 1} groups, rows {rows}"
        )
    return PackedLayer(
        name,
        rows,
        int(entry["cols"]),
        ptr,
        cols,
        control,
        int(entry.get("max_paths", 1)),
        float(entry.get("gamma", 0.0)),
    )


GROUP_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")
ZERO, REMOVED = 0, 1


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
        f"the same groups packed into one array column each. {before_note.capitalize()}."
    )
    return fig, caption


# --- figure 5: spiking models -------------------------------------------------------------------


def fig_spiking(
    df: pd.DataFrame, spike_rates: dict[str, dict[str, float]], max_runs: int = 8
) -> Figure | None:
    """Spike rate per layer (one line per run) and MACs versus accumulates per token.
    `spike_rates` maps a run_dir to its metrics' spike_rates; the dense run comes first."""
    sub = df[[bool(spike_rates.get(str(d))) for d in df["run_dir"]]]
    if sub.empty:
        return None
    n_runs = len(sub)
    sub = sub.assign(_dense=sub["kind"] != "dense").sort_values(["_dense", "run_id"]).head(max_runs)
    model, preset, _, _ = _meta(df)
    fig = new_figure(11.0, 4.6)
    ax_rate, ax_ops = fig.subplots(1, 2, width_ratios=[1.1, 1.0])
    layers: list[str] = []
    for d in sub["run_dir"]:
        layers += [name for name in spike_rates[str(d)] if name not in layers]
    # A dot plot, not lines: layers are categories, and a line between them would suggest a trend.
    # Runs are nudged sideways so that equal rates stay visible as separate markers.
    width = 0.6 / max(len(sub), 1)
    for i, (_, row) in enumerate(sub.iterrows()):
        rates = spike_rates[str(row["run_dir"])]
        xs = [layers.index(n) + (i - (len(sub) - 1) / 2) * width for n in rates]
        st = (
            dict(DENSE_STYLE)
            if row["kind"] == "dense"
            else {**style(i), "linestyle": "none", "markersize": 7}
        )
        ax_rate.plot(xs, [100 * rates[n] for n in rates], label=str(row["run_id"]), **st)
    ax_rate.set_xticks(range(len(layers)), layers, rotation=20)
    ax_rate.set_xlim(-0.6, len(layers) - 0.4)
    ax_rate.set_xlabel("layer (rate of the spikes at its input)")
    ax_rate.set_ylabel("spike rate (% of inputs that spike)")
    ax_rate.set_ylim(bottom=0)
    ax_rate.grid(True, axis="y", color="0.9")
    shown = f"{len(sub)} of {n_runs} runs" if len(sub) < n_runs else None
    ax_rate.legend(fontsize=7, title=shown, title_fontsize=7)
    if sub["macs_per_token"].notna().any() or sub["acs_per_token"].notna().any():
        macs = sub["macs_per_token"].fillna(0.0).to_numpy()
        acs = sub["acs_per_token"].fillna(0.0).to_numpy()
        per = "per token"
    else:  # no per-token counts in metrics.json: hwsim's totals for its workload
        macs = sub["macs"].fillna(0.0).to_numpy()
        acs = sub["accumulates"].fillna(0.0).to_numpy()
        per = "per workload (hwsim)"
    scale, unit = _unit(float(np.max(macs + acs)) if len(sub) else 0.0)
    y = np.arange(len(sub))
    ax_ops.barh(y, macs / scale, color="0.25", label="multiply-accumulates (MAC)")
    ax_ops.barh(
        y,
        acs / scale,
        left=macs / scale,
        color="white",
        edgecolor="0.25",
        hatch="///",
        label="accumulates (spike-driven)",
    )
    ax_ops.set_yticks(y, list(sub["run_id"]), fontsize=8)
    ax_ops.invert_yaxis()
    ax_ops.set_xlabel(f"operations {per}{unit}")
    ax_ops.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{model} ({preset} preset): spiking activity and the MAC / accumulate split")
    return fig
