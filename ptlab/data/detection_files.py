"""Images with masks or boxes from the user's files, for the ``segment`` and ``detect`` tasks.

Each reader returns ``{"train": [...], "val": [...], "test": [...]}``, each a list of
:class:`Sample` records (file paths, boxes and class ids; nothing is decoded but
the headers looked at to check the files); resizing, batching and augmentation
happen elsewhere. The detection readers also return the class names, in id order
(name ``i`` is class id ``i + 1``; id 0 is the background).

Three layouts:

- :func:`voc_segmentation`, Pascal VOC's segmentation files under ``data.root``:
  ``JPEGImages/ID.jpg``, ``SegmentationClass/ID.png`` (palette, "P"-mode PNGs whose
  pixel values are the class indices, 255 the border to ignore) and
  ``ImageSets/Segmentation/train.txt`` and ``val.txt`` (one ID a line).
- :func:`voc_detection`, Pascal VOC's detection files: ``Annotations/ID.xml``, one
  ``<object>`` per box with its ``<name>``, ``<difficult>`` and ``<bndbox>`` (1-based,
  inclusive ``xmin ymin xmax ymax``), the image ``JPEGImages/<filename>`` (the XML's
  ``<filename>``, else ``ID.jpg``), and ``ImageSets/Main/train.txt`` and ``val.txt``.
  The classes are the sorted names of all objects in the annotations read (difficult
  ones too, so that ids do not depend on ``keep_difficult``).
- :func:`coco_detection`, a COCO instances JSON file (``instances_train2017.json``:
  ``images``, ``annotations`` with ``bbox: [x, y, width, height]`` and ``iscrowd``,
  ``categories``) and the folder of its images. Category ids become 1..K in
  ascending order of their COCO id; crowd annotations are dropped.

For both VOC layouts ``data.root`` is the folder that holds ``JPEGImages`` or one
above it: the ``VOCdevkit`` folder (then ``VOC2012``, else ``VOC2007``, is used), or
the folder that holds ``VOCdevkit`` (torchvision's download layout). VOC's test
labels are not public, so test is always carved out of train; so is val when there
is no ``val.txt`` (COCO: when ``data.val_annotations`` is not given). A carved split
is ``data.{split}_fraction`` of the training images (test first, then val), drawn
with ``split_seed`` (:func:`ptlab.data.loaders.carve_splits`, not stratified); every
split keeps the order of its list or JSON file. Boxes are ``(x1, y1, x2, y2)`` in
0-based pixels, x2 and y2 exclusive; an image without boxes is kept, with empty
lists, as detection metrics need them.
"""

from __future__ import annotations

import json
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import torch

from ptlab.data.files import read_text_file
from ptlab.data.loaders import carve_splits
from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")

Box = tuple[float, float, float, float]


@dataclass
class Sample:
    """One image and its labels: a mask (segmentation) or boxes with their class ids (detection)."""

    image: Path  # the image file
    mask: Optional[Path] = None  # segmentation: the class-index PNG
    boxes: Optional[list[Box]] = None  # detection: (x1, y1, x2, y2) pixels, xyxy, x2 and y2 exclusive
    labels: Optional[list[int]] = None  # detection: class ids 1..K (0 = background)


Splits = dict[str, list[Sample]]

SPLITS = ("train", "val", "test")
VOC_YEARS = ("VOC2012", "VOC2007")  # under a VOCdevkit folder, the first present is used
MASK_MODES = ("P", "L")  # 8-bit images whose pixel values are the class indices
IGNORE = 255  # VOC's border / "void" label


def carve(train: list[Sample], given: Mapping[str, list[Sample]], val_fraction: float, test_fraction: float,
          split_seed: int) -> Splits:
    """The three splits: those in ``given`` as they are, the others carved out of ``train`` (the rest is "train")."""
    fractions = {split: fraction for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if split not in given}
    if not fractions:
        return {"train": list(train), "val": list(given["val"]), "test": list(given["test"])}
    index = carve_splits(np.arange(len(train)), fractions, split_seed, stratify=False)
    splits = {split: [train[i] for i in np.sort(rows)] for split, rows in index.items()}
    return {split: splits[split] if split in splits else list(given[split]) for split in SPLITS}


