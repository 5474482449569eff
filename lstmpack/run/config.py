"""The configuration stage of a run: flags -> RunConfig, and every check that can fail on bad
input, done before anything is written.

`RunConfig` lives here, not in compress.config beside the pass configs it holds, because it also
binds a model name, a preset and an hwsim `HwConfig`: compress stays below hwsim and the models,
and only this layer knows all three.

Where the run computes is checked here too: `--device` resolved (CUDA asked for where there is
none: one line, exit 2), `--precision` against the device, both against what the model family
declares it can do (ModelSpec.FEATURES), and a torchrun launch (common.distributed) against the
family and the preset's batch. `--device` changes no number of the run's identity (a run resumes
on another device); `--precision` does: it is part of the run id and of the dense folder's name.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from common import distributed
from common.configs import check_max_paths, from_dict, replace
from common.datasets import REPO_ROOT, DatasetError, dataset_dir
from common.device import (
    CPU,
    DEVICES_HELP,
    PRECISION_HELP,
    PRECISIONS,
    Runtime,
    check_precision,
    resolve_device,
)
from common.spec import ModelSpec
from compress.config import (
    QUANT_MODES,
    STRATEGIES,
    CombineConfig,
    PruneConfig,
    QuantConfig,
    check_bits,
)
from compress.schedule import SCHEDULES
from hwsim.config import DATAFLOWS, HwConfig, parse_array
from lstmpack.registry import MODELS, PRESETS, check_preset, get_spec, model_folder
from lstmpack.run import calibrated, recipe
from lstmpack.run.columns import HELP as SMALL_DENSE_HELP
from lstmpack.run.columns import parse_columns, resolve
from lstmpack.run.records import (
    baseline_stem,
    changed_settings,
    check_checkpoints,
    check_torch_file,
    hw_settings,
    load_packed,
    read_json,
    status_of,
    targets_tag,
)

log = logging.getLogger(__name__)

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
    # the training forward passes' precision (common.device.PRECISIONS); the dense model too
    precision: str = "fp32"
    # the shares of the training (joint) or fine-tune (posthoc) at whose ends the first and the
    # last prune event fire
    prune_start: float = 0.0
    prune_end: float = 0.5

    def _training_tag(self) -> str:
        """-joint, or -ft<epochs>[x<step cap>] for the posthoc fine-tune."""
        if self.recipe == "joint":
            return "-joint"
        steps = f"x{self.finetune_steps}" if self.finetune_steps else ""
        return f"-ft{self.finetune_epochs}{steps}"

    def _setting_tags(self) -> str:
        """The id's part for the settings no other part names, each only away from its default
        (so the ids of runs made before these tags existed stay as they were): the prune
        schedule and events (defaults per recipe), --gate-aware, --section-size, --strategy,
        --lr-scale and --targets (a hash of the regex)."""
        p, c, out = self.prune, self.combine, []
        if p.schedule != recipe.SELECTION[self.recipe]["prune_schedule"]:
            out.append(p.schedule.replace("-", ""))
        if p.n_events != recipe.PRUNE_EVENTS[self.recipe]:
            out.append(f"ev{p.n_events}")
        if p.gate_aware:
            out.append("gateaware")
        if c.section_size is not None:
            out.append(f"sec{c.section_size}")
        if c.strategy != STRATEGIES[0]:
            out.append(c.strategy)
        if self.lr_scale != 1.0:
            out.append(f"lr{self.lr_scale:g}")
        if self.targets is not None:
            out.append(targets_tag(self.targets))
        if self.precision != PRECISIONS[0]:
            out.append(self.precision)
        return "".join(f"-{t}" for t in out)

    def _hw_tags(self) -> str:
        """-arr<R>x<C> and -<dataflow> where --array and --dataflow differ from their defaults:
        the same model costs other cycles on another array."""
        hw, default = self.hw, HwConfig()
        arr = (
            f"-arr{hw.rows}x{hw.cols}" if (hw.rows, hw.cols) != (default.rows, default.cols) else ""
        )
        return arr + (f"-{hw.dataflow}" if hw.dataflow != default.dataflow else "")

    def run_id(self) -> str:
        if self.small_dense:  # a dense model, not a compressed one: none of the settings below
            return f"small-dense-{self.preset}-s{self.seed}-c{self.small_dense}{self._hw_tags()}"
        c, q = self.combine, self.quant
        bits = "fp" if not q.weights_on else f"w{q.bits}"
        acts = "" if not q.acts_on else f"a{q.act_bits}"
        quant = "" if q.mode == "off" or (not q.weights_on and not q.acts_on) else f"-{q.mode}"
        sp = f"-sp{self.prune.final_sparsity:g}" if self.prune.final_sparsity > 0 else ""
        return (
            f"a{c.max_paths}-g{c.gamma:g}{sp}-{bits}{acts}{quant}{self._training_tag()}"
            f"{recipe.tags(self)}{calibrated.tags(self)}{self._setting_tags()}{self._hw_tags()}"
            f"-{self.preset}-s{self.seed}"
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
        if d["precision"] == PRECISIONS[0]:  # likewise
            del d["precision"]
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
    p.add_argument(
        "--gamma", type=float, default=1.75, help="conflict budget per group, finite, >= 0"
    )
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
    p.add_argument("--section-size", type=int, default=None, help="column window of a group (>= 1)")
    p.add_argument("--strategy", default="greedy", help=f"one of: {', '.join(STRATEGIES)}")
    p.add_argument("--bits", type=int, default=8, help="weight bits, 2..16 or 32 (= float)")
    p.add_argument("--act-bits", type=int, default=8, help="activation bits, 2..16 or 32 (= float)")
    p.add_argument("--quant", default="ptq", help=f"one of: {', '.join(QUANT_MODES)}")
    p.add_argument("--finetune-epochs", type=int, default=None, help="default: the preset's")
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=None,
        help="cap on fine-tuning steps (default: preset's)",
    )
    p.add_argument(
        "--lr-scale",
        type=float,
        default=None,
        help="the fine-tune's lr / the family's fine-tuning lr (finite, > 0; default 1, or the "
        "family's posthoc default: ModelSpec.POSTHOC_DEFAULTS)",
    )
    recipe.add_flags(p)
    calibrated.add_flags(p)
    p.add_argument(
        "--targets",
        default=None,
        help="regex over module names, matching at least one weight (default: the model's own, "
        "the LSTM layers); the dense baseline is packed over the same targets",
    )
    p.add_argument("--array", default="128x128", help="systolic array RxC (default 128x128)")
    p.add_argument("--dataflow", default="ws", help=f"one of: {', '.join(DATAFLOWS)}")
    p.add_argument(
        "--data-dir",
        default=None,
        help="data root (default $LSTMPACK_DATA, else the repository's data/); a root that "
        "lacks the dataset fails, never falls back to another",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip SHA-256 checks (data you made yourself)"
    )
    p.add_argument("--run-dir", default=None, help="default runs/<model>/<run-id>")
    p.add_argument("--runs-root", default=None, help="default runs/ in the repository")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--seed", type=int, default=None, help="default: the preset's seed (>= 0)")
    p.add_argument(
        "--device",
        default="cpu",
        help=f"{DEVICES_HELP}: where every stage trains, evaluates and calibrates (default cpu; "
        "under torchrun each process takes its own GPU)",
    )
    p.add_argument("--precision", default="fp32", help=PRECISION_HELP)
    p.add_argument(
        "--small-dense", nargs="?", const="auto", metavar="COLUMNS", help=SMALL_DENSE_HELP
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads, >= 1 (default: all)")
    return p


def _array(text: str) -> tuple[int, int]:
    try:
        return parse_array(text)
    except ValueError:
        # the flag's own wording: users type --array, not hwsim's field names
        raise ValueError(
            f"--array must look like RxC with positive integers, e.g. 128x128; got {text!r}"
        ) from None


def _check_flags(args: argparse.Namespace) -> None:
    """ValueError naming the flag for every value the passes, the quantizer or the trainer would
    refuse (or misuse) only after the dense stage has trained."""
    check_preset(args.preset)
    if not 0.0 <= args.sparsity < 1.0:
        raise ValueError(f"--sparsity must be in [0, 1); got {args.sparsity}")
    if args.dataflow not in DATAFLOWS:
        raise ValueError(f"--dataflow must be one of {', '.join(DATAFLOWS)}; got {args.dataflow!r}")
    if args.finetune_epochs is not None and args.finetune_epochs < 0:
        raise ValueError(f"--finetune-epochs must be >= 0; got {args.finetune_epochs}")
    if args.finetune_steps is not None and args.finetune_steps < 0:
        raise ValueError(f"--finetune-steps must be >= 0 (0 = no cap); got {args.finetune_steps}")
    if args.lr_scale is None:
        args.lr_scale = 1.0
    if not (args.lr_scale > 0 and math.isfinite(args.lr_scale)):
        raise ValueError(f"--lr-scale must be a finite number > 0; got {args.lr_scale}")
    check_max_paths(args.max_paths, "--max-paths (alpha)")
    if not (args.gamma >= 0 and math.isfinite(args.gamma)):
        raise ValueError(f"--gamma must be a finite number >= 0; got {args.gamma}")
    check_bits(args.bits, "--bits")
    check_bits(args.act_bits, "--act-bits")
    if args.quant not in QUANT_MODES:
        raise ValueError(f"--quant must be one of {', '.join(QUANT_MODES)}; got {args.quant!r}")
    if args.strategy not in STRATEGIES:
        raise ValueError(
            f"--strategy must be one of {', '.join(STRATEGIES)}; got {args.strategy!r}"
        )
    if args.prune_schedule is not None and args.prune_schedule not in SCHEDULES:
        raise ValueError(
            f"--prune-schedule must be one of {', '.join(SCHEDULES)}; got {args.prune_schedule!r}"
        )
    if args.prune_events is not None and args.prune_events < 1:
        raise ValueError(f"--prune-events must be >= 1; got {args.prune_events}")
    if args.section_size is not None and args.section_size < 1:
        raise ValueError(f"--section-size must be >= 1; got {args.section_size}")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be >= 0; got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1 (torch threads); got {args.threads}")
    if args.precision not in PRECISIONS:
        raise ValueError(
            f"--precision must be one of {', '.join(PRECISIONS)}; got {args.precision!r}"
        )
    if args.targets is not None:
        try:
            re.compile(args.targets)
        except re.error as e:
            raise ValueError(
                f"--targets {args.targets!r} is not a valid regular expression ({e}); give a "
                "Python regex over module names, e.g. '^rnns\\.0$'"
            ) from None


def run_config_from_args(
    args: argparse.Namespace,
    default_finetune: int,
    default_seed: int = 0,
    default_steps: int = 0,
) -> RunConfig:
    """The RunConfig the flags describe; ValueError naming the first bad flag. The defaults are
    the model preset's (fine-tune epochs, seed, fine-tune step cap)."""
    _check_flags(args)
    rows, cols = _array(args.array)
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
        precision=args.precision,
        prune_start=args.prune_start,
        prune_end=args.prune_end,
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
    data_folder: Path | None = None  # the dataset's verified folder (logged by every run)
    # the run directory held only the records of a start that failed before training: it is
    # taken over whatever its settings (see check_run_dir)
    takeover: str | None = None
    runtime: Runtime = CPU  # where the stages compute: the resolved device, precision
    world: distributed.World = distributed.World()  # this process among torchrun's

    def runtime_kwargs(self) -> dict[str, Any]:
        """The `runtime=` keyword of the family's train_dense, for the families that take one."""
        wants = {"device", "precision"} & self.spec.FEATURES
        return {"runtime": self.runtime} if wants else {}


