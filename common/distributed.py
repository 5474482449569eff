"""Data-parallel training under torchrun: who this process is, its process group, and the few
collectives the trainers need.

`torchrun --nproc_per_node N -m lm.train ...` starts N copies of a CLI with RANK, WORLD_SIZE,
LOCAL_RANK (and the rendezvous address) in their environment. The CLI reads them (`launched`),
checks its flags exactly as one process would (every rank sees the same input, so every rank
refuses the same bad flag), then `start`s the process group: NCCL on GPUs, gloo on the CPU.
Library code asks `current()`: the World of the started group, or one process (rank 0 of 1)
when there is none, so a trainer called without torchrun is the trainer it always was.

What the trainers do with it (lm.trainer, nmt.training):

- every rank holds the whole model and the whole data, and takes its share of each global batch
  (`share`, `split`): the preset's batch is the global batch, whatever the number of ranks;
- each rank scales its loss so that DistributedDataParallel's mean over ranks is the gradient of
  the global batch's mean loss (the same update as one process with the same batch);
- the model is wrapped for training only (`wrap`): DDP all-reduces gradients and does not send
  buffers at every step (masks are large and change only at compression events);
- anything that changes the model outside the optimizer (a compression event: masks, groups,
  re-solved weights) is followed by `broadcast_module` from rank 0, so the masks and groups are
  decided once, on rank 0, and are identical on every rank;
- only rank 0 writes files (`is_main`); `barrier` orders a read of a file after rank 0 wrote it.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from common.device import is_cuda

# A collective waits this long for the other ranks. NCCL's default (10 minutes) is shorter than
# rank 0 may spend writing a paper-size checkpoint to a slow shared file system, or than a rank
# may spend on an evaluation the others finished first.
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    """This process among the ranks of a data-parallel run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """The rank that writes files and logs."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def launched(environ: Mapping[str, str] | None = None) -> World:
    """The World torchrun describes in the environment; one process when it describes none.
    ValueError when its variables are not numbers (a hand-made environment)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return World()
    try:
        size = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", "0"))
        local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)))
    except ValueError:
        raise ValueError(
            "RANK, WORLD_SIZE, LOCAL_RANK must be integers (torchrun sets them); got "
            + ", ".join(f"{k}={env.get(k)!r}" for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        ) from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK {rank} is not one of WORLD_SIZE {size} ranks")
    return World(rank, size, local, local_size)


def start(world: World, device: str) -> bool:
    """Start the default process group for `world` on `device` (NCCL for a GPU, gloo for the
    CPU); nothing for one process or a group already started. Returns whether it started one."""
    if not world.parallel or (dist.is_available() and dist.is_initialized()):
        return False
    if is_cuda(device):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("nccl" if is_cuda(device) else "gloo", timeout=TIMEOUT)
    return True


def stop() -> None:
    """Destroy the default process group, if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> World:
    """The World of the started process group; one process when none is started."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    size = dist.get_world_size()
    return World(
        dist.get_rank(),
        size,
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", str(size))),
    )


def is_main() -> bool:
    """Whether this process writes files: rank 0, or the only process."""
    return current().main


def barrier() -> None:
    """Wait for every rank (nothing for one process)."""
    if current().parallel:
        dist.barrier()


def quiet_unless_main(world: World) -> None:
    """Ranks other than 0 log warnings and errors only: N copies of every line say nothing more."""
    if not world.main:
        logging.getLogger().setLevel(logging.WARNING)


def share(n: int, world: World, *, what: str = "batch_size") -> slice:
    """This rank's contiguous share of `n` items when every rank takes as many; ValueError
    naming `what` when `n` does not split evenly (the gradient mean over ranks is then the mean
    over the global batch only with equal shares)."""
    if n % world.size:
        raise ValueError(
            f"{what} {n} does not split evenly over {world.size} processes; start a number of "
            f"processes that divides {n}"
        )
    per = n // world.size
    return slice(world.rank * per, (world.rank + 1) * per)


def split(items: np.ndarray, world: World) -> np.ndarray:
    """This rank's contiguous part of `items`, the parts as even as they can be (a part may be
    empty when there are fewer items than ranks)."""
    return np.array_split(np.asarray(items), world.size)[world.rank]


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of a (detached) tensor; the tensor itself for one process."""
    out = value.detach().clone()
    if current().parallel:
        dist.all_reduce(out)  # SUM: gloo has no AVG
    return out


def all_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a (detached) tensor."""
    return all_sum(value) / current().size


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Every parameter and buffer of `module` (a compression pass's masks, groups and ranges
    included: they are buffers) set to rank `src`'s values; nothing for one process."""
    if not current().parallel:
        return
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.dtype == torch.bool:  # gloo sends no bool tensors
            tmp = t.to(torch.uint8)
            dist.broadcast(tmp, src)
            t.copy_(tmp.bool())
        else:
            dist.broadcast(t.data, src)


def wrap(model: nn.Module, device: str | torch.device, *, unused: bool = False) -> nn.Module:
    """`model` wrapped in DistributedDataParallel for training (rank 0's weights and buffers
    broadcast first, so every rank starts from the same model), or `model` itself for one
    process. Buffers are not re-sent at every step: they change only where the caller broadcasts
    them (`broadcast_module` after a compression event). `unused`: some parameters take no part
    in a step's loss (DDP then looks for them in every step's graph, at some cost)."""
    if not current().parallel:
        return model
    from torch.nn.parallel import DistributedDataParallel

    broadcast_module(model)  # bool buffers too, which DDP's own first sync may not send on gloo
    ids = [torch.device(device).index] if is_cuda(device) else None
    return DistributedDataParallel(
        model, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=unused
    )
