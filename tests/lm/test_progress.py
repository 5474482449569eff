"""What a run shows while it trains: on a terminal one bar over the whole run (its ETA is the
run's), resumed where the run was; elsewhere no bar at all (a log file would collect every
redraw) but a line per epoch, the plan first and the times last."""

from __future__ import annotations

import logging
import re

import pytest

import lm.trainer
from lm.rundir import train_run


@pytest.fixture
def terminal(monkeypatch):
    """stderr reads as a terminal (pytest captures it, so tqdm's output lands in capsys)."""
    monkeypatch.setattr(lm.trainer, "on_terminal", lambda: True)


def _bars(err: str) -> list[str]:
    """Each drawn state of a bar, e.g. 'train:  50%|...| 6/12 [...]'."""
    return [s for s in re.split(r"[\r\n]", err) if re.search(r"\d+/\d+ \[", s)]


def test_off_a_terminal_a_run_draws_no_bar_and_logs_plan_epochs_and_times(
    tmp_path, char_corpus, make_config, capsys, caplog
):
    caplog.set_level(logging.INFO, logger="lm")
    train_run(make_config(), tmp_path, corpus=char_corpus, tensorboard=False, progress=True,
              label="dense")  # fmt: skip
    err = capsys.readouterr().err
    assert "\r" not in err and not _bars(err)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("dense: training 2 epochs of 6 steps")
    assert [line.split(" |")[0] for line in lines if line.startswith("epoch ")] == [
        "epoch 1",
        "epoch 2",
    ]
    assert re.match(r"dense: 2 epochs \(12 steps\) in [\d.]+ s of training steps", lines[-1])


def test_on_a_terminal_one_bar_spans_every_epoch_of_the_run(
    tmp_path, char_corpus, make_config, capsys, terminal
):
    train_run(make_config(), tmp_path, corpus=char_corpus, tensorboard=False, progress=True,
              label="dense")  # fmt: skip
    bars = _bars(capsys.readouterr().err)
    assert bars, "no bar was drawn"
    assert {re.search(r"(\d+)/(\d+) \[", b).group(2) for b in bars} == {"12"}  # 2 epochs x 6
    assert bars[0].startswith("dense:") and " 0/12 [" in bars[0]
    assert " 12/12 [" in bars[-1] and "loss=" in bars[-1]


def test_a_resumed_run_continues_its_bar_from_the_step_it_resumed_at(
    tmp_path, char_corpus, make_config, capsys, caplog, terminal
):
    caplog.set_level(logging.INFO, logger="lm")
    cfg = make_config()
    train_run(cfg.replace(epochs=1), tmp_path, corpus=char_corpus, tensorboard=False)
    capsys.readouterr()
    train_run(cfg, tmp_path, corpus=char_corpus, tensorboard=False, resume=True, progress=True)
    bars = _bars(capsys.readouterr().err)
    assert " 6/12 [" in bars[0] and " 12/12 [" in bars[-1]
    assert any("from epoch 2 (step 6)" in r.getMessage() for r in caplog.records)


def test_without_progress_nothing_is_drawn_even_on_a_terminal(
    tmp_path, char_corpus, make_config, capsys, terminal
):
    train_run(make_config(), tmp_path, corpus=char_corpus, tensorboard=False, progress=False)
    assert not _bars(capsys.readouterr().err)


class Scalars:
    """A SummaryWriter stand-in that keeps what it is given."""

    def __init__(self):
        self.values: dict[str, dict[int, float]] = {}

    def add_scalar(self, tag, value, step):
        self.values.setdefault(tag, {})[step] = float(value)


def test_tensorboard_loss_is_the_mean_of_the_steps_since_the_last_point(char_corpus, make_config):
    from lm.model import build_model
    from lm.trainer import Trainer

    cfg = make_config(log_interval=3, epochs=1)
    model = build_model(cfg, char_corpus.vocab_size)
    writer = Scalars()
    losses: list[float] = []
    trainer = Trainer(model, char_corpus, cfg, writer=writer)
    original = model.nll

    def nll(*a, **k):  # the raw loss of every step, as the trainer sees it
        out = original(*a, **k)
        if model.training:
            losses.append(out.item())
        return out

    model.nll = nll
    trainer.run_epoch()
    assert sorted(writer.values["train/loss"]) == [3, 6]
    assert writer.values["train/loss"][3] == pytest.approx(sum(losses[:3]) / 3)
    assert writer.values["train/loss"][6] == pytest.approx(sum(losses[3:6]) / 3)


def test_a_run_resumed_from_an_older_checkpoint_logs_each_step_once(
    tmp_path, char_corpus, make_config
):
    """A run killed after logging steps past its last checkpoint logs them again on resume: the
    resumed writer purges the killed run's points from the checkpoint's step on."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_config(log_interval=1)
    run = tmp_path / "run"
    train_run(cfg.replace(epochs=1), run, corpus=char_corpus)
    shutil.copy(run / "checkpoint.pt", tmp_path / "epoch1.pt")
    train_run(cfg, run, corpus=char_corpus, resume=True)  # logs steps 7..12
    shutil.copy(tmp_path / "epoch1.pt", run / "checkpoint.pt")  # as if killed before epoch 2 ended
    train_run(cfg, run, corpus=char_corpus, resume=True)  # logs steps 7..12 again
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))
