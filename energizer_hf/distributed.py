"""Ranks, world size, broadcast and barrier: the one module that talks to ``torch.distributed``.

Every helper works on a single process too (rank 0 of a world of 1), so callers never
branch on whether a process group exists.

>>> env_rank() if "RANK" not in os.environ and "LOCAL_RANK" not in os.environ else 0
0
>>> broadcast_from_rank0({"ids": [1, 2]})  # no process group: the object itself
{'ids': [1, 2]}
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["barrier", "broadcast_from_rank0", "distributed_rank_world", "env_rank", "rank"]


def _group_up() -> bool:
    return dist.is_available() and dist.is_initialized()


def env_rank() -> int:
    """This process's global rank from the launcher's environment, without initialising
    anything (``RANK`` from torchrun/accelerate, ``LOCAL_RANK`` from Lightning's launcher)."""
    for key in ("RANK", "LOCAL_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def distributed_rank_world() -> tuple[int, int]:
    """``(rank, world_size)``: from ``torch.distributed`` when initialised, else from the
    launcher's environment (``torchrun``/``accelerate launch`` set ``RANK``/``WORLD_SIZE``),
    initialising the process group through accelerate; ``(0, 1)`` for a single process."""
    if _group_up():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ and "RANK" in os.environ:
        # launched by torchrun / accelerate launch, no process group yet: start one the
        # way accelerate does for its multi-CPU/GPU modes (env:// rendezvous)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank() -> int:
    """This process's rank (``0`` on a single process)."""
    return distributed_rank_world()[0]


def broadcast_from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank, when a process group is up (started here from the
    launcher's environment under torchrun / accelerate launch); ``obj`` otherwise."""
    if not _group_up():
        distributed_rank_world()  # a torchrun job whose first collective call is this one
    if not _group_up() or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank, when a process group of several ranks is up (started here from
    the launcher's environment, as in :func:`broadcast_from_rank0`)."""
    if not _group_up():
        distributed_rank_world()
    if _group_up() and dist.get_world_size() > 1:
        dist.barrier()
