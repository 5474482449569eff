"""The real Multi30k files through the loader and a few smoke-preset steps (slow: real data)."""

from __future__ import annotations

import json

import pytest

from nmt.multi30k.cli import main


@pytest.mark.slow
def test_a_smoke_run_on_the_real_files(real_data_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["--preset", "smoke", "--data-dir", str(real_data_root), "--run-dir", str(run_dir),
            "--threads", "1", "--no-progress", "--set", "max_steps=5"]  # fmt: skip
    assert main(argv) == 0
    assert "tok:none" in capsys.readouterr().out
    data = json.loads((run_dir / "metrics.json").read_text())["data"]
    assert (data["train_pairs"], data["valid_pairs"], data["test_pairs"]) == (29000, 1014, 1000)
    assert 5000 < data["tgt_vocab"] < data["src_vocab"] < 10000  # min_freq 2 over train
