"""The gan task: two players on the shared trainer, sample grids, a Fréchet distance that means something."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import ptlab
from conftest import read_metrics, run_ptlab, tensorboard_scalars, train_here
from ptlab.models.gan import DCGAN, MLPGAN, upsamplings
from ptlab.objectives.fid import fid, real_images

TINY_GAN = ["task=gan", "trainer.max_epochs=2", "trainer.log_every_n_steps=5", "trainer.progress=plain",
            "model.width=16"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("gan")
    run_dir = workdir / "run"
    train_here(*TINY_GAN, run_dir=run_dir)  # in this process; the CLI's GAN run: tests/test_terminal.py
    return run_dir


def test_a_short_run_writes_grids_checkpoints_and_scores(gan_run: Path) -> None:
    for epoch in (1, 2):
        grid = Image.open(gan_run / "samples" / f"epoch_{epoch:03d}.png")
        assert grid.size == (73, 73)  # 64 samples of 8×8 in 8 columns, 1-pixel padding
    payload = torch.load(gan_run / "checkpoints" / "last.pt", weights_only=True)
    assert set(payload["optimizers"]) == {"discriminator", "generator"}
    assert all(state["state"] for state in payload["optimizers"].values())
    assert {k.split(".")[0] for k in payload["model"]} == {"generator", "discriminator"}
    metrics = read_metrics(gan_run)
    assert {"val/fid", "test/fid", "test/fid_real"} <= metrics.keys()
    assert metrics["test/fid"] > metrics["test/fid_real"] > 0
    scalars = tensorboard_scalars(gan_run / "tb")
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/fid"} <= scalars.keys()
    assert "samples" in tensorboard_images(gan_run / "tb")


def tensorboard_images(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["images"])
    return tags


def test_generation_data_is_scaled_to_the_tanh_range() -> None:
    run = ptlab.build(ptlab.compose(["task=gan"]))
    images, _ = real_images(run.data.train)
    assert images.min() == -1 and images.max() == 1
    classifier = ptlab.build(ptlab.compose(["task=cnn"]))
    standardized, _ = real_images(classifier.data.train)
    assert abs(float(standardized.mean())) < 1e-4  # classification keeps standardized pixels


def test_generate_is_deterministic_per_seed(gan_run: Path, tmp_path: Path) -> None:
    ckpt = gan_run / "checkpoints" / "best.pt"
    from ptlab.generation import generate_images
    from ptlab.logging.samples import save_grid

    proc = run_ptlab("generate", f"ckpt={ckpt}", "n=16", f"out={tmp_path / 'cli.png'}", "seed=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "cli.png").size == (37, 37)  # 16 samples in 4 columns
    for name, seed in (("again", 1), ("other", 2)):  # what the command draws, drawn here again
        save_grid(generate_images(ckpt, n=16, seed=seed), tmp_path / f"{name}.png")
    drawn = [(tmp_path / f"{name}.png").read_bytes() for name in ("cli", "again", "other")]
    assert drawn[0] == drawn[1] and drawn[0] != drawn[2]


def test_generate_refuses_a_classifier_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train_here("task=logreg", "trainer.max_epochs=1", run_dir=run_dir)
    proc = run_ptlab("generate", f"ckpt={run_dir}/checkpoints/last.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "needs a GAN" in proc.stderr and "Traceback" not in proc.stderr


def test_frechet_distance_real_vs_real_is_small_and_noise_is_large() -> None:
    run = ptlab.build(ptlab.compose(["task=gan"]))
    test, _ = real_images(run.data.test)
    metric = fid(run.data, run.device)
    metric.update(test, test)
    assert abs(float(metric.compute())) < 1e-3
    metric.reset()
    metric.update(torch.rand_like(test) * 2 - 1, test)
    noise = float(metric.compute())
    train, _ = real_images(run.data.train)
    metric.reset()
    metric.update(train[: len(test)], test)
    assert noise > 10 * float(metric.compute())


@pytest.mark.parametrize("size, expected", [(8, (2, 2)), (28, (2, 7)), (32, (4, 2)), (64, (4, 4))])
def test_dcgan_is_sized_by_the_image(size: int, expected: tuple[int, int]) -> None:
    assert upsamplings(size) == expected
    for cls in (DCGAN, MLPGAN):
        model = cls(in_channels=3, image_size=size)
        images = model.sample(2)
        assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
        assert model.discriminator(images).shape == (2, 1)


@pytest.mark.parametrize("loss", ["hinge", "wgan_gp"])
def test_other_losses_train(loss: str) -> None:
    metrics = ptlab.train(ptlab.compose([*TINY_GAN, f"objective.loss={loss}", "trainer.max_steps=3",
                                         "objective.d_steps=2"]))
    assert torch.isfinite(torch.tensor(metrics["test/fid"]))


@pytest.mark.slow
def test_default_gan_reaches_twice_the_real_to_real_distance() -> None:
    """The quality target at the full default budget (about 40 s here): test/fid ≤ 2 × test/fid_real."""
    metrics = ptlab.train(ptlab.compose(["task=gan", "trainer.progress=plain", "trainer.log_every_n_steps=1000"]))
    assert metrics["test/fid"] <= 2 * metrics["test/fid_real"]


def test_real_images_from_disk_data_are_in_stored_order_and_unaugmented() -> None:
    """The FID classifier (cached by a hash of these images) must not depend on the seed or on augmentation."""
    from ptlab.data.loaders import LoaderBatches
    from ptlab.objectives.fid import real_images

    images, labels = torch.rand(10, 1, 8, 8), torch.arange(10) % 3
    dataset = torch.utils.data.TensorDataset(images, labels)
    for seed in (0, 1):
        train = LoaderBatches(dataset, 4, shuffle=True, seed=seed, device=torch.device("cpu"), num_workers=0,
                              transform=lambda x: x + 1)
        assert not torch.equal(torch.cat([b[1] for b in train.batches()]), labels)  # training order: shuffled
        got_images, got_labels = real_images(train)
        assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
