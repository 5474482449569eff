"""Training the biLM on made PTB files: both losses fall and the perplexities are recorded
(forward, backward, their mean), the sampled softmax trains too, an interrupted run resumes to
the weights of an uninterrupted one, and `python -m elmo` records a run and refuses bad input in
one line before anything is written."""

from __future__ import annotations

import json

import pytest
import torch

from elmo.cli import _parser, main
from elmo.data import load_data
from elmo.evaluation import evaluate
from elmo.model import build_model
from elmo.training import CHECKPOINT, learning_rate, train
from tests.elmo.conftest import make_ptb, smoke


def _trained(ptb_root, tmp_path, **changes):
    cfg = smoke(**changes)
    data = load_data(cfg, ptb_root, verify=False)
    model = build_model(cfg, data.vocab_size)
    before = evaluate(model, data, cfg)
    record = train(model, data, cfg, tmp_path / "run", progress=False)
    return cfg, data, model, before, record


def test_a_smoke_training_lowers_both_directions_perplexity(ptb_root, tmp_path):
    cfg, data, model, before, record = _trained(ptb_root, tmp_path, max_steps=60, epochs=3)
    after = evaluate(model, data, cfg)
    for split in ("valid", "test"):
        for key in ("ppl_forward", "ppl_backward"):
            assert after[split][key] < 0.5 * before[split][key], (split, key)
        assert after[split]["ppl"] == pytest.approx(
            (after[split]["ppl_forward"] + after[split]["ppl_backward"]) / 2
        )
    assert record["steps"] == 60 and len(record["valid"]) == 1  # 56 windows an epoch
    assert set(record["valid"][0]) >= {"ppl", "ppl_forward", "ppl_backward", "epoch", "step"}
    run = tmp_path / "run"
    assert (run / CHECKPOINT).is_file() and (run / "train.json").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())


def test_the_sampled_softmax_trains_and_evaluation_stays_full(ptb_root, tmp_path):
    cfg, data, model, before, _ = _trained(ptb_root, tmp_path, sampled_softmax=16, max_steps=60,
                                           epochs=3)  # fmt: skip
    after = evaluate(model, data, cfg)
    assert after["valid"]["ppl"] < 0.8 * before["valid"]["ppl"]
    model.train()
    x = torch.zeros(3, 2, cfg.proj)
    y = torch.zeros(3, 2, dtype=torch.long)
    model.eval()  # evaluation: the full softmax, whatever the config
    full = torch.nn.functional.cross_entropy(model.softmax(x).view(-1, data.vocab_size), y.view(-1))
    assert torch.equal(model.nll(x, y), full)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(ptb_root, tmp_path):
    # 15 windows an epoch: the cut falls mid-epoch, between checkpoints, and the run crosses
    # two epoch ends (states restart, validation) after it; the sampled softmax draws too
    cfg = smoke(train_tokens=1200, epochs=3, max_steps=32, checkpoint_every=5, sampled_softmax=6)
    data = load_data(cfg, ptb_root, verify=False)

    def fresh():
        return build_model(cfg, data.vocab_size)

    whole = fresh()
    full = train(whole, data, cfg, tmp_path / "whole", progress=False)

    def stop_at_12(step: int) -> None:
        if step == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(), data, cfg, tmp_path / "cut", callback=stop_at_12, progress=False)
    resumed = fresh()
    record = train(resumed, data, cfg, tmp_path / "cut", resume=True, progress=False)
    assert record["steps"] == 32 and record["valid"] == full["valid"]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_cosine_schedule_warms_up_then_decays_to_its_floor():
    cfg = smoke(lr=1.0, lr_min=0.01, warmup_steps=4)
    assert learning_rate(cfg, 0, 100) == pytest.approx(0.25 * learning_rate(cfg, 3, 100) / 1.0,
                                                       rel=0.05)  # fmt: skip
    assert learning_rate(cfg, 100, 100) == pytest.approx(0.01)
    assert learning_rate(smoke(lr_schedule="constant"), 50, 100) == smoke().lr


# --------------------------------------------------------------------------- the CLI


def _argv(root, run_dir, *extra: str) -> list[str]:
    return ["--preset", "smoke", "--data-dir", str(root), "--run-dir", str(run_dir),
            "--no-verify", "--threads", "1", "--no-progress", *extra]  # fmt: skip


def test_the_cli_trains_scores_and_records_a_run(ptb_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(_argv(ptb_root, run_dir, "--set", "train_tokens=0", "eval_tokens=0")) == 0
    out = capsys.readouterr().out
    assert "test: ppl forward " in out and " backward " in out and " mean " in out
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "finished" and m["train"]["steps"] == 20
    assert m["test"]["ppl"] == pytest.approx((m["test"]["ppl_forward"]
                                              + m["test"]["ppl_backward"]) / 2)  # fmt: skip
    for name in ("config.json", "train.json", CHECKPOINT, "log.txt"):
        assert (run_dir / name).is_file(), name
    # an existing run needs --resume; with it, the finished run is scored again as it is
    assert main(_argv(ptb_root, run_dir)) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main(_argv(ptb_root, run_dir, "--resume", "--set", "train_tokens=0",
                      "eval_tokens=0")) == 0  # fmt: skip


def test_every_flag_has_help():
    for action in _parser()._actions:
        assert action.help, action.option_strings


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "hiden=8"], "--set hiden: no such setting; did you mean hidden?"),
        (["--set", "hidden=8", "proj=8"], "proj must be smaller than hidden"),
        (["--set", "filters=[[1,4],[1,4]]"], "filters must have distinct widths"),
        (["--set", "filters=[[13,4]]"], "filter width 13 is wider than max_chars=12"),
        (["--set", "dropout=x"], "--set dropout=x: dropout takes a number"),
        (["--set", "residual=maybe"], "residual takes true or false"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--sampled-softmax", "-1"], "--sampled-softmax must be >= 0"),
        (["--set", "eval_tokens=5"], "the valid split has 5 tokens, too few"),
        (["--corpus", "lm1b"], "dataset 'lm1b'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(ptb_root, tmp_path, capsys, extra, message):
    run_dir = tmp_path / "run"
    assert main(_argv(ptb_root, run_dir, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not run_dir.exists()


def test_a_bad_flag_value_is_one_line(ptb_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(_argv(ptb_root, tmp_path / "run", "--preset", "big"))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice: 'big'" in err and len(err.splitlines()) == 1


def test_a_data_root_without_ptb_is_one_line(tmp_path, capsys):
    assert main(_argv(tmp_path, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert "dataset 'ptb_word' not found" in err and len(err.splitlines()) == 1


def test_a_made_corpus_with_verify_on_is_refused_by_its_hashes(tmp_path, capsys):
    root = make_ptb(tmp_path / "data", sizes=(50, 10, 10))
    argv = [a for a in _argv(root, tmp_path / "run") if a != "--no-verify"]
    assert main(argv) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err


def test_training_leaves_the_callers_thread_count_alone(ptb_root, tmp_path):
    # compress.run --threads 1 sets the process's threads; a preset's threads=2 must not undo it
    # (two spinning OpenMP threads per run oversubscribed the machine's cores)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _trained(ptb_root, tmp_path, threads=2, max_steps=2)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
