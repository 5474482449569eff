"""Run records (config.json, metrics.json, hwsim.json) read, validated, and flattened to a frame.

A run directory is any folder under the runs root that holds a config.json or a metrics.json
(``runs/<model>/<run-id>/``, as `python -m compress.run` writes it). Only the keys of the run-record
contract are read; a missing file or key, or a value of the wrong type, raises a ValueError that
names the file and the key, so a reader can fix the record rather than guess.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.configs import check_max_paths
from reports.cycles import cycles_on_arrays

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STATUSES = ("finished", "failed", "running")
# "small_dense": the equal-columns dense baseline (compress.run --small-dense), a narrower dense
# model with as many array columns as a combined one
KINDS = ("dense", "compressed", "small_dense")
# Quality metric -> whether higher is better. The record carries its own flag; a record whose
# flag contradicts this table is malformed (a Pareto front built on it would be upside down).
METRICS = {"bpc": False, "ppl": False, "bleu": True, "accuracy": True}

_MISSING = object()


@dataclass(frozen=True)
class RunRecord:
    """One run directory's records, validated against the contract."""

    run_dir: Path
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    hwsim: Mapping[str, Any] | None = None
    # A short name for listings: "<model>/<run-id>".
    name: str = ""

    @property
    def status(self) -> str:
        return str(self.metrics["status"])

    @property
    def run_id(self) -> str:
        return str(self.config.get("run_id") or self.metrics.get("run_id") or self.run_dir.name)

    @property
    def error(self) -> str | None:
        err = self.metrics.get("error")
        return None if err is None else str(err)


