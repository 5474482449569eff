"""The surname classifier under a compression run (`--model names`): its registry entry, the
config record, and the dense and fine-tuning entry points on made data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from common.spec import Finetune
from lstmpack.registry import get_spec
from nmt import names as nm
from nmt.names.spec import NAMES


@pytest.fixture
def data(tmp_path: Path):
    """Two 'languages' told apart by their first letter."""
    folder = tmp_path / "names"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for lang, first in (("Alpha", "A"), ("Beta", "B")):
        rows = [first + "".join(rng.choice(list("abcdef"), size=3)) for _ in range(40)]
        (folder / f"{lang}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return nm.load_names(folder, "stratified")


def _tiny(**overrides) -> nm.NamesConfig:
    base = dict(hidden_size=8, steps=6, batch_size=16, checkpoint_every=0)
    return nm.preset_config("smoke", **{**base, **overrides})


def test_registry_entry_and_config_record():
    assert get_spec("names") is NAMES and NAMES.metric == "accuracy"
    cfg = _tiny()
    assert NAMES.config_to_dict(cfg) == dataclasses.asdict(cfg)
    assert nm.NamesConfig.from_dict(NAMES.config_to_dict(cfg)) == cfg
    assert NAMES.dense_epochs(cfg) == cfg.steps  # the names trainer counts steps
    assert NAMES.finetune_epochs(nm.preset_config("cpu")) == 2
    assert NAMES.finetune_steps(nm.preset_config("cpu")) == 0


def test_dense_training_runs_the_presets_steps_in_the_train_folder(data, tmp_path):
    cfg = _tiny()
    model = NAMES.build(cfg, data)
    info = NAMES.train_dense(
        model, data, cfg, tmp_path / "run" / "train", epochs=NAMES.dense_epochs(cfg), resume=True
    )
    assert info["steps"] == cfg.steps
    assert (tmp_path / "run" / "train" / "checkpoint.pt").is_file()


def test_finetune_calls_back_per_step_from_zero_and_caps_the_steps(data, tmp_path):
    cfg = _tiny()
    model = NAMES.build(cfg, data)
    seen: list[int] = []
    ft = Finetune(epochs=2, resume=False, state=None, on_step=seen.append, max_steps=5)
    info = NAMES.finetune(model, data, cfg, tmp_path / "train", ft)
    assert NAMES.steps_per_epoch(cfg, data) * 2 > 5
    assert seen == list(range(5)) and info["steps"] == 5
