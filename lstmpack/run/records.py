"""What a run writes: config.json, metrics.json, hwsim.json, table.md, and the figures of a packed
model that the table and the reports use.

Records are read by `reports` (through its contract in reports/records.py) and by `--resume`, so
their keys and JSON options do not change: indented by 2, keys in insertion order, numpy and torch
scalars as plain numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from common.atomic import atomic_write, atomic_write_json, jsonable
from common.checkfiles import DamagedFileError, check_torch_file, json_status, read_json_object
from hwsim.config import HwConfig

# The array settings a run chooses (--array, --dataflow); every other HwConfig field keeps
# hwsim's default. Only these are recorded, so that the records of runs made before the run used
# HwConfig still compare equal on --resume.
HW_FIELDS = ("rows", "cols", "dataflow")


def write_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data, sort_keys=False, default=jsonable)


# What to do about a damaged record, when the caller has nothing more precise to say.
FIX = "fix it or delete it"


def read_json(path: Path, fix: str = FIX) -> dict[str, Any]:
    """The JSON object in `path`; DamagedFileError naming the file and `fix` when it is
    unreadable, not JSON or not an object."""
    return read_json_object(path, fix)


def status_of(path: Path) -> str | None:
    """metrics.json's "status" at `path`; None when missing or unreadable."""
    return json_status(path)


def save_torch(obj: Any, path: Path) -> None:
    """torch.save, atomically: a killed run never leaves half a weights file to be reused."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_torch(path: Path, fix: str) -> Any:
    """torch.load of a file this run layer saved, on the CPU; DamagedFileError naming the file
    and `fix` when it cannot be read back."""
    import torch

    check_torch_file(path, fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; a user needs one line
        raise DamagedFileError(f"{path}: cannot be loaded ({type(e).__name__}); {fix}") from None


def targets_tag(pattern: str) -> str:
    """t<8 hex digits>: a short, stable name for a --targets regex (in run ids and in the dense
    run's folder of the baseline packed over it)."""
    return "t" + hashlib.sha256(pattern.encode("utf-8")).hexdigest()[:8]


def baseline_stem(dense_dir: Path, targets: str | None) -> Path:
    """Where the dense model packed at alpha = 1 over a run's targets lives: <dense>/packed for
    the model's own targets, <dense>/targets-<tag>/packed for a --targets regex. The weights do
    not depend on the targets, only their packing does: one dense model serves every regex."""
    if targets is None:
        return dense_dir / "packed"
    return dense_dir / f"targets-{targets_tag(targets)}" / "packed"


def load_packed(stem: Path):
    """PackedModel.load(stem). A damaged pair is common.packed's own DamagedFileError, naming the
    file and saying to delete both; anything else the files make it raise is one line too."""
    from common.packed.model import PackedModel, repack_fix

    try:
        return PackedModel.load(stem)
    except DamagedFileError:
        raise
    except Exception as e:  # a check common.packed does not own: still the file's fault
        what = str(e).splitlines()[0] if str(e) else type(e).__name__
        if str(stem) not in what:
            what = f"{stem}.json/.npz: {what}"
        raise DamagedFileError(f"{what}; {repack_fix(stem)}") from None


def check_checkpoints(folder: Path, fix: str) -> None:
    """check_torch_file on every *.pt directly in `folder` (a trainer's checkpoints)."""
    if folder.is_dir():
        for path in sorted(folder.glob("*.pt")):
            check_torch_file(path, fix)


def changed_settings(stored: Any, current: dict[str, Any]) -> list[str]:
    """One line "key.path: old -> new" for every setting of `current` (a RunConfig.to_dict())
    that differs from the `stored` record; compared as JSON, since that is how it was stored."""
    return _diff(stored, json.loads(json.dumps(current, default=jsonable)))


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


# --------------------------------------------------------------------------- config.json


def hw_settings(hw: HwConfig) -> dict[str, Any]:
    """The run's choices of `hw`: {"rows", "cols", "dataflow"}."""
    return {k: getattr(hw, k) for k in HW_FIELDS}


def hw_record(hw: HwConfig) -> dict[str, Any]:
    """The "hw" section of a compressed run's config.json, as reports read it."""
    return {"array": f"{hw.rows}x{hw.cols}", **hw_settings(hw)}


def dense_config_record(run, dense_dir: Path, model_config: dict[str, Any]) -> dict[str, Any]:
    """config.json of the dense model of (model, preset, seed); `run` is the RunConfig."""
    return {
        "run_id": dense_dir.name,
        "kind": "dense",
        "model": run.model,
        "preset": run.preset,
        "seed": run.seed,
        "compress": None,
        "hw": hw_settings(run.hw),
        "model_config": model_config,
    }


def compressed_config_record(
    run, run_dir: Path, dense_dir: Path, model_config: dict[str, Any]
) -> dict[str, Any]:
    """config.json of a compressed run; `run` (the RunConfig) is stored whole under "run" for
    --resume to compare against, the rest is what reports read."""
    return {
        "run_id": run_dir.name,
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
        "hw": hw_record(run.hw),
        "dense_dir": str(dense_dir),
        "model_config": model_config,
        "run": run.to_dict(),
    }


# --------------------------------------------------------------------------- metrics and hwsim


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
                "empty_rows": empty_rows(layer),
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


def empty_rows(layer) -> list[int]:
    """Rows of a packed layer with no nonzero weight, per row block: a recurrent kind's gate
    blocks (an LSTM's i, f, g, o, a GRU's r, z, n: a gate row with no weight left is a
    constant), else the whole matrix as one block."""
    import numpy as np

    from common.packed import GATES

    empty = ~(np.asarray(layer.control) >= 0).any(axis=1)
    return [int(b.sum()) for b in np.split(empty, GATES.get(layer.kind, 1))]


def simulate_packed(packed_json: dict, hw: HwConfig, spike_rates=None) -> dict[str, Any]:
    """hwsim.json: the packed model's cost on the run's array."""
    from hwsim.simulate import simulate
    from hwsim.workload import from_packed_json

    workload = from_packed_json(packed_json, spike_rates=spike_rates)
    return simulate(workload, hw).to_dict()


# --------------------------------------------------------------------------- table.md


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
