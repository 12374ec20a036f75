"""Synthetic scenes of flat shapes with exact ground truth: the offline data of segmentation and detection.

A scene is an H × W colour image (H = W = ``image_size``) drawn in three steps from one seeded stream:

    background   b(p) = c₀ + (c₁ − c₀) · t(p)        c₀, c₁ ~ U[0, 1]³, t: 0 → 1 along a random direction
    shapes       k ~ U{min_shapes … max_shapes} shapes, painted one after another in flat colours,
                 each one hiding what it covers of those before it
    noise        x(p) = clip(canvas(p) + ε(p), 0, 1),  ε ~ N(0, noise²) per pixel and channel, over the
                 whole picture (shapes too), so a flat, noise-free patch does not give a shape away

Each shape has a class drawn uniformly from ``classes``, an integer side s (its bounding square) and an
integer corner (x₀, y₀) with the square fully inside the image. Pixel (row i, column j) has its centre at
(j + ½, i + ½) and belongs to a shape iff its centre is strictly inside it (u, v: the centre's position in
the bounding square, scaled to [0, 1]):

    circle    centre (x₀ + s/2, y₀ + s/2), radius s/2      (u − ½)² + (v − ½)² < ¼          area ≈ πs²/4
    square    the bounding square itself, axis-aligned     every pixel of it                  area  = s²
    triangle  isosceles, its base one side of the square   |u − ½| < v / 2  (apex up)        area ≈ s²/2
              and its apex the middle of the opposite one; one of the four orientations (apex up, down,
              left, right), drawn uniformly and independently of everything else

Shapes are rasterized from these tests alone (vectorized numpy, no drawing library), so the masks are the
painted pixels exactly. The colour is drawn uniformly from [0, 1]³, independently of the class (the shape
decides the class, not the colour), then drawn again until its mean absolute difference over the channels
from the mean background colour under the shape, and from the colour of every earlier shape with a pixel in
or next to its bounding square, is above :data:`MIN_CONTRAST` (at most 128 draws, then the one with the most
contrast), so each shape stands out from what lies under and beside it.

Occlusion. Every instance keeps at least :data:`MIN_VISIBLE` visible pixels: a placement that would leave an
earlier shape fewer is drawn again (side, orientation and corner; the class stays), at most
:data:`PLACEMENT_TRIES` times, and then the shape is left out, so a crowded scene may hold fewer than
``min_shapes`` shapes (none is left out at the defaults; 10 % of 8 shapes of side 16–32 in 32 × 32 scenes are).
A side at which a shape would have fewer than MIN_VISIBLE pixels even unoccluded is never drawn for that class
(circles and squares need s ≥ 5, triangles s ≥ 7), so below those the sides are not quite uniform.

Ground truth, per scene: ``masks`` holds at each pixel the class id (1 … len(classes), in the order given)
of the topmost shape there, 0 for background; ``instance_masks`` the visible pixels of each instance, in the
order painted; ``boxes`` the tight box (x₁, y₁, x₂, y₂) of those pixels, x₂ and y₂ exclusive, so a box is
exactly the bounding box of its instance mask and the instance masks are disjoint with union ``masks > 0``.

Scene i of :func:`generate_scenes` is drawn from child i of ``SeedSequence(seed)``: the same arguments give
bit-identical tensors, and the first scenes of a larger ``n`` are the scenes of a smaller one.
:func:`scene_splits` draws train, val and test from three independent children of ``split_seed``, so the
size of one split never changes the scenes of another.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from ptlab.errors import ConfigError

CLASSES = ("circle", "square", "triangle")  # class ids 1, 2, 3 (with the default classes); 0 is background
MIN_VISIBLE = 20  # fewest visible pixels an instance may have
MIN_CONTRAST = 0.25  # least mean absolute colour difference from the background and earlier neighbours
PLACEMENT_TRIES = 10  # placements tried for a shape before it is left out
COLOUR_CANDIDATES = 32  # colours drawn at a time; the first that contrasts enough is taken
MIN_IMAGE_SIZE = 16
MIN_SIDE = 4


@dataclass(frozen=True, eq=False)
class Scenes:
    """N scenes and their ground truth; list entries are per image, M its number of instances."""

    images: torch.Tensor  # N × 3 × H × W float32 in [0, 1]
    masks: torch.Tensor  # N × H × W int64: 0 background, else the class id of the shape visible at the pixel
    boxes: list[torch.Tensor]  # M × 4 float32, (x1, y1, x2, y2) in pixels, x2 and y2 exclusive
    labels: list[torch.Tensor]  # M int64 class ids, 1 … len(classes)
    instance_masks: list[torch.Tensor]  # M × H × W bool, the visible pixels of each instance

    def __len__(self) -> int:
        return len(self.images)


def generate_scenes(n: int, image_size: int = 64, min_shapes: int = 1, max_shapes: int = 4,
                    classes: Sequence[str] = CLASSES, min_size: int = 10, max_size: int = 24, noise: float = 0.1,
                    seed: int = 0) -> Scenes:
    """``n`` scenes drawn as the module docstring says; the same arguments give bit-identical tensors."""
    if n < 1:
        raise ConfigError(f"n: {n} scenes asked for; ask for 1 or more")
    names = _check_options(image_size, min_shapes, max_shapes, classes, min_size, max_size, noise)
    return _generate(n, np.random.SeedSequence(seed % 2**64), image_size, min_shapes, max_shapes, names,
                     min_size, max_size, noise)


def scene_splits(train_size: int, val_size: int, test_size: int, split_seed: int,
                 **options: Any) -> dict[str, Scenes]:
    """{"train", "val", "test"}: scenes of :func:`generate_scenes` with ``options`` (any of its keywords but n
    and seed), each split from its own child of ``SeedSequence(split_seed)``, so no split's size or scenes
    depend on another's."""
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for name, size in sizes.items():
        if size < 1:
            raise ConfigError(f"data.{name}_size: {size} scenes; give a number of scenes, 1 or more")
    defaults = {key: option.default for key, option in inspect.signature(generate_scenes).parameters.items()
                if key not in ("n", "seed")}
    allowed = tuple(defaults)
    for key in options:
        if key not in allowed:
            hint = "; the splits are drawn from data.split_seed" if key == "seed" else ""
            raise ConfigError(f"data.{key}: not an option of the shapes data{hint}; choose from {', '.join(allowed)}")
    settings = defaults | options
    settings["classes"] = _check_options(**settings)
    children = np.random.SeedSequence(split_seed % 2**64).spawn(len(sizes))
    return {name: _generate(size, child, **settings) for (name, size), child in zip(sizes.items(), children)}