def runs_root(arg: str | None) -> Path:
    return Path(arg) if arg else REPO_ROOT / "runs"


def check_finetune_steps(run: RunConfig, steps_per_epoch: int) -> None:
    """ValueError when --finetune-steps asks for more steps than the fine-tuning epochs hold:
    the cap would otherwise cut the run short without a word."""
    total = steps_per_epoch * run.finetune_epochs
    if run.recipe == "posthoc" and run.finetune_steps > total:
        need = math.ceil(run.finetune_steps / steps_per_epoch)
        raise ValueError(
            f"--finetune-steps {run.finetune_steps} exceeds the {total} steps of "
            f"--finetune-epochs {run.finetune_epochs} ({steps_per_epoch} steps each for "
            f"--model {run.model} --preset {run.preset}): pass --finetune-epochs {need}"
        )


def check_folder(path: Path, flag: str) -> None:
    """ValueError naming `flag` when `path`, or the nearest of its parents that exists, is not a
    folder: the run could not make its directory there."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder; give a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def check_targets(spec: ModelSpec, cfg: Any, data: Any, run: RunConfig) -> None:
    """--targets matches at least one weight of the model, and --keep saliency / --reconstruct
    find calibration inputs for every target: the model is built (untrained) to find its
    targets, only when one of these needs checking."""
    need_calibration = calibrated.needs_calibration(run)
    if run.targets is None and not need_calibration:
        return
    from compress.targets import find_targets

    # find_targets names --targets and the model's weights when the regex matches none
    targets = find_targets(spec.build(cfg, data), run.targets or spec.default_targets)
    if need_calibration:
        from compress.calibration import check_calibration_targets

        what = "--reconstruct" if run.reconstruct else f"--keep {run.combine.keep}"
        check_calibration_targets(targets, what)


def spec_data_folder(spec: ModelSpec, cfg: Any, args: argparse.Namespace) -> Path | None:
    """The verified folder of the spec's catalog datasets for `cfg` (each found and verified,
    the first one's folder returned); a spec with none (dataset None: a user's model that reads
    its own files in load_data) gets --data-dir as given, which its load_data checks."""
    names = spec.datasets_for(cfg)
    if not names:
        if args.data_dir is not None:
            check_folder(Path(args.data_dir), "--data-dir")
        return None if args.data_dir is None else Path(args.data_dir)
    folders = [dataset_dir(name, args.data_dir, verify=not args.no_verify) for name in names]
    return folders[0]


def load_data(spec: ModelSpec, cfg: Any, args: argparse.Namespace, folder: Path | None) -> Any:
    """The data as the stages will use it (verified by dataset_dir already), loaded once here so
    that a file that cannot be parsed, or a split left empty, fails before anything is written;
    ValueError naming the dataset's folder."""
    try:
        data = spec.load_data(cfg, args.data_dir, verify=False)
    except DatasetError:  # files the family finds itself, missing: its line names them
        raise
    except (ValueError, UnicodeError) as e:
        if spec.dataset is None:  # the spec's own files: its message names them
            raise ValueError(str(e)) from None
        raise ValueError(
            f"the data in {folder} cannot be read ({e}); check it with: python -m "
            "compress.datasets check (made data: look at the files there)"
        ) from None
    for split in ("train", "valid", "test"):  # the splits a family's data names, where it does
        part = getattr(data, split, None)
        if hasattr(part, "__len__") and len(part) == 0:
            raise ValueError(f"the data in {folder} has an empty {split} split; check its files")
    return data