# --- Pascal VOC: the folder and its image-set lists --------------------------------------------


def _voc_folder(root: str, needs: tuple[str, ...]) -> Path:
    """The VOC year folder at or under ``root`` (the first that holds JPEGImages), refused unless it has ``needs``."""
    base = Path(root).expanduser()
    holds = ", ".join(needs[:-1]) + f" and {needs[-1]}"
    fix = f"give the Pascal VOC folder that holds {holds} (VOC2012, or the VOCdevkit folder above it)"
    if not base.exists():
        raise ConfigError(f"data.root: {base} does not exist; {fix}")
    if not base.is_dir():
        raise ConfigError(f"data.root: {base} is a file, not a folder; {fix}")
    folder = base
    if not (base / "JPEGImages").is_dir():
        nested = [base / year for year in VOC_YEARS] + [base / "VOCdevkit" / year for year in VOC_YEARS]
        folder = next((path for path in nested if path.is_dir()), base)
    absent = [need for need in needs if not (folder / need).exists()]
    if absent:
        raise ConfigError(f"data.root: {folder} has no {', '.join(absent)}; {fix}")
    return folder


def _ids(path: Path) -> list[str]:
    """The image IDs of a VOC image-set list: the first word of each non-blank line."""
    ids = [line.split()[0] for line in read_text_file(path, "data.root", "image-set list").split("\n")
           if line.strip()]
    if not ids:
        raise ConfigError(f"data.root: {path} lists no image ID; give one image ID (a file name without its "
                          "extension) a line")
    return ids


def _lists(folder: Path, sets: str) -> dict[str, list[str]]:
    """The IDs of train.txt and, when there is one, val.txt in ``folder/ImageSets/{sets}``."""
    lists = folder / "ImageSets" / sets
    return {split: _ids(lists / f"{split}.txt") for split in ("train", "val") if (lists / f"{split}.txt").exists()}


def _refuse_missing(missing: list[Path], total: int, folder: Path, sets: str) -> None:
    if missing:
        raise ConfigError(f"data.root: {len(missing)} of the {total} image IDs listed in "
                          f"{folder / 'ImageSets' / sets} lack a file, the first {missing[0]}; put the files there, "
                          "or remove their IDs from train.txt and val.txt")


# --- Pascal VOC segmentation -------------------------------------------------------------------


