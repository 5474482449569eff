"""The library API a model of your own uses: the Compressor lifecycle in one's own loop, the
dense baseline, hwsim, run records `reports` reads, the lazy top-level names, and
`--model module:ATTR` for compress.run and compress.sweep (bad values: one line, exit 2,
nothing written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import common.datasets.verify
import lstmpack
from compress.packing import PackedModel, unpack_dense
from compress.passes.finalize import masked_weight
from lstmpack import CombineConfig, Compressor, PruneConfig, QuantConfig, Schedule
from lstmpack.registry import get_spec
from lstmpack.run import cli as run_cli
from lstmpack.sweep import cli as sweep_cli

REPO = Path(__file__).resolve().parents[2]


class Tiny(nn.Module):
    def __init__(self, vocab: int = 11) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 6)
        self.rnn = nn.LSTM(6, 12, 2)
        self.head = nn.Linear(12, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(x))[0])


def _batches(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 11, (9, 4), generator=g) for _ in range(n)]


def _train(model: nn.Module, opt, batches, comp: Compressor | None = None) -> None:
    for x in batches:
        loss = nn.functional.cross_entropy(model(x[:-1]).reshape(-1, 11), x[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if comp is not None:
            comp.step()


def test_events_fire_at_their_steps_in_your_own_loop_and_finalize_packs_the_masked_weights():
    torch.manual_seed(0)
    model = lstmpack.convert(Tiny())
    comp = Compressor(
        CombineConfig(max_paths=3),
        PruneConfig(final_sparsity=0.3),
        schedule=Schedule(kind="cubic", n_events=3, start_step=1, end_step=5),
    )
    targets = comp.prepare(model)
    assert [t.name for t in targets] == ["rnn.l0", "rnn.l1"]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fired = []
    for x in _batches(7):
        _train(model, opt, [x])
        fired.append(comp.step())
    assert fired == [False, True, False, True, False, True, False]  # steps 1, 3, 5
    assert comp.done and comp.state_dict() == {"step": 7, "events_done": 3}
    summary = comp.summary()
    packed = comp.finalize(seq_len=8, name="tiny")
    assert packed.model == "tiny" and packed.workload == {"seq_len": 8, "batch": 1}
    assert sum(layer.groups for layer in packed.layers) == summary["array_columns"]
    for t, layer in zip(comp.targets, packed.layers):
        np.testing.assert_array_equal(unpack_dense(layer), masked_weight(t).numpy())
        assert layer.groups <= -(-layer.cols // 3) + 2  # about cols / alpha columns
    assert comp.settings()["max_paths"] == 3 and comp.settings()["sparsity"] == 0.3


def test_hook_steps_the_compressor_after_each_optimizer_step():
    model = lstmpack.convert(Tiny())
    comp = Compressor(
        CombineConfig(max_paths=2), schedule=Schedule(kind="one-shot", start_step=2, end_step=2)
    )
    comp.prepare(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = comp.hook(opt)
    _train(model, opt, _batches(2))
    assert comp.step_count == 2 and not comp.done
    _train(model, opt, _batches(1))
    assert comp.done
    handle.remove()
    _train(model, opt, _batches(1))
    assert comp.step_count == 3


def test_calibrated_recovery_and_quantization_run_on_your_batches():
    torch.manual_seed(0)
    model = lstmpack.convert(Tiny())
    comp = Compressor(
        CombineConfig(max_paths=3, keep="activation", balance="row"),
        quant=QuantConfig(mode="ptq", bits=8, act_bits=8),
        reconstruct=True,
    )
    calib = _batches(2, seed=1)
    comp.prepare(model, calibration=calib)
    model.train()
    comp.step()
    packed = comp.finalize(seq_len=8)
    assert model.training  # calibrating the ranges left the mode as it was
    assert all(layer.weight_bits == 8 and layer.act_bits == 8 for layer in packed.layers)
    assert all(float(m.amax) > 0 for m in model.modules() if type(m).__name__ == "ActQuant")


@pytest.mark.parametrize(
    "kwargs, what",
    [
        ({"reconstruct": True}, "reconstruct=True needs calibration batches"),
        ({"combine": CombineConfig(keep="saliency")}, "keep 'saliency' needs calibration"),
        ({"quant": QuantConfig(mode="qat")}, "'qat' with act_bits < 32 needs calibration"),
    ],
)
def test_options_that_need_inputs_say_so_without_calibration_batches(kwargs, what):
    model = lstmpack.convert(Tiny())
    with pytest.raises(ValueError, match=what):
        Compressor(**kwargs).prepare(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())  # nothing registered


def test_lifecycle_misuse_is_named():
    comp = Compressor()
    with pytest.raises(ValueError, match=r"call prepare\(model\) before step\(\)"):
        comp.step()
    with pytest.raises(ValueError, match=r"lstmpack.convert\(model\)"):
        comp.prepare(Tiny())  # a plain nn.LSTM
    with pytest.raises(ValueError, match="combine must be a CombineConfig"):
        Compressor(combine={"max_paths": 3})


def test_records_are_what_reports_reads(tmp_path):
    from reports.records import load_runs, runs_frame

    torch.manual_seed(0)
    model = lstmpack.convert(Tiny())
    dense = lstmpack.write_record(
        tmp_path / "tiny" / "dense", lstmpack.pack(model, seq_len=8), {"valid": 3.0}, metric="bpc"
    )
    comp = Compressor(CombineConfig(max_paths=3))
    comp.prepare(model)
    comp.step()
    packed = comp.finalize(seq_len=8)
    rec = lstmpack.write_record(
        tmp_path / "tiny" / "a3", packed, {"valid": 3.1, "test": 3.2}, metric="bpc",
        compressor=comp, array="16x16",
    )  # fmt: skip
    for f in ("config.json", "metrics.json", "hwsim.json", "packed.json", "packed.npz"):
        assert (rec.run_dir / f).is_file()
    runs = load_runs(tmp_path / "tiny")
    frame = runs_frame(runs.finished).set_index("run_id")
    assert set(frame.index) == {"dense", "a3"} and set(frame["model"]) == {"tiny"}
    assert frame.loc["a3", "alpha"] == 3 and frame.loc["a3", "array"] == "16x16"
    assert frame.loc["a3", "array_columns"] < frame.loc["dense", "array_columns"]
    table = lstmpack.table([dense, rec]).splitlines()
    assert table[0].startswith("| model |") and table[2].startswith("| dense |")
    assert table[3].startswith("| a3 |")
    again = lstmpack.simulate(PackedModel.load(rec.run_dir / "packed"), array="16x16")
    assert again.total.cycles == rec.hwsim["total"]["cycles"]


def test_write_record_refuses_what_reports_could_not_read(tmp_path):
    packed = lstmpack.pack(lstmpack.convert(Tiny()))
    with pytest.raises(ValueError, match="metric must be one of"):
        lstmpack.write_record(tmp_path / "x", packed, {"valid": 1.0}, metric="loss")
    with pytest.raises(ValueError, match="quality must hold a number"):
        lstmpack.write_record(tmp_path / "x", packed, {"train": 1.0}, metric="bpc")
    assert not (tmp_path / "x").exists()


def test_import_lstmpack_stays_light_and_every_public_name_is_documented():
    code = "import sys, lstmpack; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for name in lstmpack.__all__:
        assert getattr(lstmpack, name).__doc__, name
    with pytest.raises(AttributeError):
        lstmpack.no_such_name  # noqa: B018


# --------------------------------------------------------------------------- --model module:ATTR


@pytest.fixture
def importable_examples(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # as `python -m compress.run` from the repo root


def test_a_spec_of_your_own_is_found_by_module_and_attribute(importable_examples):
    from examples.custom_spec import SPEC

    assert get_spec("examples.custom_spec:SPEC") is SPEC


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("no_such_pkg.mod:SPEC", "cannot import 'no_such_pkg.mod'"),
        ("examples.custom_spec:NOPE", "has no attribute 'NOPE'"),
        ("examples.own_lstm:CharLM", "is the class CharLM, not a ModelSpec instance"),
        ("examples.own_lstm:WORDS", "is list, not a ModelSpec instance"),
        ("examples/own_lstm.py:SPEC", "is not module:ATTR"),
    ],
)
def test_a_model_that_is_not_a_spec_is_named_with_the_protocol(
    name, fragment, importable_examples, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("LSTMPACK_DATA", raising=False)
    monkeypatch.setattr(common.datasets.verify, "REPO_ROOT", tmp_path / "repo")
    runs = tmp_path / "runs"
    code = run_cli.main(["--model", name, "--preset", "smoke", "--runs-root", str(runs)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert fragment in err and name in err and "docs/modelspec.md" in err
    assert not runs.exists()
    code = sweep_cli.main(["--model", name, "--preset", "smoke", "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and not runs.exists()


def test_the_sweep_takes_a_spec_of_your_own(importable_examples, tmp_path, capsys):
    argv = ["--model", "examples.custom_spec:SPEC", "--preset", "smoke", "--max-paths", "2", "3",
            "--runs-dir", str(tmp_path), "--dry-run"]  # fmt: skip
    assert sweep_cli.main(argv) == 0
    assert "examples.custom_spec:SPEC" in capsys.readouterr().out
