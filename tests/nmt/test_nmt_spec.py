"""The translator under compress.run (`--model nmt`): targets, spike rates keyed by target name,
the workload, and an end-to-end smoke run on a made Tatoeba file whose packed model evaluates to
the same BLEU as the masked one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from compress import run as R
from compress.targets import find_targets
from lstmpack.registry import get_spec
from nmt.data import prepare_data
from nmt.presets import TranslatorConfig
from nmt.spec import NMT

SUBJ = ["I", "You", "He", "She", "We", "They", "Tom", "Mary"]
SUBJ_ZH = ["我", "你", "他", "她", "我们", "他们", "汤姆", "玛丽"]
VERB = [("like", "喜欢"), ("see", "看见"), ("want", "想要"), ("buy", "买"), ("have", "有")]
OBJ = [("cats", "猫"), ("dogs", "狗"), ("books", "书"), ("tea", "茶"), ("apples", "苹果"),
       ("cars", "车"), ("flowers", "花"), ("pens", "笔")]  # fmt: skip


TINY = TranslatorConfig(
    preset="tiny", n_valid=20, n_test=20, max_len=16, src_vocab=300, tgt_vocab=300,
    bpe_min_frequency=1, embed=16, hidden=16, layers=1, dropout=0.0, k_src=2, k_tgt=2,
    bucket_min=1, batch_size=32, epochs=1, eval_batch_size=64, beam=2, threads=1,
)  # fmt: skip


def made_pairs() -> list[tuple[str, str]]:
    """320 distinct sources, one translation each."""
    return [
        (f"{s_en} {v_en} {o_en}.", f"{s_zh}{v_zh}{o_zh}。")
        for s_en, s_zh in zip(SUBJ, SUBJ_ZH)
        for v_en, v_zh in VERB
        for o_en, o_zh in OBJ
    ]


def _write_made_tatoeba(root: Path) -> Path:
    """The made pairs in the manythings.org layout (en TAB zh TAB attribution)."""
    folder = root / "cmn_eng"
    folder.mkdir(parents=True)
    lines = [f"{en}\t{zh}\tCC-BY 2.0 (made)" for en, zh in made_pairs()]
    (folder / "cmn.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny():
    data = prepare_data(TINY, made_pairs())
    torch.manual_seed(0)
    return data, NMT.build(TINY, data)


def test_registry_knows_nmt_and_its_metric_is_bleu():
    spec = get_spec("nmt")
    assert spec is NMT and spec.metric == "bleu" and spec.higher_is_better
    assert spec.config("cpu").preset == "cpu"
    assert TranslatorConfig.from_dict(spec.config_to_dict(TINY)) == TINY


def test_default_targets_are_the_spiking_layers_matrices_not_embeddings_attention_or_logits(tiny):
    _, model = tiny
    names = [t.name for t in find_targets(model, NMT.default_targets)]
    # 4 matrices in each of the 2 encoder directions and the decoder layer; the encoder's last
    # (here only) stack layer has its cell's 2 and no output weights, which would feed nothing
    assert len(names) == 3 * 4 + 2
    assert "encoder.forward_layer.cell.linear_ih" in names
    assert "decoder.layers.0.cell.linear_hh" in names
    assert "decoder.layers.0.mixer" in names and "encoder.layers.0.cell.linear_hh" in names
    assert "encoder.layers.0.linear" not in names and "encoder.layers.0.mixer" not in names
    assert not [n for n in names if re.search(r"embedding|attention|fc", n)]


def test_spike_rates_are_keyed_by_target_names_and_only_spike_fed_matrices(tiny):
    data, model = tiny
    rates = NMT.spike_rates(model, data, TINY)  # TINY is the output-spiking kind
    targets = {t.name for t in find_targets(model, NMT.default_targets)}
    assert set(rates) <= targets
    assert set(rates) == {f"{p}.linear" for p in ("encoder.forward_layer", "encoder.backward_layer",
                                                  "decoder.layers.0")}  # fmt: skip
    assert all(0.0 <= r <= 1.0 for r in rates.values())
    gate = TINY.replace(kind="gate")
    gate_rates = NMT.spike_rates(NMT.build(gate, data), data, gate)
    assert "decoder.layers.0.cell.linear_hh" in gate_rates  # binary h into the recurrence
    analog = TINY.replace(kind="analog")
    assert NMT.spike_rates(NMT.build(analog, data), data, analog) == {}


def test_workload_is_one_translation_at_the_mean_test_length(tiny):
    data, _ = tiny
    w = NMT.workload(TINY, data)
    lengths = [len(s) for s in data.test.pair_src] + [len(t) for t in data.test.pair_tgt]
    assert w == {"seq_len": round(sum(lengths) / len(lengths)), "batch": 1}


def test_compress_run_nmt_smoke_packs_and_the_packed_model_scores_the_same_bleu(tmp_path):
    data_root = _write_made_tatoeba(tmp_path / "data")
    argv = ["--model", "nmt", "--preset", "smoke", "--max-paths", "3", "--data-dir",
            str(data_root), "--runs-root", str(tmp_path / "runs"), "--threads", "1",
            "--no-verify"]  # fmt: skip
    assert R.main(argv) == 0
    run_dir = next(
        p for p in (tmp_path / "runs" / "nmt").iterdir() if not p.name.startswith("dense")
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "finished" and m["quality"]["metric"] == "bleu"
    assert 0 <= m["quality"]["test"] <= 100 and m["packed_gap"] <= 1e-4
    packed = json.loads((run_dir / "packed.json").read_text())
    by = {layer["name"]: layer for layer in packed["layers"]}
    assert len(by) == 14 and by["decoder.layers.0.cell.linear_hh"]["recurrent"] is True
    assert 0 <= by["decoder.layers.0.linear"]["input_spike_rate"] <= 1
    hw = json.loads((run_dir / "hwsim.json").read_text())
    assert hw["total"]["cycles"] > 0
