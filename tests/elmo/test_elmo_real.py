"""The real word PTB through ELMo's loader and a few smoke-preset steps (slow: real data)."""

from __future__ import annotations

import json

import pytest

from elmo.cli import main


@pytest.mark.slow
def test_a_smoke_run_on_the_real_files(real_data_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["--preset", "smoke", "--data-dir", str(real_data_root), "--run-dir", str(run_dir),
            "--threads", "1", "--no-progress", "--set", "max_steps=5"]  # fmt: skip
    assert main(argv) == 0
    assert "test: ppl forward " in capsys.readouterr().out
    data = json.loads((run_dir / "metrics.json").read_text())["data"]
    assert data["vocab"] == 10000  # Mikolov's PTB: 9999 words and <eos>
    assert (data["train_tokens"], data["valid_tokens"], data["test_tokens"]) == (4000, 1000, 1000)
