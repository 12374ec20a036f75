"""Speed and size, recorded: FLOPs counted exactly and without a trace, the speed metrics of a run, the model
summary (console, model_summary.json, TensorBoard hparams)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import ptlab
from conftest import TINY
from ptlab.engine.throughput import SPEED_KEYS, Throughput, count_flops, known_peak
from ptlab.logging.model_summary import summarize
from ptlab.objectives.regression import Regression


def test_a_linear_layer_costs_2_b_in_out_flops_forward_and_as_much_again_for_the_weight_gradient() -> None:
    """Forward: 2·B·in·out (one multiply and one add per weight and row). Backward with an input that needs
    no gradient: only ∂L/∂W, another 2·B·in·out."""
    from torch.utils.flop_counter import FlopCounterMode

    batch, inputs, outputs = 8, 5, 3
    layer = nn.Linear(inputs, outputs)
    x, y = torch.randn(batch, inputs), torch.randn(batch, outputs)
    with FlopCounterMode(display=False) as forward_only:
        layer(x)
    assert forward_only.get_total_flops() == 2 * batch * inputs * outputs
    assert count_flops(layer, Regression(), (x, y), contextlib.nullcontext()) == 2 * (2 * batch * inputs * outputs)


def test_counting_flops_leaves_no_trace() -> None:
    """The count is one extra pass: it must not change gradients, BatchNorm statistics, the mode or any RNG."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.Linear(6, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    model(x).sum().backward()  # gradients from an earlier batch of the window
    grads = [p.grad.clone() for p in model.parameters()]
    stats = model[1].running_mean.clone()
    rng = torch.get_rng_state()
    assert count_flops(model, Regression(), (x, y), contextlib.nullcontext()) > 0
    assert model.training
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert torch.equal(model[1].running_mean, stats)
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize(("name", "precision", "peak"), [
    ("NVIDIA H200", "bf16", 989e12), ("NVIDIA H100 80GB HBM3", "bf16", 989e12), ("NVIDIA H100 PCIe", "bf16", 756e12),
    ("NVIDIA A100-SXM4-80GB", "32", 19.5e12), ("Tesla V100-SXM2-16GB", "bf16", None), ("Some New GPU", "bf16", None),
])
def test_known_gpu_peaks(name: str, precision: str, peak: float | None) -> None:
    assert known_peak(name, precision) == peak


def test_speed_over_an_interval_counts_samples_tokens_steps_and_the_fraction_of_peak() -> None:
    meter = Throughput(torch.device("cpu"), peak=1e9, count_tokens=True)
    meter.set_flops(6000, batch_size=4)  # 1500 FLOPs per sample
    meter.begin(samples=40, step=10, seconds=2.0)
    for _ in range(3):
        meter.add((torch.zeros(4, 32, dtype=torch.long),))
    speed = meter.interval(samples=52, step=13, seconds=2.5)
    assert speed["train/samples_per_s"] == pytest.approx(12 / 0.5)
    assert speed["train/tokens_per_s"] == pytest.approx(12 * 32 / 0.5)
    assert speed["train/step_ms"] == pytest.approx(500 / 3)
    assert speed["train/mfu"] == pytest.approx(1500 * 24 / 1e9)
    assert speed["train/peak_mem_gib"] > 0
    assert meter.interval(samples=52, step=13, seconds=2.5) == {}  # nothing trained since
    meter.add((torch.zeros(4, 32, dtype=torch.long),))
    assert meter.overall(samples=56, step=14, seconds=3.0)["train/samples_per_s"] == pytest.approx(16 / 1.0)


def test_a_run_logs_its_speed_and_keeps_the_final_figures(tmp_path: Path) -> None:
    """Every logging point has the speed metrics (MFU with a configured peak), TensorBoard too, and metrics.json
    the run's overall figures; the console line shows samples/s, not every speed metric."""
    cfg = ptlab.compose(["task=transformer", *TINY, "trainer.peak_flops=1e12", "data.batch_size=4",
                         "model.n_layer=1", "model.n_embd=16", "model.n_head=2", "data.block_size=16"])
    metrics = ptlab.train(cfg, tmp_path)
    for key in SPEED_KEYS:
        assert 0 < metrics[key] < float("inf"), key
    assert metrics["train/tokens_per_s"] == pytest.approx(16 * metrics["train/samples_per_s"])
    assert json.loads((tmp_path / "metrics.json").read_text())["train/mfu"] == metrics["train/mfu"]
    from conftest import tensorboard_scalars

    scalars = tensorboard_scalars(tmp_path / "tb")
    assert {step for step, _ in scalars["train/mfu"]} == {1, 2, 3}  # each logging point (and the hparams' final)


def test_without_a_known_peak_there_is_no_mfu_and_no_flop_count(tmp_path: Path) -> None:
    metrics = ptlab.train(ptlab.compose(["task=logreg", *TINY]))
    assert "train/mfu" not in metrics and "train/tokens_per_s" not in metrics
    assert metrics["train/samples_per_s"] > 0


def test_the_model_summary_counts_frozen_parameters_per_module() -> None:
    model = nn.Sequential()
    model.add_module("body", nn.Linear(10, 4))  # 44 parameters
    model.add_module("head", nn.Linear(4, 2))  # 10
    model.add_module("norm", nn.BatchNorm1d(2))  # 4 parameters, 2 + 2 + 1 buffer values
    model.body.requires_grad_(False)
    summary = summarize(model)
    assert (summary["parameters"], summary["trainable"], summary["frozen"]) == (58, 14, 44)
    assert [(m["name"], m["type"], m["parameters"], m["frozen"]) for m in summary["modules"]] == [
        ("body", "Linear", 44, 44), ("head", "Linear", 10, 0), ("norm", "BatchNorm1d", 4, 0)]
    assert summary["size_mib"] == pytest.approx((58 * 4 + 2 * 4 + 2 * 4 + 8) / 2**20)


def test_a_run_writes_its_model_summary_and_puts_it_in_tensorboard_hparams(tmp_path: Path) -> None:
    ptlab.train(ptlab.compose(["task=cnn", *TINY]), tmp_path)
    summary = json.loads((tmp_path / "model_summary.json").read_text())
    model = ptlab.build(ptlab.compose(["task=cnn"])).model
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert [m["name"] for m in summary["modules"]] == [name for name, _ in model.named_children()]
    assert {"model/parameters": summary["parameters"], "model/trainable": summary["trainable"]}.items() <= \
        hparam_values(tmp_path / "tb").items()


def hparam_values(folder: Path) -> dict[str, float]:
    """The hparams a run gave TensorBoard (its session start info), by name."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    values: dict[str, float] = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        try:
            start = acc.PluginTagToContent("hparams").get("_hparams_/session_start_info")
        except KeyError:  # this file holds no hparams
            continue
        if start is not None:
            for name, value in HParamsPluginData.FromString(start).session_start_info.hparams.items():
                values[name] = value.number_value if value.HasField("number_value") else value.string_value
    return values
