"""The contract between the trainer and the task logic."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from torch import Tensor, nn


class Objective:
    """Turns a batch into a loss; the trainer owns everything else (devices, steps, logging)."""

    target_kind: ClassVar[str]  # "regression" or "classification": tells the data how to read targets
    metrics: Sequence[str] = ()  # names in the metric registry, reported as "split/name"

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(scalar loss, model output, target) for one batch."""
        raise NotImplementedError

    def predict(self, output: Tensor) -> Tensor:
        """What the metrics compare with the target (class ids, regression values)."""
        return output

    def baselines(self, data: Any, results: dict[str, float]) -> dict[str, float]:
        """Reference numbers computed outside gradient descent (closed form, scikit-learn); none by default."""
        return {}
