"""NeuMF (He et al. 2017, "Neural Collaborative Filtering"): a dot product and an MLP, side by side.

Each user and item has two embeddings, one per tower:

    φ_GMF = pᵤᴳ ⊙ qᵢᴳ                        generalized matrix factorization
    φ_MLP = MLP([pᵤᴹ; qᵢᴹ])                  ReLU layers on the concatenation
    ŷᵤᵢ  = hᵀ[φ_GMF; φ_MLP] + b

With h = 1 and no MLP tower, ŷᵤᵢ = pᵤ·qᵢ is matrix factorization
(ptlab/models/mf.py); the MLP can learn interactions a dot product cannot. The
model returns ŷᵤᵢ as it is: a predicted rating for ratings, a logit (the paper's
binary cross-entropy on sampled negatives) or a BPR score for ranking — the
objective decides.

Scoring every item for a batch of users runs the MLP on every (user, item)
pair, so it goes through the items in chunks of at most ``PAIRS_PER_CHUNK``
pairs: memory stays bounded whatever the number of items.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ptlab.config import PositiveInt, Probability
from ptlab.models import serves

PAIRS_PER_CHUNK = 2**16  # (user, item) pairs scored at once when scoring every item


@serves("ranking", "rating")
class NeuMF(nn.Module):
    """ŷᵤᵢ = hᵀ[pᵤᴳ ⊙ qᵢᴳ; MLP([pᵤᴹ; qᵢᴹ])] + b: a GMF tower and an MLP tower, joined by a linear layer."""

    def __init__(self, num_users: int, num_items: int, dim: PositiveInt = 32,
                 mlp_layers: Sequence[PositiveInt] = (64, 32, 16), dropout: Probability = 0.0) -> None:
        super().__init__()
        self.gmf_users, self.gmf_items = nn.Embedding(num_users, dim), nn.Embedding(num_items, dim)  # pᴳ, qᴳ
        self.mlp_users, self.mlp_items = nn.Embedding(num_users, dim), nn.Embedding(num_items, dim)  # pᴹ, qᴹ
        for embedding in (self.gmf_users, self.gmf_items, self.mlp_users, self.mlp_items):
            nn.init.normal_(embedding.weight, std=0.01)  # the paper's N(0, 0.01²)
        layers, width = [], 2 * dim
        for out in mlp_layers:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(dim + width, 1)  # h and b

    def forward(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """Scores ŷᵤᵢ: users [B] with items None → every item [B, num_items]; items [B] → [B]; items [B, K] → [B, K]."""
        p_gmf, p_mlp = self.gmf_users(users), self.mlp_users(users)
        if items is None:  # every item, in chunks of items broadcast against the batch of users
            step = max(1, PAIRS_PER_CHUNK // max(1, len(users)))
            chunks = zip(self.gmf_items.weight.split(step), self.mlp_items.weight.split(step))
            return torch.cat([self.score(p_gmf[:, None], p_mlp[:, None], q_gmf, q_mlp) for q_gmf, q_mlp in chunks], 1)
        if items.dim() == 2:  # K items per user
            p_gmf, p_mlp = p_gmf[:, None], p_mlp[:, None]
        return self.score(p_gmf, p_mlp, self.gmf_items(items), self.mlp_items(items))

    def score(self, p_gmf: Tensor, p_mlp: Tensor, q_gmf: Tensor, q_mlp: Tensor) -> Tensor:
        """hᵀ[pᴳ ⊙ qᴳ; MLP([pᴹ; qᴹ])] + b for user and item embeddings that broadcast against each other."""
        phi_gmf = p_gmf * q_gmf  # [..., dim], the same leading shape as φ_MLP
        phi_mlp = self.mlp(torch.cat(torch.broadcast_tensors(p_mlp, q_mlp), -1))
        return self.head(torch.cat([phi_gmf, phi_mlp], -1)).squeeze(-1)
