"""Top-k ranking metrics: how high each user's relevant items land among the candidates.

Each row of a batch is one user: the scores of every item, −inf for an item that
is not a candidate (one the user already met in training), and which items are
relevant (held out). With the top k items by score and rel_r = 1 when the item
ranked r (from 0) is relevant:

    HR@k     = 1 if Σ_{r<k} rel_r > 0 else 0
    NDCG@k   = DCG@k / IDCG@k,  DCG@k = Σ_{r<k} rel_r / log₂(r + 2),
               IDCG@k = Σ_{r<min(k, |relevant|)} 1 / log₂(r + 2)  (every relevant item on top)
    Recall@k = Σ_{r<k} rel_r / |relevant|

each averaged over the users that have a relevant item (the others are
skipped). A non-candidate is never counted: not as retrieved, even when a user
has fewer than k candidates, and not in |relevant|.

These are torchmetrics' RetrievalHitRate, RetrievalNormalizedDCG and
RetrievalRecall (empty_target_action="skip"; tests/test_recsys_models.py checks
that they agree), but not those classes themselves: they keep every (user,
item) score until ``compute`` — N_users·N_items values, ~290 MB of scores,
targets and query ids for MovieLens-1M — and then group the queries in Python.
Here each batch is ranked at once with ``torch.topk`` over its rows and the
metric keeps two numbers, the sum over users and their count, which torchrun
sums across processes (ptlab.objectives.metric). Ties are broken as ``torch.topk`` breaks them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ptlab.config import PositiveInt
from ptlab.objectives.metric import Metric


class TopK(Metric):
    """The mean over users of a per-user score of their top k items; subclasses define the score."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.add_state("total", torch.zeros(()), dist_reduce_fx="sum")  # Σ over users of the score
        self.add_state("users", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor, relevant: Tensor) -> None:
        """scores [U, N] (−inf: not a candidate), relevant [U, N] bool: one row per user."""
        relevant = relevant & ~torch.isneginf(scores)  # a non-candidate counts nowhere
        n_relevant = relevant.sum(1)
        top = scores.topk(min(self.k, scores.shape[1]), dim=1).indices
        hits = relevant.gather(1, top)  # hits[u, r]: the item ranked r for user u is relevant
        kept = n_relevant > 0
        self.total += self.per_user(hits[kept], n_relevant[kept]).sum()
        self.users += kept.sum()

    def per_user(self, hits: Tensor, n_relevant: Tensor) -> Tensor:
        """The score of each row from its top-k ``hits`` [U, k] and its number of relevant items [U]."""
        raise NotImplementedError

    def result(self) -> Tensor:
        return self.total / self.users


class HitRate(TopK):
    """HR@k = 1 if a relevant item is in the top k."""

    def per_user(self, hits: Tensor, n_relevant: Tensor) -> Tensor:
        return hits.any(1).float()


class NDCG(TopK):
    """NDCG@k = DCG@k / IDCG@k with DCG@k = Σ_{r<k} rel_r / log₂(r + 2)."""

    def per_user(self, hits: Tensor, n_relevant: Tensor) -> Tensor:
        discount = 1 / torch.log2(torch.arange(hits.shape[1], device=hits.device) + 2.0)  # 1 / log₂(r + 2)
        dcg = (hits * discount).sum(1)
        idcg = discount.cumsum(0)[n_relevant.clamp(max=hits.shape[1]) - 1]  # min(k, |relevant|) hits on top
        return dcg / idcg


class Recall(TopK):
    """Recall@k = (relevant items in the top k) / |relevant|."""

    def per_user(self, hits: Tensor, n_relevant: Tensor) -> Tensor:
        return hits.sum(1) / n_relevant


def hit_rate(k: PositiveInt = 10) -> HitRate:
    """Hit rate HR@k: the fraction of users with a relevant item among their top k."""
    return HitRate(k)


def ndcg(k: PositiveInt = 10) -> NDCG:
    """NDCG@k = DCG@k / IDCG@k, DCG@k = Σ_{r<k} rel_r / log₂(r + 2): relevant items ranked high count most."""
    return NDCG(k)


def recall(k: PositiveInt = 10) -> Recall:
    """Recall@k = (relevant items in the top k) / |relevant|, averaged over users."""
    return Recall(k)
