"""compress.run on bad input: one clear line, exit code 2, nothing in runs/ touched."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import common.datasets.verify
from lstmpack.run import cli as R
from lstmpack.run import config as C


@dataclasses.dataclass(frozen=True)
class Cfg:
    preset: str
    seed: int = 7


# The fake model has no calibration inputs: tests that get past the flag checks select plainly
# instead of the posthoc default (activation scores, re-solving).
PLAIN = ["--keep", "magnitude", "--no-reconstruct"]


class FakeSpec:
    name = "fake"
    dataset = "ptb_char"
    metric = "bpc"
    higher_is_better = False
    FEATURES = frozenset()

    def datasets_for(self, cfg):
        return (self.dataset,)

    def config(self, preset):
        return Cfg(preset)

    def finetune_epochs(self, cfg):
        return 1

    def finetune_steps(self, cfg):
        return 0

    def load_data(self, cfg, data_dir, verify=True):
        return None


@pytest.fixture
def env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "ptb_char").mkdir(parents=True)
    for f in ("train.txt", "valid.txt", "test.txt"):
        (data / "ptb_char" / f).write_text("a b c\n")
    monkeypatch.delenv("LSTMPACK_DATA", raising=False)
    # the repo's own data/ (which `make demo` fills) is the lookup's last resort: point it at an
    # empty folder, so these tests read nothing the machine happens to hold
    monkeypatch.setattr(common.datasets.verify, "REPO_ROOT", tmp_path / "repo")
    real_get_spec = C.get_spec
    monkeypatch.setattr(C, "get_spec", lambda n: FakeSpec() if n == "fake" else real_get_spec(n))
    runs = tmp_path / "runs"
    base = ["--data-dir", str(data), "--runs-root", str(runs), "--no-verify"]
    return {"data": data, "runs": runs, "base": base}


def _snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _fails(env, capsys, argv, *fragments):
    before = _snapshot(env["runs"])
    code = R.main(argv + env["base"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for f in fragments:
        assert f in err, err
    assert _snapshot(env["runs"]) == before
    return err


def test_unknown_model_lists_the_known_ones(env, capsys):
    _fails(env, capsys, ["--model", "gpt9"], "unknown model 'gpt9'", "ptbc", "ptbw")


def test_unknown_preset(env, capsys):
    _fails(env, capsys, ["--model", "fake", "--preset", "huge"], "unknown preset 'huge'", "smoke")


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--max-paths", "0"], "--max-paths (alpha) must be an integer >= 1; got 0"),
        (["--gamma", "-0.5"], "--gamma must be a finite number >= 0; got -0.5"),
        (["--sparsity", "1.0"], "--sparsity must be in [0, 1); got 1.0"),
        (["--sparsity", "-0.1"], "--sparsity must be in [0, 1); got -0.1"),
        (["--bits", "1"], "--bits must be in 2..16, or 32 for float; got 1"),
        (["--bits", "33"], "--bits must be in 2..16, or 32 for float; got 33"),
        (["--act-bits", "40"], "--act-bits must be in 2..16, or 32 for float; got 40"),
        (["--quant", "fancy"], "--quant must be one of off, ptq, qat; got 'fancy'"),
        (["--array", "128by128"], "--array must look like RxC"),
        (["--dataflow", "rs"], "--dataflow must be one of ws, os, is; got 'rs'"),
        (["--strategy", "magic"], "strategy must be one of greedy, reference; got 'magic'"),
        (["--max-paths", "three"], "invalid int value: 'three'"),
    ],
)
def test_bad_flag_values_name_the_value_and_the_allowed_range(env, capsys, flags, fragment):
    _fails(env, capsys, ["--model", "fake", *flags], fragment)


def test_missing_dataset_names_it_and_the_fetch_command(env, capsys, tmp_path):
    argv = ["--model", "fake", "--data-dir", str(tmp_path / "nowhere")]
    before = _snapshot(env["runs"])
    code = R.main(argv + ["--runs-root", str(env["runs"])])
    err = capsys.readouterr().err
    assert code == 2 and "dataset 'ptb_char' not found in --data-dir" in err
    assert f"fetch ptb_char --data-dir {tmp_path / 'nowhere'}" in err
    assert _snapshot(env["runs"]) == before


def test_resume_of_a_run_made_with_other_settings_is_refused(env, capsys):
    args = C.build_parser().parse_args(["--model", "fake", "--max-paths", "2"])
    stored = C.run_config_from_args(args, 1)
    run_dir = env["runs"] / "fake" / "mine"
    (run_dir / "train").mkdir(parents=True)  # training state: the directory is not taken over
    (run_dir / "config.json").write_text(json.dumps({"run": stored.to_dict()}))
    err = _fails(
        env,
        capsys,
        ["--model", "fake", "--max-paths", "3", "--run-dir", str(run_dir), "--resume", *PLAIN],
        "was made with different settings",
    )
    assert "combine.max_paths: 2 -> 3" in err


def test_an_existing_run_is_not_overwritten_without_resume(env, capsys):
    run_dir = env["runs"] / "fake" / "taken"
    (run_dir / "train").mkdir(parents=True)
    (run_dir / "metrics.json").write_text('{"status": "running"}')
    _fails(env, capsys, ["--model", "fake", "--run-dir", str(run_dir), *PLAIN], "pass --resume")


def test_run_ids_are_deterministic_and_distinguish_settings():
    p = C.build_parser()
    a = C.run_config_from_args(p.parse_args(["--model", "m", "--max-paths", "3"]), 2)
    b = C.run_config_from_args(p.parse_args(["--model", "m", "--max-paths", "3"]), 2)
    c = C.run_config_from_args(p.parse_args(["--model", "m", "--max-paths", "3", "--bits", "4"]), 2)
    assert a.run_id() == b.run_id() == "a3-g1.75-w8a8-ptq-ft2-balrow-act-rec-cpu-s0"
    d = C.run_config_from_args(p.parse_args(["--model", "m"]), 2, default_seed=1111)
    assert d.seed == 1111 and d.run_id().endswith("-s1111")
    assert c.run_id() != a.run_id()
    assert C.RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a
