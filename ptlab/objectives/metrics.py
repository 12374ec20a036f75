"""Metrics, computed with torchmetrics on the device; reported as ``split/name``."""

from __future__ import annotations


def accuracy(num_classes: int = 2):
    """Fraction of predictions equal to the target."""
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)


def f1(num_classes: int = 2):
    """F1 score (harmonic mean of precision and recall), averaged over classes (macro)."""
    from torchmetrics.classification import MulticlassF1Score

    return MulticlassF1Score(num_classes=num_classes, average="macro", validate_args=False)


def mse():
    """Mean squared error (ŷ − y)²."""
    from torchmetrics.regression import MeanSquaredError

    return MeanSquaredError()


def mae():
    """Mean absolute error |ŷ − y|."""
    from torchmetrics.regression import MeanAbsoluteError

    return MeanAbsoluteError()
