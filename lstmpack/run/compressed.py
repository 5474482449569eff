"""The compressed stage: fine-tune from the dense model under the passes, pack, prove, simulate.

Every part runs on the run's device (ctx.runtime): the model goes there once the passes have
registered their masks (so the masks go with it), again after the PTQ pass registers its
quantizers, and the model rebuilt from the packed file for the proof goes there too. Under
torchrun every rank runs the stage (the fine-tune data-parallel, its events broadcast from rank
0) and only rank 0 writes.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import numpy as np

from common import distributed
from compress.config import QuantConfig
from compress.packing import PackedModel, unpack_biases, unpack_dense
from compress.passes.combine import CombinePass
from compress.passes.prune import PrunePass
from compress.passes.quantize import QuantizePass
from compress.pipeline import Pipeline
from compress.schedule import Schedule
from compress.targets import find_targets
from lstmpack.run import calibrated
from lstmpack.run.config import Context, RunConfig
from lstmpack.run.joint import train_under_pipeline
from lstmpack.run.records import packed_summary, simulate_packed, write_json

log = logging.getLogger(__name__)

# |packed - masked| quality over max(1, |masked|): absolute for BPC and accuracy, relative for
# perplexity, where float32 rounding alone moves a ppl of 130 by ~1e-3 (a relative 1e-4 of ppl is
# 1e-4 nats of mean loss, the same bound BPC gets in bits)
PACKED_TOLERANCE = 1e-4


def finetune_steps(run: RunConfig, steps_per_epoch: int) -> int:
    total = steps_per_epoch * run.finetune_epochs
    return min(total, run.finetune_steps) if run.finetune_steps else total


def build_pipeline(
    run: RunConfig, steps_per_epoch: int, targets: str | None = None
) -> tuple[Pipeline, QuantizePass | None]:
    """prune (when --sparsity > 0) -> combine -> quantize (qat: from the start; ptq: at the end).

    Events are spread evenly from the step that ends the run.prune_start share of the training
    to the one that ends its run.prune_end share (0 and 0.5 by default, as the published recipe
    prunes over the first half of training and lets the weights recover in the second).
    """
    passes: list = []
    if run.prune.final_sparsity > 0:
        passes.append(PrunePass(run.prune))
    passes.append(CombinePass(run.combine))
    q = run.quant
    quant = QuantizePass(q) if (q.weights_on or q.acts_on) else None
    if quant is not None and q.mode == "qat":
        passes.append(quant)
    total = finetune_steps(run, steps_per_epoch)
    start = max(0, int(total * run.prune_start) - 1)
    end = max(start, int(total * run.prune_end) - 1)
    schedule = Schedule(
        kind=run.prune.schedule,
        final_sparsity=run.prune.final_sparsity,
        n_events=run.prune.n_events,
        start_step=start,
        end_step=end,
    )
    return Pipeline(passes, schedule, pattern=targets, regrow=run.regrow), quant


def rebuild_from_packed(
    spec,
    cfg,
    data,
    model,
    packed: PackedModel,
    act_quant_cfg: QuantConfig | None = None,
    device: str = "cpu",
):
    """A fresh model on `device` whose targeted weights come from the packed file, gathered
    through the control bits (unpack_dense), and whose other parameters come from `model`."""
    import torch

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
        elif layer is not None and leaf in (biases := unpack_biases(layer)):
            # as the packed file holds them: an LSTM's b_ih + b_hh in one, a GRU's apart
            state[key] = torch.from_numpy(biases[leaf])
        elif key in src:
            state[key] = src[key]
        else:
            raise KeyError(f"rebuilding from the packed file: no value for {key}")
    fresh.load_state_dict(state)
    return fresh.to(device)


def packed_pattern(packed: PackedModel) -> str:
    """A regex matching exactly the packed layers' names."""
    return "^(" + "|".join(re.escape(layer.name) for layer in packed.layers) + ")$"