def _check_options(image_size: int, min_shapes: int, max_shapes: int, classes: Sequence[str], min_size: int,
                   max_size: int, noise: float) -> tuple[str, ...]:
    """The class names, after a ConfigError naming the key for any option that cannot be drawn."""
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"data.image_size: {image_size} pixels is too small; give {MIN_IMAGE_SIZE} or more")
    if min_shapes < 1:
        raise ConfigError(f"data.min_shapes: {min_shapes}; every scene needs a shape, so give 1 or more")
    if min_shapes > max_shapes:
        raise ConfigError(f"data.min_shapes: {min_shapes} is above data.max_shapes ({max_shapes}); lower it or "
                          f"raise data.max_shapes")
    if min_size < MIN_SIDE:
        raise ConfigError(f"data.min_size: a side of {min_size} pixels is too small to tell shapes apart; give "
                          f"{MIN_SIDE} or more")
    if max_size > image_size:
        raise ConfigError(f"data.max_size: {max_size} pixels does not fit in data.image_size ({image_size}); give "
                          f"at most {image_size}")
    if min_size > max_size:
        raise ConfigError(f"data.min_size: {min_size} is above data.max_size ({max_size}); lower it or raise "
                          f"data.max_size")
    if not noise >= 0:
        raise ConfigError(f"data.noise: {noise} is not a standard deviation; give 0 or more")
    if isinstance(classes, str):
        raise ConfigError(f"data.classes: {classes!r} is one string; give a list of names, e.g. [{classes}]")
    names = tuple(classes)
    unknown = [name for name in names if name not in CLASSES]
    if unknown or not names:
        what = f"{unknown[0]!r} is not a shape" if unknown else "no classes given"
        raise ConfigError(f"data.classes: {what}; choose from {', '.join(CLASSES)}")
    if len(set(names)) < len(names):
        raise ConfigError(f"data.classes: {list(names)} names a class twice; name each at most once")
    for name in names:
        if not _sides(CLASSES.index(name), min_size, max_size):
            needed = min(_sides(CLASSES.index(name), max_size, image_size))  # image_size ≥ 16 always has one
            raise ConfigError(f"data.max_size: a {name} of side {max_size} has fewer than {MIN_VISIBLE} pixels; "
                              f"raise data.max_size to {needed} or more")
    return names


def _generate(n: int, seeds: np.random.SeedSequence, image_size: int, min_shapes: int, max_shapes: int,
              classes: Sequence[str], min_size: int, max_size: int, noise: float) -> Scenes:
    """n scenes of checked options, scene i from child i of ``seeds``."""
    shapes = [CLASSES.index(name) for name in classes]
    sides = [_sides(shape, min_size, max_size) for shape in shapes]
    images = np.empty((n, 3, image_size, image_size), np.float32)
    owners = np.empty((n, image_size, image_size), np.int64)
    boxes, labels, instance_masks = [], [], []
    for i, child in enumerate(seeds.spawn(n)):
        rng = np.random.default_rng(child)
        canvas, owner, shape_ids = _scene(rng, image_size, rng.integers(min_shapes, max_shapes + 1), shapes, sides)
        np.clip(canvas + rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(noise), 0, 1,
                out=images[i])
        label = np.asarray(shape_ids, np.int64) + 1
        owners[i] = np.concatenate(([0], label))[owner + 1]
        instances = owner[None] == np.arange(len(label))[:, None, None]
        boxes.append(torch.from_numpy(_tight_boxes(instances)))
        labels.append(torch.from_numpy(label))
        instance_masks.append(torch.from_numpy(instances))
    return Scenes(torch.from_numpy(images), torch.from_numpy(owners), boxes, labels, instance_masks)


