"""Image augmentation presets (``data.augment``), applied on the device to each training batch.

    none    the images as they are
    light   random crop with zero padding (a shift of up to image_size/8 pixels), a horizontal
            flip where the data allows it, a small rotation (±10°) and scaling (0.9–1.1)
    strong  light, then RandAugment: two random operations of magnitude 9 out of 30 (contrast,
            brightness, posterize, solarize, equalize, shear, translate, rotate, ...)

Only the training split is augmented; validation and test see the images as they are.
Digits and MNIST are never flipped: a mirrored 2 is not a 2.

``light`` is one batched warp, so every sample gets its own shift, flip, angle
and scale at the cost of a single ``grid_sample``. Output pixel p (in the
[-1, 1] coordinates of ``affine_grid``) reads the input at

    θ·[p; 1],  θ = [ f·cos(a)/s   −sin(a)/s   tx ]
                   [ f·sin(a)/s    cos(a)/s   ty ]

with f = −1 for a flip, else 1; a the angle, s the scale, and (tx, ty) a whole
number of pixels (2/size per pixel). Pixels read from outside the image are
black, exactly as a crop from a zero-padded image. torchvision's transforms v2
draw one set of random parameters per call, so ``strong`` hands RandAugment the
batch in groups of :data:`GROUP` samples: each group draws its own two
operations. (TrivialAugmentWide is not used: its shifts are up to 32 pixels and
its rotations up to 135°, which erases an 8×8 digit.)

Augmentation works on pixels in [0, 1]: a batch is mapped back from the
data's normalization (x·std + mean), augmented and normalized again.
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

AugmentPreset = Literal["none", "light", "strong"]
GROUP = 8  # samples that share one draw of RandAugment's operations
MAX_DEGREES = 10.0
SCALES = (0.9, 1.1)


class ImageAugment:
    """A ``light`` or ``strong`` preset for normalized N×C×H×W batches (square images)."""

    def __init__(self, preset: AugmentPreset, flip: bool, mean: Tensor, std: Tensor) -> None:
        self.flip = flip
        self.mean, self.std = mean, std
        self.randaugment = None
        if preset == "strong":
            from torchvision.transforms import v2

            self.randaugment = v2.RandAugment(num_ops=2, magnitude=9)

    def __call__(self, x: Tensor) -> Tensor:
        pixels = (x * self.std + self.mean).clamp_(0, 1)
        pixels = random_warp(pixels, self.flip)
        if self.randaugment is not None:
            pixels = torch.cat([self.randaugment(group) for group in pixels.split(GROUP)])
        return (pixels - self.mean) / self.std


def image_augment(preset: AugmentPreset, *, flip: bool, mean: Tensor, std: Tensor) -> Optional[Callable[[Tensor], Tensor]]:
    """The per-batch transform of ``preset`` for images normalized as (x − mean) / std; None for "none"."""
    return None if preset == "none" else ImageAugment(preset, flip, mean, std)


def random_warp(x: Tensor, flip: bool) -> Tensor:
    """Shift by up to size/8 pixels (zero fill), flip with probability ½ if ``flip``, rotate and scale a little."""
    n, _, height, width = x.shape
    device = x.device
    shift = max(1, round(width / 8))
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(MAX_DEGREES)
    scale = SCALES[0] + (SCALES[1] - SCALES[0]) * torch.rand(n, device=device)
    mirror = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0) if flip else torch.ones(n, device=device)
    tx = torch.randint(-shift, shift + 1, (n,), device=device) * (2 / width)
    ty = torch.randint(-shift, shift + 1, (n,), device=device) * (2 / height)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([mirror * cos, -sin, tx], 1), torch.stack([mirror * sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
