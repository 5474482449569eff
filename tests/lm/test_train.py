from __future__ import annotations

import functools
import json
import math

import pytest
import torch

from lm.data import load_enwik8_folder
from lm.model import build_model
from lm.rundir import BEST, CHECKPOINT, load_checkpoint, train_run
from lm.train import main
from lm.trainer import Trainer, TrainingDivergedError, evaluate, scheduled_lr


@pytest.fixture
def quiet_run(char_corpus):
    """train_run on the made corpus without TensorBoard files (one test asks for them)."""
    return functools.partial(train_run, corpus=char_corpus, tensorboard=False)


def test_evaluate_is_the_mean_nll_independent_of_chunk_length(char_corpus, make_config) -> None:
    cfg = make_config()
    torch.manual_seed(0)
    model = build_model(cfg, char_corpus.vocab_size)
    data = char_corpus.valid[:401]
    a = evaluate(model, data, cfg.replace(bptt=7), batch_size=4)
    b = evaluate(model, data, cfg.replace(bptt=100), batch_size=4)
    assert a == pytest.approx(b, rel=1e-5)
    # by hand: one pass over each of the 4 streams, mean over the 4 * 99 targets
    model.eval()
    src = data[:400].view(4, 100).t()
    out = model(src[:-1])
    manual = model.nll(out.output, src[1:]).item()
    assert a == pytest.approx(manual, rel=1e-5)
    model.train()  # evaluate restores the previous mode
    evaluate(model, data, cfg, batch_size=2)
    assert model.training


def test_training_reduces_the_validation_loss(char_corpus, make_config) -> None:
    cfg = make_config(epochs=3, max_steps_per_epoch=25, lr=1e-2, batch_size=8, bptt=20)
    torch.manual_seed(0)
    model = build_model(cfg, char_corpus.vocab_size)
    trainer = Trainer(model, char_corpus, cfg)
    start = trainer.validate()
    losses = [trainer.run_epoch()["val_loss"] for _ in range(3)]
    assert losses[-1] < losses[0] < start
    assert losses[-1] < start - 0.2
    assert trainer.step == 75 and trainer.epoch == 3


def test_step_callback_runs_after_every_optimizer_step(char_corpus, make_config) -> None:
    cfg = make_config(max_steps_per_epoch=4)
    model = build_model(cfg, char_corpus.vocab_size)
    steps = []
    trainer = Trainer(model, char_corpus, cfg, step_callback=lambda t: steps.append(t.step))
    trainer.run_epoch()
    assert steps == [1, 2, 3, 4]


def test_nt_asgd_switches_after_nonmono_worse_epochs_and_evaluates_averaged_weights(
    char_corpus, make_config
) -> None:
    cfg = make_config(optimizer="sgd", lr=1.0, nonmono=2, max_steps_per_epoch=2)
    model = build_model(cfg, char_corpus.vocab_size)
    trainer = Trainer(model, char_corpus, cfg)
    losses = iter([5.0, 4.0, 3.0, 4.9, 4.5, 4.4])
    trainer.validate = lambda: next(losses)  # type: ignore[method-assign]
    switched_at = None
    for epoch in range(1, 7):
        trainer.run_epoch()
        if trainer.asgd and switched_at is None:
            switched_at = epoch
    # epoch 4: 4.9 is not worse than min([5]) (all but the last 2); epoch 5: 4.5 > min([5, 4])
    assert switched_at == 5
    assert isinstance(trainer.optimizer, torch.optim.ASGD)
    # under ASGD the averaged weights are swapped in and then restored
    p = trainer.params[0]
    current = p.detach().clone()
    ax = trainer.optimizer.state[p]["ax"]
    with trainer.averaged_weights():
        assert torch.equal(p.detach(), ax)
    assert torch.equal(p.detach(), current)


def test_adam_divides_lr_by_ten_at_when_epochs(char_corpus, make_config) -> None:
    cfg = make_config(optimizer="adam", lr=1e-3, when=(1, 3), max_steps_per_epoch=1, epochs=3)
    trainer = Trainer(build_model(cfg, char_corpus.vocab_size), char_corpus, cfg)
    lrs = []
    for _ in range(3):
        trainer.run_epoch()
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-5])


