"""One random split of a set of samples in two, stratified by label if asked: scikit-learn's ``train_test_split``.

The same indices as ``sklearn.model_selection.train_test_split(items, test_size=fraction,
random_state=seed, stratify=labels)`` (ShuffleSplit / StratifiedShuffleSplit, scikit-learn
1.3–1.9, BSD-3; tests/test_loaders.py compares them), written out so that a run that
only reads a table or images does not import scikit-learn and SciPy (≈2 s of start-up).

Stratified: each class gets its share of the test split, rounded by the
approximate mode of the multivariate hypergeometric (the most likely class counts
of a random draw; ties broken at random); then each class's samples are shuffled
and cut, and both splits are shuffled.
"""

from __future__ import annotations

import math

import numpy as np


def shuffle_split(items: np.ndarray, fraction: float, seed: int,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the rest, the ``fraction`` split) of ``items``; a ValueError (scikit-learn's words) if it cannot be cut."""
    n = len(items)
    if not 0 < fraction < 1:
        raise ValueError(f"test_size={fraction} should be either positive and smaller than the number of samples "
                         f"{n} or a float in the (0, 1) range")
    n_test = math.ceil(fraction * n)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(f"With n_samples={n}, test_size={fraction} and train_size=None, the resulting train set "
                         "will be empty. Adjust any of the aforementioned parameters.")
    rng = np.random.RandomState(seed)
    if labels is None:
        order = rng.permutation(n)
        return items[order[n_test:]], items[order[:n_test]]
    train, test = _stratified(np.asarray(labels), n_train, n_test, rng)
    return items[train], items[test]


def _stratified(labels: np.ndarray, n_train: int, n_test: int,
                rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    classes, label_index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError("The least populated classes in y have only 1 member, which is too few. The minimum "
                         "number of groups for any class cannot be less than 2. Classes with too few members "
                         f"are: {classes[counts < 2].tolist()}")
    if n_train < len(classes):
        raise ValueError(f"The train_size = {n_train} should be greater or equal to the number of classes = "
                         f"{len(classes)}")
    if n_test < len(classes):
        raise ValueError(f"The test_size = {n_test} should be greater or equal to the number of classes = "
                         f"{len(classes)}")
    by_class = np.split(np.argsort(label_index, kind="stable"), np.cumsum(counts)[:-1])
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for members, n_i, t_i in zip(by_class, train_counts, test_counts):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        train.extend(shuffled[:n_i])
        test.extend(shuffled[n_i:n_i + t_i])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Class counts of ``draws`` samples in proportion to ``counts``: floors, then the largest remainders
    get one more each (ties drawn at random) until they add up to ``draws``."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    missing = int(draws - floored.sum())
    if missing > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), missing)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            missing -= now
            if missing == 0:
                break
    return floored.astype(int)
