"""The compressed stage of `compress.run`: fine-tune under the passes, pack, prove, simulate."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from compress.packing import PackedModel, unpack_dense
from compress.passes.combine import CombinePass
from compress.passes.prune import PrunePass
from compress.passes.quantize import QuantizePass
from compress.pipeline import Pipeline
from compress.schedule import Schedule

log = logging.getLogger("compress.run")


def finetune_steps(run, steps_per_epoch: int) -> int:
    total = steps_per_epoch * run.finetune_epochs
    return min(total, run.finetune_steps) if run.finetune_steps else total


def build_pipeline(
    run, steps_per_epoch: int, targets: str | None = None
) -> tuple[Pipeline, QuantizePass | None]:
    """prune (when --sparsity > 0) -> combine -> quantize (qat: from the start; ptq: at the end).

    Events are spread over the first half of fine-tuning, as the published recipe prunes over
    the first half of training and lets the weights recover in the second.
    """
    passes: list = []
    if run.prune.final_sparsity > 0:
        passes.append(PrunePass(run.prune))
    passes.append(CombinePass(run.combine))
    q = run.quant
    quant = QuantizePass(q) if (q.weights_on or q.acts_on) else None
    if quant is not None and q.mode == "qat":
        passes.append(quant)
    end = max(0, finetune_steps(run, steps_per_epoch) // 2 - 1)
    schedule = Schedule(
        kind=run.prune.schedule,
        final_sparsity=run.prune.final_sparsity,
        n_events=run.prune.n_events,
        start_step=0,
        end_step=end,
    )
    return Pipeline(passes, schedule, pattern=targets), quant


def rebuild_from_packed(spec, cfg, data, model, packed: PackedModel, act_quant_cfg=None):
    """A fresh model whose targeted weights come from the packed file, gathered through the
    control bits (unpack_dense), and whose other parameters come from `model`."""
    import torch

    from compress.targets import find_targets

    fresh = spec.build(cfg, data)
    if act_quant_cfg is not None:
        qp = QuantizePass(act_quant_cfg)
        qp.prepare(find_targets(fresh, packed_pattern(packed), kinds=None))
    by_name = {layer.name: layer for layer in packed.layers}
    src = model.state_dict()
    state = {}
    for key in fresh.state_dict():
        owner, _, leaf = key.rpartition(".")
        layer = by_name.get(owner)
        if layer is not None and leaf == "weight":
            state[key] = torch.from_numpy(unpack_dense(layer).astype(np.float32))
        elif layer is not None and layer.kind == "lstm" and leaf in ("bias_ih", "bias_hh"):
            # the packed file holds b_ih + b_hh, as the hardware adds one bias per gate row
            b = layer.bias if leaf == "bias_ih" else np.zeros_like(layer.bias)
            state[key] = torch.from_numpy(np.asarray(b, np.float32))
        elif key in src:
            state[key] = src[key]
        else:
            raise KeyError(f"rebuilding from the packed file: no value for {key}")
    fresh.load_state_dict(state)
    return fresh


def packed_pattern(packed: PackedModel) -> str:
    import re

    return "^(" + "|".join(re.escape(layer.name) for layer in packed.layers) + ")$"


def format_table(rows: list[tuple[str, dict, dict]], metric: str) -> str:
    """Markdown table, one row per (label, metrics, hwsim) triple."""
    head = (
        f"| model | nonzero weights | array columns | packing eff. | valid {metric} "
        f"| test {metric} | cycles | util. | energy (uJ) | model bytes |"
    )
    out = [head, "|" + "---|" * 10]
    for label, m, hw in rows:
        q = m["quality"]
        t = hw["total"]
        out.append(
            f"| {label} | {m['nonzero_weights']:,} | {m['array_columns']:,} "
            f"| {m['packing_efficiency']:.3f} | {_fmt(q.get('valid'))} | {_fmt(q.get('test'))} "
            f"| {t['cycles']:,} | {t['utilization']:.3g} | {t['energy_pj'] / 1e6:,.1f} "
            f"| {m['model_bytes']:,} |"
        )
    return "\n".join(out)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def run_compressed(ctx, dense_stage) -> int:
    from compress.run import read_json, simulate_packed, write_json

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
    write_json(run_dir / "config.json", _config_record(ctx))
    write_json(metrics_path, {"status": "running", "error": None})
    try:
        ctx.data = spec.load_data(cfg, ctx.args.data_dir, verify=not ctx.args.no_verify)
        dense_model, dense_metrics = dense_stage(ctx)
        dense_packed = PackedModel.load(ctx.dense_dir / "packed")
        dense_hw = simulate_packed(dense_packed.to_json(), run.hw)
        metrics, hw = _compress(ctx, dense_model, run_dir)
    except Exception as e:
        write_json(metrics_path, {"status": "failed", "error": f"{type(e).__name__}: {e}"})
        raise
    metrics["dense"] = {"quality": dense_metrics["quality"], "hwsim_total": dense_hw["total"]}
    table = format_table(
        [("dense", dense_metrics, dense_hw), (run.run_id(), metrics, hw)], spec.metric
    )
    (run_dir / "table.md").write_text(table + "\n")
    write_json(metrics_path, metrics)
    print(table)
    return 0


def _config_record(ctx) -> dict[str, Any]:
    run = ctx.run
    return {
        "run_id": ctx.run_dir.name,
        "kind": "compressed",
        "model": run.model,
        "preset": run.preset,
        "seed": run.seed,
        "compress": {
            "max_paths": run.combine.max_paths,
            "gamma": run.combine.gamma,
            "sparsity": run.prune.final_sparsity,
            "bits": run.quant.bits if run.quant.weights_on else 32,
            "act_bits": run.quant.act_bits if run.quant.acts_on else 32,
            "quant": run.quant.mode,
            "strategy": run.combine.strategy,
            "section_size": run.combine.section_size,
            "finetune_epochs": run.finetune_epochs,
        },
        "hw": {"array": run.hw.array, **dataclasses.asdict(run.hw)},
        "dense_dir": str(ctx.dense_dir),
        "model_config": ctx.spec.config_to_dict(ctx.cfg),
        "run": run.to_dict(),
    }


def _compress(ctx, dense_model, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    from compress.run import PACKED_TOLERANCE, packed_summary, simulate_packed, write_json

    spec, cfg, run, data = ctx.spec, ctx.cfg, ctx.run, ctx.data
    t0 = time.time()
    torch.manual_seed(run.seed)
    model = spec.build(cfg, data)
    model.load_state_dict(dense_model.state_dict())
    targets = run.targets or getattr(spec, "default_targets", None)
    pipe, quant = build_pipeline(run, spec.steps_per_epoch(cfg, data), targets)
    pipe.prepare(model)
    if quant is not None and run.quant.mode == "qat":
        quant.calibrate(*spec.calibration(model, data, cfg))
    train_info: dict[str, Any] = {}
    if run.finetune_epochs == 0:
        pipe.apply_event(pipe.n_events)
    else:
        train_info = spec.train(
            model,
            data,
            cfg,
            run_dir,
            epochs=run.finetune_epochs,
            resume=ctx.args.resume,
            on_step=pipe.on_step,
            extra_state=pipe,
            lr_scale=run.lr_scale,
            seed=run.seed,
            max_steps=run.finetune_steps,
        )
        if pipe.events_done < pipe.n_events:
            pipe.apply_event(pipe.n_events)
    if quant is not None and run.quant.mode == "ptq":
        pipe.passes.append(quant)
        quant.prepare(pipe.targets)
        quant.calibrate(*spec.calibration(model, data, cfg))
    model.eval()
    masked = spec.evaluate(model, data, cfg)
    rates_of = getattr(spec, "spike_rates", None)
    rates = rates_of(model, data, cfg) if rates_of is not None else None
    packed = pipe.finalize(model=run.model, workload=spec.workload(cfg, data), spike_rates=rates)
    packed.save(run_dir / "packed")
    # The proof that the hardware mapping is right: the model rebuilt from the packed file alone
    # (weights gathered through the control bits) scores what the masked model scored.
    act_cfg = None
    if run.quant.acts_on:
        act_cfg = dataclasses.replace(run.quant, mode="ptq", bits=32)
    rebuilt = rebuild_from_packed(spec, cfg, data, model, packed, act_cfg)
    rebuilt.eval()
    packed_q = spec.evaluate(rebuilt, data, cfg)
    gap = max(abs(packed_q[k] - masked[k]) for k in ("valid", "test") if masked.get(k) is not None)
    if gap > PACKED_TOLERANCE:
        raise RuntimeError(
            f"the packed model scores {packed_q} but the masked model {masked}: gap {gap:.2e} > "
            f"{PACKED_TOLERANCE:g}; the packed mapping is wrong"
        )
    hw = simulate_packed(packed.to_json(), run.hw)
    write_json(run_dir / "hwsim.json", hw)
    metrics = {
        "status": "finished",
        "error": None,
        "quality": {"metric": spec.metric, "higher_is_better": spec.higher_is_better, **masked},
        "packed_quality": packed_q,
        "packed_gap": gap,
        **packed_summary(packed),
        "wall_time_s": time.time() - t0,
        "events_done": pipe.events_done,
        "act_ranges": quant.act_ranges() if quant is not None else None,
        "train": train_info,
    }
    return metrics, hw
