"""Generative adversarial networks: a generator G and a discriminator D in one module.

G maps noise z ~ N(0, I) to an image x̂ = G(z) in [-1, 1] (tanh output);
D maps an image to a logit, D(x) = σ(logit) being its belief that x is real.
They play the minimax game of the book,

    min_G max_D  E_x[log D(x)] + E_z[log(1 − D(G(z)))],

whose losses live in ptlab/objectives/adversarial.py. Keeping both networks in
one module makes a checkpoint's ``model`` a single state_dict with
``generator.*`` and ``discriminator.*`` keys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptlab.config import PositiveInt
from ptlab.models import serves


@serves("generation")
class GAN(nn.Module):
    """A generator and a discriminator, plus the noise they start from."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), n × latent_dim, on the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images G(z) in [-1, 1]."""
        return self.generator(self.noise(n, generator))


class MLPGAN(GAN):
    """Both players as multilayer perceptrons over flattened pixels (the original GAN)."""

    def __init__(self, in_channels: int, image_size: int, latent_dim: PositiveInt = 64,
                 hidden: PositiveInt = 256) -> None:
        shape = (in_channels, image_size, image_size)
        pixels = in_channels * image_size * image_size
        generator = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, pixels), nn.Tanh(),
            nn.Unflatten(1, shape),
        )
        discriminator = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )
        super().__init__(generator, discriminator, latent_dim)


def upsamplings(image_size: int) -> tuple[int, int]:
    """(number of ×2 steps, starting size): 8 → (2, 2), 28 → (2, 7), 32 → (4, 2), 64 → (4, 4)."""
    steps, size = 0, image_size
    while size % 2 == 0 and size > 2 and steps < 4:
        size //= 2
        steps += 1
    return steps, size


class DCGAN(GAN):
    """Deep convolutional GAN (Radford et al.): transposed convolutions up, strided convolutions down.

    G: z → linear → C₀×s×s → [ConvTranspose 4×4 stride 2 → BN → ReLU]ᵏ → conv 3×3 → tanh
    D: [conv 4×4 stride 2 → BN → LeakyReLU(0.2)]ᵏ → linear → logit
    with k chosen so that s·2ᵏ is the image size. Weights start from N(0, 0.02),
    batch-norm scales from N(1, 0.02), as in the paper.
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: PositiveInt = 64,
                 width: PositiveInt = 64) -> None:
        steps, start = upsamplings(image_size)
        channels = [width * 2 ** (steps - i) for i in range(steps + 1)]  # e.g. 256, 128, 64
        up = []
        for c_in, c_out in zip(channels, channels[1:]):
            up += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        generator = nn.Sequential(
            nn.Linear(latent_dim, channels[0] * start * start, bias=False),
            nn.Unflatten(1, (channels[0], start, start)), nn.BatchNorm2d(channels[0]), nn.ReLU(True),
            *up,
            nn.Conv2d(channels[-1], in_channels, 3, padding=1), nn.Tanh(),
        )
        down, c_in = [], in_channels
        for i, c_out in enumerate(reversed(channels[1:])):
            down += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False)]
            down += [nn.BatchNorm2d(c_out)] if i > 0 else []  # no batch norm on the input layer
            down += [nn.LeakyReLU(0.2, True)]
            c_in = c_out
        discriminator = nn.Sequential(*down, nn.Flatten(), nn.Linear(c_in * start * start, 1))
        super().__init__(generator, discriminator, latent_dim)
        self.apply(dcgan_init)


def dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
