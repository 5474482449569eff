"""The names fine-tune keeps the pipeline's state (Finetune.state: its event count and records) in
its checkpoints: a fine-tune stopped part way and started again in a fresh process (a fresh state
object, a fresh model) continues with the events it had and ends where an uninterrupted one ends.
No SIGKILL: an exception from the step callback stops it after a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.spec import Finetune
from nmt import names as nm
from nmt.names.spec import NAMES


@pytest.fixture
def data(tmp_path: Path):
    """Two 'languages' told apart by their first letter (as tests/nmt/test_names_spec.py)."""
    folder = tmp_path / "names"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for lang, first in (("Alpha", "A"), ("Beta", "B")):
        rows = [first + "".join(rng.choice(list("abcdef"), size=3)) for _ in range(40)]
        (folder / f"{lang}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return nm.load_names(folder, "stratified")


CFG = nm.preset_config("smoke", hidden_size=8, steps=6, batch_size=16, checkpoint_every=2)
STEPS = 6


class Events:
    """A pipeline's state as the trainer sees it: an event every other step, one record each."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.events_done, self.records, self.stop_at = 0, [], stop_at
        self.first_seen: tuple[int, int] | None = None  # (step, events_done) at the first call

    def on_step(self, step: int) -> None:
        if self.first_seen is None:
            self.first_seen = (step, self.events_done)
        if step == self.stop_at:
            raise KeyboardInterrupt  # the process dies here, after the checkpoint of step 4
        if step % 2 == 0:
            self.events_done += 1
            self.records.append({"event": self.events_done, "step": step + 1})

    def state_dict(self) -> dict:
        return {"events_done": self.events_done, "events": [dict(r) for r in self.records]}

    def load_state_dict(self, state: dict) -> None:
        self.events_done = int(state["events_done"])
        self.records = [dict(r) for r in state["events"]]


def _finetune(data, train_dir: Path, events: Events, resume: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = NAMES.build(CFG, data)
    ft = Finetune(epochs=4, resume=resume, state=events, on_step=events.on_step, max_steps=STEPS)
    NAMES.finetune(model, data, CFG, train_dir, ft)
    return model


def test_a_fine_tune_stopped_part_way_resumes_with_its_event_count_and_records(data, tmp_path):
    assert NAMES.steps_per_epoch(CFG, data) * 4 > STEPS  # max_steps is what ends it
    whole = Events()
    a = _finetune(data, tmp_path / "a", whole, resume=False)
    assert whole.events_done == 3

    with pytest.raises(KeyboardInterrupt):
        _finetune(data, tmp_path / "b", Events(stop_at=4), resume=False)
    saved = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 4 and saved["extra"]["events_done"] == 2  # steps 0 and 2 fired

    again = Events()  # a fresh process: nothing but the checkpoint knows the count
    b = _finetune(data, tmp_path / "b", again, resume=True)
    assert again.first_seen == (4, 2)  # restored before the first step it runs
    assert again.events_done == whole.events_done and again.records == whole.records
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_a_checkpoint_from_before_the_state_was_kept_still_resumes(data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _finetune(data, tmp_path, Events(stop_at=4), resume=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del ckpt["extra"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    events = Events()
    _finetune(data, tmp_path, events, resume=True)
    assert events.first_seen == (4, 0)  # nothing to restore: the state is left as it was
