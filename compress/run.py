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

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.datasets import REPO_ROOT, DatasetError, atomic_write_text, dataset_dir
from common.runtime import configure_cpu
from compress.config import (
    DATAFLOWS,
    QUANT_MODES,
    STRATEGIES,
    CombineConfig,
    PruneConfig,
    QuantConfig,
    from_dict,
)
from compress.registry import MODELS, PRESETS, get_spec

log = logging.getLogger("compress.run")

PACKED_TOLERANCE = 1e-4  # |packed - masked| quality, in the metric's units (BPC, ppl, ...)


@dataclass(frozen=True)
class HwChoice:
    rows: int = 128
    cols: int = 128
    dataflow: str = "ws"

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a compressed run's numbers; stored in config.json."""

    model: str
    preset: str
    seed: int
    prune: PruneConfig
    combine: CombineConfig
    quant: QuantConfig
    finetune_epochs: int
    targets: str | None
    hw: HwChoice
    lr_scale: float = 1.0
    finetune_steps: int = 0  # cap on fine-tuning optimizer steps; 0 = the full epochs

    def run_id(self) -> str:
        c, q = self.combine, self.quant
        bits = "fp" if not q.weights_on else f"w{q.bits}"
        acts = "" if not q.acts_on else f"a{q.act_bits}"
        quant = "" if q.mode == "off" or (not q.weights_on and not q.acts_on) else f"-{q.mode}"
        sp = f"-sp{self.prune.final_sparsity:g}" if self.prune.final_sparsity > 0 else ""
        return (
            f"a{c.max_paths}-g{c.gamma:g}{sp}-{bits}{acts}{quant}-ft{self.finetune_epochs}"
            f"{f'x{self.finetune_steps}' if self.finetune_steps else ''}"
            f"-{self.preset}-s{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        d["prune"] = from_dict(PruneConfig, d["prune"])
        d["combine"] = from_dict(CombineConfig, d["combine"])
        d["quant"] = from_dict(QuantConfig, d["quant"])
        d["hw"] = from_dict(HwChoice, d["hw"])
        return from_dict(cls, d)


# --------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every bad input ends the same way."""

    def error(self, message: str):  # type: ignore[override]
        raise ValueError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m compress.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--preset", default="cpu", help=f"one of: {', '.join(PRESETS)} (default cpu)")
    p.add_argument("--max-paths", type=int, default=3, help="alpha: columns per group (>= 1)")
    p.add_argument("--gamma", type=float, default=1.75, help="conflict budget per group, >= 0")
    p.add_argument("--sparsity", type=float, default=0.0, help="final prune rate in [0, 1)")
    p.add_argument("--prune-schedule", default="cubic", help="cubic | linear | one-shot")
    p.add_argument("--prune-events", type=int, default=8, help="prune/combine events (>= 1)")
    p.add_argument("--gate-aware", action="store_true", help="rank LSTM gate blocks separately")
    p.add_argument("--section-size", type=int, default=None, help="column window of a group")
    p.add_argument("--strategy", default="greedy", help=f"one of: {', '.join(STRATEGIES)}")
    p.add_argument("--bits", type=int, default=8, help="weight bits, 2..32 (32 = float)")
    p.add_argument("--act-bits", type=int, default=8, help="activation bits, 2..32 (32 = float)")
    p.add_argument("--quant", default="ptq", help=f"one of: {', '.join(QUANT_MODES)}")
    p.add_argument("--finetune-epochs", type=int, default=None, help="default: the preset's")
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=None,
        help="cap on fine-tuning steps (default: preset's)",
    )
    p.add_argument("--lr-scale", type=float, default=1.0, help="fine-tuning lr / preset lr")
    p.add_argument("--targets", default=None, help="regex over module names (default: LSTMs)")
    p.add_argument("--array", default="128x128", help="systolic array RxC (default 128x128)")
    p.add_argument("--dataflow", default="ws", help=f"one of: {', '.join(DATAFLOWS)}")
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--no-verify", action="store_true", help="skip SHA-256 checks (data you made yourself)"
    )
    p.add_argument("--run-dir", default=None, help="default runs/<model>/<run-id>")
    p.add_argument("--runs-root", default=None, help="default runs/ in the repository")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--seed", type=int, default=None, help="default: the preset's seed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return p


