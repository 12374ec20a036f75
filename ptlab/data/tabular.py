"""Tabular data: scikit-learn's bundled sets (offline, read by :mod:`ptlab.data.bundled`) and user CSV files.

Splits are carved with a fixed ``split_seed`` (stratified for classification),
so every run with the same split_seed sees the same rows, whatever its
training ``seed``. Features are standardized with the mean and standard
deviation of the *training rows only*; for regression the target is too
(``standardize_target``): the model learns y' = (y − μ) / σ, which keeps one
learning rate right for any target scale. μ and σ travel with the data as
``info["target_mean"]`` and ``info["target_std"]`` (and so into checkpoints), and
the regression metrics use them to report errors in the target's own units.

CSV files may hold categorical columns and missing cells (``data.categorical``,
``data.missing``): :mod:`ptlab.data.table_preprocessing` encodes them, fitted on
the training rows after the carving, and leaves the one-hot columns unstandardized.
"""

from __future__ import annotations

import logging
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional

import numpy as np
import torch

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data import bundled
from ptlab.data.files import csv_rows
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data, carve_splits, in_memory_splits
from ptlab.data.table_preprocessing import (Table, TablePreprocessing, Tally, categorical_columns, check_numbers,
                                           drop_missing, fit, summary)
from ptlab.errors import ConfigError
from ptlab.formatting import is_number, number_first

Arrays = tuple[np.ndarray, np.ndarray]
log = logging.getLogger("ptlab")


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
    categorical: Literal["onehot", "error"] = "onehot", missing: Literal["error", "drop", "mean"] = "error",
    target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Your CSV files: column ``target`` is predicted from every other column.

    Categorical columns and missing cells: :mod:`ptlab.data.table_preprocessing`; what it fitted is
    ``Data.state`` (so checkpoints keep it and eval checks it).
    """
    files = _fit_files(train_path, target, test_path, val_path, val_fraction, test_fraction, split_seed, categorical,
                       missing, target_kind)
    said = summary(files.preprocessing, files.tally)
    if said:
        log.info(said)
    data = standardized(files.arrays, target_kind, batch_size, standardize_target, device, seed,
                        files.preprocessing.onehot)
    data.state = files.preprocessing.state()
    return data


@dataclass(frozen=True)
class CsvFeatures:
    """How :func:`csv_table` turns a file's feature cells into model inputs, as fitted on the training rows."""

    preprocessing: TablePreprocessing  # the categories and fill values
    mean: np.ndarray  # per feature, of the training rows (0 for a one-hot feature)
    std: np.ndarray  # per feature, of the training rows (1 for a one-hot feature)
    classes: Optional[list[str]]  # classification: the label of each class id, as in the training file

    def transform(self, table: Table, tally: Tally) -> torch.Tensor:
        """The (rows, features) float32 model inputs of ``table`` (cells already checked, as for training)."""
        return torch.tensor((self.preprocessing.transform(table, tally) - self.mean) / self.std, dtype=torch.float32)


def csv_features(cfg: Mapping[str, Any], target_kind: str) -> CsvFeatures:
    """What :func:`csv_table` fits for the data config ``cfg`` (a checkpoint's ``data``), refitted from its files."""
    keys = ("train_path", "target", "test_path", "val_path", "val_fraction", "test_fraction", "split_seed",
            "categorical", "missing")
    files = _fit_files(*(cfg[key] for key in keys), target_kind=target_kind)
    mean, std = feature_scaling(files.arrays["train"][0], files.preprocessing.onehot)
    return CsvFeatures(files.preprocessing, mean, std, files.classes)


@dataclass(frozen=True)
class _FittedFiles:
    preprocessing: TablePreprocessing
    arrays: dict[str, Arrays]  # split → (encoded features, targets), unstandardized
    tally: Tally
    classes: Optional[list[str]]


