"""The passes as a library, inside your own training loop: torch.ao's sparsifier lifecycle.

    model = lstmpack.convert(model)                     # nn.LSTM / nn.GRU -> maskable equivalents
    comp = lstmpack.Compressor(lstmpack.CombineConfig(max_paths=3))
    comp.prepare(model)                                 # finds the recurrent layers, adds masks
    for step, batch in enumerate(batches):              # your own loop
        ...; optimizer.step(); comp.step()              # events fire at their scheduled steps
    packed = comp.finalize(seq_len=100)                 # a PackedModel (numpy only)
    cost = lstmpack.simulate(packed, array="128x128")   # hwsim's SimResult
    rec = lstmpack.write_record("runs/mine/a3", packed, {"valid": 1.9}, metric="bpc",
                                compressor=comp)        # what `python -m reports runs/mine` reads
    print(lstmpack.table([dense_rec, rec]))

`Compressor` wraps compress.pipeline.Pipeline with the passes compress.run builds (prune when
asked, combine, quantize) and its recovery options (the selection score and balance of the pass
configs, `reconstruct`, `regrow`, the L1 term); `write_record` writes the run records compress.run
writes, so `reports` tables a model of your own beside the built-in ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from common.atomic import atomic_write_text
from common.packed import PackedModel
from compress.config import CombineConfig, PruneConfig, QuantConfig
from compress.pipeline import Pipeline
from compress.schedule import Schedule
from compress.targets import WeightTarget
from hwsim.config import HwConfig, parse_array
from hwsim.simulate import SimResult


class Compressor:
    """prune -> combine -> quantize over a model's recurrent layers, driven by your own loop.

    `combine` (default alpha = 1: no combining, the layers packed as they are), `prune` (None: no
    magnitude pruning beyond combining's own), `quant` (default off; "qat" fake-quantizes from
    `prepare`, "ptq" at `finalize`) are the pass configs compress.run uses. `schedule` says at
    which optimizer steps the events fire (default: one event at step 0, then the weights recover
    under the masks). `targets` is a regex over module names (default: every recurrent matrix).
    Recovery: `combine.keep` / `combine.balance` choose the weights kept ("activation" and
    "saliency" score them on calibration batches), `reconstruct` re-solves the kept weights on
    calibration batches after each event, `regrow=False` lets masks only shrink, and
    `l1_penalty()` is the term the joint recipe adds to the loss until the last event.
    """

    def __init__(
        self,
        combine: CombineConfig | None = None,
        prune: PruneConfig | None = None,
        quant: QuantConfig | None = None,
        *,
        schedule: Schedule | None = None,
        targets: str | None = None,
        reconstruct: bool = False,
        regrow: bool = True,
    ) -> None:
        self.combine = _config("combine", combine, CombineConfig, CombineConfig())
        self.prune = _config("prune", prune, PruneConfig, None)
        self.quant = _config("quant", quant, QuantConfig, QuantConfig(mode="off"))
        self.schedule = _config("schedule", schedule, Schedule, Schedule(kind="one-shot"))
        if self.prune is not None and self.prune.keep != self.combine.keep:
            raise ValueError(
                f"prune.keep {self.prune.keep!r} and combine.keep {self.combine.keep!r} differ; "
                f"one score ranks the weights of both passes: give them the same keep"
            )
        self.targets_pattern = targets
        self.reconstruct = bool(reconstruct)
        self.regrow = bool(regrow)
        self.pipeline: Pipeline | None = None
        self.step_count = 0  # optimizer steps seen by `step`
        self._model: nn.Module | None = None
        self._run_batch: Callable[[Any], Any] | None = None
        self._batches: list[Any] = []
        self._quant = None  # the QuantizePass, once it is registered

    # -- the lifecycle --------------------------------------------------------------------------
    def prepare(
        self,
        model: nn.Module,
        calibration: Iterable[Any] | None = None,
        forward: Callable[[Any], Any] | None = None,
    ) -> list[WeightTarget]:
        """Find the model's targets and register every pass's parametrization on them; returns
        the targets. `calibration` is a few training batches for the options that need inputs
        (keep "activation" / "saliency", `reconstruct`, activation quantization), each run as
        `forward(batch)` (default `model(batch)`) in eval mode without gradients."""
        from compress.passes.combine import CombinePass
        from compress.passes.prune import PrunePass
        from compress.passes.quantize import QuantizePass

        if self.pipeline is not None:
            raise ValueError("this Compressor is prepared already; make a new one for a new model")
        passes: list = []
        if self.prune is not None and self.prune.final_sparsity > 0:
            passes.append(PrunePass(self.prune))
        passes.append(CombinePass(self.combine))
        q = self.quant
        if q.mode == "qat" and (q.weights_on or q.acts_on):
            self._quant = QuantizePass(q)
            passes.append(self._quant)
        pipe = Pipeline(passes, self.schedule, pattern=self.targets_pattern, regrow=self.regrow)
        self._set_calibration(model, calibration, forward)
        self._check_inputs(model)  # before anything is registered on the model
        self._model = model
        pipe.prepare(model)
        self.pipeline = pipe
        self._attach_calibrated(model, pipe)
        if self._quant is not None and q.acts_on:
            self._calibrate_ranges()
        return pipe.targets

    def step(self, step: int | None = None) -> bool:
        """Call after every optimizer step (or let `hook` call it); `step` is the 0-based index of
        the step just taken (default: one more than the last). True when an event fired."""
        pipe = self._prepared("step()")
        s = self.step_count if step is None else int(step)
        fired = pipe.on_step(s)
        self.step_count = s + 1
        return fired

    def hook(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Call `step()` after every `optimizer.step()`; returns the hook's handle (.remove())."""
        return optimizer.register_step_post_hook(lambda opt, args, kwargs: self.step())

    def finalize(
        self,
        *,
        seq_len: int = 1,
        batch: int = 1,
        name: str | None = None,
        spike_rates: Mapping[str, float] | None = None,
    ) -> PackedModel:
        """Fire the last event if the schedule has not, quantize ("ptq": now, calibrated on the
        `prepare` batches), and return the packed model; (seq_len, batch) is the workload of one
        inference that hwsim costs. The model is left computing what the packed one does:
        evaluate it after this call for the quality of the packed model."""
        pipe = self._prepared("finalize()")
        if pipe.events_done < pipe.n_events:
            pipe.apply_event(pipe.n_events)
        q = self.quant
        if q.mode == "ptq" and (q.weights_on or q.acts_on) and self._quant is None:
            from compress.passes.quantize import QuantizePass

            self._quant = QuantizePass(q)
            pipe.passes.append(self._quant)
            self._quant.prepare(pipe.targets)
            if q.acts_on:
                self._calibrate_ranges()
        workload = {"seq_len": _positive("seq_len", seq_len), "batch": _positive("batch", batch)}
        rates = dict(spike_rates) if spike_rates else None
        return pipe.finalize(model=name, workload=workload, spike_rates=rates)

    # -- what a loop may want to know ------------------------------------------------------------
    @property
    def targets(self) -> list[WeightTarget]:
        return self._prepared("targets").targets

    @property
    def done(self) -> bool:
        """Whether every scheduled event has fired."""
        pipe = self._prepared("done")
        return pipe.events_done >= pipe.n_events

    def summary(self) -> dict[str, float]:
        """Nonzeros and density of the effective weights; after an event also the array columns
        and the packing efficiency."""
        return self._prepared("summary()").summary()

    def l1_penalty(self) -> torch.Tensor:
        """sum |masked weight| over the targets, differentiable in the raw weights: multiply by
        a coefficient and add it to the loss (the joint recipe does until `done`)."""
        return self._prepared("l1_penalty()").l1_penalty()

    def state_dict(self) -> dict[str, Any]:
        """The loop position and event count; masks and groups are buffers of the model, so they
        travel in its own state dict."""
        return {"step": self.step_count, **self._prepared("state_dict()").state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._prepared("load_state_dict()").load_state_dict(dict(state))
        self.step_count = int(state["step"])

    def settings(self) -> dict[str, Any]:
        """The settings a run record states ("compress" in config.json)."""
        q = self.quant
        return {
            "max_paths": self.combine.max_paths,
            "gamma": self.combine.gamma,
            "sparsity": self.prune.final_sparsity if self.prune is not None else 0.0,
            "bits": q.bits if q.weights_on else 32,
            "act_bits": q.act_bits if q.acts_on else 32,
            "quant": q.mode,
            "strategy": self.combine.strategy,
            "section_size": self.combine.section_size,
            "keep": self.combine.keep,
            "balance": self.combine.balance,
            "reconstruct": self.reconstruct,
            "regrow": self.regrow,
            "schedule": self.schedule.kind,
            "events": self.pipeline.n_events if self.pipeline is not None else None,
        }

    # -- internals -------------------------------------------------------------------------------
    def _prepared(self, what: str) -> Pipeline:
        if self.pipeline is None:
            raise ValueError(f"call prepare(model) before {what}")
        return self.pipeline

    def _set_calibration(
        self, model: nn.Module, calibration: Iterable[Any] | None, forward: Callable | None
    ) -> None:
        if calibration is None:
            return
        # a list: the calibrated events run the batches again at every collection
        self._batches = list(calibration)
        run = forward if forward is not None else model

        def run_batch(batch: Any) -> None:
            model.eval()
            with torch.no_grad():
                run(batch)

        self._run_batch = run_batch

    def _calibrated(self) -> str | None:
        """What asks for calibrated events ("reconstruct=True", "keep 'activation'"), or None."""
        if self.reconstruct:
            return "reconstruct=True"
        return None if self.combine.keep == "magnitude" else f"keep {self.combine.keep!r}"

    def _check_inputs(self, model: nn.Module) -> None:
        """ValueError when an option needs calibration batches that were not given, or inputs a
        target does not have (an embedding)."""
        q = self.quant
        needs = [self._calibrated()]
        if q.acts_on and q.mode in ("qat", "ptq"):
            needs.append(f"quant mode {q.mode!r} with act_bits < 32")
        for what in filter(None, needs):
            if self._run_batch is None or not self._batches:
                raise ValueError(
                    f"{what} needs calibration batches: prepare(model, calibration=[batch, ...])"
                )
        what = self._calibrated()
        if what is not None:
            from compress.calibration import check_calibration_targets
            from compress.targets import find_targets

            check_calibration_targets(find_targets(model, self.targets_pattern), what)

    def _attach_calibrated(self, model: nn.Module, pipe: Pipeline) -> None:
        what = self._calibrated()
        if what is None:
            return
        from compress.calibration import Saliency
        from compress.reconstruct import CalibratedEvents

        keep = self.combine.keep
        CalibratedEvents(
            model,
            lambda: (self._run_batch, self._batches),
            saliency=Saliency(keep) if keep != "magnitude" else None,
            reconstruct=self.reconstruct,
        ).attach(pipe)

    def _calibrate_ranges(self) -> None:
        model = self._model
        was_training = model.training
        try:
            self._quant.calibrate(self._run_batch, self._batches)
        finally:
            model.train(was_training)


def _config(name: str, value: Any, kind: type, default: Any) -> Any:
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__name__} or None; got {type(value).__name__}")
    return value


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return value