# A run directory holding nothing else (dot files aside: atomic writes' temporaries) has no
# training state and no result to lose.
RECORDS_ONLY = frozenset({"config.json", "metrics.json"})


def check_run_dir(args: argparse.Namespace, run: RunConfig, run_dir: Path) -> str | None:
    """A fresh directory, or --resume of the same settings; ValueError otherwise. Returns the
    reason when the directory is taken over: one that holds only config.json / metrics.json of
    a start that failed (or whose metrics.json cannot be read) trained nothing, so it never
    blocks the corrected command, whatever settings it was started with."""
    check_folder(run_dir, "--run-dir")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    names = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    metrics = run_dir / "metrics.json"
    status = status_of(metrics)
    if names <= RECORDS_ONLY and (status is None or status == "failed"):
        return (
            "it failed before training" if status == "failed" else "its metrics.json is unreadable"
        )
    cfg_path = run_dir / "config.json"
    if not args.resume:
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose --run-dir"
        )
    if cfg_path.is_file():
        stored = read_json(cfg_path, f"fix it, or delete {run_dir} to start this run afresh")
        changes = changed_settings(stored.get("run"), run.to_dict())
        if changes:
            raise ValueError(
                f"--resume: {run_dir} was made with different settings ({'; '.join(changes)}); "
                f"rerun with its settings or pick another --run-dir"
            )
    return None