def test_cosine_schedule_warms_up_linearly_then_falls_to_lr_min(make_config) -> None:
    cfg = make_config(optimizer="adam", lr=1e-2, lr_min=1e-4, lr_schedule="cosine", warmup_steps=4)
    assert scheduled_lr(cfg, 0, 0.0) == pytest.approx(1e-2 / 4)
    assert scheduled_lr(cfg, 3, 0.0) == pytest.approx(1e-2)
    assert scheduled_lr(cfg, 100, 0.5) == pytest.approx((1e-2 + 1e-4) / 2)
    assert scheduled_lr(cfg, 100, 1.0) == pytest.approx(1e-4)
    after = [scheduled_lr(cfg, 4 + k, k / 50) for k in range(51)]
    assert all(a >= b for a, b in zip(after, after[1:]))


def test_trainer_steps_at_the_cosine_schedules_rate_and_ignores_when(
    char_corpus, make_config
) -> None:
    cfg = make_config(
        optimizer="adam", lr=1e-3, lr_min=1e-5, lr_schedule="cosine", warmup_steps=2,
        max_steps_per_epoch=3, epochs=2,
    )  # fmt: skip
    seen: list[float] = []
    trainer = Trainer(
        build_model(cfg, char_corpus.vocab_size),
        char_corpus,
        cfg,
        step_callback=lambda tr: seen.append(tr.optimizer.param_groups[0]["lr"]),
    )
    for _ in range(2):
        trainer.run_epoch()
    assert seen == pytest.approx([scheduled_lr(cfg, k, k / 6) for k in range(6)])
    # by hand: half the peak during the first warm-up step, then the cosine at 1/6 of the run
    assert seen[0] == pytest.approx(1e-3 / 2)
    assert seen[1] == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 6)) / 2)


def test_huge_learning_rate_diverges_with_a_clear_error(tmp_path, quiet_run, make_config) -> None:
    cfg = make_config(optimizer="sgd", lr=1e30, clip=0.0, epochs=2, max_steps_per_epoch=20)
    with pytest.raises(TrainingDivergedError, match="training loss is (nan|inf)"):
        quiet_run(cfg, tmp_path)


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(
    tmp_path, quiet_run, make_config, schedule
) -> None:
    cfg = make_config(optimizer="sgd", lr=5.0, nonmono=0, epochs=3, max_steps_per_epoch=5)
    if schedule == "cosine":
        cfg = cfg.replace(optimizer="adam", lr=3e-3, lr_schedule="cosine", warmup_steps=3)
    straight = quiet_run(cfg, tmp_path / "a")

    class Interrupted(Exception):
        pass

    def stop_in_epoch_two(trainer: Trainer) -> None:
        if trainer.step == 7:
            raise Interrupted

    # the same config throughout: the cosine schedule depends on the run's length
    with pytest.raises(Interrupted):
        quiet_run(cfg, tmp_path / "b", step_callback=stop_in_epoch_two)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["epoch"] == 1
    resumed = quiet_run(cfg, tmp_path / "b", resume=True)
    keys = (
        "valid_loss",
        "test_loss",
        "valid_bpc",
        "test_bpc",
        "steps",
        "train_tokens",
        "best_epoch",
    )
    assert {k: resumed[k] for k in keys} == {k: straight[k] for k in keys}
    assert resumed["optimizer_at_end"] == straight["optimizer_at_end"]
    sa = load_checkpoint(tmp_path / "a" / CHECKPOINT)["model"]
    sb = load_checkpoint(tmp_path / "b" / CHECKPOINT)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_refuses_a_changed_config_and_a_fresh_run_refuses_an_existing_dir(
    tmp_path, quiet_run, make_config
) -> None:
    cfg = make_config(epochs=1, max_steps_per_epoch=1)
    quiet_run(cfg, tmp_path)
    with pytest.raises(ValueError, match="lr"):
        quiet_run(cfg.replace(lr=0.5), tmp_path, resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        quiet_run(cfg, tmp_path)


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, quiet_run, make_config
) -> None:
    cfg = make_config(epochs=3, max_steps_per_epoch=3)
    quiet_run(cfg.replace(epochs=1), tmp_path)
    good = load_checkpoint(tmp_path / CHECKPOINT)

    def poison(trainer: Trainer) -> None:
        if trainer.step == 5:  # second step of epoch 2
            with torch.no_grad():
                trainer.model.rnns[0].weight[0, 0] = float("nan")

    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 3 .*global step 6.*checkpoint"):
        quiet_run(cfg, tmp_path, resume=True, step_callback=poison)
    kept = load_checkpoint(tmp_path / CHECKPOINT)
    assert kept["epoch"] == 1 and kept["step"] == good["step"]
    assert all(torch.isfinite(v).all() for v in kept["model"].values())


