"""Figures from run records: matplotlib Figure objects (Agg canvas, no pyplot state).

Every series has a label, a distinct marker and line style (readable in grayscale), axes carry
units, the dense baseline is drawn as a black star plus a dotted line, and published anchors
are drawn only for runs of the matching model on the "paper" preset. Each function returns the
Figure, or None when the runs hold nothing to draw (the caller says why in the index).

One module a job: `style` (the look, saving), `frame` (helpers over the runs frame), then one
module per figure: `quality` (1, 2), `sweeps` (3), `matrix` (4), `spiking` (5), `cycles` (6).
The equal-columns small dense runs are drawn as hollow black crosses wherever they appear.
"""

from reports.plots.cycles import alpha_series, fig_cycles_alpha
from reports.plots.frame import (
    pareto_front,
    quality,
    quality_split,
    reference_bits,
    run_meta,
    series_label,
)
from reports.plots.matrix import (
    GROUP_COLORS,
    REMOVED,
    ZERO,
    fig_matrix,
    matrix_images,
    read_packed_layer,
)
from reports.plots.quality import fig_cost_quality, fig_sparsity_quality
from reports.plots.spiking import fig_spiking
from reports.plots.style import (
    ANCHORS,
    COLORS,
    DENSE_STYLE,
    DPI,
    LINESTYLES,
    MARKERS,
    SMALL_DENSE_LABEL,
    SMALL_DENSE_STYLE,
    Anchor,
    anchors_for,
    marker_size,
    new_figure,
    save_figure,
    style,
)
from reports.plots.sweeps import fig_sweeps

_meta = run_meta  # the name reports.build uses

__all__ = [
    "ANCHORS",
    "COLORS",
    "DENSE_STYLE",
    "DPI",
    "GROUP_COLORS",
    "LINESTYLES",
    "MARKERS",
    "REMOVED",
    "SMALL_DENSE_LABEL",
    "SMALL_DENSE_STYLE",
    "ZERO",
    "Anchor",
    "alpha_series",
    "anchors_for",
    "fig_cost_quality",
    "fig_cycles_alpha",
    "fig_matrix",
    "fig_sparsity_quality",
    "fig_spiking",
    "fig_sweeps",
    "marker_size",
    "matrix_images",
    "new_figure",
    "pareto_front",
    "quality",
    "quality_split",
    "read_packed_layer",
    "reference_bits",
    "run_meta",
    "save_figure",
    "series_label",
    "style",
]
