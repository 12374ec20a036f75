"""Generated scenes of shapes (the segment/detect data): determinism, exact ground truth, balance, errors."""

from __future__ import annotations

import math
import re
import time

import pytest
import torch

from ptlab.data.shapes import CLASSES, MIN_CONTRAST, MIN_VISIBLE, Scenes, generate_scenes, scene_splits
from ptlab.errors import ConfigError

torch.set_num_threads(1)

CROWDED = dict(image_size=32, min_size=16, max_size=32, min_shapes=8, max_shapes=8)  # shapes must bury each other


@pytest.fixture(scope="module")
def timed_scenes() -> tuple[Scenes, float]:
    """2000 scenes at the defaults, and the seconds they took."""
    start = time.perf_counter()
    scenes = generate_scenes(2000, seed=3)
    return scenes, time.perf_counter() - start


def same(a: Scenes, b: Scenes) -> bool:
    """Every tensor of a equals b's, bit for bit (and has its dtype)."""
    pairs = [(a.images, b.images), (a.masks, b.masks)]
    if len(a) != len(b) or len(a.boxes) != len(b.boxes):
        return False
    pairs += list(zip(a.boxes, b.boxes)) + list(zip(a.labels, b.labels)) + list(zip(a.instance_masks, b.instance_masks))
    return all(x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y) for x, y in pairs)


def prefix(scenes: Scenes, n: int) -> Scenes:
    return Scenes(scenes.images[:n], scenes.masks[:n], scenes.boxes[:n], scenes.labels[:n], scenes.instance_masks[:n])