def _parse_array(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(s.strip().isdigit() and int(s) > 0 for s in parts):
        raise ValueError(
            f"--array must look like RxC with positive integers, e.g. 128x128; got {text!r}"
        )
    return int(parts[0]), int(parts[1])


def run_config_from_args(
    args: argparse.Namespace,
    default_finetune: int,
    default_seed: int = 0,
    default_steps: int = 0,
) -> RunConfig:
    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; allowed: {', '.join(PRESETS)}")
    if not 0.0 <= args.sparsity < 1.0:
        raise ValueError(f"--sparsity must be in [0, 1); got {args.sparsity}")
    if args.dataflow not in DATAFLOWS:
        raise ValueError(f"--dataflow must be one of {', '.join(DATAFLOWS)}; got {args.dataflow!r}")
    if args.finetune_epochs is not None and args.finetune_epochs < 0:
        raise ValueError(f"--finetune-epochs must be >= 0; got {args.finetune_epochs}")
    if args.finetune_steps is not None and args.finetune_steps < 0:
        raise ValueError(f"--finetune-steps must be >= 0 (0 = no cap); got {args.finetune_steps}")
    if not args.lr_scale > 0:
        raise ValueError(f"--lr-scale must be > 0; got {args.lr_scale}")
    rows, cols = _parse_array(args.array)
    if not isinstance(args.max_paths, int) or args.max_paths < 1:
        raise ValueError(f"--max-paths (alpha) must be an integer >= 1; got {args.max_paths}")
    if not args.gamma >= 0:
        raise ValueError(f"--gamma must be >= 0; got {args.gamma}")
    return RunConfig(
        model=args.model,
        preset=args.preset,
        seed=default_seed if args.seed is None else args.seed,
        prune=PruneConfig(
            final_sparsity=args.sparsity,
            schedule=args.prune_schedule,
            n_events=args.prune_events,
            gate_aware=args.gate_aware,
        ),
        combine=CombineConfig(
            max_paths=args.max_paths,
            gamma=args.gamma,
            section_size=args.section_size,
            strategy=args.strategy,
        ),
        quant=QuantConfig(mode=args.quant, bits=args.bits, act_bits=args.act_bits),
        finetune_epochs=default_finetune if args.finetune_epochs is None else args.finetune_epochs,
        targets=args.targets,
        hw=HwChoice(rows, cols, args.dataflow),
        lr_scale=args.lr_scale,
        finetune_steps=default_steps if args.finetune_steps is None else args.finetune_steps,
    )


# --------------------------------------------------------------------------- run records


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def runs_root(arg: str | None) -> Path:
    return Path(arg) if arg else REPO_ROOT / "runs"


def packed_summary(packed) -> dict[str, Any]:
    """The figures of a PackedModel that the table and the reports use."""
    from hwsim.memory import control_bits

    layers = []
    nnz = total = groups = cells = 0
    model_bytes = 0.0
    for layer in packed.layers:
        cells_l = layer.rows * layer.groups
        ctrl = control_bits(layer.max_paths)
        bytes_l = cells_l * (layer.weight_bits + ctrl) / 8 + (
            4 * layer.rows if layer.scale is not None else 0
        )
        layers.append(
            {
                "name": layer.name,
                "rows": layer.rows,
                "cols": layer.cols,
                "groups": layer.groups,
                "groups_per_split": list(map(int, layer.groups_per_split)),
                "nnz": layer.nnz,
                "nnz_before": layer.nnz_before,
                "packing_efficiency": layer.packing_efficiency,
                "column_reduction": layer.cols / max(layer.groups, 1),
                "weight_bits": layer.weight_bits,
                "bytes": bytes_l,
            }
        )
        nnz += layer.nnz
        total += layer.rows * layer.cols
        groups += layer.groups
        cells += cells_l
        model_bytes += bytes_l
    return {
        "weights_total": total,
        "nonzero_weights": nnz,
        "array_columns": groups,
        "packing_efficiency": nnz / max(cells, 1),
        "model_bytes": int(math.ceil(model_bytes)),
        "layers": layers,
    }


def simulate_packed(packed_json: dict, hw: HwChoice, spike_rates=None) -> dict[str, Any]:
    from hwsim.config import HwConfig
    from hwsim.simulate import simulate
    from hwsim.workload import from_packed_json

    workload = from_packed_json(packed_json, spike_rates=spike_rates)
    return simulate(workload, HwConfig(rows=hw.rows, cols=hw.cols, dataflow=hw.dataflow)).to_dict()


# --------------------------------------------------------------------------- the stages


@dataclass
class Context:
    args: argparse.Namespace
    spec: Any
    cfg: Any  # the model family's config
    run: RunConfig
    run_dir: Path
    dense_dir: Path
    data: Any = None


def prepare(argv: list[str] | None) -> Context:
    """Every check that can fail on bad input, before anything is written."""
    args = build_parser().parse_args(argv)
    spec = get_spec(args.model)
    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; allowed: {', '.join(PRESETS)}")
    cfg = spec.config(args.preset)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    steps_of = getattr(spec, "finetune_steps", None)
    run = run_config_from_args(
        args, spec.finetune_epochs(cfg), cfg.seed, steps_of(cfg) if steps_of else 0
    )
    dataset_dir(spec.dataset, args.data_dir, verify=not args.no_verify)
    root = runs_root(args.runs_root) / args.model
    run_dir = Path(args.run_dir) if args.run_dir else root / run.run_id()
    dense_dir = root / f"dense-{args.preset}-s{run.seed}"
    cfg_path = run_dir / "config.json"
    if args.resume and cfg_path.is_file():
        stored = read_json(cfg_path)
        changes = _diff(stored.get("run"), _jsonable_tree(run.to_dict()))
        if changes:
            raise ValueError(
                f"--resume: {run_dir} was made with different settings ({'; '.join(changes)}); "
                f"rerun with its settings or pick another --run-dir"
            )
    elif not args.resume and run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose --run-dir"
        )
    return Context(args, spec, cfg, run, run_dir, dense_dir)


