"""Networks of the conditional face generator (torch; training and ONNX export only).

* :class:`CondGenerator` — a U-Net over the context crop.  Input: the crop with
  the face region set to zero (3 channels), the region mask (1) and the five
  landmark heat maps (5); the latent code (``NZ``) modulates the decoder
  (feature-wise affine, FiLM).  Output: the whole crop in [-1, 1]; only the
  masked region is ever used.  The face pixels are zeroed *inside* the graph as
  well, so a caller that forgets to mask still cannot pass the face through.
* :class:`CondEncoder` — the projection of a face to the latent space (a
  VAE-style encoder: mean and log-variance).  Its mean is the only channel
  from the original face to the generator, and it goes through the latent
  Laplace mechanism first (``ε > 0``); at ``ε = 0`` it is not run at all.
* :class:`CondDiscriminator` — a conditional patch critic (image + mask +
  heat maps) with spectral normalisation; its intermediate features serve as
  the perceptual (feature-matching) loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from pixveil.gan.cond_geometry import NZ

__all__ = ["CondDiscriminator", "CondEncoder", "CondGenerator"]

#: Channels per U-Net level (192, 96, 48, 24, 12, 6 px).
G_CHANNELS = (16, 32, 64, 128, 256, 256)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.act = _act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.c1(x))
        return self.act(self.c2(x)) + x


class _Up(nn.Module):
    """Upsample, merge the skip, two convolutions; FiLM from the latent after the first."""

    def __init__(self, cin: int, cskip: int, cout: int, film: bool) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin + cskip, cout, 3, 1, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.act = _act()
        self.cout = cout
        self.film = film

    def forward(self, x: torch.Tensor, skip: torch.Tensor, gb: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        x = self.act(self.c1(torch.cat([x, skip], 1)))
        if gb is not None:
            g, b = gb.chunk(2, dim=1)
            x = x * (1 + g[:, :, None, None]) + b[:, :, None, None]
        return self.act(self.c2(x)) + x


class CondGenerator(nn.Module):
    def __init__(self, nz: int = NZ, channels: tuple[int, ...] = G_CHANNELS) -> None:
        super().__init__()
        self.nz = nz
        ch = channels
        self.inp = nn.Conv2d(3 + 1 + 5, ch[0], 3, 1, 1)
        self.downs = nn.ModuleList(
            [_Down(ch[0], ch[0], 1)] + [_Down(ch[i - 1], ch[i], 2) for i in range(1, len(ch))]
        )
        self.mid = _Down(ch[-1], ch[-1], 1)
        ups = [_Up(ch[i], ch[i - 1], ch[i - 1], film=i >= 2) for i in range(len(ch) - 1, 0, -1)]
        self.ups = nn.ModuleList(ups)
        #: FiLM width (scale + shift) of each decoder level, 0 where there is none
        self.film_sizes: list[int] = [u.cout * 2 if u.film else 0 for u in ups]
        self.mid_film: int = ch[-1] * 2
        last = nn.Linear(256, self.mid_film + sum(self.film_sizes))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mapping = nn.Sequential(nn.Linear(nz, 256), _act(), nn.Linear(256, 256), _act(), last)
        self.out = nn.Conv2d(ch[0], 3, 3, 1, 1)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, heat: torch.Tensor, z: torch.Tensor
    ) -> torch.Tensor:
        """``image`` (N,3,R,R) in [-1,1], ``mask`` (N,1,R,R) 1 = synthesise, ``heat`` (N,5,R,R), ``z`` (N,nz)."""
        x = torch.cat([image * (1 - mask), mask, heat], 1)
        x = self.inp(x)
        skips = []
        for d in self.downs:
            x = d(x)
            skips.append(x)
        films = self.mapping(z)
        g, b = films[:, : self.mid_film].chunk(2, 1)
        x = self.mid(x) * (1 + g[:, :, None, None]) + b[:, :, None, None]
        off = self.mid_film
        skips.pop()  # the deepest level is x itself
        for up, size in zip(self.ups, self.film_sizes, strict=True):
            gb = films[:, off : off + size] if size else None
            off += size
            x = up(x, skips.pop(), gb)
        return torch.tanh(self.out(x))


class CondEncoder(nn.Module):
    """Face crop (N,3,R,R) + mask -> (mean, log-variance) of the latent, from a half-size copy."""

    def __init__(self, nz: int = NZ) -> None:
        super().__init__()
        ch = (32, 64, 128, 256, 256)
        layers: list[nn.Module] = []
        cin = 4
        for c in ch:
            layers += [nn.Conv2d(cin, c, 4, 2, 1), _act()]
            cin = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(ch[-1], 2 * nz)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([image, mask], 1)
        x = F.avg_pool2d(x, 2)
        h = self.body(x).mean(dim=(2, 3))
        mu, logvar = self.head(h).chunk(2, 1)
        return mu, logvar.clamp(-8, 4)


class CondDiscriminator(nn.Module):
    """Patch critic over (image, mask, heat maps); returns logits (N,1,6,6) and a feature list."""

    def __init__(self) -> None:
        super().__init__()
        ch = (32, 64, 128, 256, 256, 256)
        blocks = []
        cin = 3 + 1 + 5
        for i, c in enumerate(ch):
            stride = 1 if i == 0 else 2
            blocks.append(
                nn.Sequential(
                    spectral_norm(nn.Conv2d(cin, c, 3, stride, 1)),
                    _act(),
                    spectral_norm(nn.Conv2d(c, c, 3, 1, 1)),
                    _act(),
                )
            )
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.out = spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1))

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, heat: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image, mask, heat], 1)
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return self.out(x), feats
