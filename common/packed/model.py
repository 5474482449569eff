"""`PackedLayer` and `PackedModel`: packed matrices with their figures, and their two files.

`<stem>.json` holds the model's figures as `common.packed.schema` checks them, `<stem>.npz` the
arrays under keys `<layer>/<array>` (group_ptr, group_cols, control, values, and scale / bias /
recurrent_bias when present). Saving validates every layer first, so a file on disk is always a valid one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write, atomic_write_json
from common.checkfiles import DamagedFileError
from common.packed.arrays import validate_layer
from common.packed.schema import (
    FORMAT,
    GATES,
    Fields,
    LayerFigures,
    PackingFigures,
    layer_where,
    read_figures,
)


@dataclass
class PackedLayer(PackingFigures):
    """One packed weight matrix, its arrays and its figures."""

    name: str
    kind: str
    rows: int
    cols: int
    col_splits: list[int]
    groups_per_split: list[int]
    max_paths: int
    gamma: float
    nnz_before: int
    nnz: int
    pruned_conflicts: int
    pruned_l1: float
    group_ptr: np.ndarray
    group_cols: np.ndarray
    control: np.ndarray
    values: np.ndarray
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    input_size: int | None = None
    hidden_size: int | None = None
    weight_bits: int = 32
    act_bits: int = 32
    input_spike_rate: float | None = None
    recurrent_spike_rate: float | None = None
    # A linear layer fed back its own step's output (a cell's linear_hh): hwsim costs it as T
    # sequential GEMMs, not one GEMM batched over the sequence.
    recurrent: bool = False
    # An lstm layer with a projection: the fed-back state, so the recurrent columns, is this wide
    proj_size: int | None = None
    # A gru layer's b_hh, kept apart from `bias` (its b_ih): the n gate adds r * (W_hn h + b_hn),
    # so the two cannot be summed as an LSTM's are
    recurrent_bias: np.ndarray | None = None

    @property
    def groups(self) -> int:
        return len(self.group_ptr) - 1

    @property
    def nnz_per_split(self) -> list[int]:
        """Kept weights inside each column split (the input and recurrent parts of an LSTM)."""
        c = self.control
        return [
            int(((c >= lo) & (c < hi)).sum())
            for lo, hi in zip(self.col_splits[:-1], self.col_splits[1:])
        ]

    def nonzero_pattern(self) -> np.ndarray:
        """rows x cols boolean: where the packed layer keeps a weight."""
        nz = np.zeros((self.rows, self.cols), dtype=bool)
        r, g = np.nonzero(self.control >= 0)
        nz[r, self.control[r, g]] = True
        return nz

    def validate(self, where: str = "") -> None:
        """Raise ValueError naming the field when the layer breaks the packed format."""
        validate_layer(self, where or f"layer {self.name!r}.")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "rows": int(self.rows),
            "cols": int(self.cols),
        }
        if self.kind in GATES:
            out["input_size"] = int(self.input_size)  # type: ignore[arg-type]
            out["hidden_size"] = int(self.hidden_size)  # type: ignore[arg-type]
            if self.proj_size is not None:  # absent otherwise: files without it read as before
                out["proj_size"] = int(self.proj_size)
        out.update(
            col_splits=[int(s) for s in self.col_splits],
            groups=self.groups,
            groups_per_split=[int(g) for g in self.groups_per_split],
            max_paths=int(self.max_paths),
            gamma=float(self.gamma),
            nnz_before=int(self.nnz_before),
            nnz=int(self.nnz),
            pruned_conflicts=int(self.pruned_conflicts),
            pruned_l1=float(self.pruned_l1),
            weight_bits=int(self.weight_bits),
            act_bits=int(self.act_bits),
            input_spike_rate=self.input_spike_rate,
            recurrent_spike_rate=self.recurrent_spike_rate,
            nnz_per_split=self.nnz_per_split,
        )
        if self.recurrent:
            out["recurrent"] = True
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "group_ptr": np.asarray(self.group_ptr, np.int64),
            "group_cols": np.asarray(self.group_cols, np.int64),
            "control": np.asarray(self.control, np.int32),
            "values": np.asarray(self.values, np.float32),
        }
        if self.scale is not None:
            out["scale"] = np.asarray(self.scale, np.float32)
        if self.bias is not None:
            out["bias"] = np.asarray(self.bias, np.float32)
        if self.recurrent_bias is not None:
            out["recurrent_bias"] = np.asarray(self.recurrent_bias, np.float32)
        return out

    def save(self, stem: str | os.PathLike[str]) -> None:
        """Write `<stem>.json` + `<stem>.npz` holding this layer alone."""
        PackedModel([self]).save(stem)

    @classmethod
    def load(cls, stem: str | os.PathLike[str], name: str | None = None) -> PackedLayer:
        """The layer `name` of a packed model (the only layer when name is None). The name is
        checked against the JSON before any array is read."""
        _, figures = _read_json(_paths(stem)[0], repack_fix(stem))
        names = [fig.name for fig in figures]
        if name is None:
            if len(names) != 1:
                raise ValueError(f"{stem}: holds {len(names)} layers; pass name= to pick one")
            name = names[0]
        if name not in names:
            raise ValueError(f"{stem}: no layer named {name!r}; layers are {', '.join(names)}")
        return next(layer for layer in PackedModel.load(stem).layers if layer.name == name)


def _paths(stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def repack_fix(stem: str | os.PathLike[str]) -> str:
    """What to do about a damaged packed pair: the run that wrote it packs it again when both
    halves are gone (one half alone would not match the other)."""
    name = Path(stem).name
    return f"delete {name}.json and {name}.npz there to pack again"


def _damaged(exc: Exception, fix: str) -> DamagedFileError:
    # the first line only: the CLIs print one line, and the message already names the file
    what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DamagedFileError(f"{what}; {fix}")


def _read_json(json_path: Path, fix: str) -> tuple[dict, list[LayerFigures]]:
    """read_figures of a packed JSON; a file that is there but cannot be read or checked is
    damaged (`fix` appended), a missing one stays the plain "does not exist" ValueError."""
    try:
        return read_figures(json_path, allow_empty=True)
    except ValueError as exc:
        if not json_path.is_file():
            raise
        raise _damaged(exc, fix) from None


def _read_arrays(npz_path: Path, fix: str) -> dict[str, np.ndarray]:
    """Every array of a packed .npz; DamagedFileError naming it when it cannot be read."""
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except OSError as exc:  # not BadZipFile: that one is no OSError
        what = f"cannot be read ({exc.strerror or exc})"
    except Exception:  # BadZipFile, EOFError, zlib.error, a pickle refused: all say the same
        what = "not a complete .npz archive (truncated or overwritten)"
    raise DamagedFileError(f"{npz_path}: {what}; {fix}")


@dataclass
class PackedModel:
    """Packed layers in model order plus free metadata (model name, workload, extra keys)."""

    layers: list[PackedLayer]
    model: str | None = None
    workload: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        if self.model is not None:
            out["model"] = self.model
        if self.workload is not None:
            out["workload"] = self.workload
        out.update(self.extra)
        out["layers"] = [layer.to_json() for layer in self.layers]
        return out

    def save(self, stem: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write `<stem>.npz` then `<stem>.json`, each atomically."""
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        for layer in self.layers:
            layer.validate()
        json_path, npz_path = _paths(stem)
        arrays = {
            f"{layer.name}/{key}": arr
            for layer in self.layers
            for key, arr in layer.arrays().items()
        }
        atomic_write(npz_path, lambda fh: np.savez(fh, **arrays))
        atomic_write_json(json_path, self.to_json())
        return json_path, npz_path

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> PackedModel:
        """Read and validate `<stem>.json` + `<stem>.npz`. ValueError "does not exist" when the
        JSON is missing; otherwise a file that cannot be read or breaks the format is a
        DamagedFileError (a ValueError) naming file and field and saying to delete both."""
        json_path, npz_path = _paths(stem)
        fix = repack_fix(stem)
        meta, figures = _read_json(json_path, fix)
        if not npz_path.is_file():
            raise DamagedFileError(
                f"{npz_path}: missing (the packed JSON is there without its arrays); {fix}"
            )
        stored = _read_arrays(npz_path, fix)
        try:
            layers = [
                _layer_from(
                    entry,
                    fig,
                    Fields(entry, layer_where(str(json_path), i, fig.name)),
                    stored,
                    npz_path,
                )  # fmt: skip
                for i, (entry, fig) in enumerate(zip(meta["layers"], figures))
            ]
        except ValueError as exc:  # arrays that do not match their figures
            raise _damaged(exc, fix) from None
        extra = {
            k: v for k, v in meta.items() if k not in ("format", "model", "workload", "layers")
        }
        return cls(
            layers=layers, model=meta.get("model"), workload=meta.get("workload"), extra=extra
        )


