"""`python -m nmt.multi30k` end to end on made data: it trains, decodes greedily and with a beam,
prints sacreBLEU's signature, records everything, resumes to the same weights, and refuses bad
input in one line before anything is written."""

from __future__ import annotations

import json

import pytest
import torch

from nmt.multi30k.cli import main
from nmt.multi30k.config import preset_config
from nmt.multi30k.data import load_folder
from nmt.multi30k.model import build_model
from nmt.multi30k.training import CHECKPOINT, train


def _argv(root, run_dir, *extra: str) -> list[str]:
    return ["--preset", "smoke", "--data-dir", str(root), "--run-dir", str(run_dir),
            "--no-verify", "--threads", "1", "--no-progress", *extra]  # fmt: skip


def test_a_smoke_run_trains_decodes_and_scores_bleu_with_its_signature(m30k_root, tmp_path,
                                                                       capsys):  # fmt: skip
    run_dir = tmp_path / "run"
    # long enough for the toy language to be learnt: 440 steps, a few seconds
    assert main(_argv(m30k_root, run_dir, "--set", "max_steps=0", "epochs=20", "lr=0.01")) == 0
    out = capsys.readouterr().out
    assert "test: greedy BLEU = " in out and "test: beam 2 BLEU = " in out
    assert "sacreBLEU signature: nrefs:1|case:mixed|eff:no|tok:none|smooth:exp" in out
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "finished" and m["decoding"] == "beam 2"
    test = m["test"]
    assert test["bleu"] == test["bleu_beam"] and test["bleu_greedy"] > 50
    assert "tok:none" in test["bleu_signature"] and len(test["samples"]) == 4
    assert m["train"]["steps"] == 20 * 22 and len(m["train"]["valid"]) == 20
    for name in ("config.json", "train.json", CHECKPOINT, "log.txt"):
        assert (run_dir / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    assert json.loads((run_dir / "config.json").read_text())["attention"] == "bahdanau"


def test_the_seed_model_without_attention_is_an_option(m30k_root, tmp_path, capsys):
    run_dir = tmp_path / "none"
    assert main(_argv(m30k_root, run_dir, "--attention", "none", "--set", "beam=1")) == 0
    assert "test: greedy BLEU = " in capsys.readouterr().out
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["attention"] == "none" and cfg["beam"] == 1
    state = torch.load(run_dir / CHECKPOINT, weights_only=False)["model"]
    assert not any(k.startswith("attention.") for k in state)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(m30k_root, tmp_path):
    data = load_folder(m30k_root / "multi30k")
    cfg = preset_config("smoke", max_steps=30, checkpoint_every=7)

    def fresh():
        return build_model(cfg, len(data.src_vocab), len(data.tgt_vocab))

    whole = fresh()
    train(whole, data, cfg, tmp_path / "whole", progress=False)

    def stop_at_12(step: int) -> None:
        if step == 11:  # after the 12th optimizer step: mid-epoch, between checkpoints
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(), data, cfg, tmp_path / "cut", callback=stop_at_12, progress=False)
    resumed = fresh()
    record = train(resumed, data, cfg, tmp_path / "cut", resume=True, progress=False)
    assert record["steps"] == 30
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "hiden=8"], "--set hiden: no such setting; did you mean hidden?"),
        (["--set", "epochs=two"], "--set epochs=two: epochs takes an integer"),
        (["--set", "dropout=1.5"], "dropout must be in [0, 1)"),
        (["--threads", "0"], "--threads must be >= 1"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2_before_anything_is_written(
    m30k_root, tmp_path, capsys, extra, message
):
    run_dir = tmp_path / "run"
    assert main(_argv(m30k_root, run_dir, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_an_existing_run_is_refused_without_resume_and_missing_data_is_named(
    m30k_root, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CHECKPOINT).write_bytes(b"")
    assert main(_argv(m30k_root, run_dir)) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_argv(empty, tmp_path / "other")) == 2
    err = capsys.readouterr().err.strip()
    assert "multi30k" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "other").exists()


def test_training_leaves_the_callers_thread_count_alone(m30k_root, tmp_path):
    # compress.run --threads 1 sets the process's threads; a preset's threads must not undo it
    data = load_folder(m30k_root / "multi30k")
    cfg = preset_config("smoke", max_steps=2, threads=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(build_model(cfg, len(data.src_vocab), len(data.tgt_vocab)), data, cfg,
              tmp_path / "run", progress=False)  # fmt: skip
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
