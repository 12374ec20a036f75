"""Run by tests/test_distributed.py under torchrun: train, then compare every rank's weights (not a test module).

    torchrun --nproc_per_node=2 tests/ddp_probe.py task=gan trainer.max_steps=6

The weights compared include the weight average's when trainer.ema.decay is set.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

import ptlab
from ptlab.engine.distributed import join, leave, world_from_env
from ptlab.engine.trainer import Trainer


def main(overrides: list[str]) -> None:
    torch.set_num_threads(1)
    world = world_from_env()
    join(world, "cpu")
    run = ptlab.build(ptlab.compose(overrides))
    trainer = Trainer(run, [])
    metrics = trainer.fit()
    state = [*run.model.state_dict().values(), *(trainer.ema.weights.values() if trainer.ema else [])]  # EMA too
    weights = torch.cat([t.detach().float().flatten() for t in state])
    everyone = [torch.zeros_like(weights) for _ in range(world.size)]
    dist.all_gather(everyone, weights)
    if world.is_main:
        same = all(torch.equal(everyone[0], other) for other in everyone[1:])
        print(f"identical on all ranks: {same}; step {metrics['step']}")
    del run
    leave()


if __name__ == "__main__":
    main(sys.argv[1:])
