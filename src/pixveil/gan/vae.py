"""A small convolutional VAE for 64x64 faces (torch; the ``[gan]`` extra), resumable.

A second generator *architecture* for the attribution study
(:mod:`pixveil.evaluate.attribution`): where the DCGAN upsamples with
transposed convolutions, this decoder upsamples by nearest-neighbour
interpolation followed by 3x3 convolutions, and it is trained by a different
objective (reconstruction + KL, Kingma and Welling 2014), so its images carry a
different fingerprint.  Samples are ``decoder(z)``, ``z ~ N(0, I)``.

Everything lives in the run folder: ``vae.pt`` (models, optimiser, RNG state,
step counter, written atomically every ``ckpt_every`` steps) and
``config.json``.  Running again with the same folder resumes; asking for more
``steps`` continues training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixveil.io import atomic_write, atomic_write_text
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress

__all__ = ["VAE", "VAEConfig", "load_vae", "train_vae"]


@dataclass
class VAEConfig:
    out: str
    nz: int = 64
    width: int = 16
    batch: int = 64
    steps: int = 600
    lr: float = 1e-3
    beta: float = 1.0
    seed: int = 0
    threads: int = 0  # 0 = torch default
    ckpt_every: int = 50
    device: str = "cpu"


class VAE(nn.Module):
    """Encoder (strided convs) -> (mu, logvar) -> decoder (upsample + 3x3 conv), 64x64."""

    def __init__(self, nz: int = 64, width: int = 32) -> None:
        super().__init__()
        self.nz = nz
        w = width
        enc: list[nn.Module] = []
        c_in = 3
        for c in (w, 2 * w, 4 * w, 8 * w):  # 64 -> 4
            enc += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            c_in = c
        self.enc = nn.Sequential(*enc, nn.Flatten())
        self.mu = nn.Linear(8 * w * 16, nz)
        self.logvar = nn.Linear(8 * w * 16, nz)
        self.fc = nn.Linear(nz, 8 * w * 16)
        dec: list[nn.Module] = []
        c_in = 8 * w
        for c in (4 * w, 2 * w, w, w):  # 4 -> 64
            dec += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c, 3, 1, 1),
                nn.BatchNorm2d(c),
                nn.ReLU(True),
            ]
            c_in = c
        self.dec = nn.Sequential(*dec, nn.Conv2d(c_in, 3, 3, 1, 1), nn.Tanh())
        self.width = w

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, nz) -> image (N, 3, 64, 64) in [-1, 1]."""
        h = self.fc(z).view(z.shape[0], 8 * self.width, 4, 4)
        return self.dec(F.relu(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h).clamp(-10, 10)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def train_vae(
    cfg: VAEConfig, crops: np.ndarray, *, progress: ProgressCallback | None = None
) -> Path:
    """Train (or resume) the VAE on ``crops`` (N, 64, 64, 3) uint8; returns the checkpoint.

    Progress: stage ``"vae"``, ``done`` steps of ``cfg.steps``, metrics ``rec``
    (per-pixel MSE in [-1, 1] units) and ``kl`` (per latent dimension).
    """
    emit = check_progress(progress)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    model = VAE(cfg.nz, cfg.width).to(cfg.device)
    opt = torch.optim.Adam(model.parameters(), cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    ckpt = out / "vae.pt"
    if ckpt.exists():
        ck = torch.load(ckpt, map_location=cfg.device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        step = int(ck["step"])

    def save() -> None:
        state: dict[str, Any] = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "config": asdict(cfg),
        }
        atomic_write(ckpt, lambda fh: torch.save(state, fh), what="checkpoint")

    n = crops.shape[0]
    pixels = 3 * 64 * 64
    model.train()
    while step < cfg.steps:
        idx = torch.randint(0, n, (cfg.batch,), generator=gen).numpy()
        x = torch.from_numpy(crops[idx]).to(cfg.device).permute(0, 3, 1, 2).float() / 127.5 - 1
        flip = torch.rand(cfg.batch, generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1).to(cfg.device), x.flip(3), x)
        rec, mu, logvar = model(x)
        rec_loss = F.mse_loss(rec, x)
        kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
        # a Gaussian likelihood of variance 0.1 per pixel, per-pixel units
        loss = rec_loss / (2 * 0.1) + cfg.beta * kl * cfg.nz / pixels
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if emit is not None:
            emit(
                ProgressEvent(
                    "vae", step, cfg.steps, "VAE", metrics={"rec": rec_loss.item(), "kl": kl.item()}
                )
            )
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save()
    if not ckpt.exists():
        save()
    return ckpt


def load_vae(run: Path | str, device: str = "cpu") -> VAE:
    """The trained VAE of a run folder, in eval mode."""
    ck = torch.load(Path(run) / "vae.pt", map_location=device, weights_only=False)
    cfg = ck["config"]
    model = VAE(int(cfg["nz"]), int(cfg["width"])).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model