def tight_box(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_same_seed_gives_bit_identical_scenes_and_another_seed_others() -> None:
    a, b = generate_scenes(30, seed=7), generate_scenes(30, seed=7)
    assert same(a, b)
    other = generate_scenes(30, seed=8)
    assert not torch.equal(a.images, other.images) and not torch.equal(a.masks, other.masks)
    assert same(prefix(generate_scenes(45, seed=7), 30), a)  # scene i depends on the seed and i, not on n


def test_split_sizes_do_not_change_the_other_splits() -> None:
    small = scene_splits(10, 6, 5, split_seed=2, max_shapes=3)
    large = scene_splits(25, 6, 5, split_seed=2, max_shapes=3)
    assert set(small) == {"train", "val", "test"}
    assert [len(small[name]) for name in ("train", "val", "test")] == [10, 6, 5]
    assert same(small["val"], large["val"]) and same(small["test"], large["test"])
    assert same(prefix(large["train"], 10), small["train"])
    assert not torch.equal(small["val"].images[:5], small["test"].images)  # independent streams, not one shared
    assert not same(small["val"], scene_splits(10, 6, 5, split_seed=3, max_shapes=3)["val"])


@pytest.mark.parametrize("options", [{}, CROWDED], ids=["defaults", "crowded"])
def test_masks_boxes_and_labels_agree_exactly(options: dict, timed_scenes: tuple[Scenes, float]) -> None:
    scenes = prefix(timed_scenes[0], 300) if not options else generate_scenes(150, seed=5, **options)
    size = options.get("image_size", 64)
    assert scenes.images.shape == (len(scenes), 3, size, size) and scenes.images.dtype == torch.float32
    assert scenes.masks.shape == (len(scenes), size, size) and scenes.masks.dtype == torch.int64
    assert 0 <= scenes.images.min() and scenes.images.max() <= 1
    fewest = math.inf
    for mask, boxes, labels, instances in zip(scenes.masks, scenes.boxes, scenes.labels, scenes.instance_masks):
        m = len(labels)
        assert m >= 1 and labels.dtype == torch.int64 and ((1 <= labels) & (labels <= len(CLASSES))).all()
        assert boxes.shape == (m, 4) and boxes.dtype == torch.float32
        assert instances.shape == (m, size, size) and instances.dtype == torch.bool
        visible = instances.sum(dim=(1, 2))
        assert (visible >= MIN_VISIBLE).all()
        fewest = min(fewest, visible.min().item())
        assert (instances.sum(dim=0) <= 1).all()  # disjoint
        assert torch.equal(instances.any(dim=0), mask > 0)  # their union is the foreground
        assert torch.equal((instances * labels[:, None, None]).sum(dim=0), mask)  # each pixel: its instance's label
        assert boxes.tolist() == [tight_box(instance) for instance in instances]
    if options:
        assert fewest < 2 * MIN_VISIBLE  # the crowded scenes do bury shapes down to the limit


def test_classes_are_drawn_uniformly(timed_scenes: tuple[Scenes, float]) -> None:
    labels = torch.cat(timed_scenes[0].labels)
    assert len(labels) >= 3000
    shares = torch.bincount(labels, minlength=len(CLASSES) + 1)[1:] / len(labels)
    assert ((0.25 <= shares) & (shares <= 0.42)).all(), shares


def test_colour_does_not_depend_on_the_class(timed_scenes: tuple[Scenes, float]) -> None:
    scenes = timed_scenes[0]
    colours = {k: [] for k in range(1, len(CLASSES) + 1)}
    for image, labels, instances in zip(scenes.images, scenes.labels, scenes.instance_masks):
        for label, instance in zip(labels.tolist(), instances):
            colours[label].append(image[:, instance].mean(dim=1))
    means = torch.stack([torch.stack(found).mean(dim=0) for found in colours.values()])  # class × channel
    assert (means.max(dim=0).values - means.min(dim=0).values).max() < 0.05, means
    spread = torch.stack([c for found in colours.values() for c in found]).std(dim=0)
    assert (spread > 0.2).all()  # the colours do vary: near-uniform in [0, 1] has std 0.29


@pytest.mark.parametrize("side", [10, 16, 24])
def test_rasterized_areas_match_the_geometry(side: int) -> None:
    areas = {}
    for name in CLASSES:
        scenes = generate_scenes(8, classes=[name], min_size=side, max_size=side, max_shapes=1, seed=side)
        areas[name] = torch.stack([m.sum() for m in scenes.instance_masks]).float()
    assert torch.allclose(areas["circle"], torch.tensor(math.pi * side ** 2 / 4), rtol=0.1), areas["circle"]
    assert (areas["square"] == side ** 2).all()
    assert torch.allclose(areas["triangle"], torch.tensor(side ** 2 / 2), rtol=0.1), areas["triangle"]


def test_a_subset_of_classes_takes_ids_in_the_order_given() -> None:
    scenes = generate_scenes(20, classes=("triangle", "circle"), min_size=20, max_size=20, max_shapes=1)
    areas = {1: set(), 2: set()}
    for labels, instances in zip(scenes.labels, scenes.instance_masks):
        areas[labels.item()].add(instances.sum().item())
    assert set(torch.cat(scenes.labels).tolist()) == {1, 2}
    assert max(areas[1]) < 240 < min(areas[2])  # 1: triangles (≈ 200 pixels), 2: circles (≈ 314)


def test_noise_is_gaussian_over_the_clean_picture() -> None:
    clean, noisy = generate_scenes(40, noise=0.0, seed=4), generate_scenes(40, noise=0.1, seed=4)
    assert torch.equal(clean.masks, noisy.masks)  # the noise is drawn last: same shapes, same colours
    unclipped = (clean.images > 0.3) & (clean.images < 0.7)
    shapes = (clean.masks > 0)[:, None].expand_as(unclipped)
    for where in (shapes, ~shapes):  # on the shapes as on the background
        difference = (noisy.images - clean.images)[unclipped & where]
        assert 0.095 < difference.std() < 0.105 and abs(difference.mean()) < 0.005


def test_shapes_stand_out_from_what_lies_under_and_beside_them() -> None:
    scenes = generate_scenes(300, noise=0.0, seed=6)
    for image, mask, instances in zip(scenes.images, scenes.masks, scenes.instance_masks):
        owner = (instances * torch.arange(1, len(instances) + 1)[:, None, None]).sum(dim=0)  # 0: background
        for index, instance in enumerate(instances, start=1):
            pixels = image[:, instance]
            assert (pixels == pixels[:, :1]).all()  # flat colour
            beside = torch.zeros_like(instance)
            beside[1:] |= instance[:-1]
            beside[:-1] |= instance[1:]
            beside[:, 1:] |= instance[:, :-1]
            beside[:, :-1] |= instance[:, 1:]
            beside &= ~instance
            colour = pixels[:, 0]
            for other in owner[beside].unique().tolist():
                if other:  # another shape: its colour differs by more than MIN_CONTRAST
                    assert (image[:, owner == other][:, 0] - colour).abs().mean() > MIN_CONTRAST
            background = beside & (mask == 0)
            if background.any():  # the gradient next to it, on average (the rule is on the mean under it)
                assert (image[:, background].mean(dim=1) - colour).abs().mean() > 0.2


def test_two_thousand_scenes_take_seconds(timed_scenes: tuple[Scenes, float]) -> None:
    assert timed_scenes[1] < 10, f"2000 scenes of 64 × 64 took {timed_scenes[1]:.1f} s"


@pytest.mark.parametrize(("key", "options"), [
    ("data.image_size", dict(image_size=15)),
    ("data.min_shapes", dict(min_shapes=0)),
    ("data.min_shapes", dict(min_shapes=5, max_shapes=4)),
    ("data.max_size", dict(max_size=65)),
    ("data.min_size", dict(min_size=3)),
    ("data.min_size", dict(min_size=20, max_size=12)),
    ("data.max_size", dict(classes=["triangle"], min_size=4, max_size=6)),  # no side of 4–6 has 20 pixels
    ("data.classes", dict(classes=["circle", "hexagon"])),
    ("data.classes", dict(classes="circle")),
    ("data.classes", dict(classes=[])),
    ("data.classes", dict(classes=["circle", "circle"])),
    ("data.noise", dict(noise=-0.1)),
    ("data.train_size", dict(train_size=0)),
    ("data.val_size", dict(val_size=0)),
    ("data.test_size", dict(test_size=-1)),
    ("data.colour", dict(colour="red")),
    ("data.seed", dict(seed=1)),
])
def test_each_config_error_names_its_key(key: str, options: dict) -> None:
    arguments = dict(train_size=2, val_size=1, test_size=1, split_seed=0) | options
    with pytest.raises(ConfigError, match="^" + re.escape(key + ":")) as err:
        scene_splits(**arguments)
    assert "\n" not in str(err.value)


def test_generate_scenes_refuses_no_scenes() -> None:
    with pytest.raises(ConfigError, match="^n: "):
        generate_scenes(0)
    with pytest.raises(ConfigError, match="^data.max_size: "):  # and checks its options as scene_splits does
        generate_scenes(1, max_size=80)
