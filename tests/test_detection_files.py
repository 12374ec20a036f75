"""Segmentation and detection files: Pascal VOC folders (masks, XML boxes) and COCO instances JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ptlab.data.detection_files import (Sample, coco_detection, mask_classes, read_mask, voc_detection,
                                        voc_segmentation)
from ptlab.errors import ConfigError

CARVE = dict(val_fraction=0.1, test_fraction=0.2, split_seed=0)
TRAIN = [f"2007_{i:06d}" for i in range(10)]
VAL = ["2008_000001", "2008_000002", "2008_000003"]


def refused(match: str, call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError, match=match) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def jpeg(path: Path, size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 60, 30)).save(path, "JPEG")


def palette_png(path: Path, values: np.ndarray) -> None:
    """A VOC-style mask: mode "P", the pixel values the class indices, with a colour palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(values.astype(np.uint8), mode="P")
    image.putpalette([c for k in range(256) for c in ((k * 37) % 256, (k * 91) % 256, (k * 53) % 256)])
    image.save(path)


def mask_values(k: int) -> np.ndarray:
    """8 × 8 class indices of mask ``k``: background, class 1 + k % 3 in a square, a 255 border line."""
    values = np.zeros((8, 8), dtype=np.uint8)
    values[2:5, 2:5] = 1 + k % 3
    values[6, :] = 255
    return values


