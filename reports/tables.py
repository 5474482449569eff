"""Comparison tables: one row per run, the dense baseline first, ratios against dense.

`comparison_table` builds the numeric table (pandas) for the runs of one model and preset; the
renderers turn it into markdown (terminal, README), CSV (full precision) and LaTeX (booktabs).
Markdown and LaTeX are written here rather than through pandas' to_markdown / Styler, which need
tabulate and jinja2, neither of them a dependency of the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd

from reports.cycles import CYCLES_COLUMNS, cost_on, cycles_column

# metric -> (name in a header, unit or direction note, decimals)
METRIC_LABELS = {
    "bpc": ("BPC", "bits/char", 3),
    "ppl": ("perplexity", "", 2),
    "bleu": ("BLEU", "", 2),
    "accuracy": ("accuracy", "", 4),
}
# Settings shown only when they differ between the compressed runs of a table, so that every row
# is told apart without a wall of constant columns.
VARYING = ("sparsity", "act_bits", "quant", "strategy", "section_size", "array", "dataflow",
           "targets", "seed")  # fmt: skip
# The baselines, first in a table in this order: the dense model, then the equal-columns small
# dense model (compress.run --small-dense); the α column names them.
BASELINES = {"dense": "dense", "small_dense": "small dense"}
# Arrays whose cycles a rendered table shows beside those of the runs' own array (hwsim.json);
# the CSV holds every array of reports.cycles.ARRAYS.
SHOWN_ARRAYS = ("32x32",)
EACH_ARRAY = "each run's array"  # the cycles headers' name for the arrays of runs that differ


def quality_label(metric: str, higher_is_better: bool, split: str = "test") -> str:
    """Axis/column label with direction, e.g. "test BPC (bits/char, lower is better)"."""
    name, unit, _ = METRIC_LABELS.get(metric, (metric, "", 3))
    direction = "higher is better" if higher_is_better else "lower is better"
    return f"{split} {name} ({unit + ', ' if unit else ''}{direction})"


def dense_baselines(frame: pd.DataFrame) -> dict[tuple[str, str, int], pd.Series]:
    """(model, preset, seed) -> the dense run's row."""
    out = {}
    for _, row in frame[frame["kind"] == "dense"].iterrows():
        out.setdefault((row["model"], row["preset"], int(row["seed"])), row)
    return out


def _baseline_for(row: pd.Series, bases: dict) -> pd.Series | None:
    key = (row["model"], row["preset"], int(row["seed"]))
    if key in bases:
        return bases[key]
    # No dense run for this seed: any seed's dense run of the same model and preset is the next
    # best reference; `ratio_baseline` in the table says which one was used.
    same = [v for (m, p, _), v in sorted(bases.items()) if (m, p) == key[:2]]
    return same[0] if same else None


def _same_array(row: pd.Series, base: pd.Series) -> bool:
    return str(row.get("array", "")) == str(base.get("array", "")) and str(
        row.get("dataflow", "")
    ) == str(base.get("dataflow", ""))


def baseline_values(row: pd.Series, base: pd.Series | None) -> tuple[dict | None, str]:
    """(the dense figures a row is compared with, the baseline's name), or (None, why not).

    Never a dense figure of another array or other targets: a run's own record of its baseline
    (metrics.json "dense": packed over its targets, costed on its array) comes first; else the
    dense run's row, when it packs the same layers, its cycles and energy taken from the run's
    record of the dense cost on its array, else from the dense row when both ran on the same
    array and dataflow, else simulated again from the dense packed.json on the run's array."""
    own = str(row.get("base_source", ""))
    if own == "own":
        values = {col: row[f"base_{col}"] for col in ("nonzero_weights", "array_columns",
                  "model_bytes", "cycles", "energy_pj", "valid", "test")}  # fmt: skip
        return values, str(row.get("base_run") or (base["run_id"] if base is not None else ""))
    if base is None:
        return None, ""
    mine, theirs = str(row.get("layer_names", "")), str(base.get("layer_names", ""))
    if mine and theirs and mine != theirs:
        return None, f"none: {base['run_id']} packs other layers than this run"
    values = {col: base[col] for col in ("nonzero_weights", "array_columns", "model_bytes",
              "cycles", "energy_pj", "valid", "test")}  # fmt: skip
    if own == "cost":
        values["cycles"], values["energy_pj"] = row["base_cycles"], row["base_energy_pj"]
    elif not _same_array(row, base):
        values["cycles"], values["energy_pj"] = cost_on(
            base["run_dir"], str(row.get("array", "")), str(row.get("dataflow") or "ws")
        )
    return values, str(base["run_id"])