def _scene(rng: np.random.Generator, size: int, count: int, shapes: list[int],
           sides: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One noise-free scene: its 3 × size × size float32 canvas, the index of the instance on top at each pixel
    (−1: background), and the class index (0-based) of each instance, in the order painted."""
    background = _background(rng, size)
    canvas = background.copy()
    owner = np.full((size, size), -1, np.int64)
    visible = np.zeros(0, np.int64)  # visible pixels of each instance so far
    colours: list[np.ndarray] = []
    classes: list[int] = []
    for _ in range(count):
        k = int(rng.integers(len(shapes)))
        for _ in range(PLACEMENT_TRIES):
            side = sides[k][rng.integers(len(sides[k]))]
            template = _template(shapes[k], side, int(rng.integers(4)))
            x0, y0 = rng.integers(0, size - side + 1, size=2)
            window = owner[y0:y0 + side, x0:x0 + side]
            below = window[template]
            hidden = np.bincount(below[below >= 0], minlength=len(visible))
            if (visible - hidden >= MIN_VISIBLE).all():
                break
        else:
            continue  # every placement would bury an earlier shape: leave this one out
        near = np.unique(owner[max(y0 - 1, 0):y0 + side + 1, max(x0 - 1, 0):x0 + side + 1])
        under = background[:, y0:y0 + side, x0:x0 + side][:, template].mean(axis=1)
        colour = _contrasting_colour(rng, [under] + [colours[j] for j in near[near >= 0]])
        canvas[:, y0:y0 + side, x0:x0 + side][:, template] = colour[:, None]
        window[template] = len(classes)
        visible = np.append(visible - hidden, template.sum())
        colours.append(colour)
        classes.append(k)
    return canvas, owner, classes


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """c₀ + (c₁ − c₀) · t: a 3 × size × size float32 gradient, t from 0 to 1 across the image along a random
    direction."""
    start, end = rng.random(3, np.float32), rng.random(3, np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1  # pixel centres in (−1, 1)
    t = (dx * centres[None, :] + dy * centres[:, None]) / (2 * (abs(dx) + abs(dy))) + 0.5
    return start[:, None, None] + (end - start)[:, None, None] * t.astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, references: list[np.ndarray]) -> np.ndarray:
    """A colour uniform in [0, 1]³ whose mean absolute difference from every reference is above MIN_CONTRAST: the
    first such of up to 4 × COLOUR_CANDIDATES draws, or if none is, the last draw's farthest from its nearest
    reference."""
    references = np.stack(references)
    for _ in range(4):
        candidates = rng.random((COLOUR_CANDIDATES, 3), np.float32)
        contrast = np.abs(candidates[:, None] - references[None]).mean(axis=2).min(axis=1)
        enough = contrast > MIN_CONTRAST
        if enough.any():
            return candidates[enough.argmax()]
    return candidates[contrast.argmax()]


@lru_cache(maxsize=None)
def _template(shape: int, side: int, orientation: int) -> np.ndarray:
    """The side × side bool mask of CLASSES[shape] in its bounding square: pixel centres strictly inside.
    ``orientation`` 0–3 turns a triangle's apex up, down, left or right; circles and squares ignore it."""
    centres = (np.arange(side) + 0.5) / side
    u, v = centres[None, :], centres[:, None]  # across, down
    if CLASSES[shape] == "circle":
        mask = (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.25
    elif CLASSES[shape] == "square":
        mask = np.ones((side, side), bool)
    else:
        across, down = (u, v) if orientation < 2 else (v, u)  # apex up/down, or left/right
        down = down if orientation % 2 == 0 else 1 - down
        mask = np.abs(across - 0.5) < down / 2
    mask.setflags(write=False)
    return mask


@lru_cache(maxsize=None)
def _sides(shape: int, min_size: int, max_size: int) -> tuple[int, ...]:
    """The sides in min_size … max_size at which CLASSES[shape] has at least MIN_VISIBLE pixels."""
    return tuple(side for side in range(min_size, max_size + 1) if _template(shape, side, 0).sum() >= MIN_VISIBLE)


def _tight_boxes(instances: np.ndarray) -> np.ndarray:
    """M × 4 float32 (x1, y1, x2, y2) of M non-empty H × W masks: the tightest box, x2 and y2 exclusive."""
    rows, cols = instances.any(axis=2), instances.any(axis=1)
    height, width = instances.shape[1:]
    box = np.stack([cols.argmax(1), rows.argmax(1), width - cols[:, ::-1].argmax(1), height - rows[:, ::-1].argmax(1)],
                   axis=1)
    return box.astype(np.float32).reshape(-1, 4)
