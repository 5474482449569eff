"""A damaged packed pair reads back as one DamagedFileError line (a ValueError) naming the file and
saying to delete both halves to pack again: never a zipfile or EOF traceback. A missing JSON stays
the plain "does not exist"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.checkfiles import DamagedFileError
from common.packed import PackedLayer, PackedModel
from compress.packing import pack_layer
from lstmpack.run.records import load_packed

FIX = "delete p.json and p.npz there to pack again"

# how a file gets damaged: cut short by a kill or a full disk, emptied, overwritten
DAMAGE = {
    "truncated": lambda b: b[: max(1, len(b) // 2)],
    "empty": lambda b: b"",
    "garbage": lambda b: b"\x00\xffnot what was written\x13" * 7,
}


def _saved(tmp_path: Path) -> Path:
    W = np.arange(1, 13, dtype=np.float32).reshape(4, 3)
    layer = pack_layer(W, np.array([0, 1, 3]), np.arange(3), name="fc", max_paths=2, gamma=1.0)
    PackedModel([layer]).save(tmp_path / "p")
    return tmp_path / "p"


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(exc.value)
    assert isinstance(exc.value, DamagedFileError) and "\n" not in msg
    assert str(path) in msg and msg.endswith(FIX), msg
    return msg


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_npz_is_one_line_naming_it_and_what_to_delete(tmp_path, how):
    stem = _saved(tmp_path)
    npz = stem.with_suffix(".npz")
    npz.write_bytes(DAMAGE[how](npz.read_bytes()))
    with pytest.raises(ValueError) as exc:  # a ValueError still: every caller's catch holds
        PackedModel.load(stem)
    assert "not a complete .npz archive" in _one_line(exc, npz)
    with pytest.raises(DamagedFileError) as exc:
        PackedLayer.load(stem)
    _one_line(exc, npz)


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_json_is_one_line_naming_it_and_what_to_delete(tmp_path, how):
    stem = _saved(tmp_path)
    path = stem.with_suffix(".json")
    path.write_bytes(DAMAGE[how](path.read_bytes()))
    for load in (PackedModel.load, PackedLayer.load):
        with pytest.raises(DamagedFileError) as exc:
            load(stem)
        _one_line(exc, path)


def test_arrays_that_break_their_figures_and_a_missing_npz_say_the_same(tmp_path):
    stem = _saved(tmp_path)
    npz = stem.with_suffix(".npz")
    with np.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["fc/control"] = arrays["fc/control"][:1]  # rows no longer match the figures
    np.savez(npz, **arrays)
    with pytest.raises(DamagedFileError) as exc:
        PackedModel.load(stem)
    _one_line(exc, stem.with_suffix(".json"))
    npz.unlink()
    with pytest.raises(DamagedFileError) as exc:
        PackedModel.load(stem)
    assert "missing" in _one_line(exc, npz)


def test_a_missing_json_is_not_called_damaged(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as exc:
        PackedModel.load(tmp_path / "none")
    assert not isinstance(exc.value, DamagedFileError)


def test_the_run_layer_passes_the_line_through_unchanged(tmp_path):
    stem = _saved(tmp_path)
    npz = stem.with_suffix(".npz")
    npz.write_bytes(b"")
    with pytest.raises(DamagedFileError) as direct:
        PackedModel.load(stem)
    with pytest.raises(DamagedFileError) as via_run:
        load_packed(stem)
    assert str(via_run.value) == str(direct.value)
    # a JSON that parses but whose layer entry is not even an object: still one line
    stem.with_suffix(".json").write_text(json.dumps({"format": "lstmpack.packed/1",
                                                     "layers": [1]}))  # fmt: skip
    with pytest.raises(DamagedFileError) as exc:
        load_packed(stem)
    assert "\n" not in str(exc.value) and str(exc.value).endswith(FIX)
