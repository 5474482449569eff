"""Where a trainer computes and in what precision: the `--device` and `--precision` flags.

- `resolve_device("auto" | "cpu" | "cuda" | "cuda:N")` -> "cpu" or "cuda:N", or a one-line
  ValueError naming the flag (CUDA missing, an index past the devices there). `auto` takes CUDA
  where torch sees it; under torchrun (`local_rank` given) "cuda" and "auto" mean this process's
  own GPU, cuda:LOCAL_RANK.
- `check_precision("fp32" | "bf16" | "fp16", device)`: fp16 needs a GPU (the CPU's fused LSTM
  kernel has no float16 form) and bf16 a device that computes it.
- `Runtime(device, precision)`: the two, resolved, as the trainers and the ModelSpec take them.
- `Amp`: one trainer's autocast and, for fp16, its GradScaler (loss scaling), with the scaler's
  state for checkpoints.
- `rng_state` / `restore_rng`: torch's RNG for checkpoints, the CPU's and (on a GPU) the CUDA
  generator of the run's device, so that a resumed run draws what the interrupted one would have;
  a checkpoint resumed on another device restores what that device can use.

Library code takes a device; it never picks one (no `.cuda()`): these helpers are called by the
CLIs and the run layer, which pass the result down.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

DEVICES_HELP = "auto | cpu | cuda | cuda:N (auto: CUDA when present)"
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_HELP = (
    "fp32 | bf16 | fp16: the forward passes under autocast in that type (fp16 with loss "
    "scaling; GPU only); evaluation stays fp32 (default fp32)"
)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CUDA = re.compile(r"cuda(?::(\d+))?")


def _no_cuda_reason() -> str:
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    return "torch finds no CUDA device"


def resolve_device(text: str, *, flag: str = "--device", local_rank: int | None = None) -> str:
    """ "cpu" or "cuda:N" for a `--device` value; ValueError naming `flag` otherwise.

    `local_rank` (set under torchrun): "cuda" and "auto" give this process's own GPU, and an
    explicit cuda:N is refused, since every process would then share one GPU."""
    value = str(text).strip().lower()
    if value == "cpu":
        return "cpu"
    if value == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        value = "cuda"
    m = _CUDA.fullmatch(value)
    if m is None:
        raise ValueError(f"{flag} must be one of {DEVICES_HELP.split(' (')[0]}; got {text!r}")
    if not torch.cuda.is_available():
        raise ValueError(
            f"{flag} {text}: CUDA is not available here ({_no_cuda_reason()}); use {flag} cpu, "
            f"or {flag} auto to take a GPU only where there is one"
        )
    count = torch.cuda.device_count()
    if m.group(1) is not None:
        if local_rank is not None:
            raise ValueError(
                f"{flag} {text}: under torchrun every process takes its own GPU "
                f"(cuda:LOCAL_RANK); pass {flag} cuda"
            )
        index = int(m.group(1))
    else:
        index = local_rank or 0
    if index >= count:
        raise ValueError(
            f"{flag} {text}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
            + (
                " (one per torchrun process: start no more processes than GPUs)"
                if local_rank
                else ""
            )
        )
    return f"cuda:{index}"


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def check_precision(precision: str, device: str, *, flag: str = "--precision") -> str:
    """`precision` when `device` computes it; ValueError naming `flag` otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"{flag} must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp16" and not is_cuda(device):
        raise ValueError(
            f"{flag} fp16 needs a CUDA device (the CPU's fused LSTM kernel has no float16 "
            f"form); on the CPU use {flag} bf16 or fp32"
        )
    if precision == "bf16" and is_cuda(device) and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{flag} bf16: {device} does not compute bfloat16; use fp16 or fp32")
    return precision


@dataclass(frozen=True)
class Runtime:
    """Where a trainer computes (a resolved device: "cpu" or "cuda:N") and the precision of its
    training forward passes. Data parallelism is not here: it is the process group torchrun
    starts (common.distributed), which the trainers find for themselves."""

    device: str = "cpu"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {self.precision!r}")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


CPU = Runtime()  # the default: the CPU, fp32


class Amp:
    """Mixed precision for one training loop: `with amp.autocast(): loss = ...`, then
    `amp.backward(loss)`, `amp.unscale(opt)` (before clipping), `amp.step(opt)`.

    fp32 changes nothing; bf16 autocasts (its range is fp32's: no loss scaling); fp16 autocasts
    and scales the loss with a GradScaler, which skips a step whose gradients overflowed."""

    def __init__(self, precision: str = "fp32", device: str | torch.device = "cpu") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
        self.precision = precision
        self.device_type = torch.device(device).type
        self.dtype = _DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(self.device_type) if precision == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """The true gradients in place (clipping needs them); a no-op without loss scaling."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scaler is None else {"grad_scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])


def check_resumed_precision(stored: str | None, precision: str, where: str) -> None:
    """ValueError when a checkpoint trained in another precision than this run asks for: the
    numbers of a run are those of one precision. A checkpoint with none recorded is fp32."""
    stored = stored or "fp32"
    if stored != precision:
        raise ValueError(
            f"--resume: {where} trained in {stored}; resume it with --precision {stored} (or "
            "start another run)"
        )


def rng_state(device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """torch's CPU generator and, on a GPU, the CUDA generator of `device` (only that one:
    under torchrun each process keeps its own GPU's)."""
    state = {"torch_rng": torch.get_rng_state()}
    if is_cuda(device):
        state["cuda_rng"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def restore_rng(state: dict[str, Any], device: str | torch.device = "cpu", seed: int = 0) -> None:
    """Set the generators `rng_state` saved. On a GPU, a checkpoint made on the CPU has no CUDA
    state: the CUDA generator is then seeded with `seed`, so the resumed run still draws the same
    numbers every time it is resumed so. A CUDA state is ignored on the CPU."""
    torch.set_rng_state(state["torch_rng"].cpu())
    if is_cuda(device):
        cuda = state.get("cuda_rng")
        dev = torch.device(device)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda.cpu(), dev)
        else:
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(seed)


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (or buffer); the CPU for one with neither."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")
