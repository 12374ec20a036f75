"""U-Net: per-pixel logits of the input's size, skips that matter, sizes refused, a tiny scene set overfit."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)

from ptlab.data.shapes import generate_scenes  # noqa: E402
from ptlab.models import unet as unet_module  # noqa: E402
from ptlab.models.unet import Up, unet  # noqa: E402

DEFAULT_PARAMETERS = 482_788  # unet(3, 4): width 16, depth 3; the module docstring reports it too


@pytest.mark.parametrize("height, width", [(64, 64), (32, 48)])
def test_output_is_one_logit_per_class_at_every_input_pixel(height: int, width: int) -> None:
    torch.manual_seed(0)
    model = unet(3, 4).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width))
    assert out.shape == (2, 4, height, width)
    assert unet.target_kinds == ("segmentation",)


def test_each_logit_is_aligned_with_its_own_input_pixel() -> None:
    torch.manual_seed(0)
    model = unet(3, 4).eval()  # eval: BatchNorm's running statistics, so pixels do not talk through the batch
    x = torch.rand(1, 3, 32, 48, requires_grad=True)
    row, col = 5, 37  # off the diagonal and off-centre, so a transpose or a flip moves it
    model(x)[0, :, row, col].sum().backward()
    influence = x.grad.abs().sum(dim=(0, 1))  # H × W: how much each input pixel moves that one logit
    peak = divmod(influence.argmax().item(), 48)
    assert abs(peak[0] - row) <= 2 and abs(peak[1] - col) <= 2, peak


@pytest.mark.parametrize("level", [0, 1, 2])
def test_the_skip_connection_of_each_level_is_used(level: int) -> None:
    torch.manual_seed(0)
    model = unet(3, 4)  # train mode: batch statistics, so fresh BatchNorm does not shrink the deep features to ~0
    x = torch.rand(2, 3, 32, 32)
    up = next(m for m in model.ups if isinstance(m, Up) and m.conv[0].in_channels == 2 * 16 * 2**level)
    with torch.no_grad():
        plain = model(x)
        handle = up.register_forward_pre_hook(lambda _, args: (args[0], torch.zeros_like(args[1])))
        without_skip = model(x)
        handle.remove()
        again = model(x)
    assert torch.equal(plain, again)  # the hook, not chance, made the difference
    assert (plain - without_skip).abs().mean() > 0.05 * plain.abs().mean()


@pytest.mark.parametrize("height, width", [(36, 32), (32, 20)])
def test_a_size_that_does_not_halve_depth_times_is_refused_with_the_multiple(height: int, width: int) -> None:
    model = unet(3, 4, depth=3)
    with pytest.raises(ValueError, match=rf"{height} × {width}.*multiples of 8"):
        model(torch.rand(1, 3, height, width))
    unet(3, 4, depth=2).eval()(torch.rand(1, 3, 36, 20))  # multiples of 4 suffice at depth 2


def test_parameter_count_of_the_default_is_pinned_and_documented() -> None:
    count = sum(p.numel() for p in unet(3, 4).parameters())
    print(f"unet(3, 4) parameters: {count:,}")
    assert count == DEFAULT_PARAMETERS
    assert f"{DEFAULT_PARAMETERS:,}" in unet_module.__doc__


def test_channels_last_gives_the_same_logits_in_channels_last() -> None:
    torch.manual_seed(0)
    model = unet(3, 4).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_a_tiny_overfit_of_eight_scenes_reaches_high_pixel_accuracy() -> None:
    scenes = generate_scenes(8, image_size=32, seed=0)
    background = (scenes.masks == 0).float().mean().item()
    assert background < 0.7  # so 0.95 is far above predicting background everywhere
    torch.manual_seed(0)
    model = unet(3, 4, width=8)  # depth 3 as the default; half the width keeps it quick
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(scenes.images), scenes.masks)  # B × C × H × W vs B × H × W
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(scenes.images).argmax(dim=1) == scenes.masks).float().mean().item()
    assert accuracy >= 0.95