def comparison_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The table for the runs of ONE model and preset: dense rows first, then small dense ones,
    then compressed runs by (alpha, gamma, bits descending, seed); ratio columns are run / dense,
    `delta_*` run - dense; cycles_<RxC> are the packed model's cycles on reports.cycles.ARRAYS."""
    if frame.empty:
        raise ValueError("no finished runs to tabulate")
    groups = frame.groupby(["model", "preset"]).ngroups
    if groups != 1:
        raise ValueError(f"comparison_table takes the runs of one model and preset, got {groups}")
    bases = dense_baselines(frame)
    df = frame.copy()
    df["_dense_first"] = [list(BASELINES).index(k) if k in BASELINES else 2 for k in df["kind"]]
    df["_neg_bits"] = -df["bits"]
    df = df.sort_values(
        ["_dense_first", "alpha", "gamma", "_neg_bits", "sparsity", "seed", "run_id"]
    )
    df = df.drop(columns=["_dense_first", "_neg_bits"]).reset_index(drop=True)
    ratio_cols = {
        "nnz_ratio": "nonzero_weights",
        "columns_ratio": "array_columns",
        "cycles_ratio": "cycles",
        "energy_ratio": "energy_pj",
        "bytes_ratio": "model_bytes",
    }
    for c in (*ratio_cols, "delta_valid", "delta_test", "ratio_baseline"):
        df[c] = math.nan if c != "ratio_baseline" else ""
    for i, row in df.iterrows():
        base, label = baseline_values(row, _baseline_for(row, bases))
        df.at[i, "ratio_baseline"] = label
        if base is None:
            continue
        for out, col in ratio_cols.items():
            df.at[i, out] = row[col] / base[col] if base[col] else math.nan
        df.at[i, "delta_valid"] = row["valid"] - base["valid"]
        df.at[i, "delta_test"] = row["test"] - base["test"]
    df["energy_uj"] = df["energy_pj"] / 1e6
    compressed = df[df["kind"] != "dense"]
    shown = [c for c in VARYING if c in df and compressed[c].astype(str).nunique() > 1]
    cols = ["run_id", "model", "kind", "alpha", "gamma", "bits", *shown]
    cols += ["nonzero_weights", "array_columns", "packing_efficiency", "valid", "test"]
    cols += ["cycles", *(c for c in CYCLES_COLUMNS if c in df), "utilization", "energy_uj"]
    cols += ["model_bytes", *ratio_cols]
    cols += ["delta_test", "delta_valid", "ratio_baseline", "metric", "higher_is_better"]
    cols += ["weights_total", "preset", *(["array"] if "array" not in shown else [])]
    return df[cols]


# --- rendering ---------------------------------------------------------------------------------


def _fmt_int(v) -> str:
    return "" if pd.isna(v) else f"{int(round(v)):,}"


def _fmt(decimals: int) -> Callable[[object], str]:
    def f(v) -> str:
        return "" if pd.isna(v) else f"{float(v):.{decimals}f}"

    return f


def _fmt_signed(decimals: int) -> Callable[[object], str]:
    def f(v) -> str:
        return "" if pd.isna(v) else f"{float(v):+.{decimals}f}"

    return f


def _fmt_g(v) -> str:
    return "" if pd.isna(v) else f"{float(v):g}"


def _fmt_util(v) -> str:  # placeholder: display_frame picks the column's decimals
    return _fmt(3)(v)


def _fmt_sig(v) -> str:
    return "" if pd.isna(v) else f"{float(v):.4g}"


def table_array(table: pd.DataFrame) -> str:
    """The array of the table's hwsim.json cycles, e.g. "128x128"; EACH_ARRAY when the runs were
    simulated on different ones (the array column then tells them apart); "" when no record
    names one."""
    arrays = {str(a) for a in table["array"] if str(a)} if "array" in table else set()
    return EACH_ARRAY if len(arrays) > 1 else (arrays.pop() if arrays else "")


