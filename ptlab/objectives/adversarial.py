"""The adversarial game of the book, as losses for the two players.

With D's logit d = logit(x) and D(x) = σ(d):

non_saturating (default) — the minimax loss with the generator's usual fix:
    L_D = −log σ(d_real) − log(1 − σ(d_fake))        (binary cross-entropy, real → 1, fake → 0)
    L_G = −log σ(d_fake)                              (instead of log(1 − σ(d_fake)), which saturates early)
hinge:
    L_D = max(0, 1 − d_real) + max(0, 1 + d_fake),   L_G = −d_fake
wgan_gp — D is a critic estimating the Wasserstein distance:
    L_D = d_fake − d_real + λ·(‖∇ₓ̂ D(x̂)‖ − 1)²,  x̂ = εx + (1 − ε)G(z),   L_G = −d_fake

Each training step updates D on real and generated images, then G against the
updated D (every ``d_steps`` steps), both through the trainer's ``optimize``
so precision, accumulation and clipping are the shared ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ptlab.config import NonNegativeFloat, PositiveInt
from ptlab.models.gan import GAN
from ptlab.objectives.base import Objective, Optimize


NOISE_BLOCK = 256  # evaluation noise is drawn this many rows at a time, each block from its own seed


class Adversarial(Objective):
    """Generator vs discriminator; evaluated by the Fréchet distance of generated to real images."""

    target_kind = "generation"

    def __init__(self, loss: Literal["non_saturating", "hinge", "wgan_gp"] = "non_saturating",
                 d_steps: PositiveInt = 1, gp_weight: NonNegativeFloat = 10.0, metrics: Sequence[str] = ("fid",),
                 samples: PositiveInt = 64, eval_seed: int = 0) -> None:
        self.kind = loss
        self.d_steps = d_steps
        self.gp_weight = gp_weight
        self.metrics = list(metrics)
        self.samples = samples
        self.eval_seed = eval_seed
        self.start_evaluation()

    def parameters(self, model: GAN) -> dict[str, list]:
        return {"discriminator": list(model.discriminator.parameters()),
                "generator": list(model.generator.parameters())}

    def training_step(self, model: GAN, batch: Sequence[Tensor], trainer: Optimize) -> dict[str, Tensor]:
        real = batch[0]
        fake = model.generator(model.noise(len(real)))
        d_real, d_fake = model.discriminator(real), model.discriminator(fake.detach())
        d_loss = self.discriminator_loss(d_real, d_fake)
        if self.kind == "wgan_gp":
            d_loss = d_loss + self.gp_weight * gradient_penalty(model, real, fake.detach())
        trainer.optimize("discriminator", d_loss)
        logs = {"d_loss": d_loss, "d_real": torch.sigmoid(d_real).mean(), "d_fake": torch.sigmoid(d_fake).mean()}
        if (trainer.step + 1) % self.d_steps == 0:
            g_loss = self.generator_loss(model.discriminator(fake))  # against the updated discriminator
            trainer.optimize("generator", g_loss)
            logs["g_loss"] = g_loss
        return logs

    def discriminator_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        if self.kind == "non_saturating":
            return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()  # −log σ(d_real) − log(1 − σ(d_fake))
        if self.kind == "hinge":
            return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        return d_fake.mean() - d_real.mean()

    def generator_loss(self, d_fake: Tensor) -> Tensor:
        if self.kind == "non_saturating":
            return F.softplus(-d_fake).mean()  # −log σ(d_fake)
        return -d_fake.mean()

    # --- evaluation: the same noise every time, so scores compare across epochs, with `ptlab eval`
    # and across process counts: the i-th sample of a split is always paired with noise row i.

    def start_evaluation(self, rank: int = 0, world_size: int = 1) -> None:
        self._evaluated, self._rank, self._world_size = 0, rank, world_size
        self._noise_blocks: dict[int, Tensor] = {}

    def loss(self, model: GAN, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """D's loss on a real batch and as many generated images; (loss, generated, real) for the metrics."""
        real = batch[0]
        local = torch.arange(self._evaluated, self._evaluated + len(real))
        self._evaluated += len(real)
        fake = model.generator(self.eval_noise(model, local * self._world_size + self._rank))
        return self.discriminator_loss(model.discriminator(real), model.discriminator(fake)), fake, real

    def eval_noise(self, model: GAN, samples: Tensor) -> Tensor:
        """Noise rows for the given sample numbers of the split, drawn in seeded blocks of NOISE_BLOCK rows."""
        device = next(model.parameters()).device
        blocks, rows = (samples // NOISE_BLOCK).to(device), (samples % NOISE_BLOCK).to(device)
        noise = torch.empty(len(samples), model.latent_dim, device=device)
        for block in blocks.unique().tolist():
            if block not in self._noise_blocks:
                generator = torch.Generator(device).manual_seed(self.eval_seed * 1_000_003 + block)
                self._noise_blocks[block] = model.noise(NOISE_BLOCK, generator)
            here = blocks == block
            noise[here] = self._noise_blocks[block][rows[here]]
        return noise

    def baselines(self, data, results: dict[str, float]) -> dict[str, float]:
        if "fid" not in self.metrics:
            return {}
        from ptlab.objectives.fid import real_vs_real

        held = data.in_memory("test")
        return {"test/fid_real": real_vs_real(data, held[0].device if held is not None else torch.device("cpu"))}

    def callbacks(self, run_dir: Path) -> list:
        from ptlab.logging.samples import SampleGrid

        return [SampleGrid(Path(run_dir) / "samples", self.samples, self.eval_seed)]


def gradient_penalty(model: GAN, real: Tensor, fake: Tensor) -> Tensor:
    """(‖∇ₓ̂ D(x̂)‖ − 1)² at random points x̂ between real and generated images (WGAN-GP)."""
    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(model.discriminator(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
