"""Figure 5: spike rates per layer and the MAC / accumulate split of spiking models."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.plots.frame import run_meta, scale_unit
from reports.plots.style import DENSE_STYLE, new_figure, style


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
    model, preset, _, _ = run_meta(df)
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
    scale, unit = scale_unit(float(np.max(macs + acs)) if len(sub) else 0.0)
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
