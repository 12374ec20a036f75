"""Closed-form recommenders that every recsys run reports beside its model.

Implicit feedback is the user × item matrix X (Xᵤᵢ = 1 where user u interacted
with item i in training). Two references score it without gradient descent:

- Popularity: every user gets the items with the most training interactions,
  sᵢ = Σᵤ Xᵤᵢ. A model that does not beat it has learnt nothing personal.
- EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"):
  an item-item weight matrix B that rebuilds X from itself, with no item
  allowed to explain itself,

      min_B ‖X − XB‖²_F + λ‖B‖²_F   subject to diag(B) = 0,

  solved in closed form by P = (XᵀX + λI)⁻¹ and B = I − P·diagMat(1/diag(P)),
  i.e. Bᵢⱼ = −Pᵢⱼ / Pⱼⱼ off the diagonal; the scores are S = XB. A strong
  baseline, often ahead of deep models on MovieLens-sized data; λ is chosen
  on the validation split (``choose_ease_l2``).

Explicit ratings get the baseline predictor r̂ᵤᵢ = μ + bᵤ + bᵢ with damped
means (``bias_baseline``), and below it the global mean μ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from ptlab.objectives.metric import Metric

EASE_L2_GRID = (1.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 3000.0)


def interaction_matrix(users: Tensor, items: Tensor, num_users: int, num_items: int) -> Tensor:
    """The dense float32 X [num_users, num_items]: 1 where the user interacted with the item, else 0."""
    x = torch.zeros(num_users, num_items, device=users.device)
    x[users, items] = 1.0
    return x


def popularity_scores(x: Tensor) -> Tensor:
    """sᵢ = Σᵤ Xᵤᵢ [num_items]: each item's number of training interactions, the same for every user."""
    return x.sum(0)


def item_gram(x: Tensor) -> Tensor:
    """G = XᵀX [num_items, num_items] in float64: how many users each pair of items shares."""
    x = x.double()
    return x.T @ x


def ease_weights(gram: Tensor, l2: float) -> Tensor:
    """EASE's B = I − P·diagMat(1/diag(P)) with P = (G + λI)⁻¹, from the float64 Gram matrix G = XᵀX; diag(B) = 0."""
    eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    p = torch.cholesky_inverse(torch.linalg.cholesky(gram + l2 * eye))  # λ > 0: G + λI is positive definite
    return eye - p / p.diagonal()  # column j divided by Pⱼⱼ


def ease(x: Tensor, l2: float) -> Tensor:
    """EASE's scores S = XB [num_users, num_items] (float32) with λ = ``l2``; solved in float64."""
    return (x.double() @ ease_weights(item_gram(x), l2)).float()


def choose_ease_l2(x: Tensor, val_users: Tensor, val_relevant: Tensor, val_candidates: Tensor, metric: Metric,
                   grid: Sequence[float] = EASE_L2_GRID) -> float:
    """The λ of ``grid`` whose EASE scores are best on the validation split by ``metric`` (higher is better).

    ``val_users`` [V] are rows of X, ``val_relevant`` and ``val_candidates`` [V, num_items] bool; non-candidates
    score −inf, as the run's own evaluation scores them. Ties go to the first λ of the grid.
    """
    metric = metric.to(x.device)
    gram, history = item_gram(x), x[val_users].double()  # the Gram matrix costs as much as a solve: once

    def quality(l2: float) -> float:
        scores = (history @ ease_weights(gram, l2)).float().masked_fill(~val_candidates, float("-inf"))
        metric.reset()
        metric.update(scores, val_relevant)
        return float(metric.compute())

    values = [quality(l2) for l2 in grid]
    return float(grid[values.index(max(values))])


@dataclass(frozen=True)
class BiasBaseline:
    """r̂ᵤᵢ = μ + bᵤ + bᵢ; a user or item without training ratings has bias 0."""

    mu: float
    user_bias: Tensor  # bᵤ [num_users]
    item_bias: Tensor  # bᵢ [num_items]

    def __call__(self, users: Tensor, items: Tensor) -> Tensor:
        return self.mu + self.user_bias[users] + self.item_bias[items]


def bias_baseline(users: Tensor, items: Tensor, ratings: Tensor, num_users: int, num_items: int,
                  damping: float = 5.0) -> BiasBaseline:
    """The baseline predictor μ + bᵤ + bᵢ, fit to training ratings with damped means.

    As in Koren (2010, "Factor in the Neighbors", §2.1):

        μ  = mean r
        bᵢ = Σ_{u rated i} (rᵤᵢ − μ) / (nᵢ + damping)
        bᵤ = Σ_{i rated by u} (rᵤᵢ − μ − bᵢ) / (nᵤ + damping)

    The damping shrinks the bias of an item or user with few ratings toward 0. Sums in float64; the biases are
    returned as float32 on the device of ``ratings``.
    """
    r = ratings.double()
    mu = r.mean()

    def damped_mean(index: Tensor, residual: Tensor, size: int) -> Tensor:
        total = torch.zeros(size, dtype=r.dtype, device=r.device).index_add_(0, index, residual)
        count = torch.zeros(size, dtype=r.dtype, device=r.device).index_add_(0, index, torch.ones_like(residual))
        return total / (count + damping).clamp(min=1.0)  # clamp: 0/0 → 0 for one never rated when damping = 0

    item_bias = damped_mean(items, r - mu, num_items)
    user_bias = damped_mean(users, r - mu - item_bias[items], num_users)
    return BiasBaseline(float(mu), user_bias.float(), item_bias.float())
