"""Image data: bundled 8×8 digits (offline), MNIST / Fashion-MNIST / CIFAR-10, and image folders.

Digits, MNIST, Fashion-MNIST and CIFAR-10 fit in memory, so they are read once
into uint8 tensors and served on the in-memory fast path, standardized with
the training split's per-channel statistics (scaled to [-1, 1] for generation). Only an image folder
(decoded from disk per sample) goes through a DataLoader with workers.

``data.augment=none|light|strong`` augments the training split on the device
(:mod:`ptlab.data.augment`); digits and MNIST are never flipped, the others may be.

The digits are scikit-learn's bundled file (:mod:`ptlab.data.bundled`). The
public sets are read from their original files (MNIST's IDX files,
CIFAR-10's python batches) under ``data.root``; ``data.download=true`` fetches
them with torchvision first when any is missing.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ptlab.config import Fraction, PathThatExists, PositiveInt, NonNegativeInt
from ptlab.data import bundled
from ptlab.data.augment import AugmentPreset, image_augment
from ptlab.data.downloads import dataset_folder
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data, LoaderBatches, carve_splits, in_memory_splits
from ptlab.errors import ConfigError


def digits(
    *, batch_size: PositiveInt = 64, augment: AugmentPreset = "none", val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15, split_seed: int = 0, target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Scikit-learn's bundled handwritten digits: 1,797 grey 8×8 images, 10 classes."""
    _expect_classification("digits", target_kind)
    pixels, target = bundled.load_digits()
    images = torch.tensor(pixels.reshape(-1, 8, 8) * (255 / 16), dtype=torch.uint8).unsqueeze(1)  # N×1×8×8
    labels = torch.tensor(target, dtype=torch.long)
    index = carve_splits(target, {"test": test_fraction, "val": val_fraction}, split_seed, stratify=True)
    parts = {name: (images[index[name]], labels[index[name]]) for name in ("train", "val", "test")}
    return image_tensors(parts, batch_size, seed, device, symmetric=target_kind == "generation", augment=augment,
                         flip=False)


def mnist(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, batch_size: PositiveInt = 128,
    augment: AugmentPreset = "none", val_fraction: Fraction = 0.1, split_seed: int = 0, target_kind: str,
    device: torch.device, seed: int,
) -> Data:
    """MNIST handwritten digits: 70,000 grey 28×28 images (the original IDX files)."""
    return _idx_dataset("MNIST", "mnist", root, download, batch_size, val_fraction, split_seed, target_kind, device,
                        seed, augment=augment, flip=False)


def fashion_mnist(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, batch_size: PositiveInt = 128,
    augment: AugmentPreset = "none", val_fraction: Fraction = 0.1, split_seed: int = 0, target_kind: str,
    device: torch.device, seed: int,
) -> Data:
    """Fashion-MNIST: 70,000 grey 28×28 images of clothing, 10 classes (the original IDX files)."""
    return _idx_dataset("FashionMNIST", "fashion_mnist", root, download, batch_size, val_fraction, split_seed,
                        target_kind, device, seed, augment=augment, flip=True)


def cifar10(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, batch_size: PositiveInt = 128,
    augment: AugmentPreset = "none", val_fraction: Fraction = 0.1, split_seed: int = 0, target_kind: str,
    device: torch.device, seed: int,
) -> Data:
    """CIFAR-10: 60,000 colour 32×32 images, 10 classes (the original python batches)."""
    _expect_classification("cifar10", target_kind)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    folder = dataset_folder(root, "cifar-10-batches-py", names, "cifar10", download, ["CIFAR10"])
    batches = [_read_cifar_batch(folder / name) for name in names]
    train_x = torch.cat([b[0] for b in batches[:5]])
    train_y = torch.cat([b[1] for b in batches[:5]])
    return _with_val_split(train_x, train_y, batches[5], batch_size, val_fraction, split_seed, device, seed,
                           symmetric=target_kind == "generation", augment=augment, flip=True)