def check_dense_files(dense_dir: Path, baseline: Path | None) -> None:
    """DamagedFileError naming the first damaged file of the dense run that this run will read:
    its records, and model.pt and the packed `baseline` (stem) once it has finished, else the
    checkpoints it resumes from. Each message says what deleting the file does."""
    metrics = dense_dir / "metrics.json"
    finished = False
    if metrics.is_file():
        m = read_json(
            metrics, "delete it: the dense stage then rebuilds its records from its checkpoint"
        )
        finished = m.get("status") == "finished"
    if (dense_dir / "config.json").is_file():
        read_json(
            dense_dir / "config.json", "delete it: it is written again from the run's settings"
        )
    if not finished:
        check_checkpoints(
            dense_dir / "train", f"delete {dense_dir / 'train'} to train the dense model afresh"
        )
        return
    if (dense_dir / "model.pt").is_file():
        check_torch_file(
            dense_dir / "model.pt",
            "delete it: the dense stage then rebuilds it from its checkpoint in train/",
        )
    if baseline is not None and baseline.with_suffix(".json").is_file():
        load_packed(baseline)


def check_run_files(run_dir: Path) -> None:
    """On --resume: the run's own metrics.json, table.md once finished, and the fine-tune's
    checkpoints otherwise (DamagedFileError naming the first damaged one)."""
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        return
    m = read_json(metrics, "delete it to resume the run from its checkpoints")
    if m.get("status") == "finished":
        if not (run_dir / "table.md").is_file():
            raise ValueError(
                f"{run_dir / 'table.md'}: missing from a finished run; delete {metrics} to "
                "resume the run's last stages from its checkpoints"
            )
        return
    check_checkpoints(run_dir / "train", "delete it to restart the fine-tune stage")


