"""Weight decay reaches weight matrices and kernels only: biases and normalization weights are exempt by default."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ptlab
from ptlab.engine.finetune import parameter_groups
from ptlab.optim import adam, adamw, sgd


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4 * 6 * 6),
                         nn.Linear(4 * 6 * 6, 3))


def ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.parametrize("build", [sgd, adam, adamw])
def test_biases_and_norm_weights_are_not_decayed(build) -> None:
    net = small_net()
    optimizer = build(net.parameters(), weight_decay=0.1)
    matrices = [net[0].weight, net[4].weight]
    exempt = [net[0].bias, net[1].weight, net[1].bias, net[3].weight, net[3].bias, net[4].bias]
    decays = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert len(decays) == len(list(net.parameters()))  # every parameter, once
    assert {decays[id(p)] for p in matrices} == {0.1}
    assert {decays[id(p)] for p in exempt} == {0.0}


def test_the_switch_decays_everything_and_no_decay_keeps_one_group() -> None:
    net = small_net()
    everything = adamw(net.parameters(), weight_decay=0.1, decay_norm_and_bias=True)
    assert len(everything.param_groups) == 1 and everything.param_groups[0]["weight_decay"] == 0.1
    assert len(sgd(net.parameters(), weight_decay=0.0).param_groups) == 1


def test_a_step_shrinks_weights_but_not_biases_or_norm_scales() -> None:
    net = small_net()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimizer = sgd(net.parameters(), lr=1.0, weight_decay=0.5)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # only the decay moves anything
    optimizer.step()
    for name, p in net.named_parameters():
        expected = before[name] * 0.5 if p.ndim >= 2 else before[name]
        assert torch.allclose(p, expected), name


def test_param_group_dicts_are_split_and_keep_their_learning_rates() -> None:
    """Fine-tuning's lr_mult hands the optimizer param-group dicts; each is split by decay."""
    net = small_net()
    groups = parameter_groups(net, reinit=["4.*"], lr=0.01, lr_mult=0.1)
    optimizer = adamw(groups, lr=0.01, weight_decay=0.05)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert len(by_param) == len(list(net.parameters()))
    assert by_param[id(net[0].weight)] == (pytest.approx(0.001), 0.05)  # loaded: lr × lr_mult, decayed
    assert by_param[id(net[1].weight)] == (pytest.approx(0.001), 0.0)
    assert by_param[id(net[4].weight)] == (0.01, 0.05)  # re-initialized head: full lr
    assert by_param[id(net[4].bias)] == (0.01, 0.0)


def test_the_config_switch_reaches_the_built_optimizer() -> None:
    cnn = ptlab.build(ptlab.compose(["task=cnn", "device=cpu"]))
    groups = cnn.optimizers["main"].param_groups
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert all(p.ndim == 1 for p in groups[1]["params"]) and all(p.ndim >= 2 for p in groups[0]["params"])
    everything = ptlab.build(ptlab.compose(["task=cnn", "device=cpu", "optimizer.decay_norm_and_bias=true"]))
    assert len(everything.optimizers["main"].param_groups) == 1
