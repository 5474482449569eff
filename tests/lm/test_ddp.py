"""Data-parallel AWD-LSTM training on the CPU: torchrun, gloo, 2 processes of 1 thread.

Two processes sharing a global batch train as one process with that batch: the same per-step
losses and the same weights, up to float32 rounding (DDP sums two half-batch gradients where one
process reduces the whole batch at once, and Adam carries the difference on: measured below
1e-6 after a dozen steps, so 1e-5 leaves room and still catches a wrong share, scale or
dropout mask, which move the losses by 1e-3 and more). A compression event is decided on rank 0
and broadcast: every rank ends with rank 0's masks, bit for bit, even when the other ranks'
passes were set to decide otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lm.data import load_text_folder
from lm.train import main as lm_train
from tests.lm import lm_ddp_worker  # the ranks' script, imported for the reference run

REPO = Path(__file__).resolve().parents[2]

TOL = 1e-5


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS` (a free port each
    time), one thread per process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_two_gloo_processes_train_as_one_process_with_the_same_global_batch(
    char_folder, make_config, tmp_path
) -> None:
    # every dropout on, locked dropout included: each rank draws the global batch's masks
    cfg = make_config(dropout=0.2, dropouth=0.2, dropouti=0.2, dropoute=0.1, wdrop=0.3)
    out = tmp_path / "out"
    out.mkdir()
    res = torchrun("tests/lm/lm_ddp_worker.py", "--corpus", str(char_folder), "--config",
                   json.dumps(cfg.to_dict()), "--out", str(out), "--compress", "--skew")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    ref = lm_ddp_worker.train(cfg, load_text_folder(char_folder), compress=True)
    ranks = [torch.load(out / f"rank{r}.pt") for r in (0, 1)]
    assert [r["batch"] for r in ranks] == [cfg.batch_size // 2] * 2 and ref["batch"] == 4
    steps = cfg.epochs * cfg.max_steps_per_epoch
    for r in ranks:
        assert len(r["losses"]) == steps
        assert r["losses"] == pytest.approx(ref["losses"], rel=TOL)
        assert r["valid"] == pytest.approx(ref["valid"], rel=TOL)
    for key, want in ref["state"].items():
        a, b = ranks[0]["state"][key], ranks[1]["state"][key]
        assert torch.equal(a, b), f"{key} differs between the ranks"
        if "mask" in key or "col_group" in key:
            # rank 1 combined at alpha 3, rank 0 at alpha 2: rank 0's groups won
            assert torch.equal(a, want), key
        else:
            torch.testing.assert_close(a, want, rtol=TOL, atol=TOL, msg=key)
    masks = [v for k, v in ref["state"].items() if k.endswith(".mask")]
    assert masks and all(0 < float(m.mean()) < 1 for m in masks)  # the event did prune


def test_a_run_resumes_under_torchrun_and_ends_as_one_process_would(char_folder, tmp_path, capsys):
    """One epoch in one process, the second under torchrun from its checkpoint (every rank
    loads it): the same model and scores as two epochs in one process."""
    data = tmp_path / "data"
    data.mkdir()
    char_folder.rename(data / "ptb_char")
    common = ["--model", "ptbc", "--preset", "smoke", "--data-dir", str(data), "--no-verify",
              "--no-progress", "--threads", "1"]  # fmt: skip
    torch.set_num_threads(1)
    assert lm_train([*common, "--run-dir", str(tmp_path / "whole")]) == 0
    assert lm_train([*common, "--run-dir", str(tmp_path / "split"), "--epochs", "1"]) == 0
    capsys.readouterr()
    res = torchrun("-m", "lm.train", *common, "--run-dir", str(tmp_path / "split"), "--resume",
                   "--epochs", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    printed = json.loads(res.stdout)  # one JSON document: rank 0 alone prints
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    split = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert printed == split and split["processes"] == 2 and whole["processes"] == 1
    assert split["steps"] == whole["steps"] == 20
    for key in ("valid_loss", "test_loss"):
        assert split[key] == pytest.approx(whole[key], rel=TOL)


def test_a_batch_that_does_not_split_over_the_processes_is_one_line(
    tmp_path, monkeypatch, capsys
) -> None:
    # rank 0 of 3 (as torchrun would say): the smoke batch of 8 does not split; nothing starts
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    code = lm_train(["--model", "ptbc", "--preset", "smoke", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "batch_size 8 does not split evenly over 3 processes" in err[0]
    assert not (tmp_path / "r").exists()
