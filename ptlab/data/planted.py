"""Planted implicit feedback: low-rank taste plus popularity skew, drawn from a model whose scores are known.

With r = ``rank``, U users, I items and everything drawn from one ``generator_seed``:

    θᵤ ~ N(0, I_r / √r),  φᵢ ~ N(0, I_r / √r)          so that θᵤ·φᵢ has variance 1
    wᵢ = (πᵢ + 1)^(−skew) / Σⱼ (πⱼ + 1)^(−skew)        π: a random permutation, πᵢ item i's popularity rank
    sᵤᵢ = θᵤ·φᵢ + popularity · log wᵢ                  the true preference
    nᵤ = min(m − 1 + Geometric(1 / (n̄ − m + 1)), I)  m = min_interactions, n̄ = mean_interactions (mean nᵤ ≈ n̄)

Each pick also gets a rating, for ``objective=rating``: the planted taste in stars,

    rᵤᵢ = clip(round(3 + θᵤ·φᵢ + εᵤᵢ), 1, 5),  εᵤᵢ ~ N(0, 0.5²)

(drawn from a second stream of the seed, so the picks are the same with or without them).

User u then picks nᵤ items one after another, without replacement, each time item i with
probability ∝ exp(sᵤᵢ / temperature) among those not picked yet. That sequence is the nᵤ
largest of sᵤᵢ / temperature + Gᵤᵢ, Gᵤᵢ ~ Gumbel(0, 1) i.i.d., in decreasing order (Gumbel-top-k);
the timestamp of a pick is its place in it (0, 1, …).

Ids are "u1" … "uU" and "i1" … "iI" (an item nobody picked does not appear). Since every next
pick is drawn ∝ exp(s / temperature) over the items not yet picked, ranking a user's unseen
items by the true s is the best any recommender can do: :class:`PlantedTruth` gives s, so a test
can check that a model approaches it and that it beats popularity alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ptlab.data.interaction_files import Interactions
from ptlab.errors import ConfigError

USERS_PER_CHUNK = 2048  # Gumbel keys are drawn for this many users × all items at a time


@dataclass(frozen=True)
class PlantedTruth:
    """The model behind :func:`planted_interactions`: row k of each array belongs to id number k + 1."""

    user_factors: np.ndarray  # θ, U × r
    item_factors: np.ndarray  # φ, I × r
    log_popularity: np.ndarray  # log w, I
    popularity: float

    def scores(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """The true s for every pair of raw ids ("u3", "i17"): a len(users) × len(items) matrix."""
        u, i = _numbers(users, "u"), _numbers(items, "i")
        return self.user_factors[u] @ self.item_factors[i].T + self.popularity * self.log_popularity[i]


def planted_interactions(
    num_users: int = 943, num_items: int = 1682, rank: int = 8, mean_interactions: float = 40,
    min_interactions: int = 3, popularity: float = 0.5, skew: float = 1.0, temperature: float = 0.3,
    generator_seed: int = 0,
) -> tuple[Interactions, PlantedTruth]:
    """The interactions drawn from the planted model (see the module docstring), and that model."""
    if min_interactions > num_items:
        raise ConfigError(f"data.min_interactions: {min_interactions} interactions per user need as many items, and "
                          f"data.num_items is {num_items}; raise data.num_items or lower data.min_interactions")
    if mean_interactions < min_interactions:
        raise ConfigError(f"data.mean_interactions: {mean_interactions:g} is below data.min_interactions "
                          f"({min_interactions}); make it at least that")
    rng = np.random.default_rng(np.random.SeedSequence(generator_seed % 2**64))
    theta = rng.normal(0, rank ** -0.25, (num_users, rank))
    phi = rng.normal(0, rank ** -0.25, (num_items, rank))
    weight = (rng.permutation(num_items) + 1.0) ** -skew
    truth = PlantedTruth(theta, phi, np.log(weight / weight.sum()), popularity)
    counts = min_interactions - 1 + rng.geometric(1 / (mean_interactions - min_interactions + 1), num_users)
    counts = np.minimum(counts, num_items)
    users, items, times = [], [], []
    for start in range(0, num_users, USERS_PER_CHUNK):
        chunk = np.arange(start, min(start + USERS_PER_CHUNK, num_users))
        scores = theta[chunk] @ phi.T + popularity * truth.log_popularity
        keys = scores / temperature + rng.gumbel(size=scores.shape)
        most = int(counts[chunk].max())
        picked = torch.from_numpy(keys).topk(most, dim=1).indices.numpy()  # each row's largest keys, largest first
        row, place = np.nonzero(np.arange(most) < counts[chunk, None])  # user by user, in the order picked
        users.append(chunk[row])
        items.append(picked[row, place])
        times.append(place)
    users, items = np.concatenate(users), np.concatenate(items)
    noise = np.random.default_rng(np.random.SeedSequence([generator_seed % 2**64, 1])).normal(0, 0.5, len(users))
    taste = np.einsum("nr,nr->n", theta[users], phi[items])
    table = Interactions([f"u{u + 1}" for u in users.tolist()], [f"i{i + 1}" for i in items.tolist()],
                         ratings=np.clip(np.round(3 + taste + noise), 1, 5),
                         timestamps=np.concatenate(times).astype(np.float64))
    return table, truth


def _numbers(ids: Sequence[str], prefix: str) -> np.ndarray:
    """Row indices of raw ids "u1", "u2", … (or "i…"): the number after the prefix, minus one."""
    return np.asarray([int(name.removeprefix(prefix)) - 1 for name in ids], dtype=np.int64)
