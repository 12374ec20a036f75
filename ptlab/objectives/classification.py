"""Classification with cross-entropy.

Two classes, one logit z:  L = −[y·log σ(z) + (1 − y)·log(1 − σ(z))]     (binary cross-entropy)
K classes, K logits z:     L = −log softmax(z)_y = −z_y + log Σ_k e^{z_k}   (cross-entropy)
Both are computed from the logits directly, which is stable for large |z|.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.config import Probability
from ptlab.objectives.base import Objective


class Classification(Objective):
    """Cross-entropy on logits (binary with one logit, softmax with K), optional label smoothing."""

    target_kind = "classification"

    def __init__(self, metrics: Sequence[str] = ("acc",), label_smoothing: Probability = 0.0,
                 baseline: Optional[Literal["logistic"]] = None) -> None:
        self.metrics = list(metrics)
        self.label_smoothing = label_smoothing
        self.baseline = baseline

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        z = model(x)
        if z.shape[-1] == 1:
            target = y.float()
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            return F.binary_cross_entropy_with_logits(z.squeeze(-1), target), z, y
        return F.cross_entropy(z, y, label_smoothing=self.label_smoothing), z, y

    def predict(self, z: Tensor) -> Tensor:
        return (z.squeeze(-1) > 0).long() if z.shape[-1] == 1 else z.argmax(-1)

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        train, test = data.in_memory("train"), data.in_memory("test")
        if self.baseline != "logistic" or train is None or test is None:
            return {}
        from importlib.metadata import version

        from ptlab.objectives.baseline_cache import cached

        name = f"logistic-sklearn{version('scikit-learn')}"  # deterministic: the same rows, the same accuracy
        return {"test/acc_sklearn": cached(name, [*train, *test], lambda: sklearn_logistic_accuracy(train, test))}


def sklearn_logistic_accuracy(train: Sequence[Tensor], test: Sequence[Tensor]) -> float:
    """Test accuracy of scikit-learn's LogisticRegression (L2, C=1, lbfgs) fitted on the same rows (cached by
    ``baselines``: ptlab.objectives.baseline_cache)."""
    from sklearn.linear_model import LogisticRegression

    (x, y), (x_test, y_test) = ([t.cpu().numpy() for t in part] for part in (train, test))
    x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    fitted = LogisticRegression(max_iter=5000).fit(x, y)
    return float((fitted.predict(x_test) == y_test).mean())
