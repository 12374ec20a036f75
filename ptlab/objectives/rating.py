"""Explicit ratings: predict the rating r a user gives an item, with the squared error of the book.

    L = ½(r̂ᵤᵢ − rᵤᵢ)²,  averaged over the batch

``val/rmse`` and ``test/mae`` are in stars. Every run also reports two references on the
same test split: the training mean for everyone (``test/rmse_mean``) and the baseline
predictor μ + bᵤ + bᵢ with damped means (``test/rmse_bias``, Koren 2008), which a
factorization must beat to have learned anything about taste.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import Tensor, nn

from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")


class Rating(Objective):
    """Rating prediction: squared error on explicit ratings, against the mean and the user/item-bias baselines."""

    target_kind = "rating"

    def __init__(self, metrics: Sequence[str] = ("rmse", "mae"), baselines: bool = True) -> None:
        self.metrics = list(metrics)
        self.run_baselines = baselines

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        users, items, ratings = batch
        predicted = model(users, items)
        return 0.5 * ((predicted - ratings) ** 2).mean(), predicted, ratings

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        """``test/METRIC_mean`` and ``test/METRIC_bias`` for each of the run's metrics."""
        train, test = data.in_memory("train"), data.in_memory("test")
        if not self.run_baselines or train is None or test is None:
            return {}
        from ptlab import catalog
        from ptlab.objectives.recsys_baselines import bias_baseline

        users, items, ratings = (t.cpu() for t in train)
        test_users, test_items, test_ratings = (t.cpu() for t in test)
        predict_bias = bias_baseline(users, items, ratings, data.info["num_users"], data.info["num_items"])
        predictions = {"mean": torch.full_like(test_ratings, float(ratings.mean())),
                       "bias": predict_bias(test_users, test_items).float()}
        out = {}
        for name, predicted in predictions.items():
            for metric_name in self.metrics:
                metric = catalog.build_metric(metric_name, data=data)
                metric.update(predicted, test_ratings)
                out[f"test/{metric_name}_{name}"] = float(metric.compute())
        first = self.metrics[0] if self.metrics else None
        if first and f"test/{first}" in results:
            log.info("on the same test split, test/%s: training mean %.4f, μ + bᵤ + bᵢ %.4f; this model %.4f",
                     first, out[f"test/{first}_mean"], out[f"test/{first}_bias"], results[f"test/{first}"])
        return out