def _fit_files(
    train_path: str, target: str, test_path: Optional[str], val_path: Optional[str], val_fraction: float,
    test_fraction: float, split_seed: int, categorical: str, missing: str, target_kind: str,
) -> _FittedFiles:
    """Read the files, carve the splits and fit the preprocessing on the training rows."""
    train = read_csv(Path(train_path).expanduser(), target, "data.train_path")

    def read_more(path: Optional[str], key: str) -> Table | None:
        if not path:
            return None
        part = read_csv(Path(path).expanduser(), target, key)
        if part.columns != train.columns:
            raise ConfigError(f"{key}: {path} has feature columns {', '.join(part.columns)}; the training file has "
                              f"{', '.join(train.columns)}; give every file the same columns in the same order")
        return part

    tally = Tally()
    files = {name: drop_missing(table, missing, tally) for name, table in
             (("train", train), ("val", read_more(val_path, "data.val_path")),
              ("test", read_more(test_path, "data.test_path"))) if table is not None}
    onehot = categorical_columns(files["train"], categorical)
    for table in files.values():
        check_numbers(table, onehot, categorical)
    targets, classes = _targets(files, target, target_kind)
    classify = target_kind == "classification"
    index = carve_splits(targets["train"], _carved(val_fraction, test_fraction, files), split_seed, stratify=classify)
    parts = {name: (files["train"].take(rows), targets["train"][rows]) for name, rows in index.items()}
    parts.update((name, (table, targets[name])) for name, table in files.items() if name != "train")
    fitted = fit(parts["train"][0], onehot, categorical, missing)  # on the training rows only
    arrays = {name: (fitted.transform(table, tally), y) for name, (table, y) in parts.items()}
    return _FittedFiles(fitted, arrays, tally, classes)


def read_csv(path: Path, target: str, key: str) -> Table:
    """Read a CSV with a header row; blank lines are skipped, cells are kept as text."""
    header, body = read_rows(path, key)
    if target not in header:
        raise ConfigError(f"data.target: column {target!r} is not in {path}; its columns are {', '.join(header)}")
    return table_of(path, key, header, body, [c for c in header if c != target], target)