# --------------------------------------------------------------------------- the dense baseline


def pack(
    model: nn.Module,
    *,
    targets: str | None = None,
    seq_len: int = 1,
    batch: int = 1,
    name: str | None = None,
) -> PackedModel:
    """The model's targets packed as they are (alpha = 1, every nonzero column its own group):
    the dense baseline a compressed model is compared with. Registers nothing on the model."""
    pipe = Pipeline([], Schedule(n_events=1), pattern=targets)
    pipe.prepare(model)
    workload = {"seq_len": _positive("seq_len", seq_len), "batch": _positive("batch", batch)}
    return pipe.finalize(model=name, workload=workload)


def hw_config(array: str = "128x128", dataflow: str = "ws") -> HwConfig:
    """hwsim's array of `array` ("RxC") with `dataflow` (ws, os, is), its defaults elsewhere."""
    rows, cols = parse_array(array)
    return HwConfig(rows=rows, cols=cols, dataflow=dataflow)


def simulate(
    packed: PackedModel | Mapping | str | os.PathLike,
    *,
    array: str = "128x128",
    dataflow: str = "ws",
    hw: HwConfig | None = None,
) -> SimResult:
    """hwsim's cost of one inference of a packed model (a PackedModel, its JSON or its .json
    file) on an `array` systolic array (or a full HwConfig `hw`)."""
    from hwsim.simulate import simulate as run
    from hwsim.workload import from_packed_json

    doc = packed.to_json() if isinstance(packed, PackedModel) else packed
    return run(from_packed_json(doc), hw if hw is not None else hw_config(array, dataflow))


