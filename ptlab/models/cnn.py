"""Convolutional classifiers: convolution extracts local patterns, pooling shrinks the map.

A 3×3 convolution computes, for every output channel o and position (i, j),
    y[o, i, j] = b[o] + Σ_c Σ_{u,v} w[o, c, u, v] · x[c, i+u, j+v]
and 2×2 max pooling keeps the largest of each 2×2 block, halving height and width.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ptlab.config import PositiveInt, Probability
from ptlab.models import serves


@serves("classification")
class SimpleCNN(nn.Module):
    """Blocks of [3×3 conv → BN → ReLU] ×2 → 2×2 max-pool, then a small MLP head."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        channels: Sequence[PositiveInt] = (32, 64),
        hidden: PositiveInt = 128,
        dropout: Probability = 0.25,
    ) -> None:
        super().__init__()
        blocks, c_in, size = [], in_channels, image_size
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = c_out, size // 2
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c_in * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # logits


@serves("classification")
def resnet18(in_channels: int, num_classes: int, pretrained: bool = False, dropout: Probability = 0.0) -> nn.Module:
    """torchvision's ResNet-18, with the first convolution and the head fitted to the data.

    ``dropout`` acts on the pooled features, just before the final linear layer;
    it lives in the (parameter-free) pooling module, so weight names do not change.
    """
    from torchvision import models

    weights = None
    if pretrained:
        from ptlab.models.pretrained import local_weights

        weights = local_weights(models.ResNet18_Weights.IMAGENET1K_V1)
    net = models.resnet18(weights=weights)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if num_classes != net.fc.out_features:
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    if dropout:
        net.avgpool = nn.Sequential(net.avgpool, nn.Dropout(dropout))
    return net
