"""Sample grids of a generative model: ``samples/epoch_NNN.png`` and a TensorBoard image per epoch.

The noise is fixed for the whole run (its own seeded generator, untouched by
training), so the grids show one set of samples evolving epoch by epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer


def save_grid(images: torch.Tensor, path: Path) -> torch.Tensor:
    """Images in [-1, 1] → one PNG grid (√n columns); returns the grid tensor (C×H×W in [0, 1])."""
    from torchvision.utils import make_grid, save_image

    grid = make_grid((images.float().cpu() + 1) / 2, nrow=math.ceil(math.sqrt(len(images))), padding=1,
                     pad_value=1.0).clamp(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return grid


class SampleGrid(Callback):
    def __init__(self, folder: Path, n: int, seed: int) -> None:
        self.folder, self.n, self.seed = folder, n, seed

    def on_epoch_end(self, trainer: Trainer) -> None:
        with trainer.averaged_weights() as model:  # the generator validation judges (with trainer.ema.decay: the average)
            was_training = model.training
            model.eval()
            images = model.sample(self.n, torch.Generator(trainer.run.device).manual_seed(self.seed))
            model.train(was_training)
        grid = save_grid(images, self.folder / f"epoch_{trainer.state.epoch:03d}.png")
        trainer.log_image("samples", grid)