def voc_segmentation(root: str, val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    """Pascal VOC segmentation: ``JPEGImages/ID.jpg`` with ``SegmentationClass/ID.png``, IDs from ImageSets."""
    folder = _voc_folder(root, ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation/train.txt"))
    lists = _lists(folder, "Segmentation")
    samples = {split: [Sample(folder / "JPEGImages" / f"{i}.jpg", mask=folder / "SegmentationClass" / f"{i}.png")
                       for i in ids] for split, ids in lists.items()}
    every = [sample for split in samples.values() for sample in split]
    missing = [path for sample in every for path in (sample.image, sample.mask) if not path.is_file()]
    _refuse_missing(missing, len(every), folder, "Segmentation")
    for sample in every:  # the PNG headers only: P-mode masks, not colour renderings
        _mask_image(sample.mask, "data.root").close()
    given = {split: rows for split, rows in samples.items() if split != "train"}
    return carve(samples["train"], given, val_fraction, test_fraction, split_seed)


def _mask_image(path: Path, key: str):
    """``path`` opened (lazily) with PIL, refused unless it is an 8-bit image of class indices."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise ConfigError(f"{key}: cannot read the mask {path} as an image ({err}); give palette (P-mode) PNGs "
                          "of class indices") from None
    if image.mode not in MASK_MODES:
        image.close()
        raise ConfigError(f"{key}: the mask {path} is a {image.mode} image; the SegmentationClass PNGs must be "
                          "palette (P-mode) images of class indices (pixel value = class, 255 = border), as VOC's "
                          "own are, not colour renderings")
    return image


def _mask_array(path: Path, key: str) -> np.ndarray:
    with _mask_image(path, key) as image:
        try:
            return np.array(image, dtype=np.uint8)
        except OSError as err:  # a truncated or corrupt PNG fails only when its pixels are read
            raise ConfigError(f"{key}: cannot read the pixels of the mask {path} ({err}); replace the file") from None


def read_mask(path: Path, key: str) -> torch.Tensor:
    """The H × W int64 class indices of a palette ("P" mode) or 8-bit grey PNG; 255 (border / ignore) stays 255."""
    return torch.from_numpy(_mask_array(Path(path), key).astype(np.int64))


def mask_classes(samples: Iterable[Sample], key: str) -> int:
    """The number of classes in the masks of ``samples``: 1 + the largest index present (255 ignored)."""
    largest, seen = -1, False
    for sample in samples:
        if sample.mask is None:
            raise ConfigError(f"{key}: {sample.image} has no mask; give a mask for every image")
        seen = True
        values = _mask_array(sample.mask, key)
        values = values[values != IGNORE]
        if values.size:
            largest = max(largest, int(values.max()))
    if not seen:
        raise ConfigError(f"{key}: there are no images to count the mask classes of; give at least one image")
    if largest < 0:
        raise ConfigError(f"{key}: every mask pixel is 255 (the border label); give masks with class indices")
    return largest + 1


# --- Pascal VOC detection ----------------------------------------------------------------------


def voc_detection(root: str, val_fraction: float, test_fraction: float, split_seed: int,
                  keep_difficult: bool = False) -> tuple[Splits, list[str]]:
    """Pascal VOC detection: ``Annotations/ID.xml`` and their images, IDs from ImageSets/Main; with class names."""
    folder = _voc_folder(root, ("JPEGImages", "Annotations", "ImageSets/Main/train.txt"))
    lists = _lists(folder, "Main")
    parsed: dict[str, list[tuple[Path, list[tuple[str, Box, bool]]]]] = {split: [] for split in lists}
    missing: list[Path] = []
    for split, ids in lists.items():
        for i in ids:
            xml = folder / "Annotations" / f"{i}.xml"
            if not xml.is_file():
                missing.append(xml)
                continue
            filename, objects = _voc_objects(xml)
            image = folder / "JPEGImages" / (filename or f"{i}.jpg")
            if not image.is_file() and (folder / "JPEGImages" / f"{i}.jpg").is_file():
                image = folder / "JPEGImages" / f"{i}.jpg"  # a <filename> that went stale when the file was renamed
            if not image.is_file():
                missing.append(image)
            parsed[split].append((image, objects))
    _refuse_missing(missing, sum(len(ids) for ids in lists.values()), folder, "Main")
    names = sorted({name for rows in parsed.values() for _, objects in rows for name, _, _ in objects})
    if not names:
        raise ConfigError(f"data.root: the annotations in {folder / 'Annotations'} hold no <object>; give VOC XML "
                          "files with an <object> (<name>, <bndbox>) per box")
    ids = {name: k + 1 for k, name in enumerate(names)}
    samples = {split: [Sample(image, boxes=[box for _, box, difficult in objects if keep_difficult or not difficult],
                              labels=[ids[name] for name, _, difficult in objects if keep_difficult or not difficult])
                       for image, objects in rows] for split, rows in parsed.items()}
    given = {split: rows for split, rows in samples.items() if split != "train"}
    return carve(samples["train"], given, val_fraction, test_fraction, split_seed), names


def _voc_objects(path: Path) -> tuple[Optional[str], list[tuple[str, Box, bool]]]:
    """The ``<filename>`` (None if absent) and the (name, 0-based xyxy box, difficult) of each object of a VOC XML."""
    try:
        annotation = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ConfigError(f"data.root: {path} is not well-formed XML ({err}); fix it or remove its ID from the "
                          "ImageSets lists") from None
    except OSError as err:
        raise ConfigError(f"data.root: cannot read {path} ({err.strerror}); give a VOC XML file you can read") from None
    filename = (annotation.findtext("filename") or "").strip() or None
    objects = []
    for number, obj in enumerate(annotation.findall("object"), start=1):
        where = f"data.root: {path} object {number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise ConfigError(f"{where} has no <name>; give each <object> the <name> of its class")
        difficult = _number(obj.findtext("difficult") or "0", f"{where} ({name}) <difficult>", "0 or 1")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise ConfigError(f"{where} ({name}) has no <bndbox>; give it <xmin>, <ymin>, <xmax> and <ymax>")
        xmin, ymin, xmax, ymax = (_number(bndbox.findtext(tag), f"{where} ({name}) <{tag}>", "a pixel coordinate")
                                  for tag in ("xmin", "ymin", "xmax", "ymax"))
        for low, high, axis in ((xmin, xmax, "x"), (ymin, ymax, "y")):
            if high <= low:
                raise ConfigError(f"{where} ({name}) has {axis}max {high:g} <= {axis}min {low:g}; fix the box "
                                  f"(1-based pixel coordinates, {axis}min < {axis}max) or remove the object")
        objects.append((name, (xmin - 1, ymin - 1, xmax, ymax), bool(difficult)))
    return filename, objects


def _number(text: Optional[str], where: str, want: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = "is missing" if text is None or not text.strip() else f"is {text.strip()!r}, not a number"
        raise ConfigError(f"{where} {shown}; give {want}")
    return value


# --- COCO instances JSON -----------------------------------------------------------------------


def coco_detection(images: str, annotations: str, val_annotations: str | None, val_fraction: float,
                   test_fraction: float, split_seed: int) -> tuple[Splits, list[str]]:
    """A COCO instances JSON file and its image folder (val from ``val_annotations`` if given); with class names."""
    folder = Path(images).expanduser()
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"data.images: {folder} {state}; give the folder that holds the images of "
                          "data.annotations (train2017)")
    train_file = _coco_file(annotations, "data.annotations")
    categories = _categories(train_file, "data.annotations")
    names = [name for _, name in sorted(categories.items())]
    ids = {coco_id: k + 1 for k, coco_id in enumerate(sorted(categories))}
    samples = {"train": _coco_samples(train_file, "data.annotations", folder, categories, ids)}
    if val_annotations:
        val_file = _coco_file(val_annotations, "data.val_annotations")
        val_categories = _categories(val_file, "data.val_annotations")
        for coco_id, name in val_categories.items():
            if categories.get(coco_id, name) != name:
                raise ConfigError(f"data.val_annotations: category {coco_id} is {name!r} there but "
                                  f"{categories[coco_id]!r} in data.annotations; give both files the same categories")
        samples["val"] = _coco_samples(val_file, "data.val_annotations", folder, val_categories, ids)
    missing = [sample.image for rows in samples.values() for sample in rows if not sample.image.is_file()]
    if missing:
        total = sum(len(rows) for rows in samples.values())
        raise ConfigError(f"data.images: {len(missing)} of the {total} images listed in the annotations are not "
                          f"in {folder}, the first {missing[0]}; give the folder that holds them")
    given = {split: rows for split, rows in samples.items() if split != "train"}
    return carve(samples["train"], given, val_fraction, test_fraction, split_seed), names


def _coco_file(path: str, key: str) -> tuple[Path, dict[str, Any]]:
    """The path and contents of a COCO instances JSON file, refused unless it has images, annotations, categories."""
    file = Path(path).expanduser()
    text = read_text_file(file, key, "COCO instances JSON file", universal_newlines=False)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{key}: {file} is not JSON (line {err.lineno} column {err.colno}: {err.msg}); give a "
                          "COCO instances JSON file (instances_train2017.json)") from None
    lacking = [part for part in ("images", "annotations", "categories")
               if not isinstance(data, dict) or not isinstance(data.get(part), list)]
    if lacking:
        raise ConfigError(f"{key}: {file} has no {' or '.join(lacking)} list; give a COCO instances JSON file "
                          "(instances_train2017.json: images, annotations and categories)")
    return file, data


def _entry(data: dict, part: str, index: int, file: Path, key: str, fields: tuple[str, ...]) -> dict:
    """``data[part][index]``, refused unless it is an object with ``fields``."""
    entry = data[part][index]
    lacking = [field for field in fields if not isinstance(entry, dict) or field not in entry]
    if lacking:
        raise ConfigError(f"{key}: {file} {part}[{index}] has no {', '.join(lacking)}; give every entry of {part} "
                          f"the keys {', '.join(fields)}")
    return entry


def _categories(coco: tuple[Path, dict], key: str) -> dict[Any, str]:
    """COCO category id → name."""
    file, data = coco
    categories: dict[Any, str] = {}
    for index in range(len(data["categories"])):
        entry = _entry(data, "categories", index, file, key, ("id", "name"))
        if not isinstance(entry["id"], int) or isinstance(entry["id"], bool):
            raise ConfigError(f"{key}: {file} categories[{index}] has id {entry['id']!r}; give each category an "
                              "integer id")
        if entry["id"] in categories:
            raise ConfigError(f"{key}: {file} has two categories with id {entry['id']}; give each its own id")
        categories[entry["id"]] = str(entry["name"])
    if not categories:
        raise ConfigError(f"{key}: {file} has no categories; give the classes of its boxes in \"categories\"")
    return categories


def _coco_samples(coco: tuple[Path, dict], key: str, folder: Path, categories: Mapping[Any, str],
                  ids: Mapping[Any, int]) -> list[Sample]:
    """One sample per entry of ``images``, in file order, with its non-crowd boxes and their class ids 1..K."""
    file, data = coco
    samples: dict[Any, Sample] = {}
    for index in range(len(data["images"])):
        entry = _entry(data, "images", index, file, key, ("id", "file_name"))
        if not isinstance(entry["id"], (int, str)) or entry["id"] in samples:
            problem = "is listed twice" if entry["id"] in samples else "is neither a number nor a string"
            raise ConfigError(f"{key}: {file} images[{index}] id {entry['id']!r} {problem}; give each image its "
                              "own id")
        samples[entry["id"]] = Sample(folder / str(entry["file_name"]), boxes=[], labels=[])
    if not samples:
        raise ConfigError(f"{key}: {file} lists no images; give a COCO instances JSON file with its images")
    degenerate = 0
    for index in range(len(data["annotations"])):
        entry = _entry(data, "annotations", index, file, key, ("image_id", "category_id", "bbox"))
        where = f"{key}: {file} annotations[{index}]"
        image_id, category_id, bbox = entry["image_id"], entry["category_id"], entry["bbox"]
        if not isinstance(image_id, (int, str)) or image_id not in samples:
            raise ConfigError(f"{where} has image_id {image_id!r}, which is not among its images; give the id of "
                              "an entry of \"images\"")
        if not isinstance(category_id, int) or isinstance(category_id, bool) or category_id not in categories:
            raise ConfigError(f"{where} has category_id {category_id!r}, which is not among its categories "
                              f"({', '.join(str(c) for c in sorted(categories))}); give one of those")
        if category_id not in ids:
            raise ConfigError(f"{where} has category_id {category_id}, which is not among the categories of "
                              "data.annotations; give both files the same categories")
        if entry.get("iscrowd"):
            continue
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in bbox)):
            raise ConfigError(f"{where} has bbox {bbox!r}; give [x, y, width, height] in pixels")
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            degenerate += 1
            continue
        sample = samples[image_id]
        sample.boxes.append((x, y, x + w, y + h))
        sample.labels.append(ids[category_id])
    if degenerate:
        log.warning("data: %d of the %d annotations of %s have no area (width or height <= 0) and are dropped",
                    degenerate, len(data["annotations"]), file)
    return list(samples.values())
