"""The book's debugging answers: debug presets, non-finite losses (stop or skip), anomaly detection, profiling."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import read_metrics, run_ptlab, tensorboard_scalars
from ptlab.engine.callbacks import Callback
from ptlab.engine.checkpoint import load_checkpoint
from ptlab.engine.trainer import NonFiniteLoss, Trainer
from ptlab.errors import ConfigError

QUIET = ["trainer.progress=plain"]

BAD_MODELS = '''
    import torch
    from torch import nn


    class NaNEveryThirdStep(nn.Module):
        """ŷ = wᵀx + b, except that every third training forward pass returns NaN."""

        def __init__(self, in_features: int) -> None:
            super().__init__()
            self.linear = nn.Linear(in_features, 1)
            self.calls = 0

        def forward(self, x):
            y_hat = self.linear(x).squeeze(-1)
            if self.training:
                self.calls += 1
                if self.calls % 3 == 0:
                    return y_hat * float("nan")
            return y_hat


    class SqrtOfZero(nn.Module):
        """ŷ = wᵀx + b + √(0·g): a finite forward pass whose gradient for g is NaN (0 · ∞)."""

        def __init__(self, in_features: int) -> None:
            super().__init__()
            self.linear = nn.Linear(in_features, 1)
            self.g = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.linear(x).squeeze(-1) + torch.sqrt(self.g * 0)
'''


@pytest.fixture
def bad_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user module with models that go wrong in known ways, importable here and in subprocesses."""
    folder = tmp_path / "user_modules"
    folder.mkdir()
    (folder / "bad_models.py").write_text(textwrap.dedent(BAD_MODELS))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


def user_model(name: str) -> list[str]:
    return ["~model", f"+model._target_=bad_models.{name}"]


# --- presets -------------------------------------------------------------------------------------

def test_debug_fast_is_one_batch_of_each_split_and_writes_no_checkpoint(workdir: Path) -> None:
    run = ptlab.build(ptlab.compose(["task=cnn", "debug=fast"]))
    assert (len(run.data.train), len(run.data.val), len(run.data.test)) == (1, 1, 1)
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=cnn", "debug=fast", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics(run_dir)
    assert (metrics["epoch"], metrics["step"]) == (1, 1)
    assert not (run_dir / "checkpoints").exists()
    assert [step for step, _ in tensorboard_scalars(run_dir / "tb")["train/loss"]] == [1]


def test_limit_batches_cut_every_epoch() -> None:
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=3", "trainer.limit_train_batches=2",
                         "trainer.limit_test_batches=1"])
    run = ptlab.build(cfg)
    assert len(run.data.train) == 2 and len(run.data.test) == 1 and len(run.data.val) > 1
    assert Trainer(run, []).fit()["step"] == 6


def test_overfit_batches_are_the_same_fixed_batches_for_training_and_validation() -> None:
    run = ptlab.build(ptlab.compose(["task=cnn", "debug=overfit", "data.augment=light"]))
    train, val = run.data.train, run.data.val
    assert len(train) == 4 and val is train
    first, later = list(train.batches(0)), list(train.batches(7))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, later))
    assert len(run.data.test) > 4  # the test split stays whole: it shows what memorizing is worth


def test_debug_overfit_drives_the_loss_towards_zero(workdir: Path) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=cnn", "debug=overfit", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics(run_dir)
    assert metrics["val/loss"] < 0.01 and metrics["val/acc"] == 1.0 and metrics["step"] == 400
    train_loss = tensorboard_scalars(run_dir / "tb")["train/loss"]
    assert train_loss[-1][1] < 0.05 < train_loss[0][1]
    assert "training and validating on the same 4 fixed training batches" in (run_dir / "train.log").read_text()


