"""The CLI on packed files and GEMM rows, its one-line errors, and the no-torch guarantee."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwsim.__main__ import main
from hwsim.dataflow import gemm_cycles
from hwsim.models import ptbc_dense


@pytest.fixture
def packed_path(tmp_path):
    path = tmp_path / "packed.json"
    path.write_text(json.dumps(ptbc_dense(seq_len=150)))
    return path


def test_cli_simulates_a_packed_file_as_json(packed_path, capsys):
    rc = main(["--packed", str(packed_path), "--array", "128x128", "--dataflow", "ws",
               "--format", "json"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in doc["layers"]] == ["rnns.0", "rnns.1", "rnns.2", "decoder"]
    rec = doc["gemms"][1]
    assert rec["name"] == "rnns.0/recurrent" and rec["repeats"] == 150
    assert rec["cycles"] == 150 * gemm_cycles(1, 1000, 4000, 128, 128, "ws")


def test_cli_gemm_rows_use_scalesim_order_and_presets(capsys):
    assert main(["--gemm", "1,4000,1000", "--array", "32x32", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, row = lines[0].split(","), lines[1].split(",")
    assert row[header.index("cycles")] == "379999"
    assert main(["--gemm", "8,1024,256", "--preset", "edge", "--dataflow", "os"]) == 0
    assert "10,175" in capsys.readouterr().out


def test_cli_writes_topology_csv_and_output_file(packed_path, tmp_path, capsys):
    topo, out = tmp_path / "topo.csv", tmp_path / "result.md"
    args = ["--packed", str(packed_path), "--preset", "cc-64", "--topology-csv", str(topo),
            "--output", str(out), "--seq-len", "3"]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out == ""
    assert topo.read_text().splitlines()[0] == "Layer, M, N, K,"
    assert len(topo.read_text().splitlines()) == 1 + 3 * (1 + 3) + 1
    assert "bit-serial" in out.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gemm", "1,2"], "--gemm must be M,N,K"),
        (["--gemm", "1,2,3", "--array", "12"], "ROWSxCOLS"),
        (["--gemm", "1,2,3", "--dataflow", "xs"], "ws, os, is"),
        (["--gemm", "1,2,3", "--preset", "tpu"], "allowed: cc-64, edge, tpu-v1"),
        (["--packed", "/nonexistent/packed.json"], "does not exist"),
        ([], "--packed --gemm is required"),
    ],
)
def test_cli_bad_input_prints_one_line_and_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_malformed_packed_file_exits_2_in_a_real_process(tmp_path):
    doc = ptbc_dense()
    doc["layers"][0]["groups_per_split"] = [200]
    bad = tmp_path / "packed.json"
    bad.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "hwsim", "--packed", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "groups_per_split" in proc.stderr


def test_hwsim_imports_no_torch_in_a_fresh_interpreter():
    code = (
        "import sys, hwsim, hwsim.config, hwsim.workload, hwsim.dataflow, hwsim.memory, "
        "hwsim.energy, hwsim.simulate, hwsim.models, hwsim.__main__; "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "assert 'compress' not in sys.modules, 'compress was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