def _layer_from(
    entry: dict, fig: LayerFigures, f: Fields, stored: dict[str, np.ndarray], npz_path: Path
) -> PackedLayer:
    """The full layer: the figures, the fields only the pipeline keeps, and the arrays."""
    gamma, pruned_l1 = f.number("gamma"), f.number("pruned_l1")
    nnz_before = f.integer("nnz_before", minimum=0)
    pruned_conflicts = f.integer("pruned_conflicts", minimum=0)
    # hwsim takes a missing width as float; a file the pipeline wrote always states both
    f.bits("weight_bits", required=True)
    f.bits("act_bits", required=True)

    def array(key: str, required: bool = True) -> np.ndarray | None:
        full = f"{fig.name}/{key}"
        if full not in stored:
            if required:
                raise ValueError(f"{npz_path}: {full}: missing array")
            return None
        return stored[full]

    layer = PackedLayer(
        name=fig.name,
        kind=fig.kind,
        rows=fig.rows,
        cols=fig.cols,
        col_splits=list(fig.col_splits),
        groups_per_split=list(fig.groups_per_split),
        max_paths=fig.max_paths,
        gamma=gamma,
        nnz_before=nnz_before,
        nnz=fig.nnz,
        pruned_conflicts=pruned_conflicts,
        pruned_l1=pruned_l1,
        group_ptr=array("group_ptr"),
        group_cols=array("group_cols"),
        control=array("control"),
        values=array("values"),
        scale=array("scale", required=False),
        bias=array("bias", required=False),
        recurrent_bias=array("recurrent_bias", required=False),
        input_size=fig.input_size,
        hidden_size=fig.hidden_size,
        weight_bits=fig.weight_bits,
        act_bits=fig.act_bits,
        # as written: the figures hold them as floats, a round trip keeps the file's numbers
        input_spike_rate=entry.get("input_spike_rate"),
        recurrent_spike_rate=entry.get("recurrent_spike_rate"),
        recurrent=fig.recurrent,
        proj_size=fig.proj_size,
    )
    if fig.groups != layer.groups:
        raise ValueError(
            f"{f.where}: field 'groups' is {fig.groups} but {npz_path} {fig.name}/group_ptr "
            f"holds {layer.groups}"
        )
    validate_layer(layer, f"{f.where} (arrays in {npz_path.name}).")
    return layer