def runtime_of(
    spec: ModelSpec, cfg: Any, args: argparse.Namespace, world: distributed.World
) -> Runtime:
    """The device and precision the stages run with, checked against the machine, against what
    the family declares (FEATURES) and, under torchrun, against the family and its batch;
    ValueError naming the flag otherwise."""
    device = resolve_device(args.device, local_rank=world.local_rank if world.parallel else None)
    check_precision(args.precision, device)
    model = f"model {args.model!r}"
    if device != "cpu" and "device" not in spec.FEATURES:
        raise ValueError(
            f"--device {args.device}: {model} trains on the CPU only (its ModelSpec's FEATURES "
            "do not name 'device'); use --device cpu"
        )
    if args.precision != PRECISIONS[0] and "precision" not in spec.FEATURES:
        raise ValueError(
            f"--precision {args.precision}: {model} trains in fp32 only (its ModelSpec's FEATURES "
            "do not name 'precision'); leave the flag out"
        )
    if world.parallel:
        if "distributed" not in spec.FEATURES:
            raise ValueError(
                f"{model} does not train data-parallel (its ModelSpec's FEATURES do not name "
                "'distributed'); run compress.run without torchrun"
            )
        if args.small_dense is not None:
            raise ValueError("--small-dense trains in one process; run it without torchrun")
        spec.check_processes(cfg, world.size)
    return Runtime(device, args.precision)


def dense_folder_name(preset: str, seed: int, precision: str) -> str:
    """dense-<preset>-s<seed>, and -<precision> for a dense model trained in other than fp32."""
    tag = "" if precision == PRECISIONS[0] else f"-{precision}"
    return f"dense-{preset}-s{seed}{tag}"


def prepare(argv: list[str] | None, world: distributed.World | None = None) -> Context:
    """Every check that can fail on bad input, before anything is written. `world`: this
    process among torchrun's (default: as the environment says)."""
    world = distributed.launched() if world is None else world
    args = build_parser().parse_args(argv)
    spec = get_spec(args.model)
    recipe.apply_family_defaults(spec, args)
    cfg = spec.config(check_preset(args.preset))
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    run = run_config_from_args(args, spec.finetune_epochs(cfg), cfg.seed, spec.finetune_steps(cfg))
    recipe.check_features(spec, args)
    runtime = runtime_of(spec, cfg, args, world)
    if run.recipe == "joint":  # the joint stage trains as long as the dense run
        run = replace(
            run, finetune_epochs=spec.dense_epochs(cfg), finetune_steps=spec.dense_max_steps(cfg)
        )
    check_folder(runs_root(args.runs_root), "--runs-root")
    root = runs_root(args.runs_root) / model_folder(args.model)
    check_folder(root, "--runs-root")
    if args.small_dense is not None:
        run = resolve(args, cfg, run, root)
    folder = spec_data_folder(spec, cfg, args)
    run_dir = Path(args.run_dir) if args.run_dir else root / run.run_id()
    dense_dir = root / dense_folder_name(args.preset, run.seed, run.precision)
    takeover = check_run_dir(args, run, run_dir)
    check_dense_files(dense_dir, None if run.small_dense else baseline_stem(dense_dir, run.targets))
    if args.resume and takeover is None:
        check_run_files(run_dir)
        if run.small_dense:  # its own dense stage's folder
            check_dense_files(run_dir / "dense", None)
    data = load_data(spec, cfg, args, folder)
    # only the flag: a family's own default cap may exceed a short preset's epochs on purpose
    if args.finetune_steps is not None:
        check_finetune_steps(run, spec.steps_per_epoch(cfg, data))
    check_targets(spec, cfg, data, run)  # builds the model
    return Context(args, spec, cfg, run, run_dir, dense_dir, data, folder, takeover, runtime, world)
