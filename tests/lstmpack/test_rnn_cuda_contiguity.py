"""On CUDA the maskable GRU and projected LSTM hand cuDNN whole copies of the column slices of
their fused [W_ih | W_hh] (cuDNN views each weight flat, which a column slice cannot give), as
lm.lstm.MaskableLSTM does; on the CPU the slices themselves, so results stay bit-identical. No GPU
needed: the helper is called with a CUDA device object, and the layers are run on the CPU with it
forced to copy (what the CPU path itself runs stays the slices: tests/lstmpack/test_convert.py)."""

from __future__ import annotations

import pytest
import torch

from lstmpack import rnn
from lstmpack.rnn import MaskableGRU, ProjectedLSTM, kernel_weights


def _slices(rows: int = 6, inputs: int = 3, hidden: int = 2):
    w = torch.randn(rows, inputs + hidden, requires_grad=True)
    return w, w[:, :inputs], w[:, inputs:]


def test_on_cuda_the_kernel_gets_contiguous_copies_that_still_train_the_fused_weight():
    w, w_ih, w_hh = _slices()
    assert not w_ih.is_contiguous() and not w_hh.is_contiguous()
    c_ih, c_hh = kernel_weights(torch.device("cuda"), w_ih, w_hh)
    assert c_ih.is_contiguous() and c_hh.is_contiguous()
    assert torch.equal(c_ih, w_ih) and torch.equal(c_hh, w_hh)
    assert c_ih.data_ptr() != w_ih.data_ptr()  # a copy, not the strided view
    (c_ih.sum() + 2 * c_hh.sum()).backward()
    assert torch.equal(w.grad, torch.cat([torch.ones(6, 3), 2 * torch.ones(6, 2)], dim=1))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_off_cuda_the_kernel_gets_the_slices_themselves(device):
    _, w_ih, w_hh = _slices()
    out = kernel_weights(torch.device(device), w_ih, w_hh)
    assert out[0] is w_ih and out[1] is w_hh


def _always_copy(device, w_ih, w_hh):
    return kernel_weights(torch.device("cuda"), w_ih, w_hh)  # what a CUDA input would get


@pytest.mark.parametrize(
    "make", [lambda: MaskableGRU(3, 4), lambda: ProjectedLSTM(3, 4, 2)], ids=["gru", "lstmp"]
)
def test_each_layer_passes_its_slices_through_the_helper_with_the_inputs_device(make, monkeypatch):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(5, 2, 3)

    def run():
        layer.zero_grad()
        out, _ = layer(x)
        out.pow(2).sum().backward()
        return out.detach(), layer.weight.grad.clone()

    plain = run()
    seen = []

    def recording(device, w_ih, w_hh):
        seen.append((device, w_ih.shape, w_hh.shape))
        return _always_copy(device, w_ih, w_hh)

    monkeypatch.setattr(rnn, "kernel_weights", recording)
    copied = run()
    assert seen == [(x.device, (layer.weight.shape[0], 3), (layer.weight.shape[0],
                                                            layer.weight.shape[1] - 3))]  # fmt: skip
    # the copies feed the kernel the same numbers: the same outputs bit for bit, and the same
    # gradients to float rounding (the CPU backward sums a strided and a dense weight apart)
    assert torch.equal(plain[0], copied[0])
    torch.testing.assert_close(copied[1], plain[1], rtol=1e-6, atol=1e-7)
