"""common.packed: the one owner of the packed format, read the same way by compress, hwsim and
reports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from common.packed import (
    FORMAT,
    LayerFigures,
    PackedLayer,
    PackedModel,
    read_figures,
)
from compress.packing import combine, pack_layer
from hwsim.models import lstm_layer, packed_doc, ptbc_dense


def _lstm(name: str = "rnns.0", seed: int = 0) -> PackedLayer:
    rng = np.random.default_rng(seed)
    W = np.where(rng.random((12, 8)) < 0.5, rng.standard_normal((12, 8)), 0).astype(np.float32)
    ptr = np.array([0, 2, 4, 5, 7, 8], np.int64)
    cols = np.arange(8, dtype=np.int64)  # groups {0,1} {2,3} {4} | {5,6} {7}
    return pack_layer(W, ptr, cols, name=name, kind="lstm", input_size=5, hidden_size=3,
                      max_paths=2, gamma=1.0)  # fmt: skip


def test_the_format_string_is_the_one_hwsim_documents_carry():
    assert FORMAT == "lstmpack.packed/1"
    assert ptbc_dense()["format"] == FORMAT
    assert PackedModel([_lstm()]).to_json()["format"] == FORMAT


def test_a_saved_model_reads_back_as_the_figures_hwsim_sees(tmp_path):
    layer = _lstm()
    json_path, _ = PackedModel([layer], model="toy", workload={"seq_len": 3, "batch": 1}).save(
        tmp_path / "packed"
    )
    doc, (fig,) = read_figures(json_path)
    assert doc["model"] == "toy" and isinstance(fig, LayerFigures)
    assert (fig.rows, fig.cols, fig.groups, fig.nnz) == (layer.rows, layer.cols, layer.groups,
                                                         layer.nnz)  # fmt: skip
    assert fig.groups_per_split == tuple(layer.groups_per_split) == (3, 2)
    assert fig.nnz_per_split == tuple(layer.nnz_per_split)


def test_packing_figures_have_one_definition_for_stats_layer_and_json(tmp_path):
    layer = _lstm(seed=3)
    W = np.zeros((layer.rows, layer.cols), np.float32)
    r, g = np.nonzero(layer.control >= 0)
    W[r, layer.control[r, g]] = layer.values[r, g]
    _, _, _, stats = combine(W, layer.group_ptr, layer.group_cols)
    PackedModel([layer]).save(tmp_path / "p")
    _, (fig,) = read_figures(tmp_path / "p.json")
    for x in (stats, fig):
        assert x.packing_efficiency == layer.packing_efficiency
        assert x.column_reduction == layer.column_reduction
        assert x.tiles(4, 2) == layer.tiles(4, 2) == 3 * 3
    with pytest.raises(ValueError, match="array size"):
        fig.tiles(0, 1)


def test_alpha_in_a_packed_file_is_checked_by_the_shared_validator(tmp_path):
    doc = packed_doc([lstm_layer("rnn", 3, 2, max_paths=0)])
    with pytest.raises(
        ValueError, match=r"layers\[0\] \('rnn'\): field 'max_paths' must be an integer >= 1"
    ):
        read_figures(doc)
    doc["layers"][0]["max_paths"] = 2.5
    with pytest.raises(ValueError, match="max_paths"):
        read_figures(doc)
    layer = _lstm()
    layer.max_paths = 0
    with pytest.raises(ValueError, match=r"max_paths must be an integer >= 1"):
        layer.validate()


def test_messages_name_the_file_and_the_field(tmp_path):
    PackedModel([_lstm()]).save(tmp_path / "p")
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["layers"][0]["gamma"] = "high"
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"p\.json: layers\[0\] \('rnns\.0'\): field 'gamma'"):
        PackedModel.load(tmp_path / "p")
    # hwsim's view does not need gamma, so the same file still gives its figures
    assert read_figures(tmp_path / "p.json")[1][0].name == "rnns.0"
    with pytest.raises(ValueError, match="does not exist"):
        read_figures(tmp_path / "none.json")


def test_a_layer_is_looked_up_before_its_arrays_are_read(tmp_path):
    PackedModel([_lstm("a"), _lstm("b", seed=1)]).save(tmp_path / "p")
    assert PackedLayer.load(tmp_path / "p", "b").name == "b"
    with pytest.raises(ValueError, match="pass name="):
        PackedLayer.load(tmp_path / "p")
    (tmp_path / "p.npz").unlink()
    with pytest.raises(ValueError, match="no layer named 'c'; layers are a, b"):
        PackedLayer.load(tmp_path / "p", "c")
    with pytest.raises(ValueError, match=r"p\.npz: missing"):
        PackedLayer.load(tmp_path / "p", "a")


def test_saved_files_are_shared_readable_and_leave_no_temp_files(tmp_path):
    json_path, npz_path = PackedModel([_lstm()]).save(tmp_path / "out" / "p")
    assert json_path.read_text().endswith("}\n")
    for path in (json_path, npz_path):
        assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["p.json", "p.npz"]


def test_the_format_module_imports_neither_torch_nor_compress():
    code = (
        "import sys, common.packed; "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "assert 'compress' not in sys.modules, 'compress was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
