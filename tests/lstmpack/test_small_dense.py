"""compress.run --small-dense: the equal-columns small dense baseline, at the smoke preset on made
data, and the width rule it uses (lm.presets)."""

from __future__ import annotations

import math

import pytest

from compress.targets import find_targets
from lm.model import build_model
from lm.presets import equal_columns_config, get_preset, lstm_columns
from lstmpack.run import cli as R
from reports.records import load_runs, runs_frame
from tests.lstmpack.test_run_e2e import _argv, _read, make_ptb_char

SMOKE_COMPRESSED = (
    "a3-g1.75-w8a8-ptq-ft1-pf0.8-kd2x1-cos-balrow-act-rec-lr8-smoke-s1111"  # the default flags
)


@pytest.mark.parametrize(
    ("emsize", "nhid", "nlayers", "alpha"),
    [(16, 32, 3, 3), (128, 256, 3, 3), (8, 20, 2, 4), (12, 40, 1, 2), (10, 7, 4, 5)],
)
def test_lstm_columns_count_the_built_models_lstm_columns(emsize, nhid, nlayers, alpha):
    cfg = get_preset("ptbc", "smoke").replace(emsize=emsize, nhid=nhid, nlayers=nlayers)
    targets = find_targets(build_model(cfg, vocab_size=11))
    assert lstm_columns(cfg) == sum(t.cols for t in targets)
    splits = [b - a for t in targets for a, b in zip(t.col_splits[:-1], t.col_splits[1:])]
    assert lstm_columns(cfg, alpha) == sum(math.ceil(s / alpha) for s in splits)


def test_equal_columns_config_is_the_widest_model_within_the_columns():
    cfg = get_preset("ptbc", "cpu")
    assert (lstm_columns(cfg), lstm_columns(cfg, 3)) == (1280, 430)
    small = equal_columns_config(cfg, 430)
    # 4 nhid + 2 emsize columns: nhid 43 gives 428, 44 would give 432
    assert (small.nhid, small.emsize, lstm_columns(small)) == (43, 128, 428)
    assert small.replace(nhid=cfg.nhid) == cfg  # only the hidden size changes
    for target in (260, 300, 1279):
        small = equal_columns_config(cfg, target)
        assert lstm_columns(small) <= target < lstm_columns(small.replace(nhid=small.nhid + 1))