# --------------------------------------------------------------------------- run records


@dataclass(frozen=True)
class Record:
    """One run directory's records, as `write_record` wrote them."""

    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    hwsim: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.config["run_id"])


def write_record(
    run_dir: str | os.PathLike,
    packed: PackedModel,
    quality: Mapping[str, float | None],
    *,
    metric: str,
    compressor: Compressor | None = None,
    model: str | None = None,
    preset: str = "custom",
    seed: int = 0,
    array: str = "128x128",
    dataflow: str = "ws",
) -> Record:
    """Write a run directory as compress.run does: config.json, packed.json + .npz, hwsim.json,
    metrics.json and table.md, each atomically, so that `python -m reports <its parent>` tables
    it. `quality` holds "valid" and / or "test" in `metric` (bpc, ppl, accuracy, bleu; other keys
    are kept too); with a `compressor` the run is a compressed one (its settings recorded), else
    the dense baseline. `model` defaults to the packed model's name, then to the folder above."""
    from lstmpack.run.records import format_table, hw_record, packed_summary, write_json
    from reports.records import METRICS

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    q = dict(quality)
    if not any(isinstance(q.get(k), int | float) for k in ("valid", "test")):
        raise ValueError(f"quality must hold a number under 'valid' or 'test'; got {q!r}")
    run_dir = Path(run_dir)
    hw = hw_config(array, dataflow)
    config = {
        "run_id": run_dir.name,
        "kind": "dense" if compressor is None else "compressed",
        "model": model or packed.model or run_dir.resolve().parent.name,
        "preset": preset,
        "seed": int(seed),
        "compress": None if compressor is None else compressor.settings(),
        "hw": hw_record(hw),
    }
    sim = simulate(packed, hw=hw).to_dict()
    metrics = {
        "status": "finished",
        "error": None,
        "quality": {
            "metric": metric,
            "higher_is_better": METRICS[metric],
            "valid": q.pop("valid", None),
            "test": q.pop("test", None),
            **q,
        },
        **packed_summary(packed),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config)
    packed.save(run_dir / "packed")
    write_json(run_dir / "hwsim.json", sim)
    record = Record(run_dir, config, metrics, sim)
    atomic_write_text(
        run_dir / "table.md", format_table([(record.label, metrics, sim)], metric) + "\n"
    )
    write_json(run_dir / "metrics.json", metrics)  # last: "finished" means every file is there
    return record


def table(records: Sequence[Record]) -> str:
    """The markdown table compress.run prints, one row per record (labelled by its run id)."""
    from lstmpack.run.records import format_table

    if not records:
        raise ValueError("table() needs at least one record")
    metric = records[0].metrics["quality"]["metric"]
    return format_table([(r.label, r.metrics, r.hwsim) for r in records], metric)