def write_list(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def voc_seg(folder: Path, train: list[str] = TRAIN, val: list[str] | None = VAL) -> Path:
    """A VOC year folder with JPEGImages, SegmentationClass and ImageSets/Segmentation lists."""
    for k, i in enumerate(train + (val or [])):
        jpeg(folder / "JPEGImages" / f"{i}.jpg")
        palette_png(folder / "SegmentationClass" / f"{i}.png", mask_values(k))
    write_list(folder / "ImageSets" / "Segmentation" / "train.txt", train)
    if val is not None:
        write_list(folder / "ImageSets" / "Segmentation" / "val.txt", val)
    return folder


def ids_of(samples: list[Sample]) -> list[str]:
    return [sample.image.stem for sample in samples]


# --- Pascal VOC segmentation -------------------------------------------------------------------


def test_voc_segmentation_reads_train_and_val_lists_and_carves_test_from_train(tmp_path: Path) -> None:
    folder = voc_seg(tmp_path / "VOC2012")
    splits = voc_segmentation(str(folder), **CARVE)
    assert ids_of(splits["val"]) == VAL
    assert len(splits["test"]) == 2 and len(splits["train"]) == 8  # 0.2 of the 10 train IDs
    assert sorted(ids_of(splits["train"]) + ids_of(splits["test"])) == TRAIN
    for split in ("train", "test"):  # each in the order of train.txt
        assert ids_of(splits[split]) == sorted(ids_of(splits[split]), key=TRAIN.index)
    first = splits["val"][0]
    assert first.image == folder / "JPEGImages" / f"{VAL[0]}.jpg"
    assert first.mask == folder / "SegmentationClass" / f"{VAL[0]}.png"
    assert first.boxes is None and first.labels is None
    assert voc_segmentation(str(folder), **CARVE) == splits  # the seed decides
    others = [voc_segmentation(str(folder), **(CARVE | {"split_seed": seed}))["test"] for seed in range(1, 6)]
    assert any(ids_of(test) != ids_of(splits["test"]) for test in others)


def test_voc_segmentation_without_val_list_carves_val_too(tmp_path: Path) -> None:
    folder = voc_seg(tmp_path / "VOC2012", val=None)
    splits = voc_segmentation(str(folder), **CARVE)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert sorted(sum((ids_of(rows) for rows in splits.values()), [])) == TRAIN


def test_voc_segmentation_root_may_be_the_vocdevkit_folder_or_the_one_above_it(tmp_path: Path) -> None:
    devkit = tmp_path / "VOCdevkit"
    voc_seg(devkit / "VOC2007", train=TRAIN[:5], val=VAL[:1])
    folder = voc_seg(devkit / "VOC2012")
    direct = voc_segmentation(str(folder), **CARVE)
    assert voc_segmentation(str(devkit), **CARVE) == direct  # VOC2012 is looked in first
    assert voc_segmentation(str(tmp_path), **CARVE) == direct  # torchvision's root/VOCdevkit/VOC2012
    assert direct["val"][0].image.parent.parent == folder


def test_read_mask_returns_class_indices_and_keeps_255(tmp_path: Path) -> None:
    values = mask_values(1)
    palette_png(tmp_path / "m.png", values)
    mask = read_mask(tmp_path / "m.png", "data.root")
    assert mask.dtype == torch.int64 and mask.shape == (8, 8)
    assert torch.equal(mask, torch.from_numpy(values.astype(np.int64)))
    assert set(mask.unique().tolist()) == {0, 2, 255}  # the indices, not palette colours


def test_mask_classes_is_one_plus_the_largest_index_ignoring_255(tmp_path: Path) -> None:
    splits = voc_segmentation(str(voc_seg(tmp_path / "VOC2012")), **CARVE)
    assert mask_classes(splits["train"] + splits["val"], "data.root") == 4  # indices 0..3, and 255
    palette_png(tmp_path / "one.png", mask_values(0))
    assert mask_classes([Sample(tmp_path / "x.jpg", mask=tmp_path / "one.png")], "data.root") == 2


def test_rgb_mask_is_refused_naming_data_root_and_palette(tmp_path: Path) -> None:
    folder = voc_seg(tmp_path / "VOC2012")
    rgb = folder / "SegmentationClass" / f"{TRAIN[3]}.png"
    Image.fromarray(np.stack([mask_values(0) * 60] * 3, axis=-1)).save(rgb)
    message = refused(r"^data\.root: .*palette \(P-mode\) images of class indices", voc_segmentation, str(folder),
                      **CARVE)
    assert str(rgb) in message and "RGB" in message
    refused(r"^data\.mask: .*RGB image.*palette", read_mask, rgb, "data.mask")


def test_voc_segmentation_missing_image_or_mask_names_the_first_and_how_many(tmp_path: Path) -> None:
    folder = voc_seg(tmp_path / "VOC2012")
    (folder / "JPEGImages" / f"{TRAIN[2]}.jpg").unlink()
    (folder / "SegmentationClass" / f"{VAL[1]}.png").unlink()
    message = refused(r"^data\.root: 2 of the 13 image IDs", voc_segmentation, str(folder), **CARVE)
    assert str(folder / "JPEGImages" / f"{TRAIN[2]}.jpg") in message


def test_voc_segmentation_folder_without_its_parts_is_refused_naming_data_root(tmp_path: Path) -> None:
    refused(r"^data\.root: .* does not exist", voc_segmentation, str(tmp_path / "nowhere"), **CARVE)
    folder = voc_seg(tmp_path / "VOC2012")
    (folder / "ImageSets" / "Segmentation" / "train.txt").unlink()
    refused(r"^data\.root: .* has no ImageSets/Segmentation/train\.txt", voc_segmentation, str(folder), **CARVE)
    write_list(folder / "ImageSets" / "Segmentation" / "train.txt", [])
    refused(r"^data\.root: .*train\.txt lists no image ID", voc_segmentation, str(folder), **CARVE)


# --- Pascal VOC detection ----------------------------------------------------------------------


def voc_xml(path: Path, objects: list[tuple[str, int, tuple[int, int, int, int]]], filename: str | None) -> None:
    """A VOC annotation: ``objects`` of (name, difficult, (xmin, ymin, xmax, ymax)) in 1-based inclusive pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = ["<annotation><folder>VOC2012</folder>"]
    if filename:
        parts.append(f"<filename>{filename}</filename>")
    parts.append("<size><width>500</width><height>400</height><depth>3</depth></size>")
    for name, difficult, (xmin, ymin, xmax, ymax) in objects:
        parts.append(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                     f"<difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
                     f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
    path.write_text("".join(parts) + "</annotation>")


DET_TRAIN = [f"2009_{i:06d}" for i in range(6)]
DET_VAL = ["2010_000001"]


def voc_det(folder: Path) -> Path:
    """A VOC year folder for detection: the first training image holds a dog, a difficult person and a cat."""
    for k, i in enumerate(DET_TRAIN + DET_VAL):
        jpeg(folder / "JPEGImages" / f"{i}.jpg")
        objects = [("dog", 0, (48, 240, 195, 371)), ("person", 1, (8, 12, 352, 498)), ("cat", 0, (1, 1, 10, 20))]
        voc_xml(folder / "Annotations" / f"{i}.xml", objects if k == 0 else [("dog", 0, (2, 3, 4 + k, 5 + k))],
                filename=f"{i}.jpg" if k != 1 else None)  # the second has no <filename>: ID.jpg
    write_list(folder / "ImageSets" / "Main" / "train.txt", DET_TRAIN)
    write_list(folder / "ImageSets" / "Main" / "val.txt", DET_VAL)
    return folder


def by_id(splits: dict[str, list[Sample]]) -> dict[str, Sample]:
    return {sample.image.stem: sample for rows in splits.values() for sample in rows}


def test_voc_detection_converts_1_based_inclusive_boxes_to_0_based_xyxy(tmp_path: Path) -> None:
    splits, names = voc_detection(str(voc_det(tmp_path / "VOC2012")), **CARVE)
    assert names == ["cat", "dog", "person"]  # sorted; ids 1, 2, 3
    first = by_id(splits)[DET_TRAIN[0]]
    assert first.boxes == [(47.0, 239.0, 195.0, 371.0), (0.0, 0.0, 10.0, 20.0)]  # xmin - 1, ymin - 1, xmax, ymax
    assert first.labels == [2, 1]
    assert by_id(splits)[DET_TRAIN[3]].boxes == [(1.0, 2.0, 7.0, 8.0)]
    assert first.mask is None


def test_voc_detection_drops_difficult_objects_unless_asked_to_keep_them(tmp_path: Path) -> None:
    folder = voc_det(tmp_path / "VOC2012")
    dropped, names = voc_detection(str(folder), **CARVE)
    kept, kept_names = voc_detection(str(folder), **CARVE, keep_difficult=True)
    assert names == kept_names == ["cat", "dog", "person"]  # a class seen only as difficult keeps its id
    assert 3 not in by_id(dropped)[DET_TRAIN[0]].labels
    first = by_id(kept)[DET_TRAIN[0]]
    assert first.labels == [2, 3, 1] and first.boxes[1] == (7.0, 11.0, 352.0, 498.0)


def test_voc_detection_splits_images_and_filename_fallback(tmp_path: Path) -> None:
    folder = voc_det(tmp_path / "VOC2012")
    splits, _ = voc_detection(str(tmp_path), **CARVE)  # the folder above: root/VOC2012
    assert ids_of(splits["val"]) == DET_VAL
    assert [len(splits[s]) for s in ("train", "test")] == [4, 2]
    assert sorted(ids_of(splits["train"]) + ids_of(splits["test"])) == DET_TRAIN
    assert by_id(splits)[DET_TRAIN[1]].image == folder / "JPEGImages" / f"{DET_TRAIN[1]}.jpg"  # no <filename>


def test_voc_detection_malformed_xml_names_the_file(tmp_path: Path) -> None:
    folder = voc_det(tmp_path / "VOC2012")
    broken = folder / "Annotations" / f"{DET_TRAIN[2]}.xml"
    broken.write_text("<annotation><object><name>dog</name></annotation>")
    message = refused(r"^data\.root: .* is not well-formed XML", voc_detection, str(folder), **CARVE)
    assert str(broken) in message and "fix it" in message


def test_voc_detection_box_with_xmax_not_above_xmin_names_the_file(tmp_path: Path) -> None:
    folder = voc_det(tmp_path / "VOC2012")
    bad = folder / "Annotations" / f"{DET_VAL[0]}.xml"
    voc_xml(bad, [("dog", 0, (50, 10, 50, 20))], filename=f"{DET_VAL[0]}.jpg")
    message = refused(r"^data\.root: .* has xmax 50 <= xmin 50; fix the box", voc_detection, str(folder), **CARVE)
    assert str(bad) in message
    voc_xml(bad, [("dog", 0, (5, 30, 50, 20))], filename=f"{DET_VAL[0]}.jpg")
    refused(r"^data\.root: .* has ymax 20 <= ymin 30", voc_detection, str(folder), **CARVE)


def test_voc_detection_missing_annotation_or_image_names_the_first_and_how_many(tmp_path: Path) -> None:
    folder = voc_det(tmp_path / "VOC2012")
    (folder / "Annotations" / f"{DET_TRAIN[4]}.xml").unlink()
    (folder / "JPEGImages" / f"{DET_VAL[0]}.jpg").unlink()
    message = refused(r"^data\.root: 2 of the 7 image IDs", voc_detection, str(folder), **CARVE)
    assert str(folder / "Annotations" / f"{DET_TRAIN[4]}.xml") in message


# --- COCO instances JSON -----------------------------------------------------------------------


def coco(tmp_path: Path, n: int = 6) -> tuple[Path, dict]:
    """An image folder of ``n`` images and an instances dict: categories 18 (dog) and 1 (person), listed out of order.

    Image 10 has a person box and a dog box, 11 only a crowd annotation, 12 none; the others one dog each.
    """
    folder = tmp_path / "train2017"
    images = [{"id": 10 + k, "file_name": f"{k:012d}.jpg", "width": 8, "height": 8} for k in range(n)]
    for image in images:
        jpeg(folder / image["file_name"])
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0, "area": 12},
        {"id": 2, "image_id": 10, "category_id": 18, "bbox": [0.5, 0.25, 2, 2.5], "iscrowd": 0, "area": 5},
        {"id": 3, "image_id": 11, "category_id": 18, "bbox": [0, 0, 8, 8], "iscrowd": 1, "area": 64},
    ] + [{"id": 4 + k, "image_id": 13 + k, "category_id": 18, "bbox": [1, 1, 2, 2]} for k in range(n - 3)]
    return folder, {"images": images, "annotations": annotations,
                    "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}]}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_coco_boxes_become_xyxy_and_categories_contiguous_ids(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    splits, names = coco_detection(str(folder), str(write_json(tmp_path / "instances.json", data)), None, **CARVE)
    assert names == ["person", "dog"]  # ascending COCO id: 1 → 1, 18 → 2
    images = by_id(splits)
    first = images[f"{0:012d}"]
    assert first.image == folder / f"{0:012d}.jpg"
    assert first.boxes == [(1.0, 2.0, 4.0, 6.0), (0.5, 0.25, 2.5, 2.75)]  # x, y, x + w, y + h
    assert first.labels == [1, 2]
    assert first.mask is None


def test_coco_crowd_annotations_are_dropped_and_images_without_boxes_kept(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    splits, _ = coco_detection(str(folder), str(write_json(tmp_path / "instances.json", data)), None, **CARVE)
    images = by_id(splits)
    assert len(images) == 6
    assert images[f"{1:012d}"].boxes == [] and images[f"{1:012d}"].labels == []  # its only box is a crowd
    assert images[f"{2:012d}"].boxes == [] and images[f"{2:012d}"].labels == []  # no annotation at all


def test_coco_splits_carve_val_and_test_or_take_val_annotations(tmp_path: Path) -> None:
    folder, data = coco(tmp_path, n=10)
    train_json = write_json(tmp_path / "instances.json", data)
    splits, _ = coco_detection(str(folder), str(train_json), None, **CARVE)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    order = [image["file_name"][:-4] for image in data["images"]]
    assert sorted(sum((ids_of(rows) for rows in splits.values()), [])) == order
    assert ids_of(splits["train"]) == sorted(ids_of(splits["train"]), key=order.index)  # file order
    assert coco_detection(str(folder), str(train_json), None, **CARVE) == (splits, ["person", "dog"])

    val = {"images": [{"id": 1, "file_name": "v.jpg"}, {"id": 2, "file_name": "w.jpg"}],
           "annotations": [{"image_id": 2, "category_id": 18, "bbox": [2, 2, 1, 1]}],
           "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
    jpeg(folder / "v.jpg")
    jpeg(folder / "w.jpg")
    given, _ = coco_detection(str(folder), str(train_json), str(write_json(tmp_path / "val.json", val)), **CARVE)
    assert ids_of(given["val"]) == ["v", "w"] and given["val"][1].boxes == [(2.0, 2.0, 3.0, 3.0)]
    assert given["val"][1].labels == [2]
    assert [len(given[s]) for s in ("train", "test")] == [8, 2]  # test still carved out of train


def test_coco_boxes_without_area_are_dropped_with_one_warning(tmp_path: Path, caplog) -> None:
    folder, data = coco(tmp_path)
    data["annotations"][3]["bbox"] = [1, 1, 0, 2]
    with caplog.at_level(logging.WARNING, logger="ptlab"):
        splits, _ = coco_detection(str(folder), str(write_json(tmp_path / "i.json", data)), None, **CARVE)
    assert by_id(splits)[f"{3:012d}"].boxes == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 of the 6 annotations" in warnings[0]


def test_coco_file_that_is_not_json_or_lacks_keys_names_data_annotations(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    refused(r"^data\.annotations: .* is not JSON \(line 1", coco_detection, str(folder), str(bad), None, **CARVE)
    del data["categories"]
    message = refused(r"^data\.annotations: .* has no categories list", coco_detection, str(folder),
                      str(write_json(bad, data)), None, **CARVE)
    assert "instances" in message
    data["categories"] = [{"id": 1}]
    refused(r"^data\.annotations: .*categories\[0\] has no name", coco_detection, str(folder),
            str(write_json(bad, data)), None, **CARVE)
    bad.write_text("images: []")
    refused(r"^data\.val_annotations: .* is not JSON", coco_detection, str(folder),
            str(write_json(tmp_path / "ok.json", coco(tmp_path)[1])), str(bad), **CARVE)


def test_coco_annotation_with_unknown_image_id_is_refused(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    data["annotations"][1]["image_id"] = 99
    refused(r"^data\.annotations: .*annotations\[1\] has image_id 99, which is not among its images",
            coco_detection, str(folder), str(write_json(tmp_path / "i.json", data)), None, **CARVE)


def test_coco_annotation_with_unknown_category_id_is_refused(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    data["annotations"][0]["category_id"] = 2
    refused(r"^data\.annotations: .*annotations\[0\] has category_id 2, which is not among its categories \(1, 18\)",
            coco_detection, str(folder), str(write_json(tmp_path / "i.json", data)), None, **CARVE)


def test_coco_missing_image_files_name_how_many_and_the_first(tmp_path: Path) -> None:
    folder, data = coco(tmp_path)
    (folder / f"{2:012d}.jpg").unlink()
    (folder / f"{4:012d}.jpg").unlink()
    message = refused(r"^data\.images: 2 of the 6 images listed in the annotations are not in", coco_detection,
                      str(folder), str(write_json(tmp_path / "i.json", data)), None, **CARVE)
    assert str(folder / f"{2:012d}.jpg") in message
    refused(r"^data\.images: .* does not exist", coco_detection, str(tmp_path / "nowhere"),
            str(tmp_path / "i.json"), None, **CARVE)
