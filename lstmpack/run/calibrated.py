"""The selection and calibration flags (`--balance`, `--keep`, `--reconstruct`): their help, their
checks before anything is written, their part of the run id and of config.json, and the hooks
they hang on the compressed stage's pipeline.

--balance and --keep set how the prune pass and the combine pass's pre-prune choose weights
(compress.passes.prune); --keep saliency and --reconstruct need each target's calibration inputs
(compress.calibration, compress.reconstruct), which a target with no such inputs (an embedding)
lacks: that is refused here, before the dense stage trains.
"""

from __future__ import annotations

import argparse
from typing import Any

from compress.config import BALANCES, KEEPS, check_selection

# fields left out of config.json at their defaults, so that the records (and --resume) of runs
# made before these flags existed stay as they were: per pass config, and of the RunConfig
PASS_DEFAULTS = {"keep": "magnitude", "balance": "none"}
RUN_DEFAULTS = {"reconstruct": False}


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--balance",
        default=None,
        help=f"one of {', '.join(BALANCES)}: where the prune pass and the combine pass's "
        "pre-prune set their threshold: one per matrix (none), per LSTM gate block (gate), or "
        "per row (row: every row keeps the same share); default row, joint: none",
    )
    p.add_argument(
        "--keep",
        default=None,
        help=f"one of {', '.join(KEEPS)}: how weights are ranked when pruning and when one "
        "weight per (row, group) is kept: |w| (magnitude); on calibration inputs X "
        "(H = X X^T), the OBS saliency w^2 / [H^-1]_jj (saliency) or w^2 H_jj (activation, "
        "Wanda's score), which the grouping then also minimises; default activation, joint: "
        "magnitude",
    )
    p.add_argument(
        "--reconstruct",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after every prune event, re-solve each row's kept weights by damped least squares "
        "on calibration inputs, layer by layer from the bottom (default on, joint: off; "
        "--no-reconstruct: masking alone)",
    )


def check_flags(args: argparse.Namespace) -> None:
    """ValueError naming the flag when --keep or --balance is not one of its values."""
    check_selection(args.keep, args.balance)


def needs_calibration(run: Any) -> bool:
    """Whether the run (a RunConfig) collects calibration inputs at its events."""
    return run.reconstruct or run.combine.keep != "magnitude"


def drop_defaults(d: dict[str, Any]) -> dict[str, Any]:
    """A RunConfig.to_dict() without these flags' fields at their defaults."""
    for section in ("prune", "combine"):
        for k, v in PASS_DEFAULTS.items():
            if d[section].get(k) == v:
                del d[section][k]
    for k, v in RUN_DEFAULTS.items():
        if d.get(k) == v:
            del d[k]
    return d


def tags(run: Any) -> str:
    """The run id's part for these flags where they differ from their defaults."""
    out = []
    if run.combine.balance != "none":
        out.append(f"bal{run.combine.balance}")
    if run.combine.keep != "magnitude":
        out.append({"saliency": "sal", "activation": "act"}[run.combine.keep])
    if run.reconstruct:
        out.append("rec")
    return "".join(f"-{t}" for t in out)


def attach(ctx: Any, model: Any, pipe: Any):
    """Hang --keep saliency / --reconstruct on the pipeline (None when neither is asked for);
    the calibration batches are the model family's (ModelSpec.calibration), run afresh at
    every collection."""
    run = ctx.run
    if not needs_calibration(run):
        return None
    from compress.calibration import Saliency
    from compress.reconstruct import CalibratedEvents

    events = CalibratedEvents(
        model,
        lambda: ctx.spec.calibration(model, ctx.data, ctx.cfg),
        saliency=Saliency(run.combine.keep) if run.combine.keep != "magnitude" else None,
        reconstruct=run.reconstruct,
    )
    events.attach(pipe)
    return events
