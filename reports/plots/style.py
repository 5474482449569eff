"""The figures' look: colour-blind-safe colours, markers and line styles that stay apart in
grayscale, the published anchors, and Agg figures written without pyplot state."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from common.atomic import atomic_write

# Okabe-Ito colours (colour-blind safe), ordered so neighbours differ in lightness too.
# Black is kept for the dense baseline and the Pareto front.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#7F4F24", "#999999")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
DENSE_STYLE = {"marker": "*", "markersize": 15, "color": "black", "linestyle": "none"}
# The equal-columns small dense model (compress.run --small-dense): a baseline too, so black, but
# hollow, to stay apart from the dense star
SMALL_DENSE_STYLE = {
    "marker": "P",
    "markersize": 11,
    "color": "black",
    "markerfacecolor": "white",
    "markeredgewidth": 1.4,
    "linestyle": "none",
}
SMALL_DENSE_LABEL = "small dense (equal columns)"
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
    """Write `stem.<fmt>` for each format (PNG at 150 dpi); returns the paths.

    Each file atomically, like every record: a report rebuilt over an old one never leaves half
    a figure, and a failed savefig leaves the old file (or none) and no temp file. The format is
    named, so the temp file's own name does not matter to matplotlib."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {}  # same records, same bytes
        atomic_write(path, functools.partial(fig.savefig, dpi=DPI, format=fmt, metadata=meta))
        paths.append(path)
    return paths
