"""Matrix factorization: a user and an item meet in a dot product of their factors.

    r̂ᵤᵢ = μ + bᵤ + bᵢ + pᵤ·qᵢ

with a global offset μ, a user bias bᵤ, an item bias bᵢ and d-dimensional
factors pᵤ (user u's tastes) and qᵢ (how much item i has of each). Scoring every
item for a batch of users is one matmul, R̂ = μ + b_U 1ᵀ + 1 b_Iᵀ + P_U Qᵀ.

The model only scores; the objective says what a score means.

- Ratings (explicit feedback): r̂ᵤᵢ is the predicted rating, fit with the
  squared error. μ + bᵤ + bᵢ is then the baseline predictor of Koren et al.
  (2009, "Matrix factorization techniques for recommender systems"): how
  generous a user is and how well liked an item is, before any taste.
- Ranking (implicit feedback): r̂ᵤᵢ orders the items for user u. BPR (Rendle et
  al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback") fits
  an item i the user interacted with above a sampled item j they did not,

      L = −Σ log σ(r̂ᵤᵢ − r̂ᵤⱼ),

  and a softmax over items compares a user's items with each other too. In
  r̂ᵤᵢ − r̂ᵤⱼ, μ and bᵤ cancel: they shift all of a user's scores equally, so
  such ranking losses never move them and they stay at 0 (a pointwise loss,
  binary cross-entropy on sampled negatives, does use them to calibrate).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptlab.config import PositiveFloat, PositiveInt
from ptlab.models import serves


@serves("ranking", "rating")
class MatrixFactorization(nn.Module):
    """r̂ᵤᵢ = μ + bᵤ + bᵢ + pᵤ·qᵢ: biases plus a dot product of user and item factors."""

    def __init__(self, num_users: int, num_items: int, dim: PositiveInt = 64, init_std: PositiveFloat = 0.01) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(num_users, dim)  # pᵤ
        self.item_factors = nn.Embedding(num_items, dim)  # qᵢ
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        self.user_bias = nn.Parameter(torch.zeros(num_users))  # bᵤ
        self.item_bias = nn.Parameter(torch.zeros(num_items))  # bᵢ
        self.global_bias = nn.Parameter(torch.zeros(()))  # μ

    def forward(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """Scores r̂ᵤᵢ: users [B] with items None → every item [B, num_items]; items [B] → [B]; items [B, K] → [B, K]."""
        p_u, b_u = self.user_factors(users), self.user_bias[users]
        if items is None:  # R̂ = μ + b_U 1ᵀ + 1 b_Iᵀ + P_U Qᵀ
            return self.global_bias + b_u[:, None] + self.item_bias + p_u @ self.item_factors.weight.T
        if items.dim() == 2:  # K items per user: broadcast the user's terms over them
            p_u, b_u = p_u[:, None, :], b_u[:, None]
        return self.global_bias + b_u + self.item_bias[items] + (p_u * self.item_factors(items)).sum(-1)
