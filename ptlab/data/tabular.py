"""Tabular data: scikit-learn's bundled sets (offline) and user CSV files.

Splits are carved with a fixed ``split_seed`` (stratified for classification),
so every run with the same split_seed sees the same rows, whatever its
training ``seed``. Features are standardized with the mean and standard
deviation of the *training rows only*; for regression the target is too
(``standardize_target``), which makes MSE read as a fraction of the target's
variance (MSE 0.5 ≈ R² 0.5).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data.loaders import Data, in_memory_splits
from ptlab.errors import ConfigError

Arrays = tuple[np.ndarray, np.ndarray]


def diabetes(
    *, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.15,
    split_seed: int = 0, standardize_target: bool = True,
    target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Scikit-learn's bundled diabetes set: 442 patients, 10 features, disease progression (regression)."""
    from sklearn.datasets import load_diabetes

    _expect("diabetes", target_kind, "regression")
    x, y = load_diabetes(return_X_y=True)
    return tabular_data(x, y, None, None, target_kind, batch_size, val_fraction, test_fraction, split_seed,
                        standardize_target, device, seed)


def breast_cancer(
    *, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.15,
    split_seed: int = 0, target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Scikit-learn's bundled breast-cancer set: 569 tumours, 30 features, malignant or benign."""
    from sklearn.datasets import load_breast_cancer

    _expect("breast_cancer", target_kind, "classification")
    x, y = load_breast_cancer(return_X_y=True)
    return tabular_data(x, y, None, None, target_kind, batch_size, val_fraction, test_fraction, split_seed,
                        False, device, seed)


def csv_table(
    *, train_path: PathThatExists, target: str, test_path: Optional[PathThatExists] = None,
    val_path: Optional[PathThatExists] = None, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15, split_seed: int = 0, standardize_target: bool = True,
    target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Your CSV files: column ``target`` is predicted from every other (numeric) column."""
    train = read_csv(Path(train_path), target, target_kind, "data.train_path")
    val = read_csv(Path(val_path), target, target_kind, "data.val_path") if val_path else None
    test = read_csv(Path(test_path), target, target_kind, "data.test_path") if test_path else None
    if target_kind == "classification":
        train, val, test = _encode_labels(train, val, test, target)
    return tabular_data(*train, val, test, target_kind, batch_size, val_fraction, test_fraction, split_seed,
                        standardize_target, device, seed)


def read_csv(path: Path, target: str, target_kind: str, key: str) -> Arrays:
    """Read a CSV with a header row into (features, target); labels stay strings for classification."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise ConfigError(f"{key}: {path} has no data rows; give a CSV with a header row and at least one row")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise ConfigError(f"data.target: column {target!r} is not in {path}; its columns are {', '.join(header)}")
    t = header.index(target)
    columns = [c for c in range(len(header)) if c != t]
    features = np.empty((len(body), len(columns)), dtype=np.float64)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise ConfigError(f"{key}: {path} line {r + 2} has {len(row)} fields, the header has {len(header)}")
        for j, c in enumerate(columns):
            try:
                features[r, j] = float(row[c])
            except ValueError:
                raise ConfigError(
                    f"{key}: column {header[c]!r} of {path} is not numeric (line {r + 2}: {row[c]!r}); "
                    "remove or encode it, or make it the target with data.target"
                ) from None
    labels = [row[t] for row in body]
    if target_kind == "classification":
        return features, np.asarray(labels, dtype=object)
    try:
        return features, np.asarray(labels, dtype=np.float64)
    except ValueError:
        raise ConfigError(f"data.target: column {target!r} of {path} is not numeric; a regression target must be") from None


def _encode_labels(train: Arrays, val: Arrays | None, test: Arrays | None, target: str):
    """Map label strings to ids 0..K-1 (numerically sorted when they are numbers)."""
    names = sorted(set(train[1]), key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))
    if len(names) < 2:
        raise ConfigError(f"data.target: column {target!r} has a single class ({names[0]!r}); classification needs two or more")
    ids = {name: i for i, name in enumerate(names)}

    def encode(part: Arrays | None) -> Arrays | None:
        if part is None:
            return None
        unknown = set(part[1]) - ids.keys()
        if unknown:
            raise ConfigError(f"data.target: labels {sorted(unknown)} are not in the training file; add them there")
        return part[0], np.asarray([ids[s] for s in part[1]], dtype=np.int64)

    return encode(train), encode(val), encode(test)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def tabular_data(
    x: np.ndarray, y: np.ndarray, val: Arrays | None, test: Arrays | None, target_kind: str, batch_size: int,
    val_fraction: float, test_fraction: float, split_seed: int, standardize_target: bool,
    device: torch.device, seed: int,
) -> Data:
    """Carve missing splits, standardize on the training rows and move everything to ``device``."""
    from sklearn.model_selection import train_test_split

    classify = target_kind == "classification"
    train = (x, y)
    if test is None:
        train, test = _carve(train, test_fraction, split_seed, classify, train_test_split)
    if val is None:
        train, val = _carve(train, val_fraction / (1 - test_fraction), split_seed, classify, train_test_split)
    mean, std = train[0].mean(0), train[0].std(0) + 1e-8
    y_mean, y_std = (train[1].mean(), train[1].std() + 1e-8) if standardize_target and not classify else (0.0, 1.0)

    def to_tensors(part: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.tensor((part[0] - mean) / std, dtype=torch.float32)
        if classify:
            return features, torch.tensor(part[1], dtype=torch.long)
        return features, torch.tensor((part[1] - y_mean) / y_std, dtype=torch.float32)

    info = {"in_features": x.shape[1]}
    if classify:
        info["num_classes"] = int(max(train[1].max(), val[1].max(), test[1].max())) + 1
    splits = {"train": to_tensors(train), "val": to_tensors(val), "test": to_tensors(test)}
    return in_memory_splits(splits, batch_size, seed, device, info)


def _carve(part: Arrays, fraction: float, split_seed: int, classify: bool, train_test_split) -> tuple[Arrays, Arrays]:
    x_keep, x_out, y_keep, y_out = train_test_split(
        part[0], part[1], test_size=fraction, random_state=split_seed, stratify=part[1] if classify else None
    )
    return (x_keep, y_keep), (x_out, y_out)


def _expect(name: str, target_kind: str, wanted: str) -> None:
    if target_kind != wanted:
        raise ConfigError(f"data={name} is a {wanted} set but objective is {target_kind}; use objective={wanted}")
