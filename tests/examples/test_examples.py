"""The two examples run, at a small size: examples/own_lstm.py (a plain nn.LSTM in its own loop)
and examples/custom_spec.py (the same model through `compress.run --model
examples.custom_spec:SPEC`), each ending in the table."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import common.datasets.verify
from lstmpack.run import cli as run_cli

REPO = Path(__file__).resolve().parents[2]
TINY = ["--chars", "4000", "--steps", "6", "--finetune-steps", "4", "--hidden", "16",
        "--layers", "2", "--emb", "8", "--batch", "4", "--bptt", "16"]  # fmt: skip


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # as when run from the repository root


def _rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("| ")]


def test_own_lstm_trains_converts_combines_packs_and_prints_the_table(tmp_path, capsys):
    from examples import own_lstm

    assert own_lstm.main([*TINY, "--out", str(tmp_path)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0].startswith("| model | nonzero weights | array columns")
    assert rows[1].startswith("| dense |") and rows[2].startswith("| a3 |")
    metrics = {d: json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("dense", "a3")}
    assert metrics["a3"]["array_columns"] < metrics["dense"]["array_columns"]
    assert metrics["a3"]["nonzero_weights"] < metrics["dense"]["nonzero_weights"]


def test_own_lstm_reads_a_text_file_and_refuses_a_missing_one(tmp_path, capsys):
    from examples import own_lstm

    text = tmp_path / "text.txt"
    text.write_text(own_lstm.sample_text(3000, seed=5))
    argv = [*TINY, "--max-paths", "2", "--bits", "32", "--out", str(tmp_path / "runs")]
    assert own_lstm.main([*argv, "--text", str(text)]) == 0
    assert _rows(capsys.readouterr().out)[2].startswith("| a2 |")
    assert own_lstm.main([*argv, "--text", str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none.txt" in err


def _ptb_char(root: Path) -> Path:
    """A small corpus in PTB-char format (symbols separated by spaces, `_` between words)."""
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "and", "then"]
    folder = root / "ptb_char"
    folder.mkdir(parents=True)
    for split, n in (("train", 300), ("valid", 30), ("test", 30)):
        lines = [" " + " _ ".join(" ".join(w) for w in rng.choices(words, k=rng.randint(3, 8)))
                 for _ in range(n)]  # fmt: skip
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_custom_spec_gets_the_whole_compress_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LSTMPACK_DATA", raising=False)
    monkeypatch.setattr(common.datasets.verify, "REPO_ROOT", tmp_path / "repo")
    data, runs = _ptb_char(tmp_path / "data"), tmp_path / "runs"
    argv = ["--model", "examples.custom_spec:SPEC", "--preset", "smoke", "--max-paths", "3",
            "--data-dir", str(data / "ptb_char"), "--runs-root", str(runs), "--threads", "1"]  # fmt: skip
    assert run_cli.main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[1].startswith("| dense |") and rows[2].startswith("| a3-")
    model_dir = runs / "examples.custom_spec-SPEC"  # the colon as a dash in the folder name
    run_dir = next(p for p in model_dir.iterdir() if p.name.startswith("a3-"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["packed_gap"] <= 1e-4  # the packed proof
    assert (model_dir / "dense-smoke-s0" / "packed.json").is_file()
    # a finished run resumes to its table, untouched
    assert run_cli.main([*argv, "--resume", "--run-dir", str(run_dir)]) == 0
    assert _rows(capsys.readouterr().out) == rows


def test_custom_spec_without_data_dir_fails_in_one_line_before_anything_is_written(
    tmp_path, capsys
):
    runs = tmp_path / "runs"
    argv = ["--model", "examples.custom_spec:SPEC", "--preset", "smoke", "--runs-root", str(runs)]
    assert run_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs --data-dir" in err
    assert not runs.exists()


def test_the_readme_version_uses_only_public_names_that_exist():
    import ast

    import lstmpack

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    tree = ast.parse(code)  # it is Python
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "lstmpack"}  # fmt: skip
    assert {"convert", "Compressor", "write_record", "unconvert"} <= used
    assert used <= set(lstmpack.__all__)
    assert len(code.splitlines()) <= 25
