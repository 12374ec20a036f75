"""Optimizers and learning-rate schedules.

Optimizers use the fused kernels on CUDA (one launch for all parameters) and
the per-tensor loop on the CPU, where the multi-tensor (``foreach``) kernels buy
nothing: on every task's model (1 thread) they were 0–20 % slower per step,
AdamW on 64 tensors of 100k numbers 2×, and on logreg's two tensors they add
~20 µs to a ~240 µs step (scripts/bench_trainer.py). Schedules are stepped once
per optimizer step and written as the multiplier of the base learning rate, so
each reads as its formula.

Weight decay shrinks weights towards zero: SGD and Adam add λ·w to the
gradient (an L2 penalty ½λ‖w‖²), AdamW subtracts lr·λ·w from the weights
directly. By default it applies only to weights of two or more dimensions —
the kernels of linear and convolution layers and embeddings — and not to
biases or the scales and shifts of normalization layers (all 1-D): those do not
make a model more flexible, and shrinking a norm layer's scale only changes
the size of the activations the next layer sees. ``decay_norm_and_bias=true``
decays every parameter.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from ptlab.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability

log = logging.getLogger("ptlab")
_CPU = torch.device("cpu")


def _fast_kernels(params: list) -> dict:
    """The kernel flags for ``params``: fused on CUDA, the per-tensor loop on the CPU, torch's choice otherwise.

    ``foreach=False`` is passed rather than left to torch (whose CPU default is
    the same) so that no step spends time choosing.
    """
    tensors = [p for group in params for p in _tensors(group)]
    if tensors and all(p.is_cuda for p in tensors):
        return {"fused": True}
    if tensors and all(getattr(p, "device", None) == _CPU for p in tensors):
        return {"foreach": False}
    return {}


def _tensors(group):
    return group["params"] if isinstance(group, dict) else [group]


def weight_decay_groups(params: Iterable, weight_decay: float, decay_norm_and_bias: bool) -> list:
    """``params`` (tensors, or param-group dicts such as fine-tuning's lr groups) with 1-D tensors exempt from decay.

    Each group is split in two: tensors of ≥ 2 dimensions keep the group's
    settings, the others get ``weight_decay=0``. Other keys (``lr``) are kept;
    empty groups are dropped. Without decay, or with ``decay_norm_and_bias``,
    ``params`` is returned as it came.
    """
    params = list(params)
    if not weight_decay or decay_norm_and_bias or not params:
        return params
    groups = params if isinstance(params[0], dict) else [{"params": params}]
    out = []
    for group in groups:
        tensors = list(group["params"])
        decay = {**group, "params": [p for p in tensors if p.ndim >= 2]}
        exempt = {**group, "params": [p for p in tensors if p.ndim < 2], "weight_decay": 0.0}
        out += [g for g in (decay, exempt) if g["params"]]
    return out


def sgd(params: Iterable, lr: PositiveFloat = 0.1, momentum: Probability = 0.0,
        weight_decay: NonNegativeFloat = 0.0, nesterov: bool = False,
        decay_norm_and_bias: bool = False) -> torch.optim.SGD:
    """Stochastic gradient descent: w ← w − lr·∇L (with optional momentum)."""
    params = weight_decay_groups(params, weight_decay, decay_norm_and_bias)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           **_fast_kernels(params))


def adam(params: Iterable, lr: PositiveFloat = 1e-3, beta1: Probability = 0.9, beta2: Probability = 0.999,
         eps: PositiveFloat = 1e-8, weight_decay: NonNegativeFloat = 0.0,
         decay_norm_and_bias: bool = False) -> torch.optim.Adam:
    """Adam: steps scaled by running estimates of the gradient's first and second moments."""
    params = weight_decay_groups(params, weight_decay, decay_norm_and_bias)
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                            **_fast_kernels(params))


