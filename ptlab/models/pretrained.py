"""torchvision weights from the local cache only: ptlab never downloads at training time."""

from __future__ import annotations

from pathlib import Path

import torch

from ptlab.errors import ConfigError


def local_weights(weights):
    """Return ``weights`` if its file is in torch's hub cache, else explain how to put it there."""
    file = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not file.exists():
        raise ConfigError(
            f"model.pretrained: {weights} is not cached at {file}. Download it on a machine with network "
            f"({weights.url}) and copy it there, or use model.pretrained=false"
        )
    return weights
