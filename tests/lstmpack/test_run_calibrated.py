"""compress.run's --balance, --keep and --reconstruct: bad values and targets with no calibration
inputs fail as one line, exit 2, before anything is written; the run id and config.json change
only when a flag leaves its default."""

from __future__ import annotations

import pytest
from torch import nn

from lm.lstm import MaskableLSTM
from lstmpack.run import config as C
from tests.lstmpack.test_run_errors import FakeSpec, _fails, env  # noqa: F401  (env: a fixture)


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (
            ["--keep", "random"],
            "--keep must be one of magnitude, saliency, activation; got 'random'",
        ),
        (["--balance", "col"], "--balance must be one of none, gate, row; got 'col'"),
    ],
)
def test_bad_keep_and_balance_values_name_the_flag_and_its_values(env, capsys, flags, fragment):  # noqa: F811
    _fails(env, capsys, ["--model", "fake", *flags], fragment)


class WithEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.rnn = MaskableLSTM(3, 4)


class BuildingSpec(FakeSpec):
    default_targets = None

    def load_data(self, cfg, data_dir, verify=True):
        return None

    def build(self, cfg, data):
        return WithEmbedding()


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ([], "--reconstruct"),  # the posthoc default re-solves, so it needs the inputs too
        (["--reconstruct", "--keep", "magnitude"], "--reconstruct"),
        (["--keep", "saliency", "--no-reconstruct"], "--keep saliency"),
        (["--keep", "activation", "--no-reconstruct"], "--keep activation"),
    ],
)
def test_calibrated_flags_refuse_a_target_without_calibration_inputs_before_training(
    env,  # noqa: F811
    capsys,
    monkeypatch,
    flag,
    named,
):
    monkeypatch.setattr(C, "get_spec", lambda n: BuildingSpec())
    argv = ["--model", "fake", "--targets", "^(emb|rnn)$", *flag]
    _fails(env, capsys, argv, named, "target 'emb' is an embedding")
    # the LSTM alone has its inputs: the checks pass (nothing is written by prepare)
    C.prepare(["--model", "fake", "--targets", "^rnn$", *flag, *env["base"]])


def _run(flags: list[str]) -> C.RunConfig:
    return C.run_config_from_args(C.build_parser().parse_args(["--model", "fake", *flags]), 1)


def test_run_id_and_config_change_only_when_a_flag_leaves_its_default():
    assert _run([]).run_id().endswith("-balrow-act-rec-cpu-s0")  # the posthoc defaults
    plain = _run(["--balance", "none", "--keep", "magnitude", "--no-reconstruct"])
    assert "bal" not in plain.run_id() and "-sal" not in plain.run_id()
    d = plain.to_dict()
    assert "reconstruct" not in d and "keep" not in d["prune"] and "balance" not in d["combine"]
    made = _run(["--balance", "row", "--keep", "saliency", "--reconstruct"])
    assert made.run_id().endswith("-balrow-sal-rec-cpu-s0")
    assert (made.prune.balance, made.combine.balance) == ("row", "row")
    assert (made.prune.keep, made.combine.keep, made.reconstruct) == ("saliency",) * 2 + (True,)
    assert C.RunConfig.from_dict(made.to_dict()) == made
    assert C.RunConfig.from_dict(plain.to_dict()) == plain
    act = _run(["--keep", "activation", "--balance", "none", "--no-reconstruct"])
    assert act.run_id().endswith("-act-cpu-s0")


def test_plain_settings_record_only_the_keys_runs_had_before_these_flags():
    """A run made before --small-dense, --reconstruct and the recipe flags stored none of them:
    the same settings must record the same keys, or --resume would refuse it."""
    plain = _run(["--balance", "none", "--keep", "magnitude", "--no-reconstruct"]).to_dict()
    assert not {"small_dense", "reconstruct", "recipe", "l1", "distill", "lr_rewind"} & set(plain)
    assert "keep" not in plain["prune"] and "balance" not in plain["combine"]
