"""DCGAN generator, discriminator and encoder (torch; the ``[gan]`` extra).

The architecture follows the customized DCGAN of the end-to-end GAN privacy
paper: strided convolutions instead of pooling in the discriminator and the
encoder, transposed convolutions to upsample in the generator, batch norm,
LeakyReLU(0.2) in the discriminator/encoder, ReLU in the generator, a tanh
output in [-1, 1] and N(0, 0.02) weight initialisation.

Only 64x64 is implemented: each extra factor of two adds one block.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Discriminator", "Encoder", "Generator", "init_weights", "recalibrate_bn"]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm gamma ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _n_blocks(size: int) -> int:
    if size < 32 or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= 32, got {size}")
    return size.bit_length() - 1 - 2  # 64 -> 4 (4->8->16->32->64)


class Generator(nn.Module):
    """z (N, nz) -> image (N, 3, size, size) in [-1, 1]."""

    def __init__(self, nz: int = 128, ngf: int = 64, size: int = 64) -> None:
        super().__init__()
        self.nz, self.ngf, self.size = nz, ngf, size
        n = _n_blocks(size)
        ch = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.nz, 1, 1))


def _down_trunk(ndf: int, size: int) -> tuple[nn.Sequential, int]:
    n = _n_blocks(size)
    layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    ch = ndf
    for _ in range(n - 1):
        layers += [
            nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ch * 2),
            nn.LeakyReLU(0.2, True),
        ]
        ch *= 2
    return nn.Sequential(*layers), ch


class Discriminator(nn.Module):
    """image -> real/fake logit (N,)."""

    def __init__(self, ndf: int = 64, size: int = 64) -> None:
        super().__init__()
        self.trunk, ch = _down_trunk(ndf, size)
        self.head = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).view(-1)


class Encoder(nn.Module):
    """image -> latent code (N, nz); the inverse map of the generator."""

    def __init__(self, nz: int = 128, ndf: int = 64, size: int = 64) -> None:
        super().__init__()
        self.nz = nz
        self.trunk, ch = _down_trunk(ndf, size)
        self.head = nn.Conv2d(ch, nz, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).view(x.shape[0], self.nz)


@torch.no_grad()
def recalibrate_bn(G: torch.nn.Module, nz: int, device: str, *, batches: int = 16) -> None:
    """Re-estimate the batch-norm statistics of ``G`` on its own outputs (fixed seed).

    Averaged weights do not match the running statistics of the trained
    generator; a few forward passes in train mode with a cumulative average fix that.
    """
    bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = G.training
    G.train()
    g = torch.Generator().manual_seed(4321)
    for _ in range(batches):
        G(torch.randn(64, nz, generator=g).to(device))
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom
    G.train(was_training)
