"""The training recipe's flags (`--recipe`, `--prune-factor`, `--prune-start`, `--prune-end`,
`--l1`, `--no-regrow`, `--distill`, `--lr-rewind`, `--finetune-schedule`): their help, their checks before anything is written, the values they
resolve to, and their part of the run id.

posthoc compresses the trained dense model and fine-tunes it; joint trains a fresh model under
the passes on the dense preset's own schedule (Kung, McDanel and Zhang's joint optimization).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from common.distill import parse_distill

RECIPES = ("posthoc", "joint")
# per recipe: the combine pre-prune's share of 1 - 1/alpha (0.8 is the published train.py's
# max_prune_rate; posthoc keeps the 1.0 it always had) and the number of prune events (the
# published 10 for joint)
PRUNE_FACTOR = {"posthoc": 1.0, "joint": 0.8}
PRUNE_EVENTS = {"posthoc": 8, "joint": 10}
# per recipe: the selection flags' defaults, the best of each measured on ptbc cpu at alpha 3
# (BENCHMARKS.md, "Column combining that keeps accuracy"). posthoc: masks set once at the first
# step (one-shot), balanced per row, scored on calibration inputs and re-solved, so the fine-tune
# recovers from a start that is not broken instead of re-pruning it; joint: as measured, plain
# magnitude events on a cubic ramp (the selection flags there are not measured yet)
SELECTION = {
    "posthoc": {
        "balance": "row",
        "keep": "activation",
        "reconstruct": True,
        "prune_schedule": "one-shot",
    },
    "joint": {
        "balance": "none",
        "keep": "magnitude",
        "reconstruct": False,
        "prune_schedule": "cubic",
    },
}
# RunConfig fields of the recipe, left out of config.json at their defaults so that the records
# (and --resume) of runs made before they existed stay as they were
DEFAULTS = {"recipe": "posthoc", "l1": 0.0, "regrow": True, "distill": None, "lr_rewind": False,
            "finetune_schedule": "constant", "prune_start": 0.0, "prune_end": 0.5}  # fmt: skip
FINETUNE_SCHEDULES = ("constant", "cosine")


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--recipe",
        default="posthoc",
        help="posthoc: compress the trained dense model, then fine-tune it (default); joint: "
        "train from the first step under the passes on the dense preset's own schedule, prune "
        "and combine events over its first half",
    )
    p.add_argument(
        "--prune-factor",
        type=float,
        default=None,
        help="combining pre-prunes to prune_factor * (1 - 1/alpha), in (0, 1] (default 1.0; "
        "joint: 0.8, as published; the language models' posthoc runs: 0.8)",
    )
    p.add_argument(
        "--prune-start",
        type=float,
        default=0.0,
        help="the share of the training (joint) or fine-tuning (posthoc) before the first prune "
        "and combine event, in [0, 1) (default 0: from the first step; joint then trains dense "
        "until it); a one-shot schedule's single event fires there",
    )
    p.add_argument(
        "--prune-end",
        type=float,
        default=0.5,
        help="the share of the training (joint) or fine-tuning (posthoc) at whose end the last "
        "event fires, in (--prune-start, 1] (default 0.5: events over the first half, as "
        "published)",
    )
    p.add_argument(
        "--l1",
        type=float,
        default=0.0,
        help="L1 penalty coefficient on the targeted (masked) weights until the last event, >= 0",
    )
    p.add_argument(
        "--no-regrow",
        action="store_true",
        help="masks only shrink (default: rebuilt from the raw weights at every event, as "
        "published, so pruned weights may come back)",
    )
    p.add_argument(
        "--distill",
        default=None,
        metavar="T,W",
        help="add W * T^2 * KL(teacher || student) at temperature T to the training loss (the "
        "T^2 factor as Hinton et al.), the teacher being the dense model (frozen, eval mode, "
        "same batches); T > 0, W >= 0; 'off' for none (default off, or the family's posthoc "
        "default)",
    )
    p.add_argument(
        "--lr-rewind",
        action="store_true",
        help="fine-tune on the last k steps of the dense run's own lr schedule (k = the "
        "fine-tuning steps; Renda, Frankle and Carbin, ICLR'20) instead of a constant rate",
    )
    p.add_argument(
        "--finetune-schedule",
        default=None,
        help=f"one of {', '.join(FINETUNE_SCHEDULES)}: the posthoc fine-tune's learning rate, "
        "held at the dense schedule's end (constant) or decayed from it by a cosine to the "
        "dense run's floor lr_min over the fine-tuning steps (cosine); language models only, "
        "where cosine is the default (the translator's fine-tune always decays)",
    )


# the flags a family may default for posthoc runs (ModelSpec.POSTHOC_DEFAULTS) -> the attribute
FAMILY_FLAGS = {"distill": "distill", "finetune_schedule": "finetune_schedule",
                "lr_scale": "lr_scale", "prune_factor": "prune_factor"}  # fmt: skip


def apply_family_defaults(spec: Any, args: argparse.Namespace) -> None:
    """Fill the recipe flags a posthoc run left unset with the model family's measured best
    (spec.POSTHOC_DEFAULTS); a flag given on the command line always wins. The values land in
    config.json and, away from the plain defaults, in the run id, as if typed."""
    if getattr(args, "recipe", "posthoc") != "posthoc":
        return
    for key, value in getattr(spec, "POSTHOC_DEFAULTS", {}).items():
        attr = FAMILY_FLAGS.get(key)
        if attr is None:
            raise ValueError(f"POSTHOC_DEFAULTS of --model {args.model}: unknown flag {key!r}")
        if key == "finetune_schedule" and args.lr_rewind:  # --lr-rewind sets the rate itself
            continue
        if getattr(args, attr) is None:
            setattr(args, attr, value)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The checks of the recipe flags (ValueError naming the flag), and the values they resolve
    to: prune_factor, n_events (from --prune-events), distill (T, W) or None. Fills in `args`
    the selection flags left at None with the recipe's defaults (SELECTION)."""
    if args.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {', '.join(RECIPES)}; got {args.recipe!r}")
    for flag, default in SELECTION[args.recipe].items():
        if getattr(args, flag) is None:
            setattr(args, flag, default)
    schedule = args.finetune_schedule
    if schedule is not None and schedule not in FINETUNE_SCHEDULES:
        raise ValueError(
            f"--finetune-schedule must be one of {', '.join(FINETUNE_SCHEDULES)}; got {schedule!r}"
        )
    if schedule == "cosine" and args.lr_rewind:
        raise ValueError(
            "--finetune-schedule cosine and --lr-rewind both set the fine-tune's rate: pick one"
        )
    if args.recipe == "joint":
        given = [("--finetune-epochs", args.finetune_epochs is not None),
                 ("--finetune-steps", args.finetune_steps is not None),
                 ("--lr-rewind", args.lr_rewind),
                 ("--finetune-schedule", schedule is not None)]  # fmt: skip
        for flag, on in given:
            if on:
                raise ValueError(
                    f"{flag} applies to --recipe posthoc; --recipe joint trains on the dense "
                    "preset's own schedule"
                )
        if args.quant == "qat":
            raise ValueError(
                "--quant qat calibrates activation ranges before training, on the untrained "
                "model with --recipe joint: use --quant ptq (ranges from the trained model)"
            )
    pf = PRUNE_FACTOR[args.recipe] if args.prune_factor is None else args.prune_factor
    if not 0.0 < pf <= 1.0:
        raise ValueError(f"--prune-factor must be in (0, 1]; got {pf}")
    if not 0.0 <= args.prune_start < 1.0:
        raise ValueError(f"--prune-start must be in [0, 1); got {args.prune_start}")
    if not args.prune_start < args.prune_end <= 1.0:
        raise ValueError(
            f"--prune-end must be in (--prune-start, 1] = ({args.prune_start:g}, 1]; "
            f"got {args.prune_end}"
        )
    if not (args.l1 >= 0 and math.isfinite(args.l1)):
        raise ValueError(f"--l1 must be a finite number >= 0; got {args.l1}")
    return {
        "prune_factor": pf,
        "n_events": PRUNE_EVENTS[args.recipe] if args.prune_events is None else args.prune_events,
        "distill": None if args.distill in (None, "off") else parse_distill(args.distill),
        "finetune_schedule": schedule or DEFAULTS["finetune_schedule"],
    }


