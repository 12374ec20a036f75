"""Ranking from implicit feedback: which items a user interacted with, and which one they would pick next.

Training sees (user u, item i they interacted with, items j they did not), the j drawn
afresh each epoch (ptlab.data.interaction_batches). With scores r̂ from the model:

    BPR (Rendle et al. 2009), the default:   L = −log σ(r̂ᵤᵢ − r̂ᵤⱼ)
    the log loss of NCF (He et al. 2017):    L = −log σ(r̂ᵤᵢ) − Σⱼ log(1 − σ(r̂ᵤⱼ))

both averaged over the pairs (BPR) or the scored items (log loss) of the batch.

Evaluation ranks the candidate items of every held-out user — full ranking: every item
the user had not interacted with before (``data.ranking=full``); or the held-out items
among 99 sampled ones (``data.ranking=sampled``, the protocol papers report, easier) —
and the metrics (``hr@10``, ``ndcg@10``, ``recall@10``) read that ranking. ``val/loss`` is
the same loss taken over *every* (held-out item, other candidate) pair instead of a
sample, its expectation over j.

Every run also ranks the same split by item popularity and by EASE, a closed-form linear
autoencoder (ptlab.objectives.recsys_baselines), and reports them as
``test/METRIC_popularity`` and ``test/METRIC_ease``: well-tuned simple baselines often
beat published deep recommenders, and a run should show where it stands.
"""

from __future__ import annotations

import logging
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")


class Ranking(Objective):
    """Top-k recommendation from implicit feedback: BPR or log loss on sampled negatives, full-ranking metrics."""

    target_kind = "ranking"

    def __init__(self, metrics: Sequence[str] = ("hr@10", "ndcg@10", "recall@10"),
                 loss: Literal["bpr", "bce"] = "bpr", baselines: bool = True) -> None:
        self.metrics = list(metrics)
        self.loss_name = loss
        self.run_baselines = baselines

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        users, second, third = batch
        if second.dtype == torch.bool:  # an evaluation batch: (users, relevant items, candidate items) as masks
            return self._ranking_loss(model(users), second, third)
        positive, negatives = model(users, second), model(users, third)  # [B], [B, n]
        if self.loss_name == "bpr":
            loss = F.softplus(negatives - positive.unsqueeze(1)).mean()  # −log σ(r̂ᵤᵢ − r̂ᵤⱼ) = softplus(r̂ᵤⱼ − r̂ᵤᵢ)
        else:
            loss = (F.softplus(-positive).sum() + F.softplus(negatives).sum()) / (positive.numel() + negatives.numel())
        return loss, positive, second

    def _ranking_loss(self, scores: Tensor, relevant: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(the loss over every held-out × other-candidate pair of each user, averaged per user; the scores with
        non-candidates at −inf; the relevance masks)."""
        scores = scores.float()
        others = candidates & ~relevant
        if self.loss_name == "bpr":  # held-out scores padded to the user with most: [U, R], then every pair [U, R, N]
            count = relevant.sum(1)
            first = relevant.int().argsort(dim=1, descending=True, stable=True)[:, : int(count.max())]
            held_out, real = scores.gather(1, first), torch.arange(first.shape[1], device=scores.device) < count[:, None]
            pairs = F.softplus(scores.unsqueeze(1) - held_out.unsqueeze(2)) * (real.unsqueeze(2) & others.unsqueeze(1))
            per_user = pairs.sum((1, 2)) / (count * others.sum(1)).clamp(min=1)
        else:
            positive = (F.softplus(-scores) * relevant).sum(1) / relevant.sum(1).clamp(min=1)
            negative = (F.softplus(scores) * others).sum(1) / others.sum(1).clamp(min=1)
            per_user = positive + negative
        return per_user.mean(), scores.masked_fill(~candidates, float("-inf")), relevant

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        """``test/METRIC_popularity`` and ``test/METRIC_ease`` on the run's own test split (EASE's λ chosen on val)."""
        if not self.run_baselines:
            return {}
        from ptlab.objectives import recsys_baselines as rb

        train, val, test = (data.in_memory(split) for split in ("train", "val", "test"))
        if train is None or val is None or test is None:
            return {}
        num_users, num_items = data.info["num_users"], data.info["num_items"]
        seen = rb.interaction_matrix(*(t.cpu() for t in train[:2]), num_users, num_items)
        fitted = {"popularity": rb.popularity_scores(seen).expand(num_users, -1)}
        l2 = rb.choose_ease_l2(seen, *(t.cpu() for t in val), self._first_metric(data))
        fitted["ease"] = rb.ease(seen, l2)
        out = {}
        for name, scores in fitted.items():
            users, relevant, candidates = (t.cpu() for t in test)
            ranked = scores[users].float().masked_fill(~candidates, float("-inf"))
            for metric_name in self.metrics:
                metric = self._metric(metric_name, data)
                metric.update(ranked, relevant)
                out[f"test/{metric_name}_{name}"] = float(metric.compute())
        first = self.metrics[0] if self.metrics else None
        if first and f"test/{first}" in results:
            log.info("on the same test split, test/%s: popularity %.4f, EASE (λ=%g) %.4f; this model %.4f",
                     first, out[f"test/{first}_popularity"], l2, out[f"test/{first}_ease"], results[f"test/{first}"])
        return out

    def _first_metric(self, data):
        """The metric EASE's λ is chosen by on val: the first of the run's metrics (ndcg@10 if it has none)."""
        return self._metric(self.metrics[0] if self.metrics else "ndcg@10", data)

    @staticmethod
    def _metric(name: str, data):
        from ptlab import catalog

        return catalog.build_metric(name, data=data)
