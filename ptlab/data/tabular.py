"""Tabular data: scikit-learn's bundled sets (offline, read by :mod:`ptlab.data.bundled`) and user CSV files.

Splits are carved with a fixed ``split_seed`` (stratified for classification),
so every run with the same split_seed sees the same rows, whatever its
training ``seed``. Features are standardized with the mean and standard
deviation of the *training rows only*; for regression the target is too
(``standardize_target``): the model learns y' = (y − μ) / σ, which keeps one
learning rate right for any target scale. μ and σ travel with the data as
``info["target_mean"]`` and ``info["target_std"]`` (and so into checkpoints), and
the regression metrics use them to report errors in the target's own units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data import bundled
from ptlab.data.files import csv_rows
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data, carve_splits, in_memory_splits
from ptlab.errors import ConfigError
from ptlab.formatting import is_number, number_first

Arrays = tuple[np.ndarray, np.ndarray]


def diabetes(
    *, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.15,
    split_seed: int = 0, standardize_target: bool = True,
    target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Scikit-learn's bundled diabetes set: 442 patients, 10 features, disease progression (regression)."""
    _expect("diabetes", target_kind, "regression")
    return tabular_data(*bundled.load_diabetes(), None, None, target_kind, batch_size, val_fraction, test_fraction,
                        split_seed, standardize_target, device, seed)


def breast_cancer(
    *, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.15,
    split_seed: int = 0, target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Scikit-learn's bundled breast-cancer set: 569 tumours, 30 features, malignant or benign."""
    _expect("breast_cancer", target_kind, "classification")
    return tabular_data(*bundled.load_breast_cancer(), None, None, target_kind, batch_size, val_fraction,
                        test_fraction, split_seed, False, device, seed)


def csv_table(
    *, train_path: PathThatExists, target: str, test_path: Optional[PathThatExists] = None,
    val_path: Optional[PathThatExists] = None, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15, split_seed: int = 0, standardize_target: bool = True,
    target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Your CSV files: column ``target`` is predicted from every other (numeric) column."""
    train, columns = read_csv(Path(train_path).expanduser(), target, target_kind, "data.train_path")

    def read_more(path: Optional[str], key: str) -> Arrays | None:
        if not path:
            return None
        part, other = read_csv(Path(path).expanduser(), target, target_kind, key)
        if other != columns:
            raise ConfigError(f"{key}: {path} has feature columns {', '.join(other)}; the training file has "
                              f"{', '.join(columns)}; give every file the same columns in the same order")
        return part

    val, test = read_more(val_path, "data.val_path"), read_more(test_path, "data.test_path")
    if target_kind == "classification":
        train, val, test = _encode_labels(train, val, test, target)
    return tabular_data(*train, val, test, target_kind, batch_size, val_fraction, test_fraction, split_seed,
                        standardize_target, device, seed)


def read_csv(path: Path, target: str, target_kind: str, key: str) -> tuple[Arrays, list[str]]:
    """Read a CSV with a header row into ((features, target), feature column names).

    Labels stay strings for classification; blank lines are skipped.
    """
    rows = csv_rows(path, key)
    header, body = (rows[0][1], rows[1:]) if rows else ([], [])
    if not body:
        raise ConfigError(f"{key}: {path} has no data rows; give a CSV with a header row and at least one row")
    if target not in header:
        raise ConfigError(f"data.target: column {target!r} is not in {path}; its columns are {', '.join(header)}")
    t = header.index(target)
    columns = [c for c in range(len(header)) if c != t]
    features = np.empty((len(body), len(columns)), dtype=np.float64)
    for r, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise ConfigError(f"{key}: {path} line {line} has {len(row)} fields, the header has {len(header)}")
        for j, c in enumerate(columns):
            try:
                features[r, j] = float(row[c])
            except ValueError:
                raise ConfigError(
                    f"{key}: column {header[c]!r} of {path} is not numeric (line {line}: {row[c]!r}); "
                    "remove or encode it, or make it the target with data.target"
                ) from None
    finite = np.isfinite(features).all(0)
    if not finite.all():
        raise ConfigError(f"{key}: column {header[columns[int(np.argmin(finite))]]!r} of {path} holds nan or inf; "
                          "fill in or drop those rows")
    names = [header[c] for c in columns]
    labels = [row[t] for _, row in body]
    if target_kind == "classification":
        return (features, np.asarray(labels, dtype=object)), names
    values = np.asarray(labels, dtype=np.float64) if all(map(is_number, labels)) else None
    if values is None or not np.isfinite(values).all():
        raise ConfigError(f"data.target: column {target!r} of {path} is not all finite numbers; "
                          "a regression target must be")
    return (features, values), names


def _encode_labels(train: Arrays, val: Arrays | None, test: Arrays | None, target: str):
    """Map label strings to ids 0..K-1 in :func:`ptlab.formatting.number_first` order."""
    names = sorted(set(train[1]), key=number_first)
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


def tabular_data(
    x: np.ndarray, y: np.ndarray, val: Arrays | None, test: Arrays | None, target_kind: str, batch_size: int,
    val_fraction: float, test_fraction: float, split_seed: int, standardize_target: bool,
    device: torch.device, seed: int,
) -> Data:
    """Carve missing splits, standardize on the training rows and move everything to ``device``."""
    classify = target_kind == "classification"
    wanted = {name: fraction for name, fraction, given in (("test", test_fraction, test), ("val", val_fraction, val))
              if given is None}
    index = carve_splits(y, wanted, split_seed, stratify=classify)
    train = (x[index["train"]], y[index["train"]])
    val = val if val is not None else (x[index["val"]], y[index["val"]])
    test = test if test is not None else (x[index["test"]], y[index["test"]])
    mean, std = train[0].mean(0), _nonzero(train[0].std(0))
    y_mean, y_std = (train[1].mean(), _nonzero(train[1].std())) if standardize_target and not classify else (0.0, 1.0)

    def to_tensors(part: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.tensor((part[0] - mean) / std, dtype=torch.float32)
        if classify:
            return features, torch.tensor(part[1], dtype=torch.long)
        return features, torch.tensor((part[1] - y_mean) / y_std, dtype=torch.float32)

    info: dict[str, int | float] = {"in_features": x.shape[1]}
    if classify:
        info["num_classes"] = int(max(train[1].max(), val[1].max(), test[1].max())) + 1
    else:
        info.update(target_mean=float(y_mean), target_std=float(y_std))
    splits = {"train": to_tensors(train), "val": to_tensors(val), "test": to_tensors(test)}
    return in_memory_splits(splits, batch_size, seed, device, info)


def _nonzero(std: np.ndarray) -> np.ndarray:
    """Standard deviations safe to divide by: a column constant on the training rows is only centred."""
    return np.where(std > 0, std, 1.0)


def _expect(name: str, target_kind: str, wanted: str) -> None:
    expect_kind(name, target_kind, (wanted,), f"a {wanted} target", f"objective={wanted}")
