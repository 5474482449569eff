"""The dense stage: train the model of (model, preset, seed) once, then reuse it.

Its folder, runs/<model>/dense-<preset>-s<seed>/, is shared by every compressed run of that
(model, preset, seed): it holds the weights, their metrics, and the dense model packed at alpha = 1
over the model's own targets with its hwsim cost. A run with --targets compares against the same
weights packed over its own regex, kept in targets-<tag>/ there (`dense_baseline`): training is
the expensive part and does not depend on the targets, only the packing does.

The model trains, and is evaluated, on the run's device (ctx.runtime); under torchrun every rank
runs this stage and only rank 0 writes its files.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from common import distributed
from common.atomic import atomic_write_json
from compress.pipeline import Pipeline
from compress.schedule import Schedule
from lstmpack.run.config import Context
from lstmpack.run.records import (
    baseline_stem,
    dense_config_record,
    load_packed,
    load_torch,
    packed_summary,
    read_json,
    save_torch,
    simulate_packed,
    status_of,
    write_json,
)

log = logging.getLogger(__name__)


def dense_stage(ctx: Context) -> tuple[Any, dict[str, Any]]:
    """Train the dense model once (resuming if interrupted) and return it, evaluated."""
    import torch

    spec, cfg, d = ctx.spec, ctx.cfg, ctx.dense_dir
    main = distributed.is_main()
    weights = d / "model.pt"
    metrics_path = d / "metrics.json"
    t0 = time.time()
    if weights.is_file() and status_of(metrics_path) == "finished":
        model = spec.build(cfg, ctx.data)
        fix = "delete it: the dense stage then rebuilds it from its checkpoint in train/"
        model.load_state_dict(load_torch(weights, fix))
        model.to(ctx.runtime.device)
        if main and not (d / "config.json").is_file():  # a record only: written again if deleted
            write_json(d / "config.json", _config_record(ctx))
        log.info("dense model: reused %s (loaded in %.1f s)", d, time.time() - t0)
        return model, read_json(metrics_path)
    if main:
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "config.json", _config_record(ctx))
        if status_of(metrics_path) is None:  # missing, or damaged and deleted by the user
            write_json(metrics_path, {"status": "running", "error": None})
    log.info("dense model: training in %s", d)
    torch.manual_seed(ctx.run.seed)
    model = spec.build(cfg, ctx.data).to(ctx.runtime.device)
    train_info = spec.train_dense(
        model, ctx.data, cfg, d / "train", epochs=spec.dense_epochs(cfg), resume=True,
        **ctx.runtime_kwargs(),
    )  # fmt: skip
    # Training may have scored the final model already (lm: the best checkpoint on valid and
    # test); scoring it again repeats the same numbers at the cost of a full pass over both.
    quality = train_info.get("quality") or spec.evaluate(model, ctx.data, cfg)
    # The dense model packed at alpha = 1 (every nonzero column its own group) over the model's
    # own targets is the baseline the reports and hwsim compare against.
    packed = pack_dense(ctx, model, None)
    if main:
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
    if main:
        write_json(metrics_path, metrics)
    distributed.barrier()  # the dense run's files are complete before any rank goes on
    log.info("dense model: trained in %s (dense stage %.1f s)", d, time.time() - t0)
    return model, metrics


def _config_record(ctx: Context) -> dict[str, Any]:
    return dense_config_record(ctx.run, ctx.dense_dir, ctx.spec.config_to_dict(ctx.cfg))


def pack_dense(ctx: Context, model: Any, targets: str | None):
    """The dense `model` packed at alpha = 1 over `targets` (None: the model's own)."""
    spec = ctx.spec
    pipe = Pipeline([], Schedule(n_events=1), pattern=targets or spec.default_targets)
    pipe.prepare(model)
    return pipe.finalize(
        model=ctx.run.model,
        workload=spec.workload(ctx.cfg, ctx.data),
        spike_rates=spec.spike_rates(model, ctx.data, ctx.cfg),
    )


def _target_names(ctx: Context, model: Any, targets: str | None) -> list[str]:
    from compress.targets import find_targets

    return [t.name for t in find_targets(model, targets or ctx.spec.default_targets)]


def dense_baseline(ctx: Context, model: Any):
    """The dense model packed over this run's targets: the baseline of its table row, its
    ratios and its hwsim comparison. Read from the dense run's folder when it is there and packs
    exactly these targets' layers, else packed now and saved there (a dense run made before the
    baseline was kept per target set may hold another run's targets: it is packed again)."""
    targets = ctx.run.targets
    stem = baseline_stem(ctx.dense_dir, targets)
    names = _target_names(ctx, model, targets)
    if stem.with_suffix(".json").is_file():
        packed = load_packed(stem)
        if [layer.name for layer in packed.layers] == names:
            return packed
        log.warning(
            "%s.json packs %s, not this run's targets (%s): packing the dense model again",
            stem,
            ", ".join(layer.name for layer in packed.layers),
            ", ".join(names),
        )
    packed = pack_dense(ctx, model, targets)
    if not distributed.is_main():  # the same packing: rank 0 keeps it
        return packed
    packed.save(stem)
    if targets is None:
        _refresh_dense_records(ctx, packed)
    else:
        atomic_write_json(stem.parent / "targets.json", {"targets": targets, "layers": names})
    log.info("dense baseline: packed over %s into %s", targets or "the model's targets", stem)
    return packed


def _refresh_dense_records(ctx: Context, packed) -> None:
    """The dense run's figures and cost after its default packing was redone: metrics.json's
    packed figures and hwsim.json follow packed.json, so reports read one baseline."""
    d: Path = ctx.dense_dir
    metrics = read_json(d / "metrics.json")
    write_json(d / "metrics.json", {**metrics, **packed_summary(packed)})
    write_json(d / "hwsim.json", simulate_packed(packed.to_json(), ctx.run.hw))
    write_json(d / "config.json", _config_record(ctx))
