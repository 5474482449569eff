"""The dense stage: train the model of (model, preset, seed) once, then reuse it.

Its folder, runs/<model>/dense-<preset>-s<seed>/, is shared by every compressed run of that
(model, preset, seed): it holds the weights, their metrics, and the dense model packed at alpha = 1
with its hwsim cost, the baseline that tables and reports compare against.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from compress.pipeline import Pipeline
from compress.schedule import Schedule
from lstmpack.run.config import Context
from lstmpack.run.records import (
    dense_config_record,
    packed_summary,
    read_json,
    save_torch,
    simulate_packed,
    write_json,
)

log = logging.getLogger(__name__)


def dense_stage(ctx: Context) -> tuple[Any, dict[str, Any]]:
    """Train the dense model once (resuming if interrupted) and return it, evaluated."""
    import torch

    spec, cfg, d = ctx.spec, ctx.cfg, ctx.dense_dir
    weights = d / "model.pt"
    metrics_path = d / "metrics.json"
    if (
        weights.is_file()
        and metrics_path.is_file()
        and read_json(metrics_path)["status"] == "finished"
    ):
        model = spec.build(cfg, ctx.data)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        log.info("reusing the dense model in %s", d)
        return model, read_json(metrics_path)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "config.json", dense_config_record(ctx.run, d, spec.config_to_dict(cfg)))
    if not metrics_path.is_file():
        write_json(metrics_path, {"status": "running", "error": None})
    torch.manual_seed(ctx.run.seed)
    model = spec.build(cfg, ctx.data)
    t0 = time.time()
    train_info = spec.train_dense(
        model, ctx.data, cfg, d / "train", epochs=spec.dense_epochs(cfg), resume=True
    )
    # Training may have scored the final model already (lm: the best checkpoint on valid and
    # test); scoring it again repeats the same numbers at the cost of a full pass over both.
    quality = train_info.get("quality") or spec.evaluate(model, ctx.data, cfg)
    # The dense model packed at alpha = 1 (every nonzero column its own group) is the baseline
    # the reports and hwsim compare against.
    pipe = Pipeline([], Schedule(n_events=1), pattern=ctx.run.targets or spec.default_targets)
    pipe.prepare(model)
    packed = pipe.finalize(
        model=ctx.run.model,
        workload=spec.workload(cfg, ctx.data),
        spike_rates=spec.spike_rates(model, ctx.data, cfg),
    )
    packed.save(d / "packed")
    write_json(d / "hwsim.json", simulate_packed(packed.to_json(), ctx.run.hw))
    save_torch(model.state_dict(), weights)
    metrics = {
        "status": "finished",
        "error": None,
        "quality": {"metric": spec.metric, "higher_is_better": spec.higher_is_better, **quality},
        **packed_summary(packed),
        "wall_time_s": train_info.get("train_time_s", time.time() - t0),
        "train": train_info,
    }
    write_json(metrics_path, metrics)
    return model, metrics