def display_columns(table: pd.DataFrame) -> list[tuple[str, str, str, Callable]]:
    """(column, markdown header, LaTeX header, formatter) for the columns shown to a reader."""
    metric = str(table["metric"].iloc[0])
    name, _, dec = METRIC_LABELS.get(metric, (metric, "", 3))
    arrow_md = "↑" if bool(table["higher_is_better"].iloc[0]) else "↓"
    arrow_tex = r"$\uparrow$" if bool(table["higher_is_better"].iloc[0]) else r"$\downarrow$"
    at = f" @{table_array(table)}" if table_array(table) else ""
    other_arrays = [
        (cycles_column(a), f"cycles @{a}", f"cycles @{a}", _fmt_int)
        for a in SHOWN_ARRAYS
        if a != table_array(table)
        and cycles_column(a) in table
        and table[cycles_column(a)].notna().any()
    ]
    spec = [
        ("run_id", "run", "run", str),
        ("model", "model", "model", str),
        ("alpha", "α", r"$\alpha$", lambda v: "dense" if pd.isna(v) else str(int(v))),
        ("gamma", "γ", r"$\gamma$", _fmt_g),
        ("bits", "bits", "bits", _fmt_int),
        ("sparsity", "sparsity", "sparsity", _fmt_g),
        ("act_bits", "act bits", "act bits", _fmt_int),
        ("quant", "quant", "quant", str),
        ("strategy", "strategy", "strategy", str),
        ("section_size", "section", "section", _fmt_int),
        ("array", "array", "array", str),
        ("dataflow", "dataflow", "dataflow", str),
        ("seed", "seed", "seed", _fmt_int),
        ("nonzero_weights", "nonzero weights", "nonzero weights", _fmt_int),
        ("array_columns", "array columns", "array cols", _fmt_int),
        ("packing_efficiency", "packing eff.", "pack.\\ eff.", _fmt(3)),
        ("valid", f"valid {name} {arrow_md}", f"valid {name} {arrow_tex}", _fmt(dec)),
        ("test", f"test {name} {arrow_md}", f"test {name} {arrow_tex}", _fmt(dec)),
        ("cycles", f"cycles{at}", f"cycles{at}", _fmt_int),
        *other_arrays,
        ("utilization", "util.", "util.", _fmt_util),
        ("energy_uj", "energy (µJ)", r"energy ($\mu$J)", _fmt_sig),
        ("model_bytes", "model bytes", "model bytes", _fmt_int),
        ("nnz_ratio", "nnz / dense", "nnz / dense", _fmt(3)),
        ("cycles_ratio", f"cycles / dense{at}", f"cycles / dense{at}", _fmt(3)),
        ("energy_ratio", "energy / dense", "energy / dense", _fmt(3)),
        ("bytes_ratio", "bytes / dense", "bytes / dense", _fmt(3)),
        ("delta_test", f"Δ test {name}", rf"$\Delta$ test {name}", _fmt_signed(dec)),
    ]
    # the array is named in the cycles headers unless it varies
    hidden = {"array"} if table_array(table) != EACH_ARRAY else set()
    return [s for s in spec if s[0] in table.columns and s[0] not in hidden]


def _decimals_for(values: pd.Series, significant: int = 3) -> int:
    """Decimals that give the smallest nonzero |value| `significant` digits (0..6), so a column
    shares one format and its decimal points line up."""
    nonzero = values.dropna().abs()
    nonzero = nonzero[nonzero > 0]
    if nonzero.empty:
        return 0
    return int(min(6, max(0, significant - 1 - math.floor(math.log10(nonzero.min())))))


def display_frame(table: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    """The table as strings, with reader-facing headers."""
    out = {}
    for col, md, tex, fmt in display_columns(table):
        if fmt is _fmt_sig:
            fmt = _fmt(_decimals_for(table[col]))
        elif fmt is _fmt_util:
            # Small matrices on a big array use a tiny fraction of it; 0.000 would hide that.
            fmt = _fmt(min(4, max(3, _decimals_for(table[col], significant=2))))
        cells = [fmt(v) for v in table[col]]
        if col == "alpha":  # the baselines have no alpha: the column names them instead
            cells = [BASELINES.get(k, c) for k, c in zip(table["kind"], cells)]
        out[tex if latex else md] = cells
    return pd.DataFrame(out)


def _is_numeric_col(values: Sequence[str]) -> bool:
    def num(s: str) -> bool:
        try:
            float(s.replace(",", ""))
        except ValueError:
            return s in ("", *BASELINES.values())
        return True

    return all(num(v) for v in values)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned."""
    shown = display_frame(table)
    headers = list(shown.columns)
    cells = [[str(v).replace("|", "\\|") for v in row] for row in shown.itertuples(index=False)]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    right = [_is_numeric_col(list(shown[h])) for h in headers]

    def line(vals: Sequence[str]) -> str:
        out = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(vals, widths, right)]
        return "| " + " | ".join(out) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1)) for w, r in zip(widths, right)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in cells)]) + "\n"


_TEX_ESCAPE = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
}


def tex_escape(text: str) -> str:
    text = text.replace("\\", r"\textbackslash{}")
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs table scaled to the text width (needs booktabs and graphicx: the table has
    some twenty columns); a rule separates the baseline rows (dense, small dense)."""
    shown = display_frame(table, latex=True)
    headers = list(shown.columns)
    right = [_is_numeric_col(list(shown[h])) for h in headers]
    n_dense = int(table["kind"].isin(list(BASELINES)).sum())
    lines = [r"% needs \usepackage{booktabs,graphicx}", r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{tex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\resizebox{\textwidth}{!}{%")
    lines.append(r"\begin{tabular}{" + "".join("r" if r else "l" for r in right) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(headers) + r" \\")  # headers carry their own LaTeX already
    lines.append(r"\midrule")
    for i, row in enumerate(shown.itertuples(index=False)):
        if i == n_dense and 0 < n_dense < len(shown):
            lines.append(r"\midrule")
        lines.append(" & ".join(tex_escape(str(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: pd.DataFrame) -> str:
    """Full-precision CSV of the numeric table (energy in µJ as `energy_uj`)."""
    return table.to_csv(index=False)
