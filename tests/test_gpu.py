"""On a GPU (marked `gpu`: left out of the default run, `pytest -m gpu` runs them; skipped
without CUDA): the masked LSTM on cuDNN's fused kernel, compress.run end to end on CUDA in bf16,
and a GPU checkpoint that resumes on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_masked_weight_dropped_lstm_runs_the_fused_cudnn_kernel(precision):
    from torch.nn.utils import parametrize
    from torch.profiler import ProfilerActivity, profile

    from common.device import Amp
    from compress.parametrize import Mask
    from lm.lstm import MaskableLSTM

    lstm = MaskableLSTM(32, 64, wdrop=0.5)
    mask = Mask(lstm.weight.shape)
    mask.set_(torch.rand(lstm.weight.shape) < 0.5)
    parametrize.register_parametrization(lstm, "weight", mask)
    lstm.cuda().train()
    x = torch.randn(20, 8, 32, device="cuda")
    amp = Amp(precision, "cuda")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with amp.autocast():
            out, _ = lstm(x)
        amp.backward(out.float().pow(2).mean())
        torch.cuda.synchronize()
    names = {e.key for e in prof.key_averages()}
    assert "aten::_cudnn_rnn" in names and "aten::_cudnn_rnn_backward" in names
    raw = lstm.parametrizations.weight.original
    assert raw.grad is not None and bool((raw.grad[mask.mask == 0] == 0).all())


def test_compress_run_on_cuda_in_bf16(tmp_path, capsys):
    from lstmpack.run import cli as R
    from tests.lstmpack.test_run_e2e import _argv, make_ptb_char

    data = make_ptb_char(tmp_path / "data")
    argv = _argv(data, tmp_path / "runs", "--max-paths", "3", "--device", "cuda",
                 "--precision", "bf16")  # fmt: skip
    assert R.main(argv) == 0
    run_dir = next(p for p in (tmp_path / "runs" / "ptbc").iterdir() if p.name.startswith("a3"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["runtime"]["device"].startswith("cuda") and metrics["packed_gap"] <= 1e-4
    assert (tmp_path / "runs" / "ptbc" / "dense-smoke-s1111-bf16" / "model.pt").is_file()


def test_a_cuda_checkpoint_carries_the_gpu_generator_and_resumes_on_the_cpu(tmp_path):
    from lm.train import main
    from tests.lm.conftest import write_char_corpus

    write_char_corpus(tmp_path / "data" / "ptb_char")
    common = ["--model", "ptbc", "--preset", "smoke", "--data-dir", str(tmp_path / "data"),
              "--no-verify", "--no-progress", "--run-dir", str(tmp_path / "run")]  # fmt: skip
    assert main([*common, "--device", "cuda", "--epochs", "1"]) == 0
    assert "cuda_rng" in torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert main([*common, "--device", "cpu", "--resume", "--epochs", "2"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_done"] == 2
