"""`torchrun --nproc_per_node 2 -m compress.run` on the CPU (gloo): the dense and compressed
stages train data-parallel, rank 0 alone writes and prints, and the run ends with the numbers of
one process: the same table (the smoke preset's global batch of 8 split 4 / 4, every dropout on;
the trainer's equivalence within float tolerance is tests/lm/test_ddp.py, and at the table's four
decimals the two agree exactly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lstmpack.run import cli as R
from tests.lstmpack.test_run_e2e import REPO, _argv, make_ptb_char


def test_compress_run_under_torchrun_writes_once_and_scores_as_one_process(tmp_path, capsys):
    data = make_ptb_char(tmp_path / "data")
    argv = _argv(data, tmp_path / "ddp", "--max-paths", "3")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "compress.run", *argv]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    table = [line for line in res.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 4  # one table: rank 0 alone prints
    assert R.main(_argv(data, tmp_path / "one", "--max-paths", "3")) == 0
    one = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert table == one
    run_dir = next(p for p in (tmp_path / "ddp" / "ptbc").iterdir() if p.name.startswith("a3"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    assert metrics["runtime"] == {"device": "cpu", "precision": "fp32", "processes": 2}
    assert metrics["packed_gap"] <= 1e-4
    # the files one process writes, and no more (no rank wrote a second copy beside them)
    names = {p.name for p in run_dir.iterdir()}
    assert names == {p.name for p in next((tmp_path / "one" / "ptbc").glob("a3*")).iterdir()}
