"""Augmentation presets: shapes and ranges kept, digits never flipped, only the training split augmented."""

from __future__ import annotations

import pytest
import torch

import ptlab
from ptlab.data.augment import image_augment
from ptlab.data.vision import digits
from ptlab.errors import ConfigError

CPU = torch.device("cpu")


def normalized(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (pixels - mean) / std


@pytest.mark.parametrize("preset", ["light", "strong"])
@pytest.mark.parametrize("channels, size", [(1, 8), (3, 32)])
def test_presets_keep_shape_dtype_and_pixel_range(preset: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    pixels = torch.rand(40, channels, size, size)
    mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
    std = pixels.std(dim=(0, 2, 3), keepdim=True)
    augment = image_augment(preset, flip=True, mean=mean, std=std)
    x = normalized(pixels, mean, std)
    out = augment(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    back = out * std + mean  # the pixels the augmentation produced
    assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5
    assert not torch.allclose(out, x)
    assert image_augment("none", flip=True, mean=mean, std=std) is None


def left_heavy_images(n: int, size: int = 32) -> torch.Tensor:
    """A grey band along the left edge of a black image: a horizontal flip puts it on the right.

    It is narrow enough (an eighth of the width) that the largest shifts of either preset keep it left.
    """
    images = torch.zeros(n, 1, size, size)
    images[..., : size // 8] = 0.5
    return images


def right_minus_left(pixels: torch.Tensor) -> torch.Tensor:
    half = pixels.shape[-1] // 2
    return pixels[..., half:].sum(dim=(1, 2, 3)) - pixels[..., :half].sum(dim=(1, 2, 3))


@pytest.mark.parametrize("preset", ["light", "strong"])
def test_digits_are_never_flipped(preset: str) -> None:
    data = digits(augment=preset, target_kind="classification", device=CPU, seed=0)
    augment = data.train.transform
    pixels = left_heavy_images(512)
    torch.manual_seed(0)
    out = augment(normalized(pixels, augment.mean, augment.std)) * augment.std + augment.mean
    assert (right_minus_left(out) <= 1e-4).all()
    # The same check sees flips when they are allowed.
    flipping = image_augment(preset, flip=True, mean=augment.mean, std=augment.std)
    flipped = flipping(normalized(pixels, augment.mean, augment.std)) * augment.std + augment.mean
    assert (right_minus_left(flipped) > 1).float().mean() > 0.3


def test_only_the_training_split_is_augmented() -> None:
    plain = ptlab.build(ptlab.compose(["task=cnn", "device=cpu"])).data
    augmented = ptlab.build(ptlab.compose(["task=cnn", "device=cpu", "data.augment=light"])).data
    assert plain.train.transform is None and augmented.train.transform is not None
    for split in ("val", "test"):
        assert getattr(augmented, split).transform is None
        for (x, y), (x0, y0) in zip(getattr(augmented, split).batches(), getattr(plain, split).batches()):
            assert torch.equal(x, x0) and torch.equal(y, y0)
    torch.manual_seed(0)
    (x, y), (x0, y0) = next(augmented.train.batches(3)), next(plain.train.batches(3))
    assert torch.equal(y, y0) and x.shape == x0.shape and not torch.equal(x, x0)  # same samples, augmented


def test_a_strong_run_trains_and_a_bad_preset_is_refused() -> None:
    metrics = ptlab.train(ptlab.compose(["task=cnn", "device=cpu", "data.augment=strong", "trainer.max_steps=3",
                                         "trainer.max_epochs=1", "trainer.progress=plain"]))
    assert metrics["step"] == 3
    with pytest.raises(ConfigError, match="data.augment: 'heavy' is not one of none, light, strong"):
        ptlab.build(ptlab.compose(["task=cnn", "data.augment=heavy"]))


def test_augmented_training_resumes_exactly(tmp_path) -> None:
    """Augmentation draws from the generators a checkpoint saves: stopping mid-epoch and resuming changes nothing."""
    common = ["task=cnn", "device=cpu", "scheduler=constant", "data.augment=strong", "trainer.progress=plain"]
    ptlab.train(ptlab.compose([*common, "trainer.max_steps=16"]), run_dir=tmp_path / "whole")
    ptlab.train(ptlab.compose([*common, "trainer.max_steps=7"]), run_dir=tmp_path / "parts")
    ptlab.train(ptlab.compose([*common, "trainer.max_steps=16", "resume=auto"]), run_dir=tmp_path / "parts")
    whole, parts = (torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["model"]
                    for name in ("whole", "parts"))
    assert all(torch.equal(whole[k], parts[k]) for k in whole)
