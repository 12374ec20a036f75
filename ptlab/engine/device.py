"""Pick the device a run trains on."""

from __future__ import annotations

import re

import torch

from ptlab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda, then mps, then cpu; an explicit device must exist on this machine."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(f"device: {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name} was asked for but CUDA is not available on this machine; "
                              "use device=cpu or device=auto")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name} does not exist; this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s): use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: mps was asked for but is not available here; use device=cpu or device=auto")
    return torch.device(name)


def memory_format(model: torch.nn.Module, device: torch.device) -> torch.memory_format:
    """channels_last for a network with 2-d (transposed) convolutions on CUDA, else the usual contiguous layout.

    channels_last (NHWC) is the layout cuDNN's tensor-core convolutions run
    fastest in, under bf16/fp16 above all. Only the layout changes, not the
    values, so checkpoints are the same either way.
    """
    if device.type == "cuda" and any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules()):
        return torch.channels_last
    return torch.contiguous_format


def place_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` on ``device``, in the memory layout that is fastest there."""
    return model.to(device, memory_format=memory_format(model, device))
