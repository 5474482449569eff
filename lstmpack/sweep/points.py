"""The points of a sweep: (model, preset, seed, alpha, gamma, bits), their run-ids and the
compress.run flags each one runs with.

The arguments after `--` go to every point's compress.run and may change its numbers (another
array, other targets, ...): they are part of the run-id as `-x<hash>` of those that do, so a
sweep with other extra arguments never takes a point of another for finished."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.configs import check_max_paths
from lstmpack.registry import model_folder

WEIGHT_BITS = (*range(2, 17), 32)


@dataclass(frozen=True)
class SweepPoint:
    """One compressed run of the grid."""

    model: str
    preset: str
    seed: int
    alpha: int
    gamma: float
    bits: int
    tag: str = ""  # extra_tag of the arguments after `--`; "" without any that change numbers

    @property
    def run_id(self) -> str:
        tag = f"-{self.tag}" if self.tag else ""
        return f"a{self.alpha}-g{self.gamma:g}-b{self.bits}-{self.preset}-s{self.seed}{tag}"

    def run_dir(self, runs_dir: str | os.PathLike) -> Path:
        return Path(runs_dir) / model_folder(self.model) / self.run_id

    def dense_dir(self, runs_dir: str | os.PathLike) -> Path:
        return Path(runs_dir) / model_folder(self.model) / f"dense-{self.preset}-s{self.seed}"

    def args(self) -> list[str]:
        """The runner's flags for this point (without the run dir and --resume).

        One number per point stands for the whole quantization recipe, each width getting the
        cheapest one that keeps its accuracy: 32 is the float model (weights and activations);
        8 (and more) is post-training quantization of weights and activations, since rounding
        to 256 levels costs little and needs no retraining; fewer bits are quantization-aware
        fine-tuning of the weights, which recovers what rounding to so few levels loses, with
        8-bit activations.
        """
        if self.bits >= 32:
            quant = ["--bits", "32", "--act-bits", "32", "--quant", "off"]
        elif self.bits >= 8:
            quant = ["--bits", str(self.bits), "--act-bits", "8", "--quant", "ptq"]
        else:
            quant = ["--bits", str(self.bits), "--act-bits", "8", "--quant", "qat"]
        return [
            "--model", self.model, "--preset", self.preset, "--seed", str(self.seed),
            "--max-paths", str(self.alpha), "--gamma", f"{self.gamma:g}", *quant,
        ]  # fmt: skip


# compress.run flags that change no number of a run (where the data is read from, how many
# threads run it), with how many values each takes: left out of the run-id's hash.
NEUTRAL_FLAGS = {"--threads": 1, "--data-dir": 1, "--no-verify": 0, "--device": 1}


def extra_tag(extra: Sequence[str]) -> str:
    """x<8 hex digits> of the extra compress.run arguments that can change a run's numbers, in
    their order; "" when there are none."""
    kept, i = [], 0
    while i < len(extra):
        name, eq, _ = extra[i].partition("=")
        if name in NEUTRAL_FLAGS:
            i += 1 + (0 if eq else NEUTRAL_FLAGS[name])
            continue
        kept.append(extra[i])
        i += 1
    if not kept:
        return ""
    return "x" + hashlib.sha256("\0".join(kept).encode("utf-8")).hexdigest()[:8]


def check_setting(alpha: int, gamma: float, bits: int) -> None:
    """ValueError naming the flag when (alpha, gamma, bits) is not a point compress.run can run."""
    check_max_paths(alpha, "--max-paths")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"--gamma must be finite numbers >= 0, got {gamma!r}")
    if bits not in WEIGHT_BITS:
        raise ValueError(f"--bits must be 32 (float) or an integer width 2..16, got {bits!r}")


def grid(
    model: str,
    preset: str,
    alphas: Sequence[int],
    gammas: Sequence[float],
    bits: Sequence[int],
    seeds: Sequence[int] = (0,),
    points: Sequence[tuple[int, float, int]] = (),
    extra: Sequence[str] = (),
) -> list[SweepPoint]:
    """Every (seed, alpha, gamma, bits) in that nesting order, then the extra (alpha, gamma,
    bits) `points` of each seed; duplicates dropped. Empty alphas/gammas/bits with `points`
    gives just those points. `extra`: the compress.run arguments after `--` (in the run-ids)."""
    settings = [(a, g, b) for a in alphas for g in gammas for b in bits] + list(points)
    if not settings or not seeds:
        raise ValueError("the grid is empty: give --max-paths, --gamma and --bits, or --point")
    for a, g, b in settings:
        check_setting(a, g, b)
    out: list[SweepPoint] = []
    for s in seeds:
        for a, g, b in settings:
            p = SweepPoint(model, preset, int(s), int(a), float(g), int(b), extra_tag(extra))
            if p not in out:
                out.append(p)
    return out


def parse_point(text: str) -> tuple[int, float, int]:
    """ALPHA,GAMMA,BITS, e.g. 3,1.75,8."""
    parts = text.split(",")
    try:
        alpha, gamma, bits = int(parts[0]), float(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        raise ValueError(
            f"--point must be ALPHA,GAMMA,BITS such as 3,1.75,8; got {text!r}"
        ) from None
    if len(parts) != 3:
        raise ValueError(f"--point must be ALPHA,GAMMA,BITS such as 3,1.75,8; got {text!r}")
    return alpha, gamma, bits


def preset_seed(model: str, preset: str) -> int:
    """compress.run's default seed: the model preset's own, so the sweep reuses the dense model
    a plain `compress.run` trains or finds."""
    from lstmpack.registry import get_spec

    return int(get_spec(model).config(preset).seed)
