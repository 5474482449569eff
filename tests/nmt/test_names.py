"""The surname classifier: data and splits, model, training hook, resume, run records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from nmt import names as nm


def _write_fake(folder: Path) -> Path:
    """Three 'languages' told apart by their first letter, plus accented names to fold."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnop")
    for lang, first, count in (("Alpha", "A", 40), ("Beta", "B", 25), ("Zeta", "Z", 15)):
        rows = [first + "".join(rng.choice(letters, size=rng.integers(2, 7))) for _ in range(count)]
        if lang == "Beta":
            rows[0] = "Bślusàrski"
        (folder / f"{lang}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    return _write_fake(tmp_path / "names")


def _tiny(**overrides) -> nm.NamesConfig:
    base = dict(hidden_size=16, steps=40, batch_size=16, lr=2e-2, checkpoint_every=0)
    return nm.preset_config("smoke", **{**base, **overrides})


# --------------------------------------------------------------------------- data


def test_letters_are_the_tutorials_58_symbols_and_folding_drops_accents():
    assert len(nm.LETTERS) == 58 and nm.LETTERS.endswith(" .,;'-")
    assert nm.to_ascii("Ślusàrski") == "Slusarski"
    assert nm.to_ascii("O'Néal-Smith") == "O'Neal-Smith"
    assert nm.to_ascii("Tran\u00e7?") == "Tranc"  # '?' is not a symbol of the tutorial


def test_tutorial_split_takes_the_first_80_percent_of_each_file(fake_dir):
    train, test, classes = nm.load_names(fake_dir, "tutorial")
    assert classes == ("Alpha", "Beta", "Zeta")
    alpha = (fake_dir / "Alpha.txt").read_text().strip().split("\n")
    assert list(train.names[:32]) == alpha[:32]
    assert list(test.names[:8]) == alpha[32:]
    assert np.bincount(train.labels).tolist() == [32, 20, 12]
    assert np.bincount(test.labels).tolist() == [8, 5, 3]
    assert "Bslusarski" in train.names


def test_stratified_split_is_seeded_per_class_and_partitions_the_data(fake_dir):
    train, test, _ = nm.load_names(fake_dir, "stratified", seed=1)
    again, _, _ = nm.load_names(fake_dir, "stratified", seed=1)
    other, _, _ = nm.load_names(fake_dir, "stratified", seed=2)
    tutorial, _, _ = nm.load_names(fake_dir, "tutorial")
    assert train.names == again.names
    assert train.names != other.names and train.names != tutorial.names
    assert np.bincount(train.labels).tolist() == [32, 20, 12]
    tut_train, tut_test, _ = nm.load_names(fake_dir, "tutorial")

    def pairs(a, b):
        return sorted(zip(a.names + b.names, [*a.labels, *b.labels], strict=True))

    assert pairs(train, test) == pairs(tut_train, tut_test)  # the same names, repartitioned


def test_load_names_rejects_an_unknown_split(fake_dir):
    with pytest.raises(ValueError, match="split"):
        nm.load_names(fake_dir, "random")


def test_batch_is_time_first_one_hot_with_lengths(fake_dir):
    train, _, _ = nm.load_names(fake_dir, "tutorial")
    idx = np.array([0, 1, 2])
    x, lengths, labels = train.batch(idx)
    assert x.shape == (int(train.lengths[idx].max()), 3, 58)
    assert lengths.tolist() == train.lengths[idx].tolist()
    assert x.sum(2)[: lengths[0], 0].eq(1).all()
    first = nm.LETTERS.index(train.names[0][0])
    assert x[0, 0, first] == 1
    assert labels.tolist() == [0, 0, 0]


def test_majority_baseline_is_the_test_share_of_the_largest_training_class(fake_dir):
    train, test, _ = nm.load_names(fake_dir, "tutorial")
    assert nm.majority_baseline(train, test) == pytest.approx(8 / 16)


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize("cell", nm.CELLS)
def test_model_parameter_counts_match_the_architecture(cell):
    model = nm.build_model(nm.preset_config("cpu", cell=cell), 18)
    lstm = 4 * 256 * (58 + 256) + 2 * 4 * 256
    extra = {"gate": 0, "analog": 0, "output": 1 + 2 * 256}[cell]  # theta; surrogate a, b
    assert nm.count_params(model) == lstm + 256 * 18 + 18 + extra


def test_readout_uses_each_names_last_letter(fake_dir):
    train, _, _ = nm.load_names(fake_dir, "tutorial")
    model = nm.build_model(_tiny(cell="analog"), 3).eval()
    idx = np.array([0, 5, 9])
    x, lengths, _ = train.batch(idx)
    batched = model(x, lengths)
    for k, i in enumerate(idx):
        xi, li, _ = train.batch(np.array([i]))
        torch.testing.assert_close(batched[k : k + 1], model(xi, li))


def test_config_rejects_unknown_values():
    with pytest.raises(ValueError, match="cell"):
        nm.preset_config("cpu", cell="lif")
    with pytest.raises(ValueError, match="unknown NamesConfig field"):
        nm.preset_config("cpu", hiden_size=3)
    with pytest.raises(ValueError, match="preset"):
        nm.preset_config("gpu")
    with pytest.raises(ValueError, match="steps"):
        nm.preset_config("cpu", steps=0)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("cell", nm.CELLS)
def test_training_learns_the_first_letter_rule(fake_dir, cell):
    data = nm.load_names(fake_dir, "stratified")
    config = _tiny(cell=cell, steps=30, threshold=0.0, readout="mean")
    model = nm.build_model(config, 3)
    before = nm.evaluate(model, data[0])
    calls = []
    nm.train(model, data, config, callback=lambda step, m, loss: calls.append((step, loss)))
    after = nm.evaluate(model, data[0])
    assert [s for s, _ in calls] == list(range(1, 31))
    assert after["loss"] < before["loss"]
    assert after["accuracy"] >= 0.9
    if cell == "analog":
        assert after["spike_rate"] is None
    else:
        assert 0.0 < after["spike_rate"] < 1.0
        assert len(after["layer_spike_rates"]) == 1


def test_evaluate_reports_balanced_accuracy_of_a_constant_guess(fake_dir):
    train, test, _ = nm.load_names(fake_dir, "tutorial")
    model = nm.build_model(_tiny(cell="gate"), 3)
    with torch.no_grad():
        model.readout.weight.zero_()
        model.readout.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    ev = nm.evaluate(model, test, batch_size=4)
    assert ev["accuracy"] == pytest.approx(8 / 16)
    assert ev["balanced_accuracy"] == pytest.approx(1 / 3)
    assert ev["spikes"] is not None and sum(ev["neuron_steps"]) == int(test.lengths.sum()) * 16


def test_pruning_masks_hold_through_classifier_training(fake_dir):
    data = nm.load_names(fake_dir, "stratified")
    config = _tiny(cell="gate", steps=20)
    model = nm.build_model(config, 3)
    cell = model.lstm.cells[0]
    saved = {}
    for name in ("linear_ih", "linear_hh"):
        lin = getattr(cell, name)
        mask = (torch.rand_like(lin.weight) > 0.3).float()

        class Mask(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.register_buffer("m", m)

            def forward(self, w):
                return w * self.m

        parametrize.register_parametrization(lin, "weight", Mask(mask))
        saved[name] = (mask, lin.weight.detach().clone())
    nm.train(model, data, config)
    for name, (mask, before) in saved.items():
        w = getattr(cell, name).weight.detach()
        assert bool((w[mask == 0] == 0).all())
        assert float((w != before)[mask == 1].float().mean()) > 0.2


def test_interrupted_run_resumes_to_the_same_weights(fake_dir, tmp_path):
    data = nm.load_names(fake_dir, "stratified")
    config = _tiny(cell="output", steps=12, checkpoint_every=5, threshold=0.0)
    whole = nm.build_model(config, 3)
    nm.train(whole, data, config, run_dir=tmp_path / "a")

    class Stop(Exception):
        pass

    def crash(step, model, loss):
        if step == 8:
            raise Stop

    (tmp_path / "b").mkdir()
    first = nm.build_model(config, 3)
    with pytest.raises(Stop):
        nm.train(first, data, config, callback=crash, run_dir=tmp_path / "b")
    resumed = nm.build_model(config, 3)
    info = nm.train(resumed, data, config, run_dir=tmp_path / "b")
    assert info["resumed_from"] == 5
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_refuses_a_checkpoint_of_another_config(fake_dir, tmp_path):
    data = nm.load_names(fake_dir, "stratified")
    config = _tiny(steps=3, checkpoint_every=1)
    nm.train(nm.build_model(config, 3), data, config, run_dir=tmp_path)
    other = _tiny(steps=3, checkpoint_every=1, lr=0.5)
    with pytest.raises(ValueError, match="different configuration"):
        nm.train(nm.build_model(other, 3), data, other, run_dir=tmp_path)


def test_run_writes_config_and_metrics_records(fake_dir, tmp_path):
    config = _tiny(cell="gate", steps=10)
    metrics, run_dir = nm.run(config, fake_dir, tmp_path)
    assert run_dir == tmp_path / "names" / config.run_id()
    stored = json.loads((run_dir / "config.json").read_text())
    assert nm.NamesConfig(**stored) == config
    record = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "test_balanced_accuracy",
        "majority_baseline",
        "spike_rate",
        "params",
        "train_time_s",
    ):
        assert key in record
    assert record == json.loads(json.dumps(metrics))
    assert not list(run_dir.glob(".*.tmp"))


def test_cli_reports_missing_data_with_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LSTMPACK_DATA", raising=False)  # else the registry finds the real copy
    code = nm.main(
        [
            "--preset",
            "smoke",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--runs-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "nmt.names:" in capsys.readouterr().err


def test_cli_trains_the_smoke_preset(fake_dir, tmp_path, capsys):
    code = nm.main(
        [
            "--preset",
            "smoke",
            "--cell",
            "analog",
            "--split",
            "tutorial",
            "--data-dir",
            str(fake_dir),
            "--runs-dir",
            str(tmp_path),
            "--steps",
            "5",
            "--no-progress",
        ]
    )
    assert code == 0
    assert (tmp_path / "names" / "smoke-analog-tutorial-seed0" / "metrics.json").is_file()
    assert "test_accuracy" in capsys.readouterr().out


# --------------------------------------------------------------------------- real data


def test_real_names_data_matches_the_tutorial(real_data_root):
    train, test, classes = nm.load_names(real_data_root / "names", "tutorial")
    assert len(classes) == 18 and len(train) + len(test) == 20074
    assert set("".join(train.names + test.names)) <= set(nm.LETTERS)
    russian = classes.index("Russian")
    assert float(np.mean(test.labels == russian)) == pytest.approx(0.468, abs=5e-4)
    assert nm.majority_baseline(train, test) == pytest.approx(0.468, abs=5e-4)
    strat_train, strat_test, _ = nm.load_names(real_data_root / "names", "stratified", seed=0)
    assert len(strat_test) == len(test)
    assert np.bincount(strat_test.labels).tolist() == np.bincount(test.labels).tolist()
    assert strat_test.names != test.names
