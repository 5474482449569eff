"""`compress.run --model multi30k` and `compress.sweep` on made data: the GRU layers are packed as
"gru" layers, the packed proof holds within 1e-4, hwsim costs each layer's GEMMs, and a --targets
naming a layout the passes cannot take is refused before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.packed import PackedModel
from lstmpack.run import cli as R
from lstmpack.run.compressed import PACKED_TOLERANCE
from tests.nmt.multi30k.conftest import make_multi30k

REPO = Path(__file__).resolve().parents[3]


def _argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["--model", "multi30k", "--preset", "smoke", "--data-dir", str(data), "--runs-root",
            str(runs), "--no-verify", "--threads", "1", *extra]  # fmt: skip


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("m30k-run")
    data = make_multi30k(root / "data")
    assert R.main(_argv(data, root / "runs", "--max-paths", "3")) == 0
    torch.set_num_threads(threads)  # compress.run set one thread for the whole process
    return {"data": data, "runs": root / "runs"}


def _compressed(runs_root: Path, prefix: str) -> Path:
    return next(p for p in (runs_root / "multi30k").iterdir() if p.name.startswith(prefix))


def test_the_packed_translator_scores_what_the_masked_one_scores(runs):
    d = _compressed(runs["runs"], "a3-")
    m = _read(d / "metrics.json")
    assert m["status"] == "finished" and m["packed_gap"] <= PACKED_TOLERANCE
    for split in ("valid", "test"):
        assert abs(m["packed_quality"][split] - m["quality"][split]) <= PACKED_TOLERANCE
    assert "tok:none" in m["quality"]["bleu_signature"]


def test_every_gru_layer_is_packed_as_a_gru_with_both_biases(runs):
    d = _compressed(runs["runs"], "a3-")
    packed = PackedModel.load(d / "packed")
    assert [(layer.name, layer.kind) for layer in packed.layers] == [
        ("encoder.l0", "gru"), ("encoder.l0_reverse", "gru"), ("decoder", "gru")
    ]  # fmt: skip
    for layer in packed.layers:
        assert layer.rows == 3 * layer.hidden_size and layer.recurrent_bias is not None
        assert layer.groups < layer.cols  # combined at alpha 3
    # hwsim: each GRU an input GEMM over the sequence and a 3H x H GEMM in every step
    T = packed.workload["seq_len"]
    gemms = _read(d / "hwsim.json")["gemms"]
    assert [(g["layer"], g["part"]) for g in gemms] == [
        (name, part) for name in ("encoder.l0", "encoder.l0_reverse", "decoder")
        for part in ("input", "recurrent")
    ]  # fmt: skip
    for g in gemms:
        assert g["N"] == 48 and g["repeats"] == (T if g["part"] == "recurrent" else 1)


def test_a_reverse_direction_alone_is_a_target_the_passes_take(runs):
    extra = ("--max-paths", "2", "--quant", "off", "--targets", r"^encoder\.l0_reverse$")
    assert R.main(_argv(runs["data"], runs["runs"], *extra)) == 0
    d = _compressed(runs["runs"], "a2-")
    m = _read(d / "metrics.json")
    assert m["packed_gap"] <= PACKED_TOLERANCE
    (layer,) = PackedModel.load(d / "packed").layers  # the one target, nothing else
    assert layer.name == "encoder.l0_reverse" and layer.kind == "gru" and layer.max_paths == 2


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("encoder$", "names module 'encoder', which holds targets but is not one: name its "
                     "layers instead (encoder.l0, encoder.l0_reverse)"),
        ("no_such_module", "matches no"),
    ],
)  # fmt: skip
def test_a_targets_layout_the_passes_cannot_take_is_refused_naming_the_module(
    tmp_path, capsys, targets, message
):
    data = make_multi30k(tmp_path / "data", sizes=(40, 8, 8))
    runs = tmp_path / "runs"
    assert R.main(_argv(data, runs, "--targets", targets)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not runs.exists()  # refused before anything was written


def test_the_sweep_runs_the_model_by_its_registered_name(runs):
    cmd = [sys.executable, "-m", "compress.sweep", "--model", "multi30k", "--preset", "smoke",
           "--max-paths", "4", "--runs-dir", str(runs["runs"]), "--no-report", "--",
           "--data-dir", str(runs["data"]), "--no-verify", "--threads", "1"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    d = runs["runs"] / "multi30k" / "a4-g1.75-b32-smoke-s0"
    assert _read(d / "metrics.json")["status"] == "finished"
    assert np.isfinite(_read(d / "hwsim.json")["total"]["cycles"])