def test_equal_columns_config_refuses_what_no_hidden_size_reaches():
    cfg = get_preset("ptbc", "cpu")
    with pytest.raises(ValueError, match="no fewer than the dense ptbc model's 1280"):
        equal_columns_config(cfg, 1280)
    with pytest.raises(ValueError, match="at nhid 1 .* has 260"):
        equal_columns_config(cfg, 259)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A compressed smoke run (alpha 3) and the small dense run matched to it."""
    root = tmp_path_factory.mktemp("small_dense")
    data = make_ptb_char(root / "data")
    runs = root / "runs"
    assert R.main(_argv(data, runs)) == 0
    assert R.main(_argv(data, runs, "--small-dense")) == 0
    comp = _read(runs / "ptbc" / SMOKE_COMPRESSED / "metrics.json")
    small_dir = runs / "ptbc" / f"small-dense-smoke-s1111-c{comp['array_columns']}"
    return {"data": data, "runs": runs, "small_dir": small_dir, "compressed": comp}


def test_small_dense_run_matches_the_compressed_runs_columns(runs):
    d, comp = runs["small_dir"], runs["compressed"]
    for f in ("config.json", "metrics.json", "hwsim.json", "packed.json", "packed.npz", "table.md"):
        assert (d / f).is_file(), f
    cfg, m = _read(d / "config.json"), _read(d / "metrics.json")
    sd = cfg["small_dense"]
    assert cfg["kind"] == "small_dense" and m["status"] == "finished"
    assert sd["columns_target"] == comp["array_columns"] and sd["max_paths"] == 3
    assert sd["columns_from"] == str(runs["runs"] / "ptbc" / SMOKE_COMPRESSED / "metrics.json")
    assert m["array_columns"] == sd["columns"] <= comp["array_columns"]
    assert cfg["model_config"]["nhid"] == sd["hidden_size"] < sd["dense_hidden_size"]
    assert m["packing_efficiency"] == 1.0 and "rule" in sd and m["small_dense"] == sd
    assert cfg["run"]["small_dense"] == comp["array_columns"]


def test_small_dense_trains_on_the_dense_models_own_budget(runs):
    dense = _read(runs["runs"] / "ptbc" / "dense-smoke-s1111" / "metrics.json")
    small = _read(runs["small_dir"] / "metrics.json")
    assert small["train"]["steps"] == dense["train"]["steps"]
    assert small["train"]["epochs_done"] == dense["train"]["epochs_done"]
    small_cfg = _read(runs["small_dir"] / "config.json")["model_config"]
    dense_cfg = _read(runs["runs"] / "ptbc" / "dense-smoke-s1111" / "config.json")["model_config"]
    assert {k: v for k, v in small_cfg.items() if dense_cfg[k] != v} == {"nhid": small_cfg["nhid"]}


def test_small_dense_table_shows_dense_compressed_and_small_dense(runs):
    rows = (runs["small_dir"] / "table.md").read_text().strip().splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "dense",
        SMOKE_COMPRESSED,
        runs["small_dir"].name,
    ]


def test_reports_read_the_small_dense_run_as_its_own_kind(runs):
    frame = runs_frame(load_runs(runs["runs"] / "ptbc").finished).set_index("run_id")
    row = frame.loc[runs["small_dir"].name]
    assert row["kind"] == "small_dense" and math.isnan(row["alpha"])
    assert row["array_columns"] <= runs["compressed"]["array_columns"]


def test_small_dense_refuses_a_second_run_and_resumes_a_finished_one(runs, capsys):
    argv = _argv(runs["data"], runs["runs"], "--small-dense")
    assert R.main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert R.main([*argv, "--resume"]) == 0
    assert capsys.readouterr().out == (runs["small_dir"] / "table.md").read_text()


def test_small_dense_without_a_compressed_run_takes_the_fewest_columns_combining_reaches(
    runs, tmp_path
):
    argv = _argv(runs["data"], tmp_path, "--small-dense", "--max-paths", "4")
    assert R.main(argv) == 0
    cfg = get_preset("ptbc", "smoke")
    [d] = (tmp_path / "ptbc").iterdir()  # no dense run either: only the small one is trained
    record = _read(d / "config.json")["small_dense"]
    assert d.name == f"small-dense-smoke-s1111-c{lstm_columns(cfg, 4)}"
    assert record["columns_from"].startswith("sum of ceil(in/4)")


# (flags, the one line it must print): every refusal before anything is written
BAD = [
    (["--small-dense", "0"], "--small-dense takes a number of array columns >= 1"),
    (["--small-dense", "many"], "--small-dense takes a number of array columns >= 1"),
    (["--small-dense", "20"], "no hidden size gives 20 array columns or fewer"),
    (["--small-dense", "160"], "no fewer than the dense ptbc model's 160"),
    (["--small-dense", "--targets", "rnns"], "it takes no --targets"),
    (["--small-dense", "--model", "names"], "AWD-LSTM models (ptbc, ptbw, enwik8) only"),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_small_dense_input_is_one_line_and_exit_2(runs, tmp_path, capsys, flags, message):
    assert R.main([*_argv(runs["data"], tmp_path / "runs"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "runs").exists()


def test_default_flags_keep_todays_run_id(runs, tmp_path):
    from lstmpack.run.config import prepare

    ctx = prepare(_argv(runs["data"], tmp_path))
    assert ctx.run.small_dense == 0 and ctx.run_dir.name == SMOKE_COMPRESSED
