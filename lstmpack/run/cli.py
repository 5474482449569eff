"""`python -m compress.run`: train (or reuse) the dense model, compress it, evaluate, simulate.

    python -m compress.run --model ptbc --max-paths 3

The dense model is trained once per (model, preset, seed) in runs/<model>/dense-<preset>-s<seed>/
and reused. A compressed run fine-tunes from it under a Pipeline of passes (prune -> combine ->
quantize), packs the result (PackedModel, numpy only), proves the packing right by evaluating the
model rebuilt from the packed file, simulates both on a systolic array with hwsim, and writes
config.json, metrics.json, hwsim.json, packed.json/.npz and checkpoints into its run directory.
Bad input (unknown model or preset, alpha < 1, ...) prints one line and exits 2, touching nothing.

`--device` and `--precision` say where the stages compute. Under torchrun
(`torchrun --nproc_per_node N -m compress.run ...`) every process runs every stage, the dense and
compressed training data-parallel, and rank 0 alone writes the run's files and prints the table.
"""

from __future__ import annotations

import logging
import os
import sys

from common import distributed
from common.atomic import atomic_write_text, remove_stale_temps
from common.checkfiles import DamagedFileError
from common.datasets import DatasetError
from common.runtime import configure_cpu
from lstmpack.run import small_dense
from lstmpack.run.compressed import compressed_stage
from lstmpack.run.config import Context, prepare
from lstmpack.run.dense import dense_baseline, dense_stage
from lstmpack.run.records import (
    compressed_config_record,
    format_table,
    packed_summary,
    simulate_packed,
    status_of,
    write_json,
)

log = logging.getLogger("compress.run")

# Errors that are the user's to fix: a damaged file (DamagedFileError), data that went missing
# (DatasetError) and any ValueError, which by the project's convention is bad input (made data
# too small for the batch size, ...): one line, exit 2, and metrics.json says "failed".
# Anything else is a fault of the code and keeps its traceback.
USER_ERRORS = (DamagedFileError, DatasetError, ValueError)

# Other runs of a sweep may be writing into the dense run's folder while this one starts (the
# baseline packed over their targets): only a temp file untouched this long is a dead write's.
SHARED_TEMP_AGE_S = 600.0


def run(ctx: Context) -> int:
    """The stages after the checks: dense, then compressed (or, with --small-dense, the small
    dense model), then the table."""
    spec, cfg, run, run_dir = ctx.spec, ctx.cfg, ctx.run, ctx.run_dir
    main = distributed.is_main()
    metrics_path = run_dir / "metrics.json"
    if ctx.takeover is None and ctx.args.resume and status_of(metrics_path) == "finished":
        if main:
            print((run_dir / "table.md").read_text(), end="")
        return 0
    if ctx.takeover is not None:
        log.info("taking over %s: %s, and it holds no training state", run_dir, ctx.takeover)
    log.info("data: %s", ctx.data_folder)
    log.info("device: %s, precision %s, %d process(es)", ctx.runtime.device,
             ctx.runtime.precision, ctx.world.size)  # fmt: skip
    # config.json goes first, so a run killed at any later point can be resumed by its settings
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # a run killed inside an atomic write leaves its temp file behind: this process is the
        # run directory's one writer now, and the dense folder's with the margin above
        remove_stale_temps(run_dir)
        remove_stale_temps(ctx.dense_dir, min_age_s=SHARED_TEMP_AGE_S)
        record = (
            small_dense.config_record(ctx)
            if run.small_dense
            else compressed_config_record(run, run_dir, ctx.dense_dir, spec.config_to_dict(cfg))
        )
        write_json(run_dir / "config.json", record)
        write_json(metrics_path, {"status": "running", "error": None})
    try:
        if run.small_dense:
            metrics, rows = small_dense.small_dense_stage(ctx)
        else:
            dense_model, dense_metrics = dense_stage(ctx)  # logs reused or trained, and its time
            # the baseline of this run's targets, simulated on this run's array and dataflow
            dense_packed = dense_baseline(ctx, dense_model)
            dense_row = {**dense_metrics, **packed_summary(dense_packed)}
            dense_hw = simulate_packed(dense_packed.to_json(), run.hw)
            metrics, hw = compressed_stage(ctx, dense_model)
            metrics["dense"] = dense_record(ctx, dense_row, dense_hw)
            rows = [("dense", dense_row, dense_hw), (run.run_id(), metrics, hw)]
    except Exception as e:
        if main:
            error = f"{type(e).__name__}: {e}".splitlines()[0]
            write_json(metrics_path, {"status": "failed", "error": error})
        raise
    if not main:
        return 0
    metrics["runtime"] = {"device": ctx.runtime.device, "precision": ctx.runtime.precision,
                          "processes": ctx.world.size}  # fmt: skip
    table = format_table(rows, spec.metric)
    atomic_write_text(run_dir / "table.md", table + "\n")
    write_json(metrics_path, metrics)
    print(table)
    return 0


def dense_record(ctx: Context, dense_row: dict, dense_hw: dict) -> dict:
    """metrics.json's "dense": the baseline this run was compared with, as its table shows it:
    the dense run, the targets it was packed over, its figures, and its cost on this run's
    array and dataflow. reports takes the ratios from here, so they match the run's table."""
    keys = ("weights_total", "nonzero_weights", "array_columns", "packing_efficiency",
            "model_bytes")  # fmt: skip
    return {
        "run_id": ctx.dense_dir.name,  # its folder is config.json's dense_dir
        "targets": ctx.run.targets,
        "quality": dense_row["quality"],
        **{k: dense_row[k] for k in keys},
        "layers": [layer["name"] for layer in dense_row["layers"]],
        "hw": {"rows": ctx.run.hw.rows, "cols": ctx.run.hw.cols, "dataflow": ctx.run.hw.dataflow},
        "hwsim_total": dense_hw["total"],
    }


def _error(e: Exception, world: distributed.World | None = None) -> int:
    # one line, whatever the message holds: scripts and the sweep read the last line; under
    # torchrun every rank meets the same error and rank 0 says it
    if world is None or world.main:
        print(f"compress.run: error: {' '.join(str(e).split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    world = distributed.World()
    try:
        world = distributed.launched()
        distributed.quiet_unless_main(world)
        ctx = prepare(argv, world)
    except (ValueError, DatasetError) as e:
        return _error(e, world)
    # the processes of one machine share its cores, unless --threads says otherwise
    threads = ctx.args.threads
    if threads is None and world.parallel:
        threads = max(1, (os.cpu_count() or 1) // world.local_size)
    configure_cpu(threads)
    try:
        distributed.start(world, ctx.runtime.device)
        return run(ctx)
    except USER_ERRORS as e:
        return _error(e, world)
    finally:
        distributed.stop()


if __name__ == "__main__":
    raise SystemExit(main())
