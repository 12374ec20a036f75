"""Regression with the squared error of the book: L = ½(ŷ − y)², averaged over the batch."""

from __future__ import annotations

import logging
from typing import Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")


class Regression(Objective):
    """Squared-error regression; optionally compares with the closed-form least-squares optimum."""

    target_kind = "regression"

    def __init__(self, metrics: Sequence[str] = ("mse",), baseline: Optional[Literal["lstsq"]] = None) -> None:
        self.metrics = list(metrics)
        self.baseline = baseline

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        y_hat = model(x)
        return 0.5 * ((y_hat - y) ** 2).mean(), y_hat, y

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        if self.baseline != "lstsq" or not hasattr(data.train, "tensors"):
            return {}
        optimum = least_squares_test_mse(data.train.tensors, data.test.tensors)
        out = {"test/mse_lstsq": optimum}
        if "test/mse" in results:
            out["test/mse_vs_lstsq"] = results["test/mse"] / optimum
            log.info("closed-form least squares on the same split: test/mse %.6g; gradient descent got %.4f× that",
                     optimum, out["test/mse_vs_lstsq"])
        return out


def least_squares_test_mse(train: Sequence[Tensor], test: Sequence[Tensor]) -> float:
    """Test MSE of the exact minimizer of Σ(wᵀx + b − y)² on the training rows (the normal equations)."""
    (x, y), (x_test, y_test) = ([t.double().cpu() for t in part] for part in (train, test))
    ones = torch.ones(len(x), 1, dtype=x.dtype)
    w = torch.linalg.lstsq(torch.cat([x, ones], 1), y.unsqueeze(1)).solution  # [w; b]
    y_hat = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x.dtype)], 1) @ w
    return float(((y_hat.squeeze(1) - y_test) ** 2).mean())
