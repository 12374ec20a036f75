"""trainer.ema.decay: an exponential moving average of the weights that validation, test, best.pt and sample
grids use; saved in checkpoints, continued exactly on resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import ptlab
from conftest import read_metrics
from ptlab.engine.trainer import Trainer
from ptlab.engine.weight_average import WeightAverage

QUIET = ["trainer.progress=plain", "trainer.log_every_n_steps=1000"]


def test_the_average_follows_the_formula_with_its_warm_up() -> None:
    """w̄ ← d·w̄ + (1 − d)·w with d = min(decay, (1 + t)/(10 + t)); integer buffers are copied, not averaged."""
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightAverage(model, decay=0.5)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for t in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].running_mean.add_(1.0)
            model[1].num_batches_tracked.add_(3)
        d = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.1818…, 0.25, then the decay 0.5
        for key, value in model.state_dict().items():
            expected[key] = d * expected[key] + (1 - d) * value if value.is_floating_point() else value.clone()
        ema.update(model)
    assert ema.updates == 4
    for key, value in expected.items():
        assert torch.allclose(ema.weights[key], value, atol=1e-6), key
    assert ema.weights["1.num_batches_tracked"].item() == 12


def test_applied_swaps_the_average_in_and_the_weights_back() -> None:
    model = nn.Linear(2, 1)
    ema = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.update(model)
    with ema.applied(model) as averaged:
        assert averaged is model and torch.allclose(model.weight, ema.weights["weight"])
        assert not torch.allclose(model.weight, torch.full_like(model.weight, 5.0))
    assert torch.equal(model.weight, torch.full_like(model.weight, 5.0))


def test_state_dict_round_trip_continues_the_same_average() -> None:
    model = nn.Linear(2, 2)
    ema = WeightAverage(model, decay=0.99)
    for _ in range(3):
        ema.update(model)
    copy = WeightAverage(nn.Linear(2, 2), decay=0.99)
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 3 and copy.factor() == ema.factor()
    assert all(torch.equal(copy.weights[k], ema.weights[k]) for k in ema.weights)


def test_decay_must_be_between_0_and_1() -> None:
    from ptlab.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.ema.decay"):
        ptlab.build(ptlab.compose(["task=logreg", "trainer.ema.decay=1.0"]))


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A logreg run with an average of the last ~5 steps, at a rate where the raw weights move a lot per step."""
    run_dir = tmp_path_factory.mktemp("ema") / "run"
    cfg = ptlab.compose([*QUIET, "task=logreg", "trainer.max_epochs=4", "optimizer.lr=2.0", "scheduler=constant",
                         "trainer.ema.decay=0.8"])
    return run_dir, ptlab.train(cfg, run_dir=run_dir)


def test_validation_test_and_best_pt_use_the_average_and_report_the_weights_beside(ema_run) -> None:
    run_dir, metrics = ema_run
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["model"].keys() == best["model_without_ema"].keys()
    assert not torch.equal(best["model"]["linear.weight"], best["model_without_ema"]["linear.weight"])
    # `ptlab eval` of best.pt (its "model": the average) reproduces the run's test metrics ...
    evaluated = ptlab.evaluate(run_dir / "checkpoints" / "best.pt", split="test")
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    # ... and test/*_without_ema are the raw weights of the same step, not the average's.
    assert metrics["test/loss_without_ema"] != pytest.approx(metrics["test/loss"], rel=1e-3)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["ema"]["updates"] == metrics["step"]
    assert not torch.equal(last["ema"]["weights"]["linear.weight"], last["model"]["linear.weight"])


def test_a_resumed_run_continues_the_average_exactly(tmp_path: Path) -> None:
    args = [*QUIET, "task=logreg", "scheduler=constant", "trainer.ema.decay=0.9"]
    whole = ptlab.train(ptlab.compose([*args, "trainer.max_epochs=3"]), run_dir=tmp_path / "whole")
    ptlab.train(ptlab.compose([*args, "trainer.max_epochs=1"]), run_dir=tmp_path / "parts")
    resumed = ptlab.train(ptlab.compose([*args, "trainer.max_epochs=3", "resume=auto"]), run_dir=tmp_path / "parts")
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)["ema"]
    b = torch.load(tmp_path / "parts" / "checkpoints" / "last.pt", weights_only=True)["ema"]
    assert a["updates"] == b["updates"] == whole["step"]
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert resumed["test/loss"] == whole["test/loss"] and resumed["val/loss"] == whole["val/loss"]


def test_a_gan_reports_its_generator_with_and_without_the_average_and_draws_the_average(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from ptlab.logging.samples import save_grid

    run_dir = tmp_path / "gan"
    cfg = ptlab.compose(["task=gan", "trainer.max_epochs=1", "trainer.limit_train_batches=6", *QUIET,
                         "model.width=16", "trainer.ema.decay=0.7"])
    metrics = ptlab.train(cfg, run_dir=run_dir)
    assert {"test/fid", "test/fid_without_ema"} <= metrics.keys()
    assert metrics["test/fid"] != metrics["test/fid_without_ema"]
    # The epoch's grid shows the averaged generator: redrawn here from last.pt's average with the grid's noise.
    run = ptlab.build(cfg)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    run.model.eval()
    drawn = np.asarray(Image.open(run_dir / "samples" / "epoch_001.png"), dtype=np.float32) / 255

    def grid_of(weights: dict) -> np.ndarray:
        run.model.load_state_dict(weights)
        samples = run.model.sample(64, torch.Generator().manual_seed(cfg.objective.eval_seed))
        save_grid(samples, tmp_path / "redrawn.png")
        return np.asarray(Image.open(tmp_path / "redrawn.png"), dtype=np.float32) / 255

    assert np.abs(drawn - grid_of(last["ema"]["weights"])).max() == 0  # pixel for pixel
    assert np.abs(drawn - grid_of(last["model"])).max() > 0  # the raw generator draws something else
    # `ptlab generate` of last.pt draws the average too (and of best.pt, whose model is the average).
    from ptlab.generation import generate_images

    run.model.load_state_dict(last["ema"]["weights"])
    assert torch.equal(generate_images(run_dir / "checkpoints" / "last.pt", n=4, seed=3),
                       run.model.sample(4, torch.Generator().manual_seed(3)))


def test_metrics_file_and_console_keep_the_without_ema_numbers(ema_run) -> None:
    run_dir, metrics = ema_run
    assert read_metrics(run_dir)["test/acc_without_ema"] == metrics["test/acc_without_ema"]


def test_without_ema_nothing_changes() -> None:
    trainer = Trainer(ptlab.build(ptlab.compose([*QUIET, "task=logreg", "trainer.max_steps=3"])), [])
    metrics = trainer.fit()
    assert trainer.ema is None and not any(k.endswith("_without_ema") for k in metrics)
    assert "ema" not in trainer.checkpoint()