def read_rows(path: Path, key: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(the header, the data rows with their line numbers) of a CSV file; refuses one without rows or with a row
    whose number of fields is not the header's."""
    rows = csv_rows(path, key)
    header, body = (rows[0][1], rows[1:]) if rows else ([], [])
    if not body:
        raise ConfigError(f"{key}: {path} has no data rows; give a CSV with a header row and at least one row")
    for line, row in body:
        if len(row) != len(header):
            raise ConfigError(f"{key}: {path} line {line} has {len(row)} fields, the header has {len(header)}")
    return header, body


def table_of(path: Path, key: str, header: list[str], body: list[tuple[int, list[str]]], columns: list[str],
             target: Optional[str]) -> Table:
    """The :class:`Table` of the feature ``columns`` (all in ``header``) of rows ``body``; a ``target`` of None
    (rows to predict) leaves the targets blank."""
    at = [header.index(column) for column in columns]
    cells = np.empty((len(body), len(columns)), dtype=object)
    for r, (_, row) in enumerate(body):
        cells[r] = [row[c].strip() for c in at]
    t = header.index(target) if target is not None else None
    targets = np.asarray([row[t] if t is not None else "" for _, row in body], dtype=object)
    lines = np.asarray([line for line, _ in body])
    return Table(path, key, target or "", list(columns), cells, targets, lines)


def _targets(files: dict[str, Table], target: str,
             target_kind: str) -> tuple[dict[str, np.ndarray], Optional[list[str]]]:
    """(each file's target: class ids for classification, floats for regression; the class labels or None)."""
    if target_kind == "classification":
        return _encode_labels({name: table.targets for name, table in files.items()}, target)
    targets = {}
    for name, table in files.items():
        bad = [r for r, label in enumerate(table.targets) if not is_number(label)]
        if bad:
            raise ConfigError(f"data.target: column {target!r} of {table.path} is not all finite numbers (line "
                              f"{table.lines[bad[0]]}: {table.targets[bad[0]]!r}); a regression target must be")
        targets[name] = table.targets.astype(np.float64)
    return targets, None


def _encode_labels(labels: dict[str, np.ndarray], target: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map label strings to ids 0..K-1 in :func:`ptlab.formatting.number_first` order (of the training file's);
    also returns the labels in id order."""
    names = sorted(set(labels["train"]), key=number_first)
    if len(names) < 2:
        raise ConfigError(f"data.target: column {target!r} has a single class ({names[0]!r}); classification needs two or more")
    ids = {name: i for i, name in enumerate(names)}
    unknown = set().union(*labels.values()) - ids.keys()
    if unknown:
        raise ConfigError(f"data.target: labels {sorted(unknown)} are not in the training file; add them there")
    return {name: np.asarray([ids[s] for s in part], dtype=np.int64) for name, part in labels.items()}, names


def _carved(val_fraction: float, test_fraction: float, given: Mapping[str, object]) -> dict[str, float]:
    """The fractions of the splits that no file gives, in carving order (test first)."""
    return {name: fraction for name, fraction in (("test", test_fraction), ("val", val_fraction)) if name not in given}


def tabular_data(
    x: np.ndarray, y: np.ndarray, val: Arrays | None, test: Arrays | None, target_kind: str, batch_size: int,
    val_fraction: float, test_fraction: float, split_seed: int, standardize_target: bool,
    device: torch.device, seed: int,
) -> Data:
    """Carve missing splits, standardize on the training rows and move everything to ``device``."""
    given = {name: part for name, part in (("val", val), ("test", test)) if part is not None}
    index = carve_splits(y, _carved(val_fraction, test_fraction, given), split_seed,
                         stratify=target_kind == "classification")
    parts = {name: (x[rows], y[rows]) for name, rows in index.items()} | given
    return standardized(parts, target_kind, batch_size, standardize_target, device, seed)


def standardized(
    parts: dict[str, Arrays], target_kind: str, batch_size: int, standardize_target: bool, device: torch.device,
    seed: int, unscaled: Optional[np.ndarray] = None,
) -> Data:
    """Splits "train", "val", "test" standardized with the training rows' statistics, as tensors on ``device``.

    ``unscaled`` marks feature columns left as they are (one-hot indicators).
    """
    classify = target_kind == "classification"
    train = parts["train"]
    mean, std = feature_scaling(train[0], unscaled)
    y_mean, y_std = (train[1].mean(), _nonzero(train[1].std())) if standardize_target and not classify else (0.0, 1.0)

    def to_tensors(part: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.tensor((part[0] - mean) / std, dtype=torch.float32)
        if classify:
            return features, torch.tensor(part[1], dtype=torch.long)
        return features, torch.tensor((part[1] - y_mean) / y_std, dtype=torch.float32)

    info: dict[str, int | float] = {"in_features": train[0].shape[1]}
    if classify:
        info["num_classes"] = int(max(part[1].max() for part in parts.values())) + 1
    else:
        info.update(target_mean=float(y_mean), target_std=float(y_std))
    splits = {name: to_tensors(parts[name]) for name in ("train", "val", "test")}
    return in_memory_splits(splits, batch_size, seed, device, info)


def feature_scaling(x: np.ndarray, unscaled: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per feature of the training rows ``x``; 0 and 1 for the features ``unscaled`` marks."""
    mean, std = x.mean(0), _nonzero(x.std(0))
    if unscaled is not None:
        mean, std = np.where(unscaled, 0.0, mean), np.where(unscaled, 1.0, std)
    return mean, std


def _nonzero(std: np.ndarray) -> np.ndarray:
    """Standard deviations safe to divide by: a column constant on the training rows is only centred."""
    return np.where(std > 0, std, 1.0)


def _expect(name: str, target_kind: str, wanted: str) -> None:
    expect_kind(name, target_kind, (wanted,), f"a {wanted} target", f"objective={wanted}")
