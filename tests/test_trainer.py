"""The one loop: accumulation, clipping, schedules, early stopping, budgets, determinism, precision."""

from __future__ import annotations

import math

import pytest
import torch

import ptlab
from ptlab.engine.trainer import Trainer
from ptlab.errors import ConfigError

QUIET = ["trainer.progress=plain", "trainer.log_every_n_steps=1000"]


def trained_weights(overrides: list[str]) -> dict[str, torch.Tensor]:
    run = ptlab.build(ptlab.compose([*QUIET, *overrides]))
    Trainer(run, []).fit()
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_same_seed_same_run_different_seed_different_run() -> None:
    overrides = ["task=cnn", "trainer.max_epochs=1", "trainer.max_steps=5"]
    a, b = trained_weights(overrides), trained_weights(overrides)
    c = trained_weights([*overrides, "seed=1"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_gradient_accumulation_equals_a_bigger_batch() -> None:
    """Two accumulated batches of 16 take the same step as one batch of 32 (same epoch order)."""
    base = ["task=linreg", "trainer.max_epochs=1", "trainer.max_steps=4", "scheduler=constant"]
    accumulated = trained_weights([*base, "data.batch_size=16", "trainer.grad_accum=2"])
    big_batch = trained_weights([*base, "data.batch_size=32"])
    for key in accumulated:
        torch.testing.assert_close(accumulated[key], big_batch[key], rtol=1e-5, atol=1e-6)


def test_accumulation_window_is_cut_at_the_epoch_end() -> None:
    cfg = ptlab.compose([*QUIET, "task=logreg", "data.batch_size=100", "trainer.grad_accum=3", "trainer.max_epochs=2"])
    run = ptlab.build(cfg)
    assert len(run.data.train) == 4  # 398 training rows / 100: windows of 3 and 1 batches
    trainer = Trainer(run, [])
    assert trainer.total_steps == 4
    assert trainer.fit()["step"] == 4


def test_gradient_clipping_bounds_the_update() -> None:
    base = ["task=linreg", "trainer.max_epochs=1", "trainer.max_steps=1", "scheduler=constant", "optimizer.lr=1.0"]
    before = ptlab.build(ptlab.compose([*QUIET, *base])).model.linear.weight.detach().clone()
    after = trained_weights([*base, "trainer.grad_clip=0.01"])["linear.weight"]
    step = torch.cat([(after - before).flatten(), ]).norm()
    assert step <= 0.01 + 1e-6  # lr 1 × gradient norm clipped to 0.01 (bias included in the norm)


def test_max_steps_and_validation_every_n_epochs() -> None:
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=10", "trainer.max_steps=20",
                         "trainer.val_every_n_epochs=3"])
    validations: list[int] = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *args: None

        def on_validation_end(self, trainer, metrics, improved):
            validations.append(trainer.state.step)

    metrics = Trainer(ptlab.build(cfg), [Recorder()]).fit()
    assert metrics["step"] == 20 and metrics["epoch"] == 1
    assert validations == [20]  # 13 steps per epoch: no third epoch; the final weights are still validated