def test_run_dir_holds_config_metrics_checkpoints_and_tensorboard_events(
    tmp_path, char_corpus, make_config
) -> None:
    cfg = make_config(epochs=1, max_steps_per_epoch=4)
    metrics = train_run(cfg, tmp_path, corpus=char_corpus, tensorboard=True)
    assert json.loads((tmp_path / "config.json").read_text())["nhid"] == cfg.nhid
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_bpc"] == pytest.approx(metrics["test_loss"] / math.log(2))
    assert on_disk["eval_batch_size"] == cfg.eval_batch_size
    assert on_disk["test_batch_size"] == cfg.test_batch_size
    ckpt = load_checkpoint(tmp_path / CHECKPOINT)
    assert ckpt["config"] == cfg.to_dict()
    assert set(load_checkpoint(tmp_path / BEST)) >= {"model", "config", "epoch"}
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert not list(tmp_path.glob(".*.tmp"))


def test_enwik8_smoke_trains_on_a_made_file(tmp_path, make_config) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    text = ("<page><title>Test</title> " * 4000).encode()
    noise = rng.integers(0, 256, size=20_000, dtype=np.uint8).tobytes()
    raw = (text + noise)[:120_000]
    (tmp_path / "enwik8").write_bytes(raw)
    from lm.presets import SMOKE

    cfg = SMOKE["enwik8"].replace(enwik8_splits=(100_000, 10_000, 10_000), epochs=1)
    corpus = load_enwik8_folder(tmp_path, cfg.enwik8_splits)
    metrics = train_run(cfg, tmp_path / "run", corpus=corpus, tensorboard=False)
    assert math.isfinite(metrics["test_bpc"]) and metrics["test_bpc"] < 8.5


def test_cli_trains_the_smoke_preset_on_real_ptb_char(tmp_path, real_data_root, capsys) -> None:
    rc = main(["--model", "ptbc", "--preset", "smoke", "--run-dir", str(tmp_path), "--data-dir",
               str(real_data_root), "--no-progress", "--epochs", "1", "--threads", "1"])  # fmt: skip
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["epochs_done"] == 1 and metrics["test_bpc"] < 6
    assert (tmp_path / "log.txt").read_text().count("epoch 1") == 1
    assert (
        main(["--model", "ptbc", "--preset", "smoke", "--lr", "-1", "--run-dir", str(tmp_path)])
        == 2
    )


def test_step_limited_epochs_continue_the_stream_and_wrap_at_its_end(
    char_corpus, make_config
) -> None:
    cfg = make_config(
        max_steps_per_epoch=3, bptt=10, batch_size=4, train_tokens=400, eval_tokens=200
    )
    trainer = Trainer(build_model(cfg, char_corpus.vocab_size), char_corpus, cfg)
    nrows = trainer.train_data.size(0)
    starts = []
    orig = trainer.model.forward

    def spy(tokens, hidden=None):
        starts.append(tokens[0, 0].item())
        return orig(tokens, hidden)

    trainer.model.forward = spy  # type: ignore[method-assign]
    trainer.run_epoch()
    after_one = trainer.position
    assert 0 < after_one < nrows
    first_of_epoch_two = len(starts)
    trainer.run_epoch()
    # epoch 2 starts at the row where epoch 1 stopped, not at row 0
    assert starts[first_of_epoch_two] == trainer.train_data[after_one, 0].item()
    seen_wrap = False
    for _ in range(2 * nrows // (3 * 5) + 2):
        before = trainer.position
        trainer.run_epoch()
        seen_wrap |= trainer.position < before
    assert seen_wrap


def test_cli_trains_enwik8_smoke_on_a_made_file(tmp_path, capsys) -> None:
    import numpy as np

    (tmp_path / "data" / "enwik8").mkdir(parents=True)
    raw = np.random.default_rng(0).integers(32, 127, size=60_000, dtype=np.uint8).tobytes()
    (tmp_path / "data" / "enwik8" / "enwik8").write_bytes(raw)
    argv = ["--model", "enwik8", "--preset", "smoke", "--run-dir", str(tmp_path / "run"),
            "--data-dir", str(tmp_path / "data"), "--no-progress", "--threads", "1",
            "--enwik8_splits", "50000", "5000", "5000"]  # fmt: skip
    assert main([*argv, "--no-verify"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "enwik8" and math.isfinite(metrics["test_bpc"])
    # without --no-verify the made file fails the registry's SHA-256 check: a clear error
    argv[argv.index("--run-dir") + 1] = str(tmp_path / "run2")
    assert main(argv) == 2
    assert "enwik8" in capsys.readouterr().err
