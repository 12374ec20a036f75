"""Regularizers other than weight decay and augmentation: dropout in the models, label smoothing in the loss."""

from __future__ import annotations

import torch
from torch import nn

from ptlab.models.cnn import resnet18
from ptlab.models.linear import LinearRegression, LogisticRegression
from ptlab.objectives.classification import Classification


def test_input_dropout_of_the_linear_models_acts_only_in_training() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 10)
    for model in (LinearRegression(10, dropout=0.5), LogisticRegression(10, num_classes=3, dropout=0.5)):
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        plain = model.linear(x).squeeze(-1) if isinstance(model, LinearRegression) else model.linear(x)
        assert torch.equal(model(x), plain)
    assert isinstance(LogisticRegression(10).dropout, nn.Identity)  # p = 0: no module, no random numbers drawn


def test_resnet18_dropout_keeps_the_weight_names() -> None:
    with_dropout = resnet18(in_channels=1, num_classes=10, dropout=0.3)
    assert list(with_dropout.state_dict()) == list(resnet18(in_channels=1, num_classes=10).state_dict())
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in with_dropout.modules())


def test_label_smoothing_moves_the_targets_towards_uniform() -> None:
    """K classes: the target is (1 − ε)·one_hot + ε/K; two classes (one logit): y·(1 − ε) + ε/2."""
    eps = 0.2
    z, y = torch.randn(8, 4), torch.randint(0, 4, (8,))
    loss, _, _ = Classification(label_smoothing=eps).loss(nn.Identity(), (z, y))
    target = (1 - eps) * nn.functional.one_hot(y, 4) + eps / 4
    assert torch.allclose(loss, -(target * z.log_softmax(-1)).sum(-1).mean())
    z1, y1 = torch.randn(8, 1), torch.randint(0, 2, (8,))
    loss, _, _ = Classification(label_smoothing=eps).loss(nn.Identity(), (z1, y1))
    soft = y1.float() * (1 - eps) + eps / 2
    p = torch.sigmoid(z1.squeeze(-1))
    assert torch.allclose(loss, -(soft * p.log() + (1 - soft) * (1 - p).log()).mean())
