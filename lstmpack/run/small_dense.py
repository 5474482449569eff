"""The equal-columns small dense baseline: `python -m compress.run --model ptbc --small-dense`.

Column combining is worth using only where it beats a plain dense model of the same architecture
that is narrow enough to need as many array columns as the combined one. `--small-dense [COLUMNS]`
trains that model instead of compressing: the model family's rule (for the AWD-LSTM models,
lm.presets.equal_columns_config: the largest nhid whose LSTM layers' in + H columns sum to at most
COLUMNS, emsize kept) picks the width; the dense stage trains it on the preset's own budget (same
steps, lr schedule, dropouts), packs it at alpha = 1 and simulates it. COLUMNS defaults to the
array columns of the compressed run the same flags describe (alpha = --max-paths) when that run
has finished, else to the fewest combining can reach, lm.presets.lstm_columns(cfg, alpha).

    runs/<model>/small-dense-<preset>-s<seed>-c<columns>/
        config.json   kind "small_dense", the target columns, where they came from, the width
        metrics.json  the dense stage's figures of the small model, plus "small_dense"
        hwsim.json, packed.json/.npz, table.md
        dense/        the dense stage's own folder (weights, checkpoints, its records)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from compress.packing import PackedModel
from lstmpack.run.columns import auto_columns, parse_columns, rule_for
from lstmpack.run.config import Context
from lstmpack.run.dense import dense_stage
from lstmpack.run.records import hw_record, read_json, simulate_packed, status_of, write_json

# --------------------------------------------------------------------------- the stage


def small_dense_config(ctx: Context) -> Any:
    return rule_for(ctx.run.model).equal_columns_config(ctx.cfg, ctx.run.small_dense)


def config_record(ctx: Context) -> dict[str, Any]:
    """config.json of a small dense run: what reports read, the width and how it was chosen, and
    the RunConfig under "run" for --resume to compare against."""
    run, rule = ctx.run, rule_for(ctx.run.model)
    small = small_dense_config(ctx)
    root = ctx.dense_dir.parent  # runs-root/<model>, whatever --run-dir says
    given = parse_columns(ctx.args.small_dense)
    return {
        "run_id": ctx.run_dir.name,
        "kind": "small_dense",
        "model": run.model,
        "preset": run.preset,
        "seed": run.seed,
        "compress": None,
        "hw": hw_record(run.hw),
        "dense_dir": str(ctx.dense_dir),
        "small_dense": {
            "columns_target": run.small_dense,
            "columns_from": "--small-dense" if given else auto_columns(ctx.cfg, run, root)[1],
            "max_paths": run.combine.max_paths,
            "columns": rule.lstm_columns(small),
            "dense_columns": rule.lstm_columns(ctx.cfg),
            "hidden_size": small.nhid,
            "dense_hidden_size": ctx.cfg.nhid,
            "rule": rule.EQUAL_COLUMNS_RULE,
        },
        "model_config": ctx.spec.config_to_dict(small),
        "run": run.to_dict(),
    }


def _finished(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "metrics.json"
    return read_json(path) if status_of(path) == "finished" else None


def small_dense_stage(ctx: Context) -> tuple[dict[str, Any], list[tuple[str, dict, dict]]]:
    """Train (or reuse) the small dense model in run_dir/dense, copy its packed files and cost up
    into the run directory; returns (metrics, table rows): the full dense model and the compressed
    run of the same flags where they have finished, then the small dense model."""
    run, run_dir = ctx.run, ctx.run_dir
    inner = replace(ctx, cfg=small_dense_config(ctx), dense_dir=run_dir / "dense")
    _, trained = dense_stage(inner)
    packed = PackedModel.load(inner.dense_dir / "packed")
    packed.save(run_dir / "packed")
    hw = simulate_packed(packed.to_json(), run.hw)
    write_json(run_dir / "hwsim.json", hw)
    record = read_json(run_dir / "config.json")["small_dense"]
    metrics = {**trained, "small_dense": record}
    # the models it is measured against, each simulated on this run's array
    sources = [("dense", ctx.dense_dir)]
    if record["columns_from"].endswith("metrics.json"):
        compressed = Path(record["columns_from"]).parent
        sources.append((compressed.name, compressed))
    rows = []
    for label, d in sources:
        m = _finished(d)
        if m is not None:
            rows.append((label, m, simulate_packed(read_json(d / "packed.json"), run.hw)))
    rows.append((run_dir.name, metrics, hw))
    return metrics, rows