def test_overfit_and_limit_batches_exclude_each_other(workdir: Path) -> None:
    proc = run_ptlab("train", "task=logreg", "debug=overfit", "trainer.limit_train_batches=2", cwd=workdir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trainer.overfit_batches:" in proc.stderr and "trainer.limit_train_batches" in proc.stderr
    assert not (workdir / "outputs").exists()


def test_debug_anomaly_runs_a_short_float32_run(workdir: Path) -> None:
    cfg = ptlab.compose(["task=logreg", "debug=anomaly", "trainer.precision=bf16"])  # the preset comes after
    assert str(cfg.trainer.precision) == "bf16"  # command-line overrides still win over a preset
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=logreg", "debug=anomaly", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dir)["step"] == 10
    saved = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "detect_anomaly: true" in saved and "precision: '32'" in saved


def test_debug_anomaly_names_the_forward_line_that_made_the_nan(workdir: Path, bad_models: Path) -> None:
    proc = run_ptlab("train", "task=linreg", "debug=anomaly", *user_model("SqrtOfZero"),
                     f"hydra.run.dir={workdir / 'run'}", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("ptlab: error: anomaly detection at step 1: Function 'MulBackward0' returned nan")
    assert f"{bad_models / 'bad_models.py'}:" in error and "torch.sqrt(self.g * 0)" in error


def test_debug_profile_writes_a_chrome_trace_and_a_table(workdir: Path) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=cnn", "debug=profile", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    traces = list((run_dir / "profile").glob("*.pt.trace.json"))
    assert len(traces) == 1
    names = {event.get("name", "") for event in json.loads(traces[0].read_text())["traceEvents"]}
    assert {f"ProfilerStep#{i}" for i in (2, 3, 4, 5, 6)} <= names and "aten::conv2d" in names
    assert "Self CPU time total" in (run_dir / "train.log").read_text()
    assert read_metrics(run_dir)["step"] == 7


def test_profile_needs_a_run_directory() -> None:
    with pytest.raises(ConfigError, match="trainer.profile_steps: the trace is written into the run directory"):
        ptlab.train(ptlab.compose(["task=linreg", "debug=profile"]))


def test_unknown_debug_preset_lists_the_valid_ones(workdir: Path) -> None:
    proc = run_ptlab("train", "debug=fsat", cwd=workdir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert all(name in proc.stderr for name in ("fast", "overfit", "anomaly", "profile"))


# --- non-finite losses -------------------------------------------------------------------------

def first_nonfinite_step(overrides: list[str]) -> int:
    """The step a run reports as non-finite when it checks after every step."""
    with pytest.raises(NonFiniteLoss) as caught:
        ptlab.train(ptlab.compose([*QUIET, *overrides, "trainer.log_every_n_steps=1"]))
    return int(re.search(r"non-finite loss at step (\d+)", str(caught.value)).group(1))


def test_non_finite_loss_stops_naming_the_step_its_terms_and_the_last_good_checkpoint(workdir: Path) -> None:
    diverging = ["task=linreg", "optimizer.lr=1e6", "trainer.max_epochs=5"]
    exact = first_nonfinite_step(diverging)
    run_dir = workdir / "run"
    proc = run_ptlab("train", *diverging, "trainer.log_every_n_steps=50", "checkpoint.every_n_steps=2",
                     "trainer.progress=plain", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    good = (exact - 1) // 2 * 2  # the newest every-2-steps checkpoint before the bad step
    last = run_dir / "checkpoints" / "last.pt"
    assert re.search(rf"non-finite loss at step {exact} \(train/loss=(nan|inf)\); the last good checkpoint is "
                     rf"{re.escape(str(last))} \(step {good}\)\. Lower optimizer.lr", proc.stderr), proc.stderr
    payload = load_checkpoint(last)
    assert payload["loop"]["step"] == good
    assert all(torch.isfinite(w).all() for w in payload["model"].values())


def test_nan_between_log_points_is_found_before_a_checkpoint_keeps_it(bad_models: Path) -> None:
    cfg = ptlab.compose([*QUIET, "task=linreg", *user_model("NaNEveryThirdStep"), "trainer.log_every_n_steps=50"])
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step 3 \(train/loss=nan\); no checkpoint was "):
        ptlab.train(cfg)


class WeightsPerStep(Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_step_end(self, trainer: Trainer) -> None:
        self.weights.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))


def test_skip_nonfinite_skips_and_counts_the_bad_steps(bad_models: Path, workdir: Path) -> None:
    cfg = ptlab.compose([*QUIET, "task=linreg", *user_model("NaNEveryThirdStep"), "trainer.max_epochs=2",
                         "trainer.skip_nonfinite=true", "trainer.log_every_n_steps=4"])
    run = ptlab.build(cfg)
    steps = 2 * len(run.data.train)
    recorder = WeightsPerStep()
    metrics = Trainer(run, [recorder]).fit()
    assert metrics["step"] == steps and metrics["skipped_steps"] == steps // 3
    for i, (before, after) in enumerate(zip(recorder.weights, recorder.weights[1:]), start=2):
        assert torch.equal(before, after) == (i % 3 == 0), f"step {i}"  # steps 3, 6, ... leave the weights alone
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())

    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=linreg", *user_model("NaNEveryThirdStep"), "trainer.max_epochs=2",
                     "trainer.skip_nonfinite=true", "trainer.log_every_n_steps=4", "trainer.progress=plain",
                     f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dir)["skipped_steps"] == steps // 3
    scalars = tensorboard_scalars(run_dir / "tb")
    assert scalars["train/skipped_steps"][0] == (4, 1.0)
    assert all(torch.isfinite(torch.tensor(v)) for _, v in scalars["train/loss"])
    assert "step 3: non-finite loss or gradient (main); the update was skipped" in proc.stdout + proc.stderr


def test_skip_nonfinite_also_skips_a_nan_gradient(bad_models: Path) -> None:
    cfg = ptlab.compose([*QUIET, "task=linreg", *user_model("SqrtOfZero"), "trainer.max_epochs=1",
                         "trainer.skip_nonfinite=true"])
    run = ptlab.build(cfg)
    initial = [p.detach().clone() for p in run.model.parameters()]
    metrics = Trainer(run, []).fit()
    assert metrics["skipped_steps"] == metrics["step"] == len(run.data.train)
    assert all(torch.equal(a, b) for a, b in zip(initial, run.model.parameters()))


def test_long_stretches_between_log_points_are_folded_into_sums(bad_models: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond PENDING_LIMIT kept batches the logs are checked and summed: the same mean, the same exact step."""
    import ptlab.engine.step_logs as step_logs

    logged: dict[int, list[float]] = {}

    class LossLog(Callback):
        def __init__(self, limit: int) -> None:
            self.limit = limit

        def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
            logged.setdefault(self.limit, []).append(metrics["train/loss"])

    overrides = [*QUIET, "task=linreg", "trainer.max_epochs=3", "trainer.val_every_n_epochs=3",
                 "trainer.log_every_n_steps=1000"]
    for limit in (1024, 4):
        monkeypatch.setattr(step_logs, "PENDING_LIMIT", limit)
        Trainer(ptlab.build(ptlab.compose(overrides)), [LossLog(limit)]).fit()
    assert logged[4] == pytest.approx(logged[1024], rel=1e-6) and len(logged[4]) == 1
    monkeypatch.setattr(step_logs, "PENDING_LIMIT", 2)  # the NaN at step 3 is found when folding steps 3-4
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step 3 "):
        ptlab.train(ptlab.compose([*overrides, *user_model("NaNEveryThirdStep")]))
