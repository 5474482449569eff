from __future__ import annotations

import json
import re
from pathlib import Path

from reports.__main__ import main
from reports.synthetic import write_run


def test_report_writes_tables_figures_and_an_index_linking_them(
    made_sweep: Path, tmp_path: Path, capsys, add_failed_run
):
    add_failed_run("RuntimeError: CUDA-free OOM")
    out = tmp_path / "report"
    # PNG only to keep the test short; PDF output is checked in test_plots.
    assert main([str(made_sweep), "--out", str(out), "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    assert "| dense-cpu-s0" in printed and f"report: {out / 'index.md'}" in printed
    index = (out / "index.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", index)
    for link in links:
        assert (out / link).is_file(), link
    for stem in ("sparsity_quality", "cost_quality", "sweeps", "matrix", "cycles_alpha"):
        assert f"figures/ptbc-cpu-{stem}.png" in links
    assert (out / "figures" / "ptbc-cpu-matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for ext in ("md", "csv", "tex"):
        assert f"tables/ptbc-cpu.{ext}" in links
    assert "Figure 5** not drawn: no spiking runs" in index
    # The failed run is listed with its error, and kept out of the tables.
    assert "## Failed runs" in index and "a8-g1.75-b4-cpu-s0`: RuntimeError: CUDA-free OOM" in index
    assert "a8-g1.75-b4-cpu-s0" not in (out / "tables" / "ptbc-cpu.csv").read_text()
    # A cpu-preset report draws no published anchor, and says why.
    assert "anchors apply only to the paper preset" in index
    # Figure 4 shows a run that combines (alpha 3 by default), not alpha 1.
    assert "Layer rnns.0 of run a3-g1.75-b32-cpu-s0" in index


def test_report_without_packed_files_skips_the_matrix_figure_and_says_so(tmp_path: Path):
    runs = tmp_path / "runs"
    write_run(runs / "ptbc" / "dense-cpu-s0", kind="dense", hidden=8, packed=False)
    write_run(runs / "ptbc" / "a2-g1.75-b32-cpu-s0", alpha=2, hidden=8, packed=False)
    assert main([str(runs), "--out", str(tmp_path / "out"), "--formats", "png", "--quiet"]) == 0
    index = (tmp_path / "out" / "index.md").read_text()
    assert "Figure 4** not drawn: no combined run (alpha > 1) has packed.json/packed.npz" in index
    assert "Figure 3** not drawn" in index


def test_a_malformed_record_is_one_warning_line_and_the_report_is_built_from_the_rest(
    made_sweep: Path, tmp_path: Path, capsys
):
    metrics = made_sweep / "ptbc" / "a2-g0.5-b32-cpu-s0" / "metrics.json"
    data = json.loads(metrics.read_text())
    del data["array_columns"]
    metrics.write_text(json.dumps(data))
    assert main([str(made_sweep), "--out", str(tmp_path / "out"), "--formats", "png"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"warning: skipped {metrics.parent}: {metrics}: missing key 'array_")
    index = (tmp_path / "out" / "index.md").read_text()
    assert "Records skipped" in index and "a2-g0.5-b32-cpu-s0" in index.split("Records skipped")[1]
    assert "a3-g0.5-b32-cpu-s0" in (tmp_path / "out" / "tables" / "all_runs.csv").read_text()


def test_report_of_only_failed_and_running_runs_lists_them(tmp_path: Path):
    runs = tmp_path / "runs"
    write_run(runs / "ptbc" / "a3-g1.75-b8-cpu-s0", status="failed", error="ValueError: boom")
    write_run(runs / "ptbc" / "a2-g1.75-b8-cpu-s0", status="running")
    assert main([str(runs), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    index = (tmp_path / "out" / "index.md").read_text()
    assert "No finished runs" in index and "all_runs.csv" not in index
    assert "- `ptbc/a3-g1.75-b8-cpu-s0`: ValueError: boom" in index
    assert "- `ptbc/a2-g1.75-b8-cpu-s0`" in index.split("Unfinished runs")[1]
