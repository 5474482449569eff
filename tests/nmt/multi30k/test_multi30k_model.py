"""The GRU translator: its targets, the teacher-forced forward equal to stepping, the decoders,
the seed's no-attention model, and masked GRU weights staying exactly zero while it trains."""

from __future__ import annotations

import pytest
import torch

from compress.config import CombineConfig
from compress.passes.combine import CombinePass
from compress.passes.finalize import masked_weight
from compress.pipeline import Pipeline
from compress.schedule import Schedule
from compress.targets import find_targets
from nmt.multi30k.config import preset_config
from nmt.multi30k.data import batch_tensors, length_batches, load_folder
from nmt.multi30k.decode import beam_search, greedy_decode
from nmt.multi30k.model import build_model
from nmt.multi30k.training import train


@pytest.fixture
def data(m30k_root):
    return load_folder(m30k_root / "multi30k")


def _model(data, **changes):
    cfg = preset_config("smoke", **changes)
    return cfg, build_model(cfg, len(data.src_vocab), len(data.tgt_vocab))


def test_every_gru_layer_and_direction_is_a_target(data):
    _, model = _model(data, enc_layers=2)
    got = {t.name: t for t in find_targets(model)}
    assert list(got) == ["encoder.l0", "encoder.l0_reverse", "encoder.l1",
                         "encoder.l1_reverse", "decoder"]  # fmt: skip
    assert all(t.kind == "gru" and t.row_blocks == (0, 16, 32, 48) for t in got.values())
    # the decoder reads [embedding ; context] and its own state
    assert got["decoder"].col_splits == (0, 16 + 32, 16 + 32 + 16)


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_the_teacher_forced_forward_is_what_stepping_computes(data, attention):
    _, model = _model(data, attention=attention)
    model.eval()
    src, src_len, tgt_in, _ = batch_tensors(data.test, length_batches(data.test, 4)[0])
    with torch.no_grad():
        whole = model(src, src_len, tgt_in)
        memory, state = model.encode(src, src_len)
        steps = []
        for t in range(tgt_in.size(0)):
            logits, state = model.step(tgt_in[t], state, memory)
            steps.append(logits)
    torch.testing.assert_close(whole, torch.stack(steps), rtol=1e-5, atol=1e-6)


def test_the_seed_model_has_no_attention_and_starts_from_the_encoder_finals(data):
    _, model = _model(data, attention="none")
    assert model.attention is None and model.decoder.input_size == 16  # the embedding alone
    src, src_len, _, _ = batch_tensors(data.test, length_batches(data.test, 4)[0])
    model.eval()
    with torch.no_grad():
        _, first = model.encode(src, src_len)
        out = model.encoder(model.src_embed(src))[0]
    # the forward direction's last output and the reverse direction's first one
    finals = torch.cat((out[-1, :, :16], out[0, :, 16:]), dim=-1)
    torch.testing.assert_close(first, torch.tanh(model.bridge(finals)))


def test_one_beam_without_a_length_penalty_is_greedy_decoding(data):
    _, model = _model(data)
    model.eval()
    src, src_len, _, _ = batch_tensors(data.test, length_batches(data.test, 8)[1])
    assert beam_search(model, src, src_len, 12, beam=1, alpha=0.0) == greedy_decode(
        model, src, src_len, 12
    )
    assert len(beam_search(model, src, src_len, 12, beam=3)) == src.size(1)


def test_a_batch_of_mixed_source_lengths_is_refused(data):
    _, model = _model(data)
    src = torch.ones(5, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="one source length"):
        model.encode(src, torch.tensor([5, 3]))


def test_masked_gru_weights_stay_exactly_zero_while_the_rest_train(data, tmp_path):
    cfg, model = _model(data, max_steps=12, epochs=1, dropout=0.0)
    pipe = Pipeline([CombinePass(CombineConfig(max_paths=3))], Schedule(kind="one-shot"))
    pipe.prepare(model)
    pipe.apply_event(1)
    masks = {t.name: masked_weight(t) != 0 for t in pipe.targets}
    before = {t.name: t.raw().detach().clone() for t in pipe.targets}
    other = model.readout.weight.detach().clone()
    train(model, data, cfg, tmp_path / "run", progress=False)
    for t in pipe.targets:
        keep = masks[t.name]
        assert (~keep).any() and torch.count_nonzero(t.weight()[~keep]) == 0
        changed = t.raw().detach() != before[t.name]
        assert changed[keep].float().mean() > 0.5 and not changed[~keep].any()
    assert not torch.equal(model.readout.weight, other)  # the untargeted weights train too
