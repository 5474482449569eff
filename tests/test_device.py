"""--device and --precision on a machine without CUDA: each CLI refuses a GPU it does not have in
one line before anything is written, resolves auto to the CPU, trains in bf16 on the CPU, keeps
the random state (and a GPU's) in its checkpoints, and resumes a checkpoint made elsewhere."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from common import distributed
from common.device import (
    Amp,
    Runtime,
    check_precision,
    check_resumed_precision,
    resolve_device,
    restore_rng,
    rng_state,
)

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _fake_gpus(monkeypatch, n: int) -> None:
    """torch says it has `n` GPUs (nothing here touches them: only the names are resolved)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)


# --------------------------------------------------------------------------- resolving


@no_cuda
def test_auto_is_the_cpu_without_cuda_and_cuda_is_one_line_naming_the_flag():
    assert resolve_device("auto") == "cpu" and resolve_device("CPU") == "cpu"
    for text in ("cuda", "cuda:0"):
        with pytest.raises(ValueError) as e:
            resolve_device(text, flag="--device")
        assert str(e.value).startswith(f"--device {text}: CUDA is not available here")
        assert "\n" not in str(e.value)


def test_device_names_resolve_to_one_gpu_and_refuse_what_is_not_there(monkeypatch):
    _fake_gpus(monkeypatch, 2)
    assert resolve_device("auto") == resolve_device("cuda") == "cuda:0"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"has 2 CUDA device\(s\), cuda:0..cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(ValueError, match="must be one of auto | cpu | cuda | cuda:N; got 'gpu'"):
        resolve_device("gpu")
    # under torchrun every process takes its own GPU, and only that
    assert resolve_device("cuda", local_rank=1) == resolve_device("auto", local_rank=1) == "cuda:1"
    with pytest.raises(ValueError, match="every process takes its own GPU"):
        resolve_device("cuda:0", local_rank=1)
    with pytest.raises(ValueError, match="start no more processes than GPUs"):
        resolve_device("cuda", local_rank=2)


def test_precision_is_checked_against_the_device():
    assert check_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="must be one of fp32, bf16, fp16; got 'half'"):
        check_precision("half", "cpu")
    with pytest.raises(ValueError, match="--resume: the run trained in bf16; resume it with"):
        check_resumed_precision("bf16", "fp32", "the run")
    check_resumed_precision(None, "fp32", "a checkpoint made before precisions")


# --------------------------------------------------------------------------- mixed precision


def test_amp_autocasts_bf16_on_the_cpu_and_fp32_changes_nothing():
    lin = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with Amp("bf16", "cpu").autocast():
        assert lin(x).dtype == torch.bfloat16
    with Amp("fp32", "cpu").autocast():
        assert lin(x).dtype == torch.float32
    assert Amp("fp32").state_dict() == {} and Amp("bf16").scaler is None


def test_fp16_loss_scaling_steps_and_its_scale_rides_in_the_checkpoint():
    # the GradScaler logic on the CPU (a Linear computes fp16 here; the LSTM needs a GPU)
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    amp = Amp("fp16", "cpu")
    before = lin.weight.detach().clone()
    with amp.autocast():
        loss = lin(torch.randn(3, 8)).float().pow(2).mean()
    amp.backward(loss)
    amp.unscale(opt)
    nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    amp.step(opt)
    assert not torch.equal(before, lin.weight)
    state = amp.state_dict()
    again = Amp("fp16", "cpu")
    again.load_state_dict(state)
    assert again.scaler.get_scale() == amp.scaler.get_scale()


# --------------------------------------------------------------------------- random state


def test_rng_state_round_trips_and_a_gpu_state_is_ignored_on_the_cpu():
    torch.manual_seed(3)
    state = rng_state("cpu")
    assert set(state) == {"torch_rng"}
    a = torch.rand(4)
    # a checkpoint made on a GPU carries its CUDA generator: the CPU resumes without it
    restore_rng({**state, "cuda_rng": torch.zeros(16, dtype=torch.uint8)}, "cpu")
    assert torch.equal(torch.rand(4), a)


# --------------------------------------------------------------------------- compress.run checks


def _args(**kw) -> argparse.Namespace:
    base = {"device": "cpu", "precision": "fp32", "small_dense": None, "model": "m"}
    return argparse.Namespace(**{**base, **kw})


