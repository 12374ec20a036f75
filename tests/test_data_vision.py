"""Image builders on tiny files in the real on-disk formats: MNIST IDX, CIFAR-10 python batches, image folders."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, read_metrics, run_ptlab
from ptlab.data.loaders import Batches, Data
from ptlab.data.vision import cifar10, fashion_mnist, image_folder, mnist
from ptlab.errors import ConfigError

CPU = torch.device("cpu")
IDX_FILES = {
    "train-images-idx3-ubyte": "train_x", "train-labels-idx1-ubyte": "train_y",
    "t10k-images-idx3-ubyte": "test_x", "t10k-labels-idx1-ubyte": "test_y",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, big-endian int32 sizes, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def labelled_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n grey 28×28 images, labels 0..9 in turn; every pixel of an image is 20 × its label (+ noise)."""
    rng = np.random.default_rng(n)
    labels = np.arange(n) % 10
    images = labels[:, None, None] * 20 + rng.integers(0, 5, (n, 28, 28))
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_idx_set(root: Path, folder: str, gz: bool, n_train: int = 60, n_test: int = 20) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = dict(zip(("train_x", "train_y"), labelled_images(n_train)))
    arrays.update(zip(("test_x", "test_y"), labelled_images(n_test)))
    for name, key in IDX_FILES.items():
        data = idx_bytes(arrays[key])
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)
    return raw


def cifar_batch(n: int, first_label: int = 0) -> dict:
    """A CIFAR-10 python batch: red grows along the width, green along the height, blue is 20 × the label."""
    labels = [(first_label + i) % 10 for i in range(n)]
    h, w = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    images = np.stack([np.stack([w * 7 + y, h * 7 + y, np.full((32, 32), 20 * y)]) for y in labels])
    return {"batch_label": "fake", "data": images.astype(np.uint8).reshape(n, 3072), "labels": labels,
            "filenames": [f"{i}.png" for i in range(n)]}


def write_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(cifar_batch(10, i), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(cifar_batch(10), protocol=2))
    return folder


