"""The built-in metrics (ptlab.objectives.metric base, no torchmetrics import) agree with torchmetrics."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from ptlab.objectives import metrics
from ptlab.objectives.text import Perplexity

torch.set_num_threads(1)


def fed(metric, batches):
    for prediction, target in batches:
        metric.update(prediction, target)
    return float(metric.compute())


def class_batches(num_classes: int, seed: int = 0):
    """Three batches of predictions and targets in which the last class never occurs."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, num_classes - 1, (40,), generator=g), torch.randint(0, num_classes - 1, (40,), generator=g))
            for _ in range(3)]


@pytest.mark.parametrize("num_classes", [2, 3, 7])
def test_accuracy_and_macro_f1_agree_with_torchmetrics_when_a_class_never_occurs(num_classes: int) -> None:
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    batches = class_batches(num_classes)
    assert fed(metrics.accuracy(num_classes), batches) == pytest.approx(
        fed(MulticlassAccuracy(num_classes, average="micro"), batches), abs=1e-7)
    assert fed(metrics.f1(num_classes), batches) == pytest.approx(
        fed(MulticlassF1Score(num_classes, average="macro"), batches), abs=1e-6)


def test_class_metrics_read_logits_as_their_argmax_as_torchmetrics_does() -> None:
    """The text objective hands its classification metrics the logits [N, C]."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    g = torch.Generator().manual_seed(3)
    logits, target = torch.randn(60, 4, generator=g), torch.randint(0, 4, (60,), generator=g)
    assert fed(metrics.accuracy(4), [(logits, target)]) == pytest.approx(
        fed(MulticlassAccuracy(4, average="micro"), [(logits, target)]))
    assert fed(metrics.f1(4), [(logits, target)]) == pytest.approx(
        fed(MulticlassF1Score(4, average="macro"), [(logits, target)]), abs=1e-6)


def test_macro_f1_by_hand() -> None:
    """Class 0: TP 1, FP 1, FN 0 → 2/3; class 1: TP 1, FP 0, FN 1 → 2/3; class 2 absent everywhere → left out."""
    f1 = metrics.f1(3)
    f1.update(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
    assert float(f1.compute()) == pytest.approx(2 / 3)


def test_regression_metrics_agree_with_torchmetrics_and_scale_into_target_units() -> None:
    from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

    g = torch.Generator().manual_seed(1)
    y = torch.randn(90, generator=g)
    batches = [(y[i:i + 30] + 0.3 * torch.randn(30, generator=g), y[i:i + 30]) for i in (0, 30, 60)]
    pairs = [(metrics.mse(), MeanSquaredError()), (metrics.rmse(), MeanSquaredError(squared=False)),
             (metrics.mae(), MeanAbsoluteError()), (metrics.r2(), R2Score())]
    for ours, reference in pairs:
        assert fed(ours, batches) == pytest.approx(fed(reference, batches), rel=1e-5)

    class Scaled:  # what a standardized target's data tells the metrics: σ = 2
        info = {"target_std": 2.0}

    unscaled_mse = fed(metrics.mse(), batches)
    assert fed(metrics.mse(Scaled()), batches) == pytest.approx(4 * unscaled_mse)
    assert fed(metrics.rmse(Scaled()), batches) == pytest.approx(2 * math.sqrt(unscaled_mse))


def test_r2_is_nan_below_two_rows_and_reset_starts_over() -> None:
    r2 = metrics.r2()
    r2.update(torch.tensor([1.0]), torch.tensor([2.0]))
    assert math.isnan(float(r2.compute()))
    r2.reset()
    r2.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert float(r2.compute()) == pytest.approx(1.0)


def test_perplexity_is_exp_of_the_mean_nll_over_every_batch() -> None:
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(50, 11, generator=g), torch.randint(0, 11, (50,), generator=g)
    ppl = Perplexity()
    ppl.update(logits[:20], target[:20])
    ppl.update(logits[20:], target[20:])
    expected = math.exp(float(torch.nn.functional.cross_entropy(logits, target)))
    assert float(ppl.compute()) == pytest.approx(expected, rel=1e-5)


def test_importing_the_metrics_imports_no_torchmetrics() -> None:
    code = ("import sys; from ptlab.objectives import metrics, ranking_metrics, text; "
            "m = metrics.f1(3); print('torchmetrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
