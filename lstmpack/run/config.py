"""The configuration stage of a run: flags -> RunConfig, and every check that can fail on bad
input, done before anything is written.

`RunConfig` lives here, not in compress.config beside the pass configs it holds, because it also
binds a model name, a preset and an hwsim `HwConfig`: compress stays below hwsim and the models,
and only this layer knows all three.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from common.configs import check_max_paths, from_dict, replace
from common.datasets import REPO_ROOT, dataset_dir
from common.spec import ModelSpec
from compress.config import QUANT_MODES, STRATEGIES, CombineConfig, PruneConfig, QuantConfig
from hwsim.config import DATAFLOWS, HwConfig, parse_array
from lstmpack.registry import MODELS, PRESETS, check_preset, get_spec
from lstmpack.run import calibrated, recipe
from lstmpack.run.columns import HELP as SMALL_DENSE_HELP
from lstmpack.run.columns import parse_columns, resolve
from lstmpack.run.records import changed_settings, hw_settings, read_json

DESCRIPTION = (
    "`python -m compress.run`: train (or reuse) the dense model, compress it, evaluate, simulate."
)


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
    hw: HwConfig  # --array and --dataflow; hwsim's defaults for everything else
    lr_scale: float = 1.0
    finetune_steps: int = 0  # cap on fine-tuning optimizer steps; 0 = the full epochs
    recipe: str = "posthoc"  # recipe.RECIPES; joint: finetune_epochs are the dense epochs
    l1: float = 0.0  # L1 penalty on the masked targeted weights until the last event
    regrow: bool = True  # masks rebuilt from the raw weights at every event; False: only shrink
    distill: tuple[float, float] | None = None  # (T, W): + W T^2 KL(dense teacher || student)
    lr_rewind: bool = False  # fine-tune on the tail of the dense run's own lr schedule
    # the posthoc fine-tune's rate (recipe.FINETUNE_SCHEDULES; language models only)
    finetune_schedule: str = "constant"
    small_dense: int = 0  # --small-dense: the baseline's target array columns; 0 = compress
    reconstruct: bool = False  # re-solve the kept weights on calibration inputs at every event

    def _training_tag(self) -> str:
        """-joint, or -ft<epochs>[x<step cap>] for the posthoc fine-tune."""
        if self.recipe == "joint":
            return "-joint"
        steps = f"x{self.finetune_steps}" if self.finetune_steps else ""
        return f"-ft{self.finetune_epochs}{steps}"

    def run_id(self) -> str:
        if self.small_dense:  # a dense model, not a compressed one: none of the settings below
            return f"small-dense-{self.preset}-s{self.seed}-c{self.small_dense}"
        c, q = self.combine, self.quant
        bits = "fp" if not q.weights_on else f"w{q.bits}"
        acts = "" if not q.acts_on else f"a{q.act_bits}"
        quant = "" if q.mode == "off" or (not q.weights_on and not q.acts_on) else f"-{q.mode}"
        sp = f"-sp{self.prune.final_sparsity:g}" if self.prune.final_sparsity > 0 else ""
        return (
            f"a{c.max_paths}-g{c.gamma:g}{sp}-{bits}{acts}{quant}{self._training_tag()}"
            f"{recipe.tags(self)}{calibrated.tags(self)}-{self.preset}-s{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("prune", "combine", "quant"):
            d[name] = d[name].to_dict()
        d["hw"] = hw_settings(self.hw)
        for name, default in recipe.DEFAULTS.items():
            if d[name] == default:
                del d[name]
        if not d["small_dense"]:  # left out when off, as the recipe's fields: older runs resume
            del d["small_dense"]
        return calibrated.drop_defaults(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        d["prune"] = PruneConfig.from_dict(d["prune"])
        d["combine"] = CombineConfig.from_dict(d["combine"])
        d["quant"] = QuantConfig.from_dict(d["quant"])
        d["hw"] = from_dict(HwConfig, d["hw"])
        if d.get("distill") is not None:
            d["distill"] = tuple(d["distill"])
        return from_dict(cls, d)


# --------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every bad input ends the same way."""

    def error(self, message: str):  # type: ignore[override]
        raise ValueError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m compress.run", description=DESCRIPTION)
    p.add_argument("--model", required=True, help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--preset", default="cpu", help=f"one of: {', '.join(PRESETS)} (default cpu)")
    p.add_argument("--max-paths", type=int, default=3, help="alpha: columns per group (>= 1)")
    p.add_argument("--gamma", type=float, default=1.75, help="conflict budget per group, >= 0")
    p.add_argument("--sparsity", type=float, default=0.0, help="final prune rate in [0, 1)")
    p.add_argument(
        "--prune-schedule",
        default=None,
        help="cubic | linear | one-shot (default one-shot: the final masks at the first step, "
        "so the fine-tune recovers from one re-solved start instead of re-pruning; joint: "
        "cubic)",
    )
    p.add_argument(
        "--prune-events", type=int, default=None, help="prune/combine events (>= 1; 8, joint: 10)"
    )
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
    recipe.add_flags(p)
    calibrated.add_flags(p)
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
    p.add_argument(
        "--small-dense", nargs="?", const="auto", metavar="COLUMNS", help=SMALL_DENSE_HELP
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return p


def _array(text: str) -> tuple[int, int]:
    try:
        return parse_array(text)
    except ValueError:
        # the flag's own wording: users type --array, not hwsim's field names
        raise ValueError(
            f"--array must look like RxC with positive integers, e.g. 128x128; got {text!r}"
        ) from None


def run_config_from_args(
    args: argparse.Namespace,
    default_finetune: int,
    default_seed: int = 0,
    default_steps: int = 0,
) -> RunConfig:
    """The RunConfig the flags describe; ValueError naming the first bad flag. The defaults are
    the model preset's (fine-tune epochs, seed, fine-tune step cap)."""
    check_preset(args.preset)
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
    rows, cols = _array(args.array)
    check_max_paths(args.max_paths, "--max-paths (alpha)")
    if not args.gamma >= 0:
        raise ValueError(f"--gamma must be >= 0; got {args.gamma}")
    rcp = recipe.settings(args)  # first: it fills in the recipe's selection defaults
    calibrated.check_flags(args)
    return RunConfig(
        model=args.model,
        preset=args.preset,
        seed=default_seed if args.seed is None else args.seed,
        prune=PruneConfig(
            final_sparsity=args.sparsity,
            schedule=args.prune_schedule,
            n_events=rcp["n_events"],
            gate_aware=args.gate_aware,
            keep=args.keep,
            balance=args.balance,
        ),
        combine=CombineConfig(
            max_paths=args.max_paths,
            gamma=args.gamma,
            section_size=args.section_size,
            strategy=args.strategy,
            prune_factor=rcp["prune_factor"],
            keep=args.keep,
            balance=args.balance,
        ),
        quant=QuantConfig(mode=args.quant, bits=args.bits, act_bits=args.act_bits),
        finetune_epochs=default_finetune if args.finetune_epochs is None else args.finetune_epochs,
        targets=args.targets,
        hw=HwConfig(rows=rows, cols=cols, dataflow=args.dataflow),
        lr_scale=args.lr_scale,
        finetune_steps=default_steps if args.finetune_steps is None else args.finetune_steps,
        recipe=args.recipe,
        l1=args.l1,
        regrow=not args.no_regrow,
        distill=rcp["distill"],
        lr_rewind=args.lr_rewind,
        finetune_schedule=rcp["finetune_schedule"],
        small_dense=parse_columns(args.small_dense),
        reconstruct=args.reconstruct,
    )


# --------------------------------------------------------------------------- the run's context


@dataclass
class Context:
    """What the stages share: the flags, the model family, and where the run's files go."""

    args: argparse.Namespace
    spec: ModelSpec
    cfg: Any  # the model family's config
    run: RunConfig
    run_dir: Path
    dense_dir: Path
    data: Any = None  # the family's data, loaded once the checks have passed


def runs_root(arg: str | None) -> Path:
    return Path(arg) if arg else REPO_ROOT / "runs"


def prepare(argv: list[str] | None) -> Context:
    """Every check that can fail on bad input, before anything is written."""
    args = build_parser().parse_args(argv)
    spec = get_spec(args.model)
    cfg = spec.config(check_preset(args.preset))
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    run = run_config_from_args(args, spec.finetune_epochs(cfg), cfg.seed, spec.finetune_steps(cfg))
    recipe.check_features(spec, args)
    if run.recipe == "joint":  # the joint stage trains as long as the dense run
        run = replace(
            run, finetune_epochs=spec.dense_epochs(cfg), finetune_steps=spec.dense_max_steps(cfg)
        )
    if args.small_dense is not None:
        run = resolve(args, cfg, run, runs_root(args.runs_root) / args.model)
    dataset_dir(spec.dataset, args.data_dir, verify=not args.no_verify)
    calibrated.check_targets(spec, cfg, args, run)  # builds the model: after the data check
    root = runs_root(args.runs_root) / args.model
    run_dir = Path(args.run_dir) if args.run_dir else root / run.run_id()
    dense_dir = root / f"dense-{args.preset}-s{run.seed}"
    cfg_path = run_dir / "config.json"
    if args.resume and cfg_path.is_file():
        changes = changed_settings(read_json(cfg_path).get("run"), run.to_dict())
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
