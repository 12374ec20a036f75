"""Mixed precision: autocast to bf16/fp16, with a GradScaler for fp16 so small gradients survive."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from ptlab.errors import ConfigError


class Precision:
    """Wraps forward passes in autocast and owns the loss scaling of backward/step."""

    def __init__(self, precision: str, device: torch.device) -> None:
        precision = str(precision)
        self.dtype = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}[precision]
        if precision == "16" and device.type != "cuda":
            raise ConfigError(f"trainer.precision: 16 (fp16 with loss scaling) needs CUDA, the device is {device}; "
                              "use trainer.precision=bf16 or 32")
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda") if precision == "16" else None

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward(inputs=inputs)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring gradients back to their true scale (before clipping)."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step one optimizer (skipped by the scaler when its gradients overflowed)."""
        if self.scaler:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Adjust the loss scale once per training step, after every optimizer has stepped."""
        if self.scaler:
            self.scaler.update()
