"""Metrics, computed on the device as sums over samples (ptlab.objectives.metric); reported as ``split/name``.

Regression metrics speak the units of ``data.target``. The data may hand the
model a standardized target y' = (y − μ) / σ (``data.info["target_std"]`` = σ);
since ŷ − y = σ(ŷ' − y'), the errors are measured on the standardized values,
where float32 keeps its precision, and scaled: MSE by σ², RMSE and MAE by σ.
R² = 1 − Σ(ŷ − y)² / Σ(y − ȳ)² is the same on either scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor

from ptlab.objectives.metric import Metric

if TYPE_CHECKING:
    from ptlab.data.loaders import Data


def accuracy(num_classes: int = 2) -> Metric:
    """Fraction of predictions equal to the target."""
    return Accuracy()


def f1(num_classes: int = 2) -> Metric:
    """F1 score (harmonic mean of precision and recall), averaged over classes (macro)."""
    return MacroF1(num_classes)


def mse(data: Optional[Data] = None) -> Metric:
    """Mean squared error (ŷ − y)², in the target's units squared."""
    return MeanSquaredError(scale=_target_std(data) ** 2)


def rmse(data: Optional[Data] = None) -> Metric:
    """Root mean squared error √(mean (ŷ − y)²), in the target's units."""
    return MeanSquaredError(scale=_target_std(data), root=True)


def mae(data: Optional[Data] = None) -> Metric:
    """Mean absolute error |ŷ − y|, in the target's units."""
    return MeanAbsoluteError(scale=_target_std(data))


def r2() -> Metric:
    """Coefficient of determination R² = 1 − Σ(ŷ − y)² / Σ(y − ȳ)² (1: perfect; 0: no better than ȳ)."""
    return R2()


def class_ids(prediction: Tensor) -> Tensor:
    """Class ids from what an objective predicts: the ids themselves, or float scores [N, C] → their argmax (as
    torchmetrics reads logits and probabilities)."""
    return prediction.argmax(-1) if prediction.is_floating_point() and prediction.dim() > 1 else prediction


class Accuracy(Metric):
    """correct / seen."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", torch.zeros((), dtype=torch.long))
        self.add_state("seen", torch.zeros((), dtype=torch.long))

    def update(self, prediction: Tensor, target: Tensor) -> None:
        self.correct += (class_ids(prediction) == target).sum()
        self.seen += target.numel()

    def result(self) -> Tensor:
        return self.correct / self.seen.clamp(min=1)


class MacroF1(Metric):
    """The mean over classes of F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c); a class neither predicted nor present
    (TP + FP + FN = 0) is left out of the mean, as torchmetrics' macro F1 does."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        for name in ("tp", "fp", "fn"):
            self.add_state(name, torch.zeros(num_classes, dtype=torch.long))

    def update(self, prediction: Tensor, target: Tensor) -> None:
        prediction, target = class_ids(prediction).flatten(), target.flatten()
        counts = lambda ids: torch.bincount(ids, minlength=self.num_classes)  # noqa: E731
        hits = counts(target[prediction == target])
        self.tp += hits
        self.fp += counts(prediction) - hits
        self.fn += counts(target) - hits

    def result(self) -> Tensor:
        denominator = 2 * self.tp + self.fp + self.fn
        present = denominator > 0
        scores = 2 * self.tp[present] / denominator[present]
        return scores.float().mean() if present.any() else torch.zeros((), device=self.tp.device)


class MeanSquaredError(Metric):
    """scale · mean (ŷ − y)², or scale · √(mean (ŷ − y)²) with ``root``."""

    def __init__(self, scale: float = 1.0, root: bool = False) -> None:
        super().__init__()
        self.scale, self.root = scale, root
        self.add_state("squared", torch.zeros((), dtype=torch.float64))
        self.add_state("seen", torch.zeros((), dtype=torch.long))

    def update(self, prediction: Tensor, target: Tensor) -> None:
        self.squared += ((prediction.double() - target.double()) ** 2).sum()
        self.seen += target.numel()

    def result(self) -> Tensor:
        mean = self.squared / self.seen.clamp(min=1)
        return (mean.sqrt() if self.root else mean).float() * self.scale


class MeanAbsoluteError(Metric):
    """scale · mean |ŷ − y|."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.add_state("absolute", torch.zeros((), dtype=torch.float64))
        self.add_state("seen", torch.zeros((), dtype=torch.long))

    def update(self, prediction: Tensor, target: Tensor) -> None:
        self.absolute += (prediction.double() - target.double()).abs().sum()
        self.seen += target.numel()

    def result(self) -> Tensor:
        return (self.absolute / self.seen.clamp(min=1)).float() * self.scale


class R2(Metric):
    """R² from the sums n, Σy, Σy² and Σ(ŷ − y)²: Σ(y − ȳ)² = Σy² − (Σy)²/n; nan below two rows, where it is
    undefined."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("n", "sum_y", "sum_y2", "sse"):
            self.add_state(name, torch.zeros((), dtype=torch.float64))

    def update(self, prediction: Tensor, target: Tensor) -> None:
        y = target.double().flatten()
        self.n += y.numel()
        self.sum_y += y.sum()
        self.sum_y2 += (y**2).sum()
        self.sse += ((prediction.double().flatten() - y) ** 2).sum()

    def result(self) -> Tensor:
        if self.n < 2:
            return torch.tensor(float("nan"))
        total = self.sum_y2 - self.sum_y**2 / self.n
        return (1 - self.sse / total).float()


def _target_std(data: Optional[Data]) -> float:
    """σ of the data's target standardization (1 when the target was left as it is)."""
    return float(data.info.get("target_std", 1.0)) if data is not None else 1.0