@dataclass(frozen=True)
class RunSet:
    """All run directories under a root, split by status."""

    root: Path
    finished: tuple[RunRecord, ...] = ()
    failed: tuple[RunRecord, ...] = ()
    running: tuple[RunRecord, ...] = ()
    # Folders with a config.json that is not a compress.run record (e.g. a trainer's own record).
    ignored: tuple[tuple[Path, str], ...] = ()
    # Run directories whose records could not be read (garbage, a list, a missing key): each
    # with the one-line reason; the report is built from the rest.
    skipped: tuple[tuple[Path, str], ...] = ()


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or a ValueError naming the file and what is wrong with it."""
    if not path.is_file():
        raise ValueError(f"{path}: missing (every run directory needs it)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at top level, got {type(data).__name__}")
    return data


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def get_key(
    data: Mapping[str, Any],
    key: str,
    path: Path,
    kind: str,
    *,
    optional: bool = False,
    nullable: bool = False,
) -> Any:
    """`data[key]` (dotted for nesting) checked to be of `kind`: "number", "int", "str", "bool",
    "dict", "list"; a ValueError names `path` and `key` when it is missing or of another type."""
    value = _lookup(data, key)
    if value is _MISSING:
        if optional:
            return None
        raise ValueError(f"{path}: missing key '{key}'")
    if value is None:
        if nullable or optional:
            return None
        raise ValueError(f"{path}: key '{key}' is null, expected {kind}")
    ok = {
        "number": _is_number(value),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "dict": isinstance(value, Mapping),
        "list": isinstance(value, list),
    }[kind]
    if not ok:
        raise ValueError(f"{path}: key '{key}' must be {kind}, got {value!r:.60}")
    return value


def _check_config(config: dict[str, Any], path: Path) -> None:
    get_key(config, "run_id", path, "str")
    kind = get_key(config, "kind", path, "str")
    if kind not in KINDS:
        raise ValueError(f"{path}: key 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    get_key(config, "model", path, "str")
    get_key(config, "preset", path, "str")
    get_key(config, "seed", path, "int")
    get_key(config, "hw", path, "dict", optional=True)
    if kind == "compressed":
        get_key(config, "compress", path, "dict")
        alpha = get_key(config, "compress.max_paths", path, "int")
        try:
            check_max_paths(alpha, "key 'compress.max_paths'")
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        get_key(config, "compress.gamma", path, "number")
        get_key(config, "compress.bits", path, "int")
        get_key(config, "compress.sparsity", path, "number", optional=True)
        get_key(config, "compress.act_bits", path, "int", optional=True)


def _check_finished_metrics(metrics: dict[str, Any], path: Path) -> None:
    metric = get_key(metrics, "quality.metric", path, "str")
    if metric not in METRICS:
        raise ValueError(
            f"{path}: key 'quality.metric' must be one of {', '.join(METRICS)}, got {metric!r}"
        )
    hib = get_key(metrics, "quality.higher_is_better", path, "bool")
    if hib != METRICS[metric]:
        raise ValueError(
            f"{path}: key 'quality.higher_is_better' is {hib} but {metric} is "
            f"{'higher' if METRICS[metric] else 'lower'}-is-better"
        )
    valid = get_key(metrics, "quality.valid", path, "number", nullable=True)
    test = get_key(metrics, "quality.test", path, "number", nullable=True)
    if valid is None and test is None:
        raise ValueError(f"{path}: keys 'quality.valid' and 'quality.test' are both null")
    for key in ("weights_total", "nonzero_weights", "array_columns", "model_bytes"):
        if get_key(metrics, key, path, "number") < 0:
            raise ValueError(f"{path}: key '{key}' must be >= 0")
    eff = get_key(metrics, "packing_efficiency", path, "number")
    if not 0.0 <= eff <= 1.0 + 1e-9:
        raise ValueError(f"{path}: key 'packing_efficiency' must be in [0, 1], got {eff}")
    layers = get_key(metrics, "layers", path, "list", optional=True) or []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping):
            raise ValueError(f"{path}: key 'layers[{i}]' must be an object")
        get_key(layer, "name", path / f"layers[{i}]", "str")
    rates = get_key(metrics, "spike_rates", path, "dict", optional=True)
    for name, rate in (rates or {}).items():
        if not _is_number(rate) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"{path}: key 'spike_rates.{name}' must be a number in [0, 1]")
    get_key(metrics, "macs_per_token", path, "number", optional=True)
    get_key(metrics, "acs_per_token", path, "number", optional=True)


def _check_hwsim(hwsim: dict[str, Any], path: Path) -> None:
    for key in ("total.cycles", "total.utilization", "total.energy_pj"):
        if get_key(hwsim, key, path, "number") < 0:
            raise ValueError(f"{path}: key '{key}' must be >= 0")


def _is_compress_record(config: Mapping[str, Any]) -> bool:
    # A trainer's config.json (the model preset, asdict) has none of these keys; anything that has
    # one of them claims to be a compress.run record and is held to the contract.
    return any(k in config for k in ("run_id", "kind", "compress"))


def load_run(run_dir: str | os.PathLike, root: Path | None = None) -> RunRecord:
    """Read and validate one run directory. Failed and running runs need only metrics.json."""
    run_dir = Path(run_dir)
    name = str(run_dir.relative_to(root)) if root is not None else run_dir.name
    metrics_path = run_dir / "metrics.json"
    config_path = run_dir / "config.json"
    metrics = read_json(metrics_path)
    status = get_key(metrics, "status", metrics_path, "str")
    if status not in STATUSES:
        raise ValueError(
            f"{metrics_path}: key 'status' must be one of {', '.join(STATUSES)}, got {status!r}"
        )
    if status != "finished":
        # A point that failed before its runner wrote config.json is still worth listing.
        config = read_json(config_path) if config_path.is_file() else {}
        get_key(metrics, "error", metrics_path, "str", optional=True)
        return RunRecord(run_dir, config, metrics, None, name)
    config = read_json(config_path)
    _check_config(config, config_path)
    _check_finished_metrics(metrics, metrics_path)
    hwsim_path = run_dir / "hwsim.json"
    hwsim = read_json(hwsim_path)
    _check_hwsim(hwsim, hwsim_path)
    return RunRecord(run_dir, config, metrics, hwsim, name)


def find_run_dirs(root: str | os.PathLike) -> list[Path]:
    """Folders under `root` (or `root` itself) holding a config.json or a metrics.json."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory of run records")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "config.json" in filenames or "metrics.json" in filenames:
            found.append(Path(dirpath))
            dirnames.clear()  # a run directory's own subfolders are not runs
    return found


