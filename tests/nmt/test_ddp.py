"""Data-parallel translator training on the CPU: torchrun, gloo, 2 processes of 1 thread.

The ranks split every global batch of the made pairs (batches of 7 pairs split 4 / 3, and a
batch of one pair leaves rank 1 nothing: it runs that pair at weight 0), each scaling its summed
token loss by the global batch's target tokens, so the two train as one process with the same
batches: the same per-step losses (label smoothing and teacher forcing below 1 included) and
the same weights, up to float32 rounding (measured below 1e-6; 1e-5 allowed). Dropout is off:
with it the ranks draw masks of their own, as they should, which one process cannot match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.data import epoch_batches, prepare_data
from nmt.presets import TranslatorConfig
from tests.nmt import nmt_ddp_worker  # the ranks' script, imported for the reference run

REPO = Path(__file__).resolve().parents[2]

TOL = 1e-5
CONFIG = TranslatorConfig(
    preset="tiny", n_valid=6, n_test=6, max_len=16, src_vocab=280, tgt_vocab=300,
    bpe_min_frequency=1, embed=16, hidden=24, layers=1, dropout=0.0, k_src=2, k_tgt=2,
    bucket_min=1, batch_size=7, epochs=2, lr=1e-2, lr_min=1e-3, label_smoothing=0.1,
    eval_batch_size=32, beam=2, log_interval=5, checkpoint_every=5, threads=1,
    tf_schedule="linear", tf_min=0.5,
)  # fmt: skip


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS`, 1 thread each."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


def _losses(run_dir: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.value for e in events.Scalars("train/loss")]


def test_two_gloo_processes_train_the_translator_as_one_process(tmp_path) -> None:
    data = prepare_data(CONFIG, nmt_ddp_worker.made_pairs())
    sizes = [len(b) for b in epoch_batches(CONFIG, data, 0)]
    assert 1 in sizes and 7 in sizes  # an empty share and an uneven one are both exercised
    res = torchrun("tests/nmt/nmt_ddp_worker.py", "--out", str(tmp_path), "--config",
                   json.dumps(CONFIG.to_dict()))  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    torch.set_num_threads(1)
    ref = nmt_ddp_worker.run(CONFIG, tmp_path / "ref")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    steps = ref["result"]["steps"]
    assert steps == 2 * len(sizes) and [r["result"]["steps"] for r in ranks] == [steps] * 2
    assert _losses(tmp_path / "run") == pytest.approx(_losses(tmp_path / "ref"), rel=TOL)
    assert len(_losses(tmp_path / "run")) == steps  # rank 0's TensorBoard, every step
    for r in ranks:
        got = [v["loss"] for v in r["result"]["valid"]]
        assert got == pytest.approx([v["loss"] for v in ref["result"]["valid"]], rel=TOL)
        assert r["result"]["processes"] == 2
        # the tokens of the global batches, whichever rank counted them
        assert r["result"]["tokens_per_s"] > 0
    for key, want in ref["state"].items():
        a, b = ranks[0]["state"][key], ranks[1]["state"][key]
        assert torch.equal(a, b), f"{key} differs between the ranks"
        torch.testing.assert_close(a, want, rtol=TOL, atol=TOL, msg=key)
