"""compress.run end to end at the smoke preset: records, the packed proof, reuse, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compress.packing import PackedModel
from lstmpack.run import cli as R

REPO = Path(__file__).resolve().parents[2]


def make_ptb_char(root: Path, seed: int = 0) -> Path:
    """A small corpus in PTB-char format (space-separated symbols, `_` between words)."""
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "and", "then"]
    folder = root / "ptb_char"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 400), ("valid", 40), ("test", 40)):
        lines = []
        for _ in range(n):
            ws = [rng.choice(words) for _ in range(rng.randint(3, 8))]
            lines.append(" " + " _ ".join(" ".join(w) for w in ws) + " ")
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def _argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["--model", "ptbc", "--preset", "smoke", "--data-dir", str(data), "--runs-root",
            str(runs), "--no-verify", "--threads", "1", *extra]  # fmt: skip


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = make_ptb_char(root / "data")
    runs = root / "runs"
    assert R.main(_argv(data, runs, "--max-paths", "3")) == 0
    run_dir = next(p for p in (runs / "ptbc").iterdir() if not p.name.startswith("dense"))
    return {
        "data": data,
        "runs": runs,
        "run_dir": run_dir,
        "dense_dir": runs / "ptbc/dense-smoke-s1111",
    }


def test_smoke_run_writes_every_record(smoke_run):
    d = smoke_run["run_dir"]
    for f in ("config.json", "metrics.json", "hwsim.json", "packed.json", "packed.npz", "table.md"):
        assert (d / f).is_file(), f
    cfg, m = _read(d / "config.json"), _read(d / "metrics.json")
    assert cfg["kind"] == "compressed" and cfg["compress"]["max_paths"] == 3
    assert m["status"] == "finished" and m["quality"]["metric"] == "bpc"
    assert _read(smoke_run["dense_dir"] / "config.json")["kind"] == "dense"
    assert "total" in _read(d / "hwsim.json")


def test_packed_model_scores_what_the_masked_model_scores(smoke_run):
    m = _read(smoke_run["run_dir"] / "metrics.json")
    assert m["packed_gap"] <= 1e-4
    for split in ("valid", "test"):
        assert abs(m["packed_quality"][split] - m["quality"][split]) <= 1e-4


def test_combining_at_alpha_3_shrinks_every_lstm_layer(smoke_run):
    dense = _read(smoke_run["dense_dir"] / "metrics.json")
    comp = _read(smoke_run["run_dir"] / "metrics.json")
    for d, c in zip(dense["layers"], comp["layers"]):
        assert c["groups"] < d["groups"] and c["nnz"] < d["nnz"]
        assert c["groups"] * 2 <= d["groups"] + 1  # pre-pruned to density 1/3, packed near it
    packed = PackedModel.load(smoke_run["run_dir"] / "packed")
    assert all(layer.max_paths == 3 and layer.weight_bits == 8 for layer in packed.layers)


def test_the_dense_model_is_reused_not_retrained(smoke_run, capsys):
    ckpt = smoke_run["dense_dir"] / "train" / "checkpoint.pt"
    stamp = ckpt.stat().st_mtime_ns
    assert (
        R.main(_argv(smoke_run["data"], smoke_run["runs"], "--max-paths", "2", "--quant", "off"))
        == 0
    )
    assert ckpt.stat().st_mtime_ns == stamp
    out = capsys.readouterr().out
    assert (
        "| dense |" in out
        and "a2-g1.75-fp-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111" in out
    )


def test_a_resumed_finished_run_prints_its_table_without_work(smoke_run, capsys):
    d = smoke_run["run_dir"]
    stamp = (d / "metrics.json").stat().st_mtime_ns
    argv = _argv(smoke_run["data"], smoke_run["runs"], "--max-paths", "3", "--run-dir", str(d))
    assert R.main([*argv, "--resume"]) == 0
    assert (d / "metrics.json").stat().st_mtime_ns == stamp
    assert capsys.readouterr().out.strip() == (d / "table.md").read_text().strip()


def _kill_when(proc: subprocess.Popen, path: Path, timeout: float = 120) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if path.exists():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("stage", ["dense-epoch", "finetune"])
def test_a_run_killed_mid_way_resumes_to_the_same_metrics(smoke_run, tmp_path, stage):
    runs = tmp_path / "runs"
    argv = _argv(smoke_run["data"], runs, "--max-paths", "3")
    cmd = [sys.executable, "-m", "compress.run", *argv]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    marker = (
        runs / "ptbc/dense-smoke-s1111/train/checkpoint.pt"
        if stage == "dense-epoch"
        else runs / "ptbc/dense-smoke-s1111/packed.json"
    )
    killed = _kill_when(proc, marker)
    assert killed, f"the run ended before {marker} appeared: {proc.stderr.read().decode()[-2000:]}"
    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = smoke_run["run_dir"].name
    a = _read(smoke_run["run_dir"] / "metrics.json")
    b = _read(runs / "ptbc" / run_dir / "metrics.json")
    assert b["quality"] == a["quality"]
    assert (b["nonzero_weights"], b["array_columns"]) == (a["nonzero_weights"], a["array_columns"])


def test_real_ptb_char_smoke_run(real_data_root, tmp_path):
    assert R.main(["--model", "ptbc", "--preset", "smoke", "--data-dir", str(real_data_root),
                   "--runs-root", str(tmp_path), "--threads", "1"]) == 0  # fmt: skip
    run_dir = next(p for p in (tmp_path / "ptbc").iterdir() if not p.name.startswith("dense"))
    m = _read(run_dir / "metrics.json")
    assert m["status"] == "finished" and m["packed_gap"] <= 1e-4
    assert m["quality"]["test"] < 8.0  # the smoke model has learned something (log2(50) = 5.6)


def test_real_names_smoke_run_packs_the_cells_with_their_spike_rates(real_data_root, tmp_path):
    assert R.main(["--model", "names", "--preset", "smoke", "--data-dir", str(real_data_root),
                   "--runs-root", str(tmp_path), "--threads", "1"]) == 0  # fmt: skip
    run_dir = next(p for p in (tmp_path / "names").iterdir() if not p.name.startswith("dense"))
    m = _read(run_dir / "metrics.json")
    assert m["status"] == "finished" and m["quality"]["metric"] == "accuracy"
    assert m["quality"]["valid"] is None and 0 < m["quality"]["test"] <= 1
    packed = _read(run_dir / "packed.json")
    by = {layer["name"]: layer for layer in packed["layers"]}
    assert set(by) == {"lstm.cells.0.linear_ih", "lstm.cells.0.linear_hh"}
    assert by["lstm.cells.0.linear_ih"]["input_spike_rate"] == pytest.approx(1 / 58)
    assert by["lstm.cells.0.linear_hh"]["recurrent"] is True
    assert 0 <= by["lstm.cells.0.linear_hh"]["input_spike_rate"] <= 1
    hw = _read(run_dir / "hwsim.json")
    assert hw["total"]["accumulates"] > 0  # binary inputs accumulate instead of multiplying


def test_finetune_steps_caps_the_fine_tuning_and_every_event_still_fires(smoke_run):
    argv = _argv(smoke_run["data"], smoke_run["runs"], "--max-paths", "4", "--finetune-steps", "3")
    assert R.main([*argv, "--prune-schedule", "cubic"]) == 0
    run_dir = (
        smoke_run["runs"]
        / "ptbc"
        / "a4-g1.75-w8a8-ptq-ft1x3-pf0.8-kd2x1-cos-balrow-act-rec-cubic-lr8-smoke-s1111"
    )
    m = _read(run_dir / "metrics.json")
    assert m["train"]["steps"] == 3
    assert m["events_done"] == 8


def test_a_posthoc_run_writes_its_fine_tune_to_tensorboard(smoke_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(smoke_run["run_dir"] / "train"))
    acc.Reload()
    scalars = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    m = _read(smoke_run["run_dir"] / "metrics.json")
    # the fine-tune's steps (10 at the smoke preset, a point each: about 100 points per fine-tune)
    assert [e.step for e in scalars["train/loss"]] == list(range(1, m["train"]["steps"] + 1))
    assert [e.step for e in scalars["train/lr"]] == list(range(1, m["train"]["steps"] + 1))
    # the event (one-shot, after the first step) with its figures, as metrics.json records them
    (event,) = m["train"]["events"]
    for key in ("nonzeros", "density", "array_columns", "packing_efficiency"):
        (point,) = scalars[f"events/{key}"]
        assert point.step == event["step"] == 1
        assert point.value == pytest.approx(event[key], rel=1e-6)
    assert event["array_columns"] == m["array_columns"]
    # the validation after each epoch
    (valid,) = scalars["valid/bpc"]
    assert valid.value == pytest.approx(m["train"]["valid"][0]["bpc"], rel=1e-6)


def test_the_compressed_stage_records_the_seconds_of_each_part(smoke_run):
    times = _read(smoke_run["run_dir"] / "metrics.json")["stage_times_s"]
    parts = ["setup", "fine-tune", "calibration", "evaluation", "packing", "proof", "hwsim"]
    assert list(times) == parts
    assert all(t >= 0 for t in times.values()) and times["fine-tune"] > 0
