"""`python -m compress.run`: train (or reuse) the dense model, compress it, evaluate, simulate.

    python -m compress.run --model ptbc --max-paths 3

The dense model is trained once per (model, preset, seed) in runs/<model>/dense-<preset>-s<seed>/
and reused. A compressed run fine-tunes from it under a Pipeline of passes (prune -> combine ->
quantize), packs the result (PackedModel, numpy only), proves the packing right by evaluating the
model rebuilt from the packed file, simulates both on a systolic array with hwsim, and writes
config.json, metrics.json, hwsim.json, packed.json/.npz and checkpoints into its run directory.
Bad input (unknown model or preset, alpha < 1, ...) prints one line and exits 2, touching nothing.
"""

from __future__ import annotations

import logging
import sys

from common.atomic import atomic_write_text
from common.datasets import DatasetError
from common.runtime import configure_cpu
from compress.packing import PackedModel
from lstmpack.run import small_dense
from lstmpack.run.compressed import compressed_stage
from lstmpack.run.config import Context, prepare
from lstmpack.run.dense import dense_stage
from lstmpack.run.records import (
    compressed_config_record,
    format_table,
    read_json,
    simulate_packed,
    write_json,
)


def run(ctx: Context) -> int:
    """The stages after the checks: dense, then compressed (or, with --small-dense, the small
    dense model), then the table."""
    spec, cfg, run, run_dir = ctx.spec, ctx.cfg, ctx.run, ctx.run_dir
    metrics_path = run_dir / "metrics.json"
    if (
        ctx.args.resume
        and metrics_path.is_file()
        and read_json(metrics_path).get("status") == "finished"
    ):
        print((run_dir / "table.md").read_text(), end="")
        return 0
    # config.json goes first, so a run killed at any later point can be resumed by its settings
    run_dir.mkdir(parents=True, exist_ok=True)
    record = (
        small_dense.config_record(ctx)
        if run.small_dense
        else compressed_config_record(run, run_dir, ctx.dense_dir, spec.config_to_dict(cfg))
    )
    write_json(run_dir / "config.json", record)
    write_json(metrics_path, {"status": "running", "error": None})
    try:
        ctx.data = spec.load_data(cfg, ctx.args.data_dir, verify=not ctx.args.no_verify)
        if run.small_dense:
            metrics, rows = small_dense.small_dense_stage(ctx)
        else:
            dense_model, dense_metrics = dense_stage(ctx)
            dense_packed = PackedModel.load(ctx.dense_dir / "packed")
            dense_hw = simulate_packed(dense_packed.to_json(), run.hw)
            metrics, hw = compressed_stage(ctx, dense_model)
            metrics["dense"] = {
                "quality": dense_metrics["quality"],
                "hwsim_total": dense_hw["total"],
            }
            rows = [("dense", dense_metrics, dense_hw), (run.run_id(), metrics, hw)]
    except Exception as e:
        write_json(metrics_path, {"status": "failed", "error": f"{type(e).__name__}: {e}"})
        raise
    table = format_table(rows, spec.metric)
    atomic_write_text(run_dir / "table.md", table + "\n")
    write_json(metrics_path, metrics)
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        ctx = prepare(argv)
    except (ValueError, DatasetError) as e:
        print(f"compress.run: error: {e}", file=sys.stderr)
        return 2
    configure_cpu(ctx.args.threads)
    return run(ctx)


if __name__ == "__main__":
    raise SystemExit(main())
