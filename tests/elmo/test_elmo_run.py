"""`compress.run --model elmo` and `compress.sweep` on made PTB files: every LSTM layer of both
directions is packed as an "lstm" layer with its proj_size and every projection as a "proj"
layer, the packed proof holds within 1e-4 on the mean perplexity (each direction's recorded
beside it), hwsim costs each layer, and a --targets naming a layout the passes cannot take is
refused before anything is written, naming the module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.packed import PackedModel
from lstmpack.registry import get_spec
from lstmpack.run import cli as R
from lstmpack.run.compressed import PACKED_TOLERANCE
from lstmpack.sweep import cli as S
from tests.elmo.conftest import make_ptb


def _argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["--model", "elmo", "--preset", "smoke", "--data-dir", str(data), "--runs-root",
            str(runs), "--no-verify", "--threads", "1", *extra]  # fmt: skip


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("elmo-run")
    data = make_ptb(root / "data")
    assert R.main(_argv(data, root / "runs", "--max-paths", "3")) == 0
    torch.set_num_threads(threads)  # compress.run set one thread for the whole process
    return {"data": data, "runs": root / "runs"}


def _compressed(runs_root: Path, prefix: str) -> Path:
    return next(p for p in (runs_root / "elmo").iterdir() if p.name.startswith(prefix))


def test_the_packed_bilm_scores_what_the_masked_one_scores(runs):
    d = _compressed(runs["runs"], "a3-")
    m = _read(d / "metrics.json")
    assert m["status"] == "finished" and m["packed_gap"] <= PACKED_TOLERANCE
    q = m["quality"]
    for split in ("valid", "test"):
        assert abs(m["packed_quality"][split] - q[split]) <= PACKED_TOLERANCE
        assert q[split] == pytest.approx(
            (q[f"{split}_ppl_forward"] + q[f"{split}_ppl_backward"]) / 2
        )


def test_every_lstm_layer_and_projection_of_both_directions_is_packed(runs):
    d = _compressed(runs["runs"], "a3-")
    packed = PackedModel.load(d / "packed")
    names = [f"{s}_lstm.{k}{p}" for s in ("fwd", "bwd") for k in (0, 1) for p in ("", ".proj")]
    assert sorted(layer.name for layer in packed.layers) == sorted(names)
    cfg = get_spec("elmo").config("smoke")
    for layer in packed.layers:
        if layer.name.endswith(".proj"):
            assert layer.kind == "proj"
        else:
            assert layer.kind == "lstm" and layer.proj_size == cfg.proj
            assert layer.rows == 4 * cfg.hidden and layer.cols == 2 * cfg.proj
        assert layer.groups < layer.cols  # combined at alpha 3
    hw = _read(d / "hwsim.json")
    assert {g["layer"] for g in hw["gemms"]} == set(names)
    assert np.isfinite(hw["total"]["cycles"]) and hw["total"]["cycles"] > 0


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("bwd_lstm$", "names module 'bwd_lstm', which holds targets but is not one: name its "
                      "layers instead (bwd_lstm.0, bwd_lstm.0.proj, bwd_lstm.1, bwd_lstm.1.proj)"),
        ("no_such_module", "matches no"),
    ],
)  # fmt: skip
def test_a_targets_layout_the_passes_cannot_take_is_refused_naming_the_module(
    tmp_path, capsys, targets, message
):
    data = make_ptb(tmp_path / "data", sizes=(60, 12, 12))
    runs = tmp_path / "runs"
    assert R.main(_argv(data, runs, "--targets", targets)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not runs.exists()  # refused before anything was written


def test_the_sweep_knows_the_model_by_its_registered_name(runs, capsys):
    argv = ["--model", "elmo", "--preset", "smoke", "--max-paths", "3", "4", "--runs-dir",
            str(runs["runs"]), "--dry-run", "--", "--data-dir", str(runs["data"]),
            "--no-verify", "--threads", "1"]  # fmt: skip
    assert S.main(argv) == 0
    out = capsys.readouterr().out
    assert "--model elmo" in out and "a4-" in out


@pytest.mark.parametrize(
    "extra",
    [
        ("--max-paths", "2", "--distill", "2,1", "--l1", "1e-5", "--finetune-schedule", "cosine"),
        ("--max-paths", "2", "--recipe", "joint", "--quant", "off"),
    ],
    ids=["posthoc-distill-l1-cosine", "joint"],
)
def test_the_recipes_elmo_declares_run_to_a_proven_packing(runs, extra):
    before = set((runs["runs"] / "elmo").iterdir())
    assert R.main(_argv(runs["data"], runs["runs"], *extra)) == 0
    (d,) = set((runs["runs"] / "elmo").iterdir()) - before
    m = _read(d / "metrics.json")
    assert m["status"] == "finished" and m["packed_gap"] <= PACKED_TOLERANCE


def test_a_recipe_elmo_does_not_declare_is_refused(runs, capsys):
    assert R.main(_argv(runs["data"], runs["runs"], "--lr-rewind")) == 2
    err = capsys.readouterr().err.strip()
    assert "--lr-rewind" in err and len(err.splitlines()) == 1


def test_the_paper_preset_without_lm1b_is_one_line_naming_the_download(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["--model", "elmo", "--preset", "paper", "--data-dir", str(tmp_path), "--runs-root",
            str(runs)]  # fmt: skip
    assert R.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "dataset 'lm1b'" in err and "r13output.tar.gz" in err and len(err.splitlines()) == 1
    assert not runs.exists()
