"""Metrics, computed with torchmetrics on the device; reported as ``split/name``.

Regression metrics speak the units of ``data.target``. The data may hand the
model a standardized target y' = (y − μ) / σ (``data.info["target_std"]`` = σ);
since ŷ − y = σ(ŷ' − y'), the errors are measured on the standardized values,
where float32 keeps its precision, and scaled: MSE by σ², RMSE and MAE by σ.
R² = 1 − Σ(ŷ − y)² / Σ(y − ȳ)² is the same on either scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ptlab.data.loaders import Data


def accuracy(num_classes: int = 2):
    """Fraction of predictions equal to the target."""
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)


def f1(num_classes: int = 2):
    """F1 score (harmonic mean of precision and recall), averaged over classes (macro)."""
    from torchmetrics.classification import MulticlassF1Score

    return MulticlassF1Score(num_classes=num_classes, average="macro", validate_args=False)


def mse(data: Optional[Data] = None):
    """Mean squared error (ŷ − y)², in the target's units squared."""
    from torchmetrics.regression import MeanSquaredError

    return _in_target_units(MeanSquaredError(), _target_std(data) ** 2)


def rmse(data: Optional[Data] = None):
    """Root mean squared error √(mean (ŷ − y)²), in the target's units."""
    from torchmetrics.regression import MeanSquaredError

    return _in_target_units(MeanSquaredError(squared=False), _target_std(data))


def mae(data: Optional[Data] = None):
    """Mean absolute error |ŷ − y|, in the target's units."""
    from torchmetrics.regression import MeanAbsoluteError

    return _in_target_units(MeanAbsoluteError(), _target_std(data))


def r2():
    """Coefficient of determination R² = 1 − Σ(ŷ − y)² / Σ(y − ȳ)² (1: perfect; 0: no better than ȳ)."""
    import torch
    from torchmetrics.regression import R2Score

    class R2(R2Score):
        """R²; nan, not an error, on a split of fewer than two rows, where it is undefined."""

        def compute(self) -> Any:
            return super().compute() if self.total >= 2 else torch.tensor(float("nan"))

    return R2()


def _target_std(data: Optional[Data]) -> float:
    """σ of the data's target standardization (1 when the target was left as it is)."""
    return float(data.info.get("target_std", 1.0)) if data is not None else 1.0


def _in_target_units(metric: Any, factor: float) -> Any:
    """``metric`` times ``factor`` (a torchmetrics CompositionalMetric); the metric itself when the factor is 1."""
    return metric if factor == 1.0 else metric * factor