def check_features(spec: Any, args: argparse.Namespace) -> None:
    """ValueError when a flag asks the model's fine-tune for what it does not implement (the
    spec's FEATURES)."""
    asked = [("--recipe joint", "joint", args.recipe == "joint"),
             ("--distill", "distill", args.distill not in (None, "off")),
             ("--lr-rewind", "lr_rewind", args.lr_rewind),
             ("--l1", "l1", args.l1 != 0),
             ("--finetune-schedule", "finetune_schedule", args.finetune_schedule is not None)]  # fmt: skip
    have = getattr(spec, "FEATURES", frozenset())
    for flag, feature, on in asked:
        if on and feature not in have:
            raise ValueError(f"{flag} is not implemented for --model {args.model}")


def tags(run: Any) -> str:
    """The run id's part for the recipe flags of `run` (a RunConfig) that differ from their
    defaults (the joint recipe's own part, "-joint", replaces the fine-tune's)."""
    out = []
    if run.combine.prune_factor != PRUNE_FACTOR[run.recipe]:
        out.append(f"pf{run.combine.prune_factor:g}")
    if run.prune_start != DEFAULTS["prune_start"]:
        out.append(f"from{run.prune_start:g}")
    if run.prune_end != DEFAULTS["prune_end"]:
        out.append(f"to{run.prune_end:g}")
    if run.l1:
        out.append(f"l1_{run.l1:g}")
    if not run.regrow:
        out.append("noregrow")
    if run.distill is not None:
        out.append(f"kd{run.distill[0]:g}x{run.distill[1]:g}")
    if run.lr_rewind:
        out.append("rewind")
    if run.finetune_schedule != DEFAULTS["finetune_schedule"]:
        out.append(run.finetune_schedule[:3])
    return "".join(f"-{t}" for t in out)
