"""The learning-rate range test: a sane suggestion, a stop on divergence, and no trace left on the run."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ptlab
from conftest import computed, run_ptlab
from ptlab.engine.trainer import Trainer
from ptlab.errors import ConfigError
from ptlab.paths import CONFIG_DIR
from ptlab.tools.lr_find import LRFindConfig, lr_range_test, split_config, suggestions


def state(run) -> tuple[dict, dict]:
    model = {k: v.clone() for k, v in run.model.state_dict().items()}
    return model, run.optimizers["main"].state_dict()


def test_logreg_suggestion_is_sane_and_the_run_is_left_untouched() -> None:
    overrides = ["task=logreg", "device=cpu", "model.dropout=0.2", "trainer.max_epochs=3", "trainer.progress=plain"]
    cfg = ptlab.compose(overrides)
    run = ptlab.build(cfg)
    model_before, optimizer_before = state(run)
    result = lr_range_test(run, LRFindConfig(steps=100))

    assert len(result.lrs) == 100 and result.lrs[0] == pytest.approx(1e-7) and result.lrs[-1] == pytest.approx(10)
    assert np.allclose(np.diff(np.log(result.lrs)), math.log(1e8) / 99)  # exponential sweep
    assert 1e-3 <= result.suggestion <= 1.0  # the task trains at 0.1
    assert 1e-3 <= result.min_over_10 <= 1.0
    assert min(result.smoothed) < 0.5 * result.smoothed[0]  # the loss did fall during the sweep

    model_after, optimizer_after = state(run)
    assert all(torch.equal(model_before[k], model_after[k]) for k in model_before)
    assert optimizer_after == optimizer_before  # no momentum left behind, the same learning rate
    # A run that follows is the run that would have happened (dropout draws from the restored RNG).
    after = Trainer(run, []).fit()
    fresh = Trainer(ptlab.build(cfg), []).fit()
    assert computed(after) == computed(fresh)


def test_the_sweep_stops_when_the_loss_diverges() -> None:
    run = ptlab.build(ptlab.compose(["task=linreg", "device=cpu"]))
    result = lr_range_test(run, LRFindConfig(steps=60, max_lr=1e4))
    assert len(result.lrs) < 60 and ("diverged" in result.stopped or "loss became" in result.stopped)
    assert result.lrs[-1] < 1e4


def test_suggestions_read_the_descent_not_the_noise() -> None:
    lrs = list(np.geomspace(1e-6, 1, 121))
    x = np.log10(lrs)
    curve = 1 / (1 + np.exp(3 * (x + 2))) + 0.1 + 0.5 * np.clip(x + 0.5, 0, None) ** 2  # falls at 1e-2, rises after
    noisy = curve + 0.03 * np.random.default_rng(0).standard_normal(len(x)) * (x < -4)  # a noisy flat start
    steepest, min_over_10 = suggestions(lrs, list(noisy))
    assert steepest == pytest.approx(1e-2, rel=0.5)
    assert min_over_10 == pytest.approx(lrs[int(np.argmin(noisy))] / 10)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="lr_find.min_lr: 1 is not below lr_find.max_lr=0.1"):
        split_config(ptlab.compose(["task=logreg", "lr_find.min_lr=1", "lr_find.max_lr=0.1"], config_name="lr_find"))
    with pytest.raises(ConfigError, match="lr_find.steps: 2 is out of range"):
        split_config(ptlab.compose(["task=logreg", "lr_find.steps=2"], config_name="lr_find"))


def test_cli_writes_the_plot_and_the_table(workdir: Path) -> None:
    out = workdir / "lr"
    proc = run_ptlab("lr-find", "task=logreg", "lr_find.steps=30", f"hydra.run.dir={out}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "suggested lr" in proc.stdout and "optimizer.lr=" in proc.stdout
    png = (out / "lr_find.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    rows = list(csv.DictReader((out / "lr_find.csv").open()))
    assert len(rows) == 30 and set(rows[0]) == {"step", "lr", "loss", "smoothed_loss"}
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "lr_find.log").is_file()
    assert not (workdir / "outputs").exists()  # nothing else was made


@pytest.mark.skipif(not (CONFIG_DIR / "task" / "gan.yaml").exists(), reason="no gan task in this tree")
def test_gan_gets_a_clear_message(workdir: Path) -> None:
    out = workdir / "lr"
    proc = run_ptlab("lr-find", "task=gan", f"hydra.run.dir={out}", cwd=workdir)
    assert proc.returncode == 2
    assert "ptlab: error: lr-find: task gan trains 2 optimizers" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
