"""Linear and logistic regression: one affine map, two readings of its output.

Linear regression predicts a number:   ŷ = wᵀx + b
Logistic regression predicts a class:  p(y=1 | x) = σ(wᵀx + b),  σ(z) = 1 / (1 + e⁻ᶻ)
and, for K classes, p(y=k | x) = softmax(Wx + b)ₖ.

Both return the raw affine output (the *logits* for logistic regression); the
objective applies σ or softmax inside its loss, where it is numerically stable
(``binary_cross_entropy_with_logits``, ``cross_entropy``).

``dropout=p`` zeroes each input feature with probability p during training and
scales the survivors by 1/(1 − p). For a linear model the expected loss then
gains an L2 penalty on w that weights each feature by its mean square —
exactly for the squared error, approximately for cross-entropy (Wager et al.,
2013). At evaluation the inputs pass unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptlab.config import Probability
from ptlab.models import serves


def input_dropout(p: float) -> nn.Module:
    """Dropout on the input features; nothing at all when p = 0."""
    return nn.Dropout(p) if p else nn.Identity()


@serves("regression")
class LinearRegression(nn.Module):
    """ŷ = wᵀx + b, trained with the squared error ½(ŷ − y)²."""

    def __init__(self, in_features: int, dropout: Probability = 0.0) -> None:
        super().__init__()
        self.dropout = input_dropout(dropout)
        self.linear = nn.Linear(in_features, 1)  # holds w (weight) and b (bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(x)).squeeze(-1)  # ŷ = wᵀx + b, one number per row


@serves("classification")
class LogisticRegression(nn.Module):
    """z = wᵀx + b with p = σ(z) (2 classes) or softmax(Wx + b) (K classes); cross-entropy loss."""

    def __init__(self, in_features: int, num_classes: int = 2, dropout: Probability = 0.0) -> None:
        super().__init__()
        self.dropout = input_dropout(dropout)
        # Two classes need one logit z (p = σ(z)); K classes need K logits.
        self.linear = nn.Linear(in_features, 1 if num_classes == 2 else num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(x))  # logits z

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities: σ(z) for two classes, softmax(z) for more."""
        z = self(x)
        if z.shape[-1] == 1:
            p = torch.sigmoid(z)
            return torch.cat([1 - p, p], dim=-1)
        return torch.softmax(z, dim=-1)
