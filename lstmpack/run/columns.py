"""The equal-columns small dense baseline's configuration: how many array columns it gets and
which width reaches them (the stage itself is `lstmpack.run.small_dense`). Kept apart from the
stage so that the configuration layer can validate --small-dense without importing the dense
stage, which imports the configuration layer."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lstmpack.run.records import read_json, status_of

if TYPE_CHECKING:
    from lstmpack.run.config import RunConfig

# model -> the module with its width rule: lstm_columns(cfg, alpha), equal_columns_config(cfg,
# columns) and EQUAL_COLUMNS_RULE; imported only for that model, as lstmpack.registry does.
RULES = {"ptbc": "lm.presets", "ptbw": "lm.presets", "enwik8": "lm.presets"}

HELP = (
    "train the equal-columns small dense baseline instead of compressing: the same architecture "
    "with the largest hidden size whose LSTM layers need at most COLUMNS array columns (sum over "
    "layers of in + H; emsize kept), on the preset's own budget (steps, lr schedule), packed at "
    "alpha 1 and simulated, in runs/<model>/small-dense-<preset>-s<seed>-c<COLUMNS>/. COLUMNS "
    "defaults to the array columns of the finished compressed run of the same flags (alpha = "
    "--max-paths), else to the fewest combining reaches: sum of ceil(in/alpha) + ceil(H/alpha). "
    "AWD-LSTM models only"
)


def rule_for(model: str) -> ModuleType:
    """The width rule of `model`; ValueError for a model that has none."""
    if model not in RULES:
        raise ValueError(
            f"--small-dense is implemented for the AWD-LSTM models ({', '.join(RULES)}) only; "
            f"{model} has no rule for its hidden size"
        )
    return importlib.import_module(RULES[model])


def parse_columns(text: str | None) -> int:
    """--small-dense's value: 0 for "auto" (or no value), else the columns, an integer >= 1."""
    if text is None or text == "auto":
        return 0
    try:
        columns = int(text)
    except ValueError:
        columns = 0
    if columns < 1:
        raise ValueError(
            f"--small-dense takes a number of array columns >= 1 or nothing; got {text!r}"
        )
    return columns


def compressed_dir(run: RunConfig, root: Path) -> Path:
    """The directory of the compressed run that `run`'s flags describe (without --small-dense)."""
    return root / replace(run, small_dense=0).run_id()


def auto_columns(cfg: Any, run: RunConfig, root: Path) -> tuple[int, str]:
    """(columns, where they came from): the finished compressed run's array columns, else the
    fewest that combining at alpha = --max-paths reaches."""
    metrics = compressed_dir(run, root) / "metrics.json"
    if status_of(metrics) == "finished":  # an unfinished or unreadable run is not a source
        m = read_json(metrics)
        if isinstance(m.get("array_columns"), int):
            return m["array_columns"], str(metrics)
    alpha = run.combine.max_paths
    columns = rule_for(run.model).lstm_columns(cfg, alpha)
    return columns, f"sum of ceil(in/{alpha}) + ceil(H/{alpha}) over the dense LSTM layers"


def resolve(args, cfg: Any, run: RunConfig, root: Path) -> RunConfig:
    """`run` with its target columns set (`args.small_dense` given); every refusal of the flag,
    before anything is written. `root` is runs-root/<model>."""
    rule = rule_for(run.model)
    if run.targets is not None:
        raise ValueError("--small-dense counts the LSTM layers' columns; it takes no --targets")
    columns = parse_columns(args.small_dense) or auto_columns(cfg, run, root)[0]
    rule.equal_columns_config(cfg, columns)  # the width exists, or a ValueError says why not
    return replace(run, small_dense=columns)