def _jsonable_tree(d: Any) -> Any:
    return json.loads(json.dumps(d, default=_jsonable))


def dense_stage(ctx: Context):
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
    dense_cfg = {
        "run_id": d.name,
        "kind": "dense",
        "model": ctx.run.model,
        "preset": ctx.run.preset,
        "seed": ctx.run.seed,
        "compress": None,
        "hw": dataclasses.asdict(ctx.run.hw),
        "model_config": spec.config_to_dict(cfg),
    }
    write_json(d / "config.json", dense_cfg)
    if not metrics_path.is_file():
        write_json(metrics_path, {"status": "running", "error": None})
    torch.manual_seed(ctx.run.seed)
    model = spec.build(cfg, ctx.data)
    t0 = time.time()
    train_info = spec.train(
        model, ctx.data, cfg, d, epochs=spec.dense_epochs(cfg), resume=True, seed=ctx.run.seed
    )
    # Training may have scored the final model already (lm: the best checkpoint on valid and
    # test); scoring it again repeats the same numbers at the cost of a full pass over both.
    quality = train_info.get("quality") or spec.evaluate(model, ctx.data, cfg)
    # The dense model packed at alpha = 1 (every nonzero column its own group) is the baseline
    # the reports and hwsim compare against.
    from compress.pipeline import Pipeline
    from compress.schedule import Schedule

    targets = ctx.run.targets or getattr(spec, "default_targets", None)
    pipe = Pipeline([], Schedule(n_events=1), pattern=targets)
    pipe.prepare(model)
    rates_of = getattr(spec, "spike_rates", None)
    rates = rates_of(model, ctx.data, cfg) if rates_of is not None else None
    packed = pipe.finalize(
        model=ctx.run.model, workload=spec.workload(cfg, ctx.data), spike_rates=rates
    )
    packed.save(d / "packed")
    hw = simulate_packed(packed.to_json(), ctx.run.hw)
    write_json(d / "hwsim.json", hw)
    _atomic_torch_save(model.state_dict(), weights)
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


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        ctx = prepare(argv)
    except (ValueError, DatasetError) as e:
        print(f"compress.run: error: {e}", file=sys.stderr)
        return 2
    configure_cpu(ctx.args.threads)
    from compress.compressed import run_compressed

    return run_compressed(ctx, dense_stage)


if __name__ == "__main__":
    raise SystemExit(main())