def skip_reason(reason: str) -> str:
    """Why a run is left out of the report, on one line (the CLIs print it as a warning)."""
    return " ".join(reason.split())


def load_runs(root: str | os.PathLike) -> RunSet:
    """Every run under `root`, validated. A run whose records are malformed is skipped, with the
    reason naming the file and the key in RunSet.skipped, so one damaged record never stops the
    report; ValueError only when no record at all can be read."""
    root = Path(root)
    finished, failed, running, ignored, skipped = [], [], [], [], []
    for run_dir in find_run_dirs(root):
        config_path = run_dir / "config.json"
        try:
            if config_path.is_file() and not _is_compress_record(read_json(config_path)):
                ignored.append((run_dir, "config.json is not a compress.run record"))
                continue
            rec = load_run(run_dir, root)
        except ValueError as e:
            skipped.append((run_dir, skip_reason(str(e))))
            continue
        {"finished": finished, "failed": failed, "running": running}[rec.status].append(rec)
    if not finished and not failed and not running:
        if skipped:
            raise ValueError(
                f"{root}: no readable run records ({len(skipped)} skipped; the first: "
                f"{skipped[0][1]})"
            )
        raise ValueError(f"{root}: no run records found (no config.json/metrics.json below it)")
    return RunSet(
        root, tuple(finished), tuple(failed), tuple(running), tuple(ignored), tuple(skipped)
    )


def _weight_bits(rec: RunRecord) -> int:
    comp = rec.config.get("compress") or {}
    if rec.config["kind"] == "compressed":
        return int(comp["bits"])
    bits = {
        int(layer["weight_bits"])
        for layer in rec.metrics.get("layers") or []
        if "weight_bits" in layer
    }
    return max(bits) if bits else 32


def _num(v: Any) -> float:
    return float(v) if _is_number(v) else math.nan


def record_row(rec: RunRecord) -> dict[str, Any]:
    """One finished run as a flat dict (the columns of `runs_frame`)."""
    cfg, met, hw = rec.config, rec.metrics, rec.hwsim or {}
    comp = cfg.get("compress") or {}
    dense = cfg["kind"] != "compressed"  # no compression settings: alpha, gamma, ... are blank
    hwcfg = cfg.get("hw") or {}
    total = hw.get("total", {})
    quality = met["quality"]
    array = hwcfg.get("array")
    if array is None and "rows" in hwcfg and "cols" in hwcfg:
        array = f"{hwcfg['rows']}x{hwcfg['cols']}"
    return {
        "run_id": rec.run_id,
        "name": rec.name,
        "run_dir": str(rec.run_dir),
        "kind": cfg["kind"],
        "model": cfg["model"],
        "preset": cfg["preset"],
        "seed": int(cfg["seed"]),
        "alpha": math.nan if dense else int(comp["max_paths"]),
        "gamma": math.nan if dense else float(comp["gamma"]),
        "bits": _weight_bits(rec),
        "act_bits": _num(comp.get("act_bits")),
        "sparsity": 0.0 if dense else _num(comp.get("sparsity", 0.0)),
        "quant": "off" if dense else str(comp.get("quant", "")),
        "strategy": "" if dense else str(comp.get("strategy", "")),
        "section_size": _num(comp.get("section_size")),
        "array": "" if array is None else str(array),
        "dataflow": str(hwcfg.get("dataflow", "")),
        "metric": quality["metric"],
        "higher_is_better": bool(quality["higher_is_better"]),
        "valid": _num(quality.get("valid")),
        "test": _num(quality.get("test")),
        "weights_total": int(met["weights_total"]),
        "nonzero_weights": int(met["nonzero_weights"]),
        "array_columns": int(met["array_columns"]),
        "packing_efficiency": float(met["packing_efficiency"]),
        "model_bytes": int(met["model_bytes"]),
        "wall_time_s": _num(met.get("wall_time_s")),
        "cycles": float(total["cycles"]),
        "utilization": float(total["utilization"]),
        "energy_pj": float(total["energy_pj"]),
        "latency_s": _num(total.get("latency_seconds", total.get("latency_s"))),
        "macs": _num(total.get("macs")),
        "accumulates": _num(total.get("accumulates")),
        "macs_per_token": _num(met.get("macs_per_token")),
        "acs_per_token": _num(met.get("acs_per_token")),
        "spiking": bool(met.get("spike_rates")),
        "targets": _targets(cfg),
        "layer_names": "|".join(sorted(_layer_names(met.get("layers")))),
        **own_baseline(met),
        **cycles_on_arrays(rec.run_dir, str(hwcfg.get("dataflow") or "ws")),
    }


