"""The base of ptlab's metrics: sums kept on the device, added up over torchrun ranks when read.

Each built-in metric is a ratio of sums over samples (correct / seen, Σ(ŷ − y)² / n,
Σ −log p / n, per-user hits / users), so its state is a few tensors that every
batch adds to and that ranks add together — the ``add_state(..., "sum")`` /
``update`` / ``compute`` / ``reset`` protocol of ``torchmetrics.Metric``, which the
evaluation loop also accepts (FID uses it).

Why not ``torchmetrics.Metric`` itself: importing anything from torchmetrics runs
its package ``__init__``, which imports every domain it has — audio, image (and so
torchvision and ``torch._dynamo``), text, plotting — about 4 s per process on a
2-core machine, more than ``import torch``, paid by every run, sweep job and test.
The tests check each metric here against its torchmetrics counterpart.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ptlab.engine.distributed import all_sum


class Metric:
    """Subclasses declare sum states with :meth:`add_state`, add to them in ``update`` and read them in ``result``."""

    def __init__(self) -> None:
        self._defaults: dict[str, Tensor] = {}

    def add_state(self, name: str, default: Tensor, dist_reduce_fx: str = "sum") -> None:
        """A tensor attribute that ``reset`` restores and ``compute`` sums over ranks (only "sum" is supported)."""
        if dist_reduce_fx != "sum":
            raise ValueError(f"{type(self).__name__}.{name}: only sum states are supported, not {dist_reduce_fx!r}")
        self._defaults[name] = default.clone()
        setattr(self, name, default.clone())

    def update(self, prediction: Tensor, target: Tensor) -> None:
        raise NotImplementedError

    def result(self) -> Tensor:
        """The metric from the states (summed over ranks when ``compute`` calls it)."""
        raise NotImplementedError

    def compute(self) -> Tensor:
        """:meth:`result` over the states of every rank (this rank's alone outside torchrun); the states stay local."""
        local = {name: getattr(self, name) for name in self._defaults}
        for name, value in local.items():
            setattr(self, name, all_sum(value.clone()))
        try:
            return self.result()
        finally:
            for name, value in local.items():
                setattr(self, name, value)

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, default.to(getattr(self, name).device).clone())

    def to(self, device: Any) -> Metric:
        """Move the states to ``device`` (float64 sums become float32 on MPS, which has no float64)."""
        device = torch.device(device)
        for name, default in self._defaults.items():
            dtype = torch.float32 if device.type == "mps" and default.dtype == torch.float64 else default.dtype
            self._defaults[name] = default.to(device, dtype)
            setattr(self, name, getattr(self, name).to(device, dtype))
        return self