def epoch(batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, label) of one pass, concatenated."""
    xs, ys = zip(*batches.batches())
    return torch.cat(xs), torch.cat(ys)


def grows_with_label(values: torch.Tensor, labels: torch.Tensor) -> bool:
    """Every value of a smaller label is below every value of a larger one: images and labels stay paired."""
    present = labels.unique().tolist()
    return all(values[labels == a].max() < values[labels == b].min() for a, b in zip(present, present[1:]))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("builder,folder", [(mnist, "MNIST"), (fashion_mnist, "FashionMNIST")])
def test_idx_sets_load_from_the_original_files(tmp_path: Path, builder, folder: str, gz: bool) -> None:
    write_idx_set(tmp_path, folder, gz)
    data = builder(root=str(tmp_path), val_fraction=0.2, batch_size=16, target_kind="classification",
                   device=CPU, seed=0)
    assert data.info == {"in_channels": 1, "image_size": 28, "num_classes": 10}
    x, y = data.train.tensors
    assert x.shape == (48, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert data.val.tensors[0].shape == (12, 1, 28, 28) and data.test.tensors[0].shape == (20, 1, 28, 28)
    assert set(data.val.tensors[1].tolist()) == set(range(10))  # stratified
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2  # training statistics
    for name in ("train", "val", "test"):
        x, y = epoch(getattr(data, name))
        assert grows_with_label(x.mean(dim=(1, 2, 3)), y)


def test_idx_val_split_is_carved_from_train_by_split_seed(tmp_path: Path) -> None:
    write_idx_set(tmp_path, "MNIST", gz=False)
    kwargs = dict(root=str(tmp_path), val_fraction=0.5, target_kind="classification", device=CPU, seed=0)
    first, again, other = mnist(**kwargs), mnist(**kwargs), mnist(split_seed=1, **kwargs)
    assert torch.equal(first.val.tensors[0], again.val.tensors[0])
    assert not torch.equal(first.val.tensors[0], other.val.tensors[0])
    assert torch.equal(first.test.tensors[1], other.test.tensors[1])  # test is the t10k file, in order
    assert np.bincount(first.val.tensors[1].numpy()).tolist() == [3] * 10  # stratified


def test_idx_files_that_are_not_idx(tmp_path: Path) -> None:
    raw = write_idx_set(tmp_path, "MNIST", gz=False)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    shapes = r"t10k images of shape \(20, 28, 28\) and labels of shape \(19,\)"
    with pytest.raises(ConfigError, match=rf"^data\.root: .* {shapes}"):
        mnist(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(20, np.uint8))[:-3])
    with pytest.raises(ConfigError, match=r"^data\.root: .*t10k-labels-idx1-ubyte is truncated"):
        mnist(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x1f\x8b not idx at all")
    with pytest.raises(ConfigError, match=r"^data\.root: .* is not an unsigned-byte IDX file"):
        mnist(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)


def test_idx_val_fraction_too_small_for_ten_classes(tmp_path: Path) -> None:
    write_idx_set(tmp_path, "MNIST", gz=False)
    with pytest.raises(ConfigError, match=r"^data\.val_fraction: cannot carve 0\.1 of 60 samples"):
        mnist(root=str(tmp_path), target_kind="classification", device=CPU, seed=0)


def test_cifar10_loads_the_python_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    data = cifar10(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)
    assert data.info == {"in_channels": 3, "image_size": 32, "num_classes": 10}
    x, y = data.train.tensors
    assert x.shape == (40, 3, 32, 32) and x.dtype == torch.float32 and len(y) == 40
    assert data.val.tensors[0].shape == (10, 3, 32, 32) and data.test.tensors[0].shape == (10, 3, 32, 32)
    for name in ("train", "val", "test"):
        x, y = getattr(data, name).tensors
        assert (x[:, 0, :, 1:] > x[:, 0, :, :-1]).all()  # red grows along the width: channels-first layout
        assert (x[:, 1, 1:, :] > x[:, 1, :-1, :]).all()  # green along the height
        assert grows_with_label(x[:, 2, 0, 0], y)  # blue follows the label


def test_cifar10_refuses_a_malicious_pickle(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)
    marker = tmp_path / "MARKER"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}, protocol=2))
    with pytest.raises(ConfigError, match=r"^data\.root: .*data_batch_3 is not a CIFAR-10 batch .*refusing to load"):
        cifar10(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)
    assert not marker.exists()


@pytest.mark.parametrize("content", [pickle.dumps([1, 2, 3], protocol=2), pickle.dumps({"data": b"xy"}, protocol=2),
                                     b"garbage"], ids=["list", "no-labels", "garbage"])
def test_cifar10_damaged_batch(tmp_path: Path, content: bytes) -> None:
    folder = write_cifar(tmp_path)
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(ConfigError, match=r"^data\.root: .*test_batch is not a CIFAR-10 batch"):
        cifar10(root=str(tmp_path), val_fraction=0.2, target_kind="classification", device=CPU, seed=0)


@pytest.mark.parametrize("builder,files", [(mnist, "t10k-images-idx3-ubyte"),
                                           (fashion_mnist, "train-labels-idx1-ubyte"), (cifar10, "data_batch_2")])
def test_missing_files_without_download(tmp_path: Path, builder, files: str) -> None:
    with pytest.raises(ConfigError, match=rf"^data\.root: .*{files}.* data\.download=true"):
        builder(root=str(tmp_path), target_kind="classification", device=CPU, seed=0)


def test_public_sets_need_a_classification_or_generation_objective(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data=fashion_mnist holds labelled images.*objective=classification or task=gan"):
        fashion_mnist(root=str(tmp_path), target_kind="regression", device=CPU, seed=0)


COLOURS = {"apple": (220, 20, 20), "leaf": (20, 220, 20), "sky": (20, 20, 220)}


def write_images(folder: Path, per_class: int, classes: dict[str, tuple[int, int, int]] = COLOURS) -> None:
    """PNGs of different sizes; each class has its own dominant colour."""
    for c, (name, colour) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (10 + i, 12), colour).save(folder / name / f"{i}.png")


def folder_data(root: Path, **kwargs) -> Data:
    kwargs = {"num_workers": 0, "batch_size": 4, **kwargs}
    return image_folder(root=str(root), target_kind="classification", device=CPU, seed=0, **kwargs)


def test_image_folder_with_class_subfolders_carves_stratified_splits(tmp_path: Path) -> None:
    write_images(tmp_path, per_class=10)
    data = folder_data(tmp_path, image_size=8, val_fraction=0.2, test_fraction=0.2)
    assert data.info == {"in_channels": 3, "image_size": 8, "num_classes": 3}
    counts = {}
    for name in ("train", "val", "test"):
        x, y = epoch(getattr(data, name))
        assert x.shape[1:] == (3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
        assert (x.mean(dim=(2, 3)).argmax(1) == y).all()  # the class colour: images and labels stay paired
        counts[name] = np.bincount(y.numpy(), minlength=3).tolist()
    assert counts == {"train": [6, 6, 6], "val": [2, 2, 2], "test": [2, 2, 2]}
    assert len(data.train) == 5 and len(data.val) == 2


def test_image_folder_grey_channel_and_split_seed(tmp_path: Path) -> None:
    write_images(tmp_path, per_class=10)
    data = folder_data(tmp_path, image_size=6, channels=1, val_fraction=0.2, test_fraction=0.2)
    assert data.info == {"in_channels": 1, "image_size": 6, "num_classes": 3}
    x, _ = epoch(data.test)
    assert x.shape == (6, 1, 6, 6) and x.min() >= -1 and x.max() <= 1
    other = folder_data(tmp_path, image_size=6, channels=1, val_fraction=0.2, test_fraction=0.2, split_seed=1)
    assert sorted(data.test.loader.dataset.indices) != sorted(other.test.loader.dataset.indices)


def test_image_folder_with_train_val_test_folders(tmp_path: Path) -> None:
    for name, n in (("train", 5), ("val", 2), ("test", 3)):
        write_images(tmp_path / name, per_class=n)
    data = folder_data(tmp_path, image_size=4)
    assert data.info["num_classes"] == 3
    assert [len(epoch(getattr(data, name))[1]) for name in ("train", "val", "test")] == [15, 6, 9]


def test_image_folder_carves_only_the_missing_split(tmp_path: Path) -> None:
    write_images(tmp_path / "train", per_class=10)
    write_images(tmp_path / "test", per_class=1)
    data = folder_data(tmp_path, image_size=4, val_fraction=0.2)
    assert [len(epoch(getattr(data, name))[1]) for name in ("train", "val", "test")] == [24, 6, 3]


def test_image_folder_errors(tmp_path: Path) -> None:
    write_images(tmp_path / "train", per_class=4)
    write_images(tmp_path / "val", per_class=2, classes={"apple": (1, 1, 1), "stone": (2, 2, 2)})
    with pytest.raises(ConfigError, match=r"^data\.root: val/ has classes \['apple', 'stone'\], train/ has"):
        folder_data(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"^data\.root: .*empty is not an image folder"):
        folder_data(empty)


def test_image_folder_with_worker_processes(tmp_path: Path) -> None:
    write_images(tmp_path, per_class=8)
    data = folder_data(tmp_path, image_size=8, num_workers=2, val_fraction=0.25, test_fraction=0.25)
    for epoch_number in (0, 1):
        labels = torch.cat([y for x, y in data.train.batches(epoch_number)])
        assert sorted(labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    resumed = [y.tolist() for _, y in data.train.batches(1, start=1)]
    assert resumed == [y.tolist() for _, y in data.train.batches(1)][1:]


def test_cli_trains_cnn_on_mnist_files(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data", "MNIST", gz=True)
    run_dir = tmp_path / "run"
    proc = run_ptlab("train", "task=cnn", "data=mnist", f"data.root={tmp_path / 'data'}", "data.val_fraction=0.2",
                     "data.batch_size=16", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics(run_dir)
    assert "test/acc" in metrics and metrics["step"] == 3