def _targets(cfg: Mapping[str, Any]) -> str:
    """The run's --targets regex ("" for the model's own targets)."""
    run = cfg.get("run")
    targets = run.get("targets") if isinstance(run, Mapping) else None
    return targets if isinstance(targets, str) else ""


def _layer_names(layers: Any) -> list[str]:
    if not isinstance(layers, list):
        return []
    return [str(x["name"]) if isinstance(x, Mapping) else str(x) for x in layers]


# The baseline figures a compressed run records of the dense model it was compared with
# (metrics.json "dense", written by compress.run), as frame columns; NaN where not recorded.
BASE_FIGURES = {"base_nonzero_weights": "nonzero_weights", "base_array_columns": "array_columns",
                "base_model_bytes": "model_bytes"}  # fmt: skip
BASE_COLUMNS = (*BASE_FIGURES, "base_cycles", "base_energy_pj", "base_valid", "base_test")


def own_baseline(met: Mapping[str, Any]) -> dict[str, Any]:
    """The dense baseline a run's metrics.json records: its cost on the run's own array and
    dataflow ("hwsim_total", which runs made since compress.run simulated the dense model on the
    run's array carry), and with the dense figures too (runs made since the baseline follows the
    targets) base_source "own": then the ratios are exactly those of the run's own table."""
    out: dict[str, Any] = dict.fromkeys(BASE_COLUMNS, math.nan)
    out["base_source"], out["base_run"], out["base_layers"] = "", "", ""
    dense = met.get("dense")
    if not isinstance(dense, Mapping):
        return out
    total = dense.get("hwsim_total")
    if isinstance(total, Mapping) and _is_number(total.get("cycles")):
        out["base_cycles"] = float(total["cycles"])
        out["base_energy_pj"] = _num(total.get("energy_pj"))
        out["base_source"] = "cost"
    if all(_is_number(dense.get(k)) for k in BASE_FIGURES.values()) and out["base_source"]:
        out.update({c: float(dense[k]) for c, k in BASE_FIGURES.items()})
        quality = dense.get("quality") if isinstance(dense.get("quality"), Mapping) else {}
        out["base_valid"], out["base_test"] = _num(quality.get("valid")), _num(quality.get("test"))
        out["base_source"] = "own"
        out["base_run"] = str(dense.get("run_id", ""))
        out["base_layers"] = "|".join(sorted(_layer_names(dense.get("layers"))))
    return out


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """Finished runs, one row each, columns as in `record_row`."""
    import pandas as pd  # here, not at import: the sweep's runners write records without pandas

    return pd.DataFrame([record_row(r) for r in records])
