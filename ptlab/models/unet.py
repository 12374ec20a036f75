"""U-Net (Ronneberger et al., 2015): a contracting path that sees context, an expanding path that places it.

With D = [3×3 conv (padding 1) → BN → ReLU] ×2, "pool" a 2×2 max-pool, "up" a 2×2 transposed convolution of
stride 2 that halves the channels, and [a; b] concatenation along the channels, a U-Net of depth L computes

    e₀ = D₀(x),    e_k = D_k(pool(e_{k−1}))                 k = 1 … L           (e_L: the bottleneck)
    d_L = e_L,     d_k = D'_k([up(d_{k+1}); e_k])           k = L−1 … 0         (e_k: the skip connection)
    logits = W · d₀ + b                                     a 1×1 convolution to one channel per class

Level k has width · 2^k channels at H / 2^k × W / 2^k, so H and W must be multiples of 2^L; other sizes are
refused (no padding or cropping is done behind the caller's back). The skips carry the fine positions that
pooling threw away; the paper's dropout sits at the end of the contracting path, here on the bottleneck.

Shapes for a 3 × 64 × 64 image with width 16, depth 3 (the default), per image (C × H × W):

    level   contracting (skip e_k)    pooled          expanding: up(d_{k+1}) → [up; e_k] → d_k
    0       16 × 64 × 64              16 × 32 × 32    16 × 64 × 64 → 32 × 64 × 64 → 16 × 64 × 64
    1       32 × 32 × 32              32 × 16 × 16    32 × 32 × 32 → 64 × 32 × 32 → 32 × 32 × 32
    2       64 × 16 × 16              64 × 8 × 8      64 × 16 × 16 → 128 × 16 × 16 → 64 × 16 × 16
    3       bottleneck e₃ = d₃: 128 × 8 × 8
    logits  num_classes × 64 × 64

Parameters of ``unet(3, 4)`` (width 16, depth 3): 482,788, most of them in the two deepest levels
(bottleneck 221,696; last-but-one level down + up 199,232). Width 16 and depth 2 give 117,412.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptlab.config import PositiveInt, Probability
from ptlab.models import serves


class DoubleConv(nn.Sequential):
    """D: [3×3 conv (padding 1) → BN → ReLU] ×2; keeps height and width."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        )


class Down(nn.Module):
    """One step of the contracting path: e = D(x), kept as the skip, and pool(e), passed down."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = DoubleConv(c_in, c_out)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.conv(x)
        return skip, self.pool(skip)


class Up(nn.Module):
    """One step of the expanding path: d = D'([up(x); skip]), up a 2×2 stride-2 transposed conv halving channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        self.conv = DoubleConv(2 * c_out, c_out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """U-Net of ``depth`` down and up steps, ``width · 2^k`` channels at level k; B × num_classes × H × W logits."""

    def __init__(self, in_channels: int, num_classes: int, width: PositiveInt = 16, depth: PositiveInt = 3,
                 dropout: Probability = 0.0) -> None:
        super().__init__()
        channels = [width * 2**k for k in range(depth + 1)]  # levels 0 … depth, the last the bottleneck
        self.multiple = 2**depth
        self.downs = nn.ModuleList(Down(c_in, c_out) for c_in, c_out in zip([in_channels] + channels, channels[:-1]))
        self.bottleneck = DoubleConv(channels[-2], channels[-1])
        self.dropout = nn.Dropout(dropout)
        self.ups = nn.ModuleList(Up(c_in, c_out) for c_in, c_out in zip(channels[:0:-1], channels[-2::-1]))
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(f"unet: a {height} × {width} input does not halve {len(self.downs)} times; height and "
                             f"width must be multiples of {self.multiple} (pad or crop the images, or lower depth)")
        skips = []
        for down in self.downs:  # contracting path: e_k kept, pool(e_k) passed down
            skip, x = down(x)
            skips.append(skip)
        x = self.dropout(self.bottleneck(x))
        for up, skip in zip(self.ups, reversed(skips)):  # expanding path: deepest skip first
            x = up(x, skip)
        return self.head(x)  # logits, B × num_classes × H × W


@serves("segmentation")
def unet(in_channels: int, num_classes: int, width: PositiveInt = 16, depth: PositiveInt = 3,
         dropout: Probability = 0.0) -> nn.Module:
    """U-Net for per-pixel classes: see the module docstring for the formula and the shapes."""
    return UNet(in_channels, num_classes, width=width, depth=depth, dropout=dropout)
