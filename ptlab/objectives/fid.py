"""Fréchet distance in the feature space of a small classifier trained on the real data.

FID compares two sets of images by the Gaussians fitted to their features,

    FID = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½),

usually with Inception-v3 features. Inception needs downloaded weights and
299×299 inputs, so ptlab uses the penultimate layer of a small CNN trained on
the run's own real training images instead (torchmetrics' FID accepts any
feature extractor). The classifier is trained deterministically, in its own
random stream, and cached by a hash of the training images, so every run on
the same data measures with the same ruler.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.data.loaders import stored_rows
from ptlab.engine.checkpoint import save_atomic

CACHE_VERSION = 1
EPOCHS, BATCH, LR, SEED = 8, 64, 2e-3, 0


class FeatureNet(nn.Module):
    """Conv → conv → pool → 64 features (``num_features``, what FID compares) → class logits."""

    num_features = 64

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, self.num_features), nn.ReLU(),
        )
        self.head = nn.Linear(self.num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x.float())


def real_images(batches) -> tuple[Tensor, Tensor]:
    """All (images, labels) of a split in stored order, unaugmented: the same whatever the seed."""
    images, labels = stored_rows(batches)[:2]
    return images, labels


def cache_dir() -> Path:
    return Path(os.environ.get("PTLAB_CACHE", "~/.cache/ptlab")).expanduser() / "fid"


def feature_extractor(train, device: torch.device) -> FeatureNet:
    """The classifier for ``train``'s images: loaded from the cache, or trained once and cached."""
    images, labels = real_images(train)
    num_classes = int(labels.max()) + 1
    key = hashlib.sha256(images.cpu().numpy().tobytes() + labels.cpu().numpy().tobytes()).hexdigest()[:16]
    path = cache_dir() / f"v{CACHE_VERSION}-{key}.pt"
    net = FeatureNet(images.shape[1], num_classes)
    if path.exists():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        train_classifier(net, images.cpu(), labels.cpu())
        save_atomic(net.state_dict(), path)
    return net.to(device).eval().requires_grad_(False)


def train_classifier(net: FeatureNet, images: Tensor, labels: Tensor) -> None:
    """A few epochs of Adam in a private random stream: the same data gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        net = net.train()
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        for _ in range(EPOCHS):
            order = torch.randperm(len(images), generator=generator)
            for i in range(0, len(images), BATCH):
                index = order[i : i + BATCH]
                loss = F.cross_entropy(net.head(net(images[index])), labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


class FrechetDistance:
    """``update(generated, real)``, ``compute()`` → FID: the metric interface the trainer uses."""

    def __init__(self, features: FeatureNet) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=True)

    def to(self, device: torch.device) -> FrechetDistance:
        self.fid = self.fid.to(device)
        return self

    def reset(self) -> None:
        self.fid.reset()

    def update(self, generated: Tensor, real: Tensor) -> None:
        self.fid.update(real, real=True)
        self.fid.update(generated, real=False)

    def compute(self) -> Tensor:
        return self.fid.compute()


def fid(data, device: torch.device) -> FrechetDistance:
    """Fréchet distance between generated and real images, in the features of a classifier of the real data."""
    return FrechetDistance(feature_extractor(data.train, device))


def real_vs_real(data, device: torch.device, seed: int = 0) -> float:
    """The same distance between two real samples of the test split's size (train vs test): the scale of 'good'."""
    metric = fid(data, device)
    train, _ = real_images(data.train)
    test, _ = real_images(data.test)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(test)]
    metric.update(train[pick.to(train.device)], test)
    return float(metric.compute())