def test_the_run_refuses_what_a_family_does_not_declare(monkeypatch):
    from lstmpack.registry import get_spec
    from lstmpack.run.config import runtime_of

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # examples/
    custom = get_spec("examples.custom_spec:SPEC")  # a spec that declares none of them
    _fake_gpus(monkeypatch, 1)
    one, two = distributed.World(), distributed.World(0, 2)
    cfg = custom.config("smoke")
    with pytest.raises(ValueError, match="trains on the CPU only"):
        runtime_of(custom, cfg, _args(device="cuda"), one)
    with pytest.raises(ValueError, match="trains in fp32 only"):
        runtime_of(custom, cfg, _args(precision="bf16"), one)
    with pytest.raises(ValueError, match="does not train data-parallel"):
        runtime_of(custom, cfg, _args(), two)
    names = get_spec("names")
    assert runtime_of(names, names.config("smoke"), _args(device="cuda"), one) == Runtime(
        "cuda:0", "fp32"
    )
    with pytest.raises(ValueError, match="does not train data-parallel"):
        runtime_of(names, names.config("smoke"), _args(), two)
    ptbc = get_spec("ptbc")
    smoke = ptbc.config("smoke")  # batch 8
    assert runtime_of(ptbc, smoke, _args(device="auto", precision="bf16"), two) == Runtime(
        "cuda:0", "bf16"
    )
    with pytest.raises(ValueError, match="batch_size 8 does not split evenly over 3 processes"):
        runtime_of(ptbc, smoke, _args(), distributed.World(0, 3))
    with pytest.raises(ValueError, match="--small-dense trains in one process"):
        runtime_of(ptbc, smoke, _args(small_dense="auto"), two)


def test_precision_is_in_the_run_id_and_the_dense_folder(tmp_path):
    from lstmpack.run.config import build_parser, dense_folder_name, run_config_from_args

    args = build_parser().parse_args(
        ["--model", "ptbc", "--preset", "smoke", "--precision", "bf16"]
    )
    run = run_config_from_args(args, 1, 1111)
    assert run.run_id().endswith("-bf16-smoke-s1111") and run.to_dict()["precision"] == "bf16"
    assert dense_folder_name("smoke", 1111, "bf16") == "dense-smoke-s1111-bf16"
    assert dense_folder_name("smoke", 1111, "fp32") == "dense-smoke-s1111"
    fp32 = run_config_from_args(build_parser().parse_args(["--model", "ptbc"]), 1, 1111)
    assert "precision" not in fp32.to_dict()  # older runs' records resume unchanged


# --------------------------------------------------------------------------- the CLIs


@no_cuda
@pytest.mark.parametrize(
    ("cli", "argv"),
    [
        ("lm.train", ["--model", "ptbc", "--preset", "smoke"]),
        ("nmt.train", ["--preset", "smoke"]),
        ("nmt.names", ["--preset", "smoke"]),
        ("compress.run", ["--model", "ptbc", "--preset", "smoke"]),
    ],
)
def test_every_cli_refuses_cuda_here_in_one_line_before_writing(cli, argv, tmp_path, capsys):
    import importlib

    main = {
        "lm.train": "lm.train",
        "nmt.train": "nmt.train",
        "nmt.names": "nmt.names.cli",
        "compress.run": "lstmpack.run.cli",
    }[cli]
    where = {
        "lm.train": ["--run-dir", str(tmp_path / "out")],
        "nmt.train": ["--run-dir", str(tmp_path / "out")],
        "nmt.names": ["--runs-dir", str(tmp_path / "out")],
        "compress.run": ["--runs-root", str(tmp_path / "out")],
    }[cli]
    code = importlib.import_module(main).main([*argv, *where, "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "--device cuda: CUDA is not available here" in err[0]
    assert not (tmp_path / "out").exists()


def test_lm_trains_in_bf16_on_the_cpu_and_refuses_to_resume_in_another_precision(tmp_path, capsys):
    from lm.train import main
    from tests.lm.conftest import write_char_corpus

    write_char_corpus(tmp_path / "data" / "ptb_char")
    run = tmp_path / "run"
    argv = ["--model", "ptbc", "--preset", "smoke", "--data-dir", str(tmp_path / "data"),
            "--no-verify", "--no-progress", "--threads", "1", "--run-dir", str(run)]  # fmt: skip
    assert main([*argv, "--precision", "bf16", "--epochs", "1"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["precision"] == "bf16" and metrics["device"] == "cpu"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["precision"] == "bf16"
    capsys.readouterr()
    assert main([*argv, "--resume", "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained in bf16; resume it with --precision bf16" in err[0]
    assert main([*argv, "--resume", "--epochs", "2", "--precision", "bf16"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs_done"] == 2


def test_a_checkpoint_made_on_a_gpu_resumes_on_the_cpu(tmp_path, capsys):
    """A GPU run's checkpoint holds a CUDA generator too; resumed here it continues, to the
    numbers of an uninterrupted CPU run (the CPU's generator is the one the CPU draws from)."""
    from lm.train import main
    from tests.lm.conftest import write_char_corpus

    write_char_corpus(tmp_path / "data" / "ptb_char")
    common = ["--model", "ptbc", "--preset", "smoke", "--data-dir", str(tmp_path / "data"),
              "--no-verify", "--no-progress", "--threads", "1"]  # fmt: skip
    assert main([*common, "--run-dir", str(tmp_path / "whole")]) == 0
    assert main([*common, "--run-dir", str(tmp_path / "gpu"), "--epochs", "1"]) == 0
    ckpt = tmp_path / "gpu" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["cuda_rng"] = torch.zeros(16, dtype=torch.uint8)  # as a GPU run saves it
    torch.save(state, ckpt)
    assert main([*common, "--run-dir", str(tmp_path / "gpu"), "--resume", "--epochs", "2"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    assert resumed["test_loss"] == pytest.approx(whole["test_loss"], rel=1e-6)