def image_folder(
    *, root: PathThatExists, image_size: PositiveInt = 32, channels: Literal[1, 3] = 3, batch_size: PositiveInt = 64,
    augment: AugmentPreset = "none", val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.15,
    split_seed: int = 0, num_workers: NonNegativeInt = 2, target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Your images: class subfolders (torchvision's ImageFolder layout), or train/ val/ test/ each in it.

    ``augment`` may flip them: pictures of things, not of text or digits.
    """
    from torchvision import datasets
    from torchvision.transforms import v2

    _expect_classification("imagefolder", target_kind)
    base = Path(root).expanduser()
    transform = v2.Compose([
        v2.ToImage(),
        v2.Grayscale(num_output_channels=channels) if channels == 1 else v2.RGB(),
        v2.Resize((image_size, image_size), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.5] * channels, [0.5] * channels),
    ])

    def load(folder: Path) -> "datasets.ImageFolder":
        try:
            return datasets.ImageFolder(str(folder), transform=transform)
        except (FileNotFoundError, RuntimeError) as err:
            raise ConfigError(f"data.root: {folder} is not an image folder ({err}); "
                              "give a folder with one subfolder of images per class") from None

    given = {name: base / name for name in ("train", "val", "test") if (base / name).is_dir()}
    train_set = load(given.get("train", base))
    splits = {name: load(path) for name, path in given.items() if name != "train"}
    for name, part in splits.items():
        if part.classes != train_set.classes:
            raise ConfigError(f"data.root: {name}/ has classes {part.classes}, train/ has {train_set.classes}; make them match")
    wanted = {name: fraction for name, fraction in (("test", test_fraction), ("val", val_fraction))
              if name not in splits}
    index = carve_splits(np.asarray(train_set.targets), wanted, split_seed, stratify=True)
    for name in (*wanted, "train"):
        splits[name] = torch.utils.data.Subset(train_set, index[name].tolist())
    info = {"in_channels": channels, "image_size": image_size, "num_classes": len(train_set.classes)}
    half = torch.tensor(0.5, device=device)  # the Normalize above
    train_transform = image_augment(augment, flip=True, mean=half, std=half)
    return Data(
        **{name: LoaderBatches(part, batch_size, name == "train", seed, device, num_workers,
                               transform=train_transform if name == "train" else None)
           for name, part in splits.items()},
        info=info,
    )


def image_tensors(parts: dict[str, tuple[torch.Tensor, torch.Tensor]], batch_size: int, seed: int,
                  device: torch.device, symmetric: bool = False, augment: AugmentPreset = "none",
                  flip: bool = False) -> Data:
    """uint8 N×C×H×W images → float tensors.

    For classification, pixels are standardized with the training split's
    channel statistics; for generation (``symmetric``) they are scaled to
    [-1, 1], the range of a generator's tanh output. ``augment`` (with a
    horizontal ``flip`` only if the data allows it) transforms training batches.
    """
    train_images = parts["train"][0].float() / 255
    if symmetric:
        mean, std = torch.tensor(0.5), torch.tensor(0.5)
    else:
        mean = train_images.mean(dim=(0, 2, 3), keepdim=True)
        std = train_images.std(dim=(0, 2, 3), keepdim=True)
    splits = {name: (((x.float() / 255) - mean) / std, y) for name, (x, y) in parts.items()}
    _, channels, height, _ = train_images.shape
    num_classes = int(max(y.max() for _, y in parts.values())) + 1
    train_transform = image_augment(augment, flip=flip, mean=mean.to(device), std=std.to(device))
    return in_memory_splits(splits, batch_size, seed, device,
                            {"in_channels": channels, "image_size": height, "num_classes": num_classes},
                            train_transform=train_transform)


def _with_val_split(train_x, train_y, test, batch_size, val_fraction, split_seed, device, seed, symmetric, *,
                    augment: AugmentPreset, flip: bool) -> Data:
    index = carve_splits(train_y.numpy(), {"val": val_fraction}, split_seed, stratify=True)
    train, val = index["train"], index["val"]
    parts = {"train": (train_x[train], train_y[train]), "val": (train_x[val], train_y[val]), "test": test}
    return image_tensors(parts, batch_size, seed, device, symmetric, augment=augment, flip=flip)


def _idx_dataset(name, data_name, root, download, batch_size, val_fraction, split_seed, target_kind, device,
                 seed, *, augment: AugmentPreset, flip: bool) -> Data:
    """MNIST-style data from ``root/NAME/raw``: torchvision's folder (``name``) for ``data=data_name``."""
    _expect_classification(data_name, target_kind)
    files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    folder = dataset_folder(root, f"{name}/raw", files, data_name, download, [name], gz_ok=True)
    train_x, train_y, test_x, test_y = (read_idx(_plain_or_gz(folder / f)) for f in files)
    for images, labels, kind in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ConfigError(f"data.root: {folder} holds {kind} images of shape {tuple(images.shape)} and labels of "
                              f"shape {tuple(labels.shape)}; they should be N×H×W and N")
    return _with_val_split(train_x.unsqueeze(1), train_y.long(), (test_x.unsqueeze(1), test_y.long()),
                           batch_size, val_fraction, split_seed, device, seed, target_kind == "generation",
                           augment=augment, flip=flip)


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (MNIST's format): 0, 0, dtype code 0x08 (uint8), ndim, big-endian sizes, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ConfigError(f"data.root: {path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ConfigError(f"data.root: {path} is truncated ({data.size} bytes of data, header says {shape})")
    return torch.from_numpy(data.reshape(shape).copy())


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10's batches that can build numpy arrays and nothing else."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 writes bytes (an array's buffer) at pickle protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One python batch: a pickled dict with "data" (N×3072 uint8) and "labels" (N ints)."""
    with path.open("rb") as f:
        try:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = torch.tensor(batch["labels"], dtype=torch.long)
        except Exception as err:  # a damaged or foreign pickle fails in many ways
            raise ConfigError(f"data.root: {path} is not a CIFAR-10 batch ({type(err).__name__}: {err}); "
                              "delete it and fetch the files again with data.download=true") from None
    if labels.shape != (len(data),):
        raise ConfigError(f"data.root: {path} has {len(data)} images but {labels.numel()} labels")
    return torch.from_numpy(data.copy()), labels


def _plain_or_gz(path: Path) -> Path:
    return path if path.exists() else path.with_name(path.name + ".gz")


def _expect_classification(name: str, target_kind: str) -> None:
    """Images with class labels serve classification and generation (which ignores the labels)."""
    expect_kind(name, target_kind, ("classification", "generation"), "labelled images",
                "objective=classification or task=gan")
