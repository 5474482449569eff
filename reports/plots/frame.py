"""Helpers over the runs frame (one row per run, as `reports.records.runs_frame` builds it): which
quality figure to plot, the reference bit width, series styles, the dense baseline, Pareto fronts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reports.plots.style import (
    DENSE_STYLE,
    SMALL_DENSE_LABEL,
    SMALL_DENSE_STYLE,
    Anchor,
    anchors_for,
    style,
)
from reports.tables import quality_label


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


def run_meta(df: pd.DataFrame) -> tuple[str, str, str, bool]:
    row = df.iloc[0]
    return str(row["model"]), str(row["preset"]), str(row["metric"]), bool(row["higher_is_better"])


def ylabel(df: pd.DataFrame) -> str:
    _, _, metric, hib = run_meta(df)
    return quality_label(metric, hib, quality_split(df))


def reference_bits(df: pd.DataFrame) -> int:
    """The weight width most compressed runs share (ties: the wider), for figures that vary
    alpha and gamma only."""
    comp = df[df["kind"] == "compressed"]
    counts = comp["bits"].value_counts()
    return int(max(counts.index, key=lambda b: (counts[b], b)))


def series_label(alpha: int, bits: int, ref_bits: int) -> str:
    return f"α={alpha}" if bits == ref_bits else f"α={alpha}, {bits}-bit"


def styles_by_alpha(df: pd.DataFrame) -> dict[tuple[int, int], dict]:
    comp = df[df["kind"] == "compressed"]
    keys = sorted(
        {(int(a), int(b)) for a, b in zip(comp["alpha"], comp["bits"])}, key=lambda k: (k[0], -k[1])
    )
    return {k: style(i) for i, k in enumerate(keys)}


def draw_dense(ax, x: float, y: float) -> None:
    ax.plot([x], [y], label="dense baseline", zorder=5, **DENSE_STYLE)
    ax.axhline(y, color="black", linestyle=":", linewidth=1.0, zorder=1)


def draw_anchors(ax, df: pd.DataFrame) -> list[Anchor]:
    model, preset, metric, _ = run_meta(df)
    found = anchors_for(model, preset, metric)
    for a in found:
        ax.axhline(a.value, color="0.35", linestyle=(0, (8, 3)), linewidth=1.2, label=a.label)
    return found


def dense_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["kind"] == "dense"]


def small_dense_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["kind"] == "small_dense"]


def draw_small_dense(ax, x: Sequence[float], y: Sequence[float]) -> None:
    """The small dense runs as one series of hollow crosses, in the order of x."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size:
        order = np.argsort(xs, kind="stable")
        ax.plot(xs[order], ys[order], label=SMALL_DENSE_LABEL, zorder=5, **SMALL_DENSE_STYLE)


def num_text(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def efficiency_limits(ax, values: Sequence[float]) -> None:
    """At least 0.1 of packing efficiency on the axis, so a change in the third decimal does not
    look like a trend."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if hi - lo < 0.1:
        mid = (lo + hi) / 2
        lo, hi = max(0.0, mid - 0.05), min(1.0, mid + 0.05) + 0.005
        ax.set_ylim(lo, hi)


def scale_unit(largest: float) -> tuple[float, str]:
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
