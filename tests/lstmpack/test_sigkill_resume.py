"""A compress.run killed with SIGKILL at five random points, resumed with --resume after each,
ends with exactly the numbers of an uninterrupted run.

The kills come from inside the child (a bootstrap that wraps the run before starting it), so a
point is an exact place in the work rather than a moment on a loaded machine's clock: the n-th
tick of a phase, where a tick is an optimizer step, the start of an evaluation, or the rename
that puts an atomically written file of the run in place (the kill lands before the rename,
leaving the temporary file behind). The phases are the dense stage, the fine-tune, the rest of
the compressed stage (calibration, evaluation, packing, the packed proof, hwsim) and the final
records. An uninterrupted run of the same bootstrap counts each phase's ticks; the test draws a
tick with a fixed seed in each of: the first half of the dense stage, its second half, the
fine-tune, the compressed stage's evaluation and packing, the records. A resumed process repeats
less work than the first one did, so when its phase ends before the drawn tick, it is killed at
the phase's end instead: every kill lands, in its phase.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.lstmpack.test_run_e2e import REPO, _argv, make_ptb_char

PHASES = ("dense", "fine-tune", "compress", "records")
SEED = 20260117

# The child: wraps the stages to know its phase, counts ticks per phase, and SIGKILLs itself at
# the tick LSTMPACK_TEST_KILL names ({"phase": ..., "tick": n}); with LSTMPACK_TEST_COUNT it
# writes the per-phase counts there when the run ends. Then it runs `python -m compress.run`.
CHILD = r"""
import atexit, json, os, runpy, signal, sys

from torch.optim.optimizer import register_optimizer_step_post_hook
import lm.rundir, lm.spec, lm.trainer
import lstmpack.run.cli as cli
import lstmpack.run.compressed as compressed

kill = json.loads(os.environ.get("LSTMPACK_TEST_KILL") or "null")
# the run's own files only: numba, for one, renames its cache files into place on a first run
root = os.environ["LSTMPACK_TEST_ROOT"]
count_to = os.environ.get("LSTMPACK_TEST_COUNT")
landed_to = os.environ["LSTMPACK_TEST_LANDED"]
phase = ["start"]
counts = {}


def die(where):
    with open(landed_to, "w") as f:
        json.dump({"phase": phase[0], "tick": counts.get(phase[0], 0), "where": where}, f)
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def tick(what):
    counts[phase[0]] = counts.get(phase[0], 0) + 1
    if kill and kill["phase"] == phase[0] and counts[phase[0]] >= kill["tick"]:
        die(what)


def in_phase(name, fn, after):
    def wrapped(*args, **kwargs):
        phase[0] = name
        out = fn(*args, **kwargs)
        if kill and kill["phase"] == name:  # the phase ended before the drawn tick
            die("end of " + name)
        phase[0] = after
        return out
    return wrapped


register_optimizer_step_post_hook(lambda *a: tick("optimizer step"))
_replace = os.replace
def replace(src, dst, *a, **k):
    if os.path.abspath(dst).startswith(root + os.sep):
        tick("rename onto " + os.path.basename(str(dst)))
    return _replace(src, dst, *a, **k)
os.replace = replace
_evaluate = lm.trainer.evaluate
def evaluate(*a, **k):
    tick("evaluation")
    return _evaluate(*a, **k)
for module in (lm.trainer, lm.rundir, lm.spec):
    module.evaluate = evaluate
cli.dense_stage = in_phase("dense", cli.dense_stage, "between")
compressed.train_under_pipeline = in_phase(
    "fine-tune", compressed.train_under_pipeline, "compress"
)
cli.compressed_stage = in_phase("compress", cli.compressed_stage, "records")
if count_to:
    atexit.register(lambda: open(count_to, "w").write(json.dumps(counts)))
sys.argv = ["compress.run", *sys.argv[1:]]
runpy.run_module("compress.run", run_name="__main__")
"""


def _child(argv: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONHASHSEED": "0", "LSTMPACK_TEST_LANDED": str(tmp / "landed"),
                "LSTMPACK_TEST_ROOT": str(tmp.resolve())}  # fmt: skip
    return subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=REPO,
                          env={**full_env, **env}, capture_output=True, text=True, timeout=300)  # fmt: skip


def _draw(counts: dict[str, int], rng: random.Random) -> list[dict]:
    """Five (phase, tick) points in run order: the dense stage's first half and second half (its
    first checkpoint sits near the middle), then one in each later phase."""
    half = counts["dense"] // 2
    return [
        {"phase": "dense", "tick": rng.randint(1, half)},
        {"phase": "dense", "tick": rng.randint(half + 1, counts["dense"])},
        *({"phase": p, "tick": rng.randint(1, counts[p])} for p in PHASES[1:]),
    ]


def _results(run_dir: Path) -> dict:
    """Every number the run reports, and the packed arrays."""
    m = json.loads((run_dir / "metrics.json").read_text())
    hw = json.loads((run_dir / "hwsim.json").read_text())
    with np.load(run_dir / "packed.npz") as z:
        arrays = {k: z[k].tolist() for k in sorted(z.files)}
    keep = ("status", "quality", "packed_quality", "packed_gap", "nonzero_weights",
            "array_columns", "packing_efficiency", "layers", "events_done", "act_ranges", "dense")  # fmt: skip
    return {"metrics": {k: m.get(k) for k in keep}, "valid": m["train"]["valid"],
            "events": m["train"]["events"], "hwsim": hw["total"], "arrays": arrays}  # fmt: skip


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The TensorBoard scalars of a folder as TensorBoard shows them (a resumed process's purge
    hides what the killed one logged after its checkpoint)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_five_sigkills_at_random_points_resume_to_the_uninterrupted_numbers(tmp_path):
    data = make_ptb_char(tmp_path / "data")
    t0 = time.time()
    # the reference run, which also counts each phase's ticks
    ref_runs = tmp_path / "ref"
    ref = _child(_argv(data, ref_runs, "--max-paths", "3"), tmp_path,
                 LSTMPACK_TEST_COUNT=str(tmp_path / "counts.json"))  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-3000:]
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert all(counts.get(p, 0) > 0 for p in PHASES), counts
    points = _draw(counts, random.Random(SEED))

    runs = tmp_path / "runs"
    argv = _argv(data, runs, "--max-paths", "3")
    landed = []
    for i, point in enumerate(points):
        extra = ["--resume"] if i else []
        proc = _child([*argv, *extra], tmp_path, LSTMPACK_TEST_KILL=json.dumps(point))
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-3000:])
        landed.append(json.loads((tmp_path / "landed").read_text()))
        (tmp_path / "landed").unlink()
    done = _child([*argv, "--resume"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\ncounts {counts}\npoints {points}\nlanded {landed}\n{time.time() - t0:.0f} s")

    # every kill landed in the phase drawn for it
    assert [p["phase"] for p in landed] == [p["phase"] for p in points]
    name = next(p.name for p in (ref_runs / "ptbc").iterdir() if not p.name.startswith("dense"))
    assert _results(runs / "ptbc" / name) == _results(ref_runs / "ptbc" / name)
    # and TensorBoard shows each step once, with the uninterrupted run's values
    for folder in (f"{name}/train", "dense-smoke-s1111/train"):
        ours, theirs = _scalars(runs / "ptbc" / folder), _scalars(ref_runs / "ptbc" / folder)
        assert ours == theirs and "train/loss" in ours, folder
