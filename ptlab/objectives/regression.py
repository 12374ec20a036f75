"""Regression with the squared error of the book: L = ½(ŷ − y)², averaged over the batch.

The loss is computed on the target as the data hands it to the model —
standardized, y' = (y − μ) / σ, by default (``data.standardize_target``) — so
``train/loss``, ``val/loss`` and ``test/loss`` are ½·mean(ŷ' − y')², what
gradient descent minimizes. The metrics (``val/mse``, ``test/rmse``, ``test/mae``,
``test/r2``, …) are in the units of ``data.target`` (see ptlab.objectives.metrics).
"""

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

    def __init__(self, metrics: Sequence[str] = ("mse", "rmse", "mae", "r2"),
                 baseline: Optional[Literal["lstsq"]] = None) -> None:
        self.metrics = list(metrics)
        self.baseline = baseline

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        y_hat = model(x)
        return 0.5 * ((y_hat - y) ** 2).mean(), y_hat, y

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        """``test/NAME_lstsq``: each of the objective's metrics for the least-squares fit, measured as the run's are."""
        train, test = data.in_memory("train"), data.in_memory("test")
        if self.baseline != "lstsq" or train is None or test is None:
            return {}
        from ptlab import catalog

        y_hat, y = least_squares_test_predictions(train, test)
        out = {}
        for name in self.metrics:
            metric = catalog.build_metric(name, data=data)
            metric.update(y_hat, y)
            out[f"test/{name}_lstsq"] = float(metric.compute())
        if "test/mse" in results and "test/mse_lstsq" in out:
            out["test/mse_vs_lstsq"] = results["test/mse"] / out["test/mse_lstsq"]
            log.info("closed-form least squares on the same split: test/mse %.6g; gradient descent got %.4f× that",
                     out["test/mse_lstsq"], out["test/mse_vs_lstsq"])
        return out


def least_squares_test_predictions(train: Sequence[Tensor], test: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(ŷ, y) on the test rows for the exact minimizer of Σ(wᵀx + b − y)² on the training rows.

    Solved in float64 on the CPU; returned as float32, the dtype the run's own predictions have.
    """
    (x, y), (x_test, y_test) = ([t.double().cpu() for t in part] for part in (train, test))
    ones = torch.ones(len(x), 1, dtype=x.dtype)
    w = torch.linalg.lstsq(torch.cat([x, ones], 1), y.unsqueeze(1)).solution  # [w; b]
    y_hat = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x.dtype)], 1) @ w
    return y_hat.squeeze(1).float(), y_test.float()
