"""compress.sweep over the real compress.run (smoke preset, a made PTB-char corpus): slow."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lstmpack.sweep.cli import main


def _made_ptb_char(root: Path) -> Path:
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    folder = root / "ptb_char"
    folder.mkdir(parents=True)
    for split, n in (("train", 300), ("valid", 30), ("test", 30)):
        lines = [
            " " + " _ ".join(" ".join(w) for w in rng.choices(words, k=rng.randint(3, 7))) + " "
            for _ in range(n)
        ]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_real_smoke_sweep_writes_records_the_report_reads(tmp_path: Path, capsys):
    data = _made_ptb_char(tmp_path / "data")
    runs, out = tmp_path / "runs", tmp_path / "report"
    argv = ["--model", "ptbc", "--preset", "smoke", "--max-paths", "1", "3", "--gamma", "1.75"]
    argv += [
        "--bits",
        "32",
        "--point",
        "3,1.75,8",
        "--runs-dir",
        str(runs),
        "--report-out",
        str(out),
    ]
    argv += [
        "--report-formats",
        "png",
        "--",
        "--data-dir",
        str(data),
        "--no-verify",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    assert "| a3-g1.75-b8-smoke-s1111 " in capsys.readouterr().out  # the table, printed at the end
    rows = (out / "tables" / "ptbc-smoke.csv").read_text().splitlines()
    ids = [r.split(",")[0] for r in rows[1:]]
    assert ids == [
        "dense-smoke-s1111",
        "a1-g1.75-b32-smoke-s1111",
        "a3-g1.75-b32-smoke-s1111",
        "a3-g1.75-b8-smoke-s1111",
    ]
    index = (out / "index.md").read_text()
    assert (
        "Layer rnns.0 of run a3-g1.75-b32-smoke-s1111" in index
    )  # Figure 4 from the real packed file
    m = json.loads((runs / "ptbc" / "a3-g1.75-b32-smoke-s1111" / "metrics.json").read_text())
    assert (
        m["array_columns"]
        < json.loads((runs / "ptbc" / "dense-smoke-s1111" / "metrics.json").read_text())[
            "array_columns"
        ]
    )
    # A second sweep finds everything finished and runs nothing.
    capsys.readouterr()
    assert main(argv) == 0
    assert "sweep: 0 finished, 0 failed, 3 skipped" in capsys.readouterr().out
