"""An exponential moving average of a model's weights (``trainer.ema.decay``), as timm's ModelEmaV3 keeps it.

After every optimizer step t (counted from 0) the average moves towards the weights w:

    w̄ ← d·w̄ + (1 − d)·w,    d = min(decay, (1 + t) / (10 + t))

The warm-up factor (1 + t)/(10 + t) keeps the first averages close to the weights
(d = 0.1 at the first step) instead of to the random initialisation; later d = decay,
and w̄ averages roughly the last 1/(1 − decay) steps. Buffers are averaged too
(BatchNorm's running statistics), except integer ones (``num_batches_tracked``), which
are copied. The average is a plain-tensor copy that never receives gradients. Every rank
updates it from the same parameters; buffers, which each rank updates from its own shard
when the model is not DDP-wrapped (a GAN), are made rank 0's at every validation
(ptlab.engine.trainer), as the model's own are for evaluation, so the average is identical
on every rank wherever it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """The exponential moving average of ``model``'s state (its parameters and buffers)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        """``decay`` in (0, 1): trainer.ema.decay, whose range ptlab.config checks."""
        self.decay = decay
        self.updates = 0
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        parameters = {name for name, _ in model.named_parameters()}
        self._buffers = [k for k in self.weights if k not in parameters]
        self._floats = [k for k, v in self.weights.items() if v.is_floating_point()]
        self._copied = [k for k in self.weights if k not in self._floats]  # integer buffers

    def factor(self) -> float:
        """d of the next update: the warm-up (1 + t)/(10 + t) until it reaches ``decay``."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average: float entries w̄ ← w̄ + (1 − d)(w − w̄), the others copied."""
        current = model.state_dict()
        weight = 1.0 - self.factor()
        averages = [self.weights[k] for k in self._floats]
        torch._foreach_lerp_(averages, [current[k].detach() for k in self._floats], weight)
        for key in self._copied:
            self.weights[key].copy_(current[key])
        self.updates += 1

    def buffers(self) -> list[torch.Tensor]:
        """The averages of the model's buffers (BatchNorm statistics): what can differ between ranks."""
        return [self.weights[k] for k in self._buffers]

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with the averaged weights loaded for the block; its own weights are put back after it."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.weights)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": {k: v.cpu() for k, v in self.weights.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        for key, value in state["weights"].items():
            self.weights[key].copy_(value)
