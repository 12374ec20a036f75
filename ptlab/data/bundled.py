"""Scikit-learn's bundled data files, read straight from the installed package without importing scikit-learn.

``from sklearn.datasets import load_diabetes`` costs more than a second of
imports (scipy among them) just to read a small CSV file. These readers find
the package folder with ``importlib.util.find_spec``, which locates a top-level
package without running it, and parse the files as scikit-learn's loaders do,
so the arrays are the same to the bit (``tests/test_data_bundled.py`` compares
them with scikit-learn's own loaders). The data sets' sources and citations are
in scikit-learn's ``datasets/descr/*.rst``.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray]


def data_folder() -> Path:
    """``sklearn/datasets/data`` of the installed scikit-learn (a dependency of ptlab)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn is not installed; pip install scikit-learn", name="sklearn")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def load_breast_cancer() -> Arrays:
    """``sklearn.datasets.load_breast_cancer(return_X_y=True)``: 569 × 30 features, 0 = malignant, 1 = benign."""
    with (data_folder() / "breast_cancer.csv").open("r", encoding="utf-8") as file:
        rows = csv.reader(file)
        header = next(rows)
        n_samples, n_features = int(header[0]), int(header[1])
        x, y = np.empty((n_samples, n_features)), np.empty((n_samples,), dtype=int)
        for i, row in enumerate(rows):
            x[i] = np.asarray(row[:-1], dtype=np.float64)
            y[i] = np.asarray(row[-1], dtype=int)
    return x, y


def load_diabetes() -> Arrays:
    """``sklearn.datasets.load_diabetes(return_X_y=True)``: 442 × 10 features, each centred and scaled to norm 1."""
    x = _gzip_text(data_folder() / "diabetes_data_raw.csv.gz")
    y = _gzip_text(data_folder() / "diabetes_target.csv.gz")
    _scale(x)
    x /= x.shape[0] ** 0.5
    return x, y


def load_digits() -> Arrays:
    """``sklearn.datasets.load_digits(return_X_y=True)``: 1,797 × 64 pixels (8×8 images, values 0..16), digit 0..9."""
    data = _gzip_text(data_folder() / "digits.csv.gz", delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def _gzip_text(path: Path, **loadtxt) -> np.ndarray:
    with path.open("rb") as compressed, gzip.open(compressed, mode="rt", encoding="utf-8") as text:
        return np.loadtxt(text, **loadtxt)


def _scale(x: np.ndarray) -> None:
    """Standardize the columns of ``x`` in place, step for step as ``sklearn.preprocessing.scale`` does."""
    mean, std = np.nanmean(x, 0), np.nanstd(x, 0)
    x -= mean
    residual = np.nanmean(x, 0)
    if not np.allclose(residual, 0):  # scikit-learn centres once more when rounding left a mean
        x -= residual
    std[std < 10 * np.finfo(std.dtype).eps] = 1.0  # a constant column is only centred
    x /= std
    residual = np.nanmean(x, 0)
    if not np.allclose(residual, 0):
        x -= residual