class StageClock:
    """Seconds per part of a stage, for the log line and metrics.json."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def summary(self) -> str:
        total = sum(self.laps.values())
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.laps.items())
        return f"{total:.1f} s: {parts}"


def _calibrated_s(calib: Any) -> float:
    rec = calib.record()
    return float(rec.get("calibration_s", 0.0)) + float(rec.get("solve_s", 0.0))


def compressed_stage(ctx: Context, dense_model) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fine-tune a copy of the dense model under the passes, pack it into the run directory,
    prove the packing right and simulate it. Returns (metrics, hwsim)."""
    import torch

    spec, cfg, run, data, run_dir = ctx.spec, ctx.cfg, ctx.run, ctx.data, ctx.run_dir
    device, main = ctx.runtime.device, distributed.is_main()
    t0 = time.time()
    clock = StageClock()
    torch.manual_seed(run.seed)
    model = spec.build(cfg, data)
    if run.recipe == "posthoc":  # joint trains the fresh model, initialised as the dense one was
        model.load_state_dict(dense_model.state_dict())
    targets = run.targets or spec.default_targets
    pipe, quant = build_pipeline(run, spec.steps_per_epoch(cfg, data), targets)
    pipe.prepare(model)
    model.to(device)  # with the masks the passes registered
    calib = calibrated.attach(ctx, model, pipe)  # --keep saliency, --reconstruct
    if quant is not None and run.quant.mode == "qat":
        quant.calibrate(*spec.calibration(model, data, cfg))
    clock.lap("setup")
    train_info: dict[str, Any] = {}
    if run.finetune_epochs == 0:
        pipe.apply_event(pipe.n_events)
    else:
        train_info = train_under_pipeline(ctx, model, pipe, dense_model)
        if pipe.events_done < pipe.n_events:
            pipe.apply_event(pipe.n_events)
    clock.lap("fine-tune")
    if quant is not None and run.quant.mode == "ptq":
        pipe.passes.append(quant)
        quant.prepare(pipe.targets)
        model.to(device)  # the activation quantizers' ranges with it
        quant.calibrate(*spec.calibration(model, data, cfg))
    clock.lap("calibration")
    model.eval()
    masked = spec.evaluate(model, data, cfg)
    rates = spec.spike_rates(model, data, cfg)
    clock.lap("evaluation")
    packed = pipe.finalize(model=run.model, workload=spec.workload(cfg, data), spike_rates=rates)
    if main:
        packed.save(run_dir / "packed")
    clock.lap("packing")
    packed_q, gap = _prove(ctx, model, packed, masked)
    clock.lap("proof")
    hw = simulate_packed(packed.to_json(), run.hw)
    if main:
        write_json(run_dir / "hwsim.json", hw)
    clock.lap("hwsim")
    # the calibrated events' own cost runs inside the fine-tune's seconds
    inner = "" if calib is None else f" (calibrated events {_calibrated_s(calib):.0f} s)"
    log.info("compressed stage: %s%s", clock.summary(), inner)
    metrics = {
        "status": "finished",
        "error": None,
        "quality": {"metric": spec.metric, "higher_is_better": spec.higher_is_better, **masked},
        "packed_quality": packed_q,
        "packed_gap": gap,
        **packed_summary(packed),
        "wall_time_s": time.time() - t0,
        "stage_times_s": clock.laps,
        "events_done": pipe.events_done,
        "act_ranges": quant.act_ranges() if quant is not None else None,
        "train": train_info,
    }
    if calib is not None:  # their cost (seconds of calibration and solving) and effect
        metrics["calibrated"] = calib.record()
    return metrics, hw


def _prove(
    ctx: Context, model, packed: PackedModel, masked: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """The proof that the hardware mapping is right: the model rebuilt from the packed file alone
    (weights gathered through the control bits) scores what the masked model scored. Returns the
    rebuilt model's quality and its largest gap to `masked`; RuntimeError beyond the tolerance."""
    spec, cfg, run, data = ctx.spec, ctx.cfg, ctx.run, ctx.data
    # activations quantized as in the masked model (their calibrated ranges come with the state
    # copied from it); the weights are the packed, already quantized values
    act_cfg = run.quant.replace(mode="ptq", bits=32) if run.quant.acts_on else None
    rebuilt = rebuild_from_packed(spec, cfg, data, model, packed, act_cfg, ctx.runtime.device)
    rebuilt.eval()
    packed_q = spec.evaluate(rebuilt, data, cfg)
    gap = max(
        abs(packed_q[k] - masked[k]) / max(1.0, abs(masked[k]))
        for k in ("valid", "test")
        if masked.get(k) is not None
    )
    if gap > PACKED_TOLERANCE:
        raise RuntimeError(
            f"the packed model scores {packed_q} but the masked model {masked}: gap {gap:.2e} > "
            f"{PACKED_TOLERANCE:g}; the packed mapping is wrong"
        )
    return packed_q, gap