def adamw(params: Iterable, lr: PositiveFloat = 1e-3, beta1: Probability = 0.9, beta2: Probability = 0.999,
          eps: PositiveFloat = 1e-8, weight_decay: NonNegativeFloat = 0.01,
          decay_norm_and_bias: bool = False) -> torch.optim.AdamW:
    """AdamW: Adam with weight decay applied to the weights directly (decoupled)."""
    params = weight_decay_groups(params, weight_decay, decay_norm_and_bias)
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                             **_fast_kernels(params))


class Schedule(LambdaLR):
    """lr = base_lr · factor(step), with ``step`` counting trainer steps.

    ``total_steps`` is the horizon a schedule such as cosine is drawn over; None
    for schedules that do not depend on the length of the run (constant, step).

    Raising ``trainer.max_epochs``/``max_steps`` on resume changes the horizon. The
    part of the schedule still ahead is then stretched over the new remaining
    steps: from the resumed step s₀ on, schedule step = s₀ + (s − s₀)·(T_old − s₀)/(T_new − s₀).
    The rate goes on from where it was, without a jump, and reaches the schedule's
    end on the new last step. A schedule that had already ended stays at its
    final rate (to train with a new schedule, fine-tune from the checkpoint).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: Callable[[float, int | None], float],
                 total_steps: int | None = None) -> None:
        """``factor(schedule step, horizon)``: the multiplier of the base rate."""
        self.total_steps = total_steps  # the step the run ends on now
        self.horizon = total_steps  # the length of the schedule's own axis: the run's first total
        self.stretches: list[tuple[int, int, int]] = []  # (s₀, old total, new total), oldest first
        super().__init__(optimizer, lambda s: factor(self.schedule_step(s), self.horizon))

    def schedule_step(self, step: int) -> float:
        """Where on the schedule's own axis trainer step ``step`` falls (the identity unless stretched)."""
        position = float(step)
        for start, old, new in reversed(self.stretches):
            if position > start:
                position = start + (position - start) * (old - start) / (new - start)
        return position

    def load_state_dict(self, state_dict: dict) -> None:
        planned = self.total_steps
        super().load_state_dict(state_dict)
        saved, start = self.total_steps, self.last_epoch
        self.total_steps = planned
        if planned is None or saved is None or saved == planned or planned <= start:
            return
        if start >= saved:
            log.warning("resume: the learning-rate schedule ended at step %d; the steps added up to %d keep its "
                        "final rate (fine-tune with finetune.from=... for a new schedule)", saved, planned)
            self.stretches.append((start, start, planned))  # every added step sits at the schedule's end
        else:
            log.info("resume: the rest of the learning-rate schedule (steps %d→%d) is stretched over steps %d→%d",
                     start, saved, start, planned)
            self.stretches.append((start, saved, planned))


def constant(optimizer: torch.optim.Optimizer, warmup_steps: NonNegativeInt = 0) -> Schedule:
    """The base learning rate throughout (after an optional linear warm-up)."""
    return Schedule(optimizer, lambda step, _: _warmup(step, warmup_steps))


def cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: NonNegativeInt = 0,
           min_lr_ratio: Probability = 0.0) -> Schedule:
    """Linear warm-up, then lr·[r + (1 − r)·½(1 + cos(π·t))] with t going 0 → 1 over the run."""

    def factor(step: float, horizon: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        t = min(1.0, (step - warmup_steps) / max(1, horizon - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return Schedule(optimizer, factor, total_steps)


def step(optimizer: torch.optim.Optimizer, steps_per_epoch: int, every_n_epochs: PositiveInt = 10,
         gamma: PositiveFloat = 0.1, warmup_steps: NonNegativeInt = 0) -> Schedule:
    """Multiply the learning rate by ``gamma`` every ``every_n_epochs`` epochs."""
    period = every_n_epochs * steps_per_epoch
    return Schedule(optimizer, lambda s, _: _warmup(s, warmup_steps) * gamma ** (s // period))


def _warmup(step: float, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
