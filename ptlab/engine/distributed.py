"""Distributed data parallel under torchrun: one process per device, rank 0 does the talking.

torchrun sets RANK, LOCAL_RANK, WORLD_SIZE (and the rendezvous) in each
process's environment; ptlab reads them, joins the process group (gloo on CPU,
nccl on CUDA) and then:

- every rank trains on its shard of each epoch (``rank``-th of every
  ``world_size`` samples of the epoch's permutation, see TensorBatches);
- gradients are averaged by DistributedDataParallel (for objectives with several
  optimizers, by :func:`average_gradients` before each optimizer steps);
  validation metrics are all-reduced, so every rank takes the same decisions
  (best, early stop);
- only rank 0 makes the run directory, logs, writes TensorBoard and checkpoints;
  the others use rank 0's run directory, whatever second they started in.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The process's place in a torchrun job (a world of one outside torchrun)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("WORLD_SIZE", 1)))


def join(world: World, device_type: str) -> None:
    """Join the process group once (gloo on CPU, nccl on CUDA).

    On CUDA each rank first selects its own GPU (``LOCAL_RANK``): NCCL and every
    object collective (a broadcast of the run directory) use the current device,
    which would otherwise be GPU 0 on every rank.
    """
    if world.distributed and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")


def leave() -> None:
    """Destroy the process group (only after the DDP model, optimizers and loaders are released)."""
    if dist.is_initialized():
        gc.collect()  # a DDP model kept alive by a reference cycle must go before its process group
        dist.barrier()
        dist.destroy_process_group()


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any, world: World) -> list[Any]:
    """Every rank's ``value``, in rank order (on every rank)."""
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (a no-op outside torchrun)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if it is true on any rank (so all ranks stop at the same step)."""
    if not dist.is_initialized():
        return flag
    box = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return bool(box.item())


def average_gradients(params: list[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over ranks, in one flat all-reduce (what DDP does per bucket).

    For objectives with several optimizers (a GAN), whose updates DDP's one-model
    wrapper cannot follow: each optimizer's gradients are averaged just before it steps.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not dist.is_initialized():
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for grad, averaged in zip(grads, flat.split([g.numel() for g in grads])):
        grad.copy_(averaged.view_as(grad))


def broadcast_state(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters and buffers (or buffers only) on every rank."""
    broadcast_tensors(list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()])


def broadcast_tensors(tensors: list[torch.Tensor]) -> None:
    """Rank 0's values of ``tensors`` on every rank (in place)."""
    if not dist.is_initialized():
        return
    for tensor in tensors:
        dist.broadcast(tensor.data, src=0)


def for_training(model: torch.nn.Module, optimizers: int, device: torch.device,
                 world: World) -> tuple[torch.nn.Module, bool]:
    """(the module to train, whether the trainer averages gradients itself) for this process.

    Under torchrun one optimizer means DDP; with several (a GAN) each optimizer's gradients are
    averaged over ranks just before it steps (:func:`average_gradients`), starting from rank 0's weights.
    """
    if not world.distributed:
        return model, False
    if optimizers > 1:
        broadcast_state(model)
        return model, True
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None), False


def rank_device(device: torch.device, world: World) -> torch.device:
    """The device this process trains on: under torchrun on CUDA, the GPU of its local rank (``cuda:LOCAL_RANK``)."""
    return torch.device("cuda", world.local_rank) if world.distributed and device.type == "cuda" else device