class ValidationSteps:
    """Records the step of every validation (a callback)."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def __getattr__(self, name):
        return lambda *args: None

    def on_validation_end(self, trainer, metrics, improved):
        self.steps.append(trainer.state.step)


def test_validation_every_n_steps_replaces_the_epochs_and_early_stopping_counts_those() -> None:
    """logreg has 13 steps an epoch: every 5 steps is mid-epoch, and the epoch ends add none."""
    record = ValidationSteps()
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=3", "trainer.val_every_n_steps=5"])
    metrics = Trainer(ptlab.build(cfg), [record]).fit()
    assert metrics["step"] == 39 and record.steps == [5, 10, 15, 20, 25, 30, 35, 39]  # 39: the final weights
    record = ValidationSteps()
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=30", "trainer.val_every_n_steps=4",
                         "trainer.early_stopping.patience=2", "trainer.early_stopping.min_delta=100"])
    metrics = Trainer(ptlab.build(cfg), [record, *ptlab_early_stopping(2)]).fit()
    assert record.steps == [4, 8, 12] and metrics["step"] == 12 and metrics["epoch"] == 0


def ptlab_early_stopping(patience: int) -> list:
    from ptlab.engine.callbacks import EarlyStopping

    return [EarlyStopping(patience)]


def test_a_run_resumed_mid_epoch_neither_repeats_nor_skips_a_validation(tmp_path) -> None:
    """Stopped by its budget at step 20 (mid-epoch, just validated), then resumed with a larger one."""
    import csv

    base = [*QUIET, "task=logreg", "trainer.max_epochs=3", "trainer.val_every_n_steps=5", "scheduler=constant"]
    whole = tmp_path / "whole"
    expected = ptlab.train(ptlab.compose(base), run_dir=whole)
    parts = tmp_path / "parts"
    ptlab.train(ptlab.compose([*base, "trainer.max_steps=20"]), run_dir=parts)
    resumed = ptlab.train(ptlab.compose([*base, "resume=auto"]), run_dir=parts)

    def val_steps(run_dir):
        with (run_dir / "metrics.csv").open() as f:
            return [int(row["step"]) for row in csv.DictReader(f) if row.get("val/loss")]

    assert val_steps(whole) == [5, 10, 15, 20, 25, 30, 35, 39]
    assert val_steps(parts) == val_steps(whole)
    assert resumed["test/loss"] == expected["test/loss"] and resumed["val/loss"] == expected["val/loss"]


def test_early_stopping_stops_and_reports_best() -> None:
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=30", "trainer.early_stopping.patience=2",
                         "trainer.early_stopping.min_delta=100"])  # nothing counts as an improvement after the first
    metrics = ptlab.train(cfg)
    assert metrics["epoch"] == 3


def test_test_metrics_use_the_best_weights() -> None:
    # A constant, too-large rate: validation loss bounces, so the best epoch is not the last one.
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=8", "checkpoint.monitor=val/loss",
                         "scheduler=constant", "optimizer.lr=3.0"])
    trainer = Trainer(ptlab.build(cfg), [])
    metrics = trainer.fit()
    assert trainer.best.step < trainer.state.step, "the best validation was the last: this test proves nothing"
    assert trainer.evaluate("test")["test/loss"] != pytest.approx(metrics["test/loss"], rel=1e-6)  # the last weights
    trainer.model.load_state_dict(trainer.best_weights)
    assert trainer.evaluate("test")["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    assert trainer.evaluate("val")["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)


def test_cosine_schedule_with_warmup() -> None:
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=2", "scheduler=cosine",
                         "scheduler.warmup_steps=4", "scheduler.min_lr_ratio=0.1", "optimizer.lr=1.0"])
    run = ptlab.build(cfg)
    scheduler, optimizer = run.schedulers["main"], run.optimizers["main"]
    lrs = []
    for _ in range(26):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] > 0.1 and lrs[-1] < 0.12
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_bf16_autocast_runs_on_cpu_and_fp16_needs_cuda() -> None:
    metrics = ptlab.train(ptlab.compose([*QUIET, "task=cnn", "trainer.max_steps=3", "trainer.precision=bf16",
                                         "device=cpu"]))
    assert math.isfinite(metrics["test/loss"])
    with pytest.raises(ConfigError, match="trainer.precision: 16"):
        ptlab.build(ptlab.compose(["trainer.precision=16", "device=cpu"]))


def test_compile_flag_trains_the_compiled_model() -> None:
    """trainer.compile=true on CPU (inductor's C++ backend): the loop runs the compiled module; weights stay clean."""
    from torch._dynamo.utils import counters

    counters.clear()
    run = ptlab.build(ptlab.compose([*QUIET, "task=linreg", "trainer.max_steps=3", "trainer.compile=true"]))
    trainer = Trainer(run, [])
    assert isinstance(trainer.train_model, torch._dynamo.eval_frame.OptimizedModule)
    metrics = trainer.fit()
    assert counters["stats"]["unique_graphs"] >= 1
    assert math.isfinite(metrics["test/mse"])
    assert set(trainer.checkpoint()["model"]) == {"linear.weight", "linear.bias"}


def test_metrics_are_read_only_at_logging_points() -> None:
    """The loop never calls .item() per step: a run logs exactly every log_every_n_steps."""
    logged: list[int] = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *args: None

        def on_log(self, trainer, metrics):
            logged.append(trainer.state.step)

    cfg = ptlab.compose(["trainer.progress=plain", "task=logreg", "trainer.max_epochs=2", "trainer.log_every_n_steps=5",
                         "trainer.val_every_n_epochs=5"])
    Trainer(ptlab.build(cfg), [Recorder()]).fit()
    assert logged == [5, 10, 15, 20, 25, 26]


def test_resnet18_is_a_model_choice() -> None:
    cfg = ptlab.compose([*QUIET, "task=cnn", "model=resnet18", "trainer.max_steps=2"])
    run = ptlab.build(cfg)
    assert run.model.conv1.in_channels == 1 and run.model.fc.out_features == 10
    assert math.isfinite(Trainer(run, []).fit()["test/loss"])


def test_conv_nets_use_channels_last_on_cuda_only() -> None:
    from ptlab.engine.device import memory_format, place_model

    cnn = ptlab.build(ptlab.compose(["task=cnn"])).model
    linear = ptlab.build(ptlab.compose(["task=logreg"])).model
    assert memory_format(cnn, torch.device("cuda")) is torch.channels_last
    assert memory_format(cnn, torch.device("cuda", 1)) is torch.channels_last
    assert memory_format(cnn, torch.device("cpu")) is torch.contiguous_format
    assert memory_format(linear, torch.device("cuda")) is torch.contiguous_format
    conv = next(m for m in place_model(cnn, torch.device("cpu")).modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()
