"""Train the face GAN (DCGAN) and its encoder on CPU or GPU, resumably.

Phase 1 trains the generator and discriminator with the DCGAN recipe (Adam,
lr 2e-4, beta1 0.5, non-saturating loss, one-sided label smoothing 0.9,
horizontal flips).  An exponential moving average of the generator's weights
(decay ``ema_decay``) is kept beside it; that averaged generator, with its
batch-norm statistics re-estimated on its own outputs, is the one sampled,
inverted and exported (it has fewer of the blotches and streaks of the
last optimiser step).  Phase 2 freezes it and trains the encoder used
for inversion: on generated faces it regresses the latent code (the code is
known), on real faces it minimises pixel MSE plus a discriminator-feature
perceptual loss between the face and its reconstruction ``G(E(x))``.

Everything lives in the run folder:

``ckpt.pt``            models, optimisers, RNG state, step counters (written atomically)
``log.csv``            one row per logged step (phase, epoch, step, losses, seconds)
``samples/*.png``      a sample grid from a fixed latent batch after every epoch
``crops_<size>.npy``   the cached training crops
``config.json``        the training configuration

Running the same command again resumes from ``ckpt.pt``.  The library prints
nothing: progress goes to an optional callback (:mod:`pixveil.progress`), which
``pixveil gan train`` turns into progress bars.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixveil.io import atomic_write, atomic_write_bytes, atomic_write_text
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress

from .data import load_crops, training_files
from .models import Discriminator, Encoder, Generator, init_weights, recalibrate_bn

__all__ = ["TrainConfig", "sample_grid", "train"]


@dataclass
class TrainConfig:
    data: str
    out: str
    size: int = 64
    nz: int = 128
    ngf: int = 64
    ndf: int = 48
    batch: int = 64
    epochs: int = 25
    encoder_steps: int = 1500
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    threads: int = 0  # 0 = torch default
    ckpt_every: int = 100  # steps
    device: str = "cpu"
    ema_decay: float = 0.999  # 0 = no averaged generator


def sample_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Save a (N, 3, H, W) batch in [-1, 1] as one PNG grid."""
    t = ((images.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = t.permute(0, 2, 3, 1).numpy()
    n, h, w, _ = x.shape
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + 2) + 2, nrow * (w + 2) + 2, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = x[i]
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _batches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch] for i in range(0, n - batch + 1, batch)]


def _to_tensor(
    crops: np.ndarray, idx: torch.Tensor, flip: torch.Tensor | None, device: str
) -> torch.Tensor:
    x = torch.from_numpy(crops[idx.numpy()]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if flip is not None:
        x = torch.where(flip.view(-1, 1, 1, 1).to(device), x.flip(3), x)
    return x


@torch.no_grad()
def _ema_update(avg: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pa, p in zip(avg.parameters(), model.parameters(), strict=True):
        pa.lerp_(p, 1.0 - decay)


def train(cfg: TrainConfig, *, progress: ProgressCallback | None = None) -> Path:
    """Run (or resume) both phases; returns the checkpoint path.

    Parameters
    ----------
    cfg : TrainConfig
    progress : callable taking a ProgressEvent, optional, keyword-only
        Called as training advances (:mod:`pixveil.progress`): stage ``"gan"``
        once when an epoch starts (or resumes) and after each of its steps
        (``done`` steps of the epoch's ``total``, message ``"GAN epoch E/N"``,
        ``metrics`` the discriminator and generator losses ``d`` and ``g``), then
        stage ``"encoder"`` likewise (``done`` encoder steps of
        ``cfg.encoder_steps``, ``metrics`` the latent and pixel losses ``z`` and
        ``x``).

    Raises
    ------
    FileNotFoundError
        If ``cfg.data`` holds no training image.
    OutputError
        If a checkpoint, sample grid or the configuration cannot be written.
    """
    emit = check_progress(progress)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = cfg.device
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))

    files = training_files(cfg.data, held_out=False)
    if not files:
        raise FileNotFoundError(f"{cfg.data}: no training images (after holding identities out)")
    crops = load_crops(files, cfg.size, out / f"crops_{cfg.size}.npy")

    torch.manual_seed(cfg.seed)
    G = Generator(cfg.nz, cfg.ngf, cfg.size).to(dev)
    D = Discriminator(cfg.ndf, cfg.size).to(dev)
    E = Encoder(cfg.nz, cfg.ndf, cfg.size).to(dev)
    for m in (G, D, E):
        m.apply(init_weights)
    G_avg = copy.deepcopy(G)
    G_avg.requires_grad_(False)
    betas = (cfg.beta1, 0.999)
    optG = torch.optim.Adam(G.parameters(), cfg.lr, betas=betas)
    optD = torch.optim.Adam(D.parameters(), cfg.lr, betas=betas)
    optE = torch.optim.Adam(E.parameters(), 1e-3, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(cfg.seed)
    fixed_z = torch.randn(64, cfg.nz, generator=torch.Generator().manual_seed(1234))
    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "gan_steps": 0, "enc_steps": 0}

    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        G.load_state_dict(ck["G"])
        # runs started before the averaged generator existed begin it from G
        G_avg.load_state_dict(ck.get("G_ema", ck["G"]))
        D.load_state_dict(ck["D"])
        E.load_state_dict(ck["E"])
        optG.load_state_dict(ck["optG"])
        optD.load_state_dict(ck["optD"])
        optE.load_state_dict(ck["optE"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        state = ck["state"]

    def save() -> None:
        checkpoint = {
            "G": G.state_dict(),
            "G_ema": G_avg.state_dict(),
            "D": D.state_dict(),
            "E": E.state_dict(),
            "optG": optG.state_dict(),
            "optD": optD.state_dict(),
            "optE": optE.state_dict(),
            "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": state,
            "config": asdict(cfg),
        }
        atomic_write(ckpt_path, lambda fh: torch.save(checkpoint, fh), what="checkpoint")

    log_path = out / "log.csv"
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as lf:
        log = csv.writer(lf)
        if new_log:
            log.writerow(
                ["phase", "epoch", "step", "loss_a", "loss_b", "d_real", "d_fake", "seconds"]
            )
        t0 = time.perf_counter()

        # ---- phase 1: GAN ----
        n = crops.shape[0]
        steps_per_epoch = n // cfg.batch
        while state["epoch"] < cfg.epochs:
            ep = state["epoch"]
            # the permutation of an epoch is re-derived on resume from a per-epoch seed
            perm_gen = torch.Generator().manual_seed(cfg.seed * 100003 + ep)
            batches = _batches(n, cfg.batch, perm_gen)
            flips = torch.rand(n, generator=perm_gen) < 0.5
            title = f"GAN epoch {ep + 1}/{cfg.epochs}"
            if emit is not None:
                emit(ProgressEvent("gan", state["step_in_epoch"], steps_per_epoch, title))
            G.train()
            D.train()
            for bi in range(state["step_in_epoch"], len(batches)):
                idx = batches[bi]
                real = _to_tensor(crops, idx, flips[idx], dev)
                b = real.shape[0]
                z = torch.randn(b, cfg.nz, generator=gen).to(dev)
                fake = G(z)
                d_real = D(real)
                d_fake = D(fake.detach())
                loss_d = F.binary_cross_entropy_with_logits(
                    d_real, torch.full_like(d_real, 0.9)
                ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                optD.zero_grad(set_to_none=True)
                loss_d.backward()
                optD.step()
                g_out = D(fake)
                loss_g = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
                optG.zero_grad(set_to_none=True)
                loss_g.backward()
                optG.step()
                if cfg.ema_decay > 0:
                    _ema_update(G_avg, G, cfg.ema_decay)
                state["step_in_epoch"] = bi + 1
                state["gan_steps"] += 1
                if emit is not None:
                    emit(
                        ProgressEvent(
                            "gan",
                            bi + 1,
                            steps_per_epoch,
                            title,
                            metrics={"d": loss_d.item(), "g": loss_g.item()},
                        )
                    )
                if state["gan_steps"] % 10 == 0:
                    log.writerow(
                        [
                            "gan",
                            ep,
                            state["gan_steps"],
                            f"{loss_d.item():.4f}",
                            f"{loss_g.item():.4f}",
                            f"{torch.sigmoid(d_real).mean().item():.3f}",
                            f"{torch.sigmoid(d_fake).mean().item():.3f}",
                            f"{time.perf_counter() - t0:.1f}",
                        ]
                    )
                    lf.flush()
                if state["gan_steps"] % cfg.ckpt_every == 0:
                    save()
            with torch.no_grad():
                G.eval()
                raw = G(fixed_z.to(dev))
                G.train()
                sample_grid(raw, out / "samples" / f"raw_{ep + 1:03d}.png")
                shown = raw
                if cfg.ema_decay > 0:  # the averaged generator is the one exported
                    recalibrate_bn(G_avg, cfg.nz, dev)
                    G_avg.eval()
                    shown = G_avg(fixed_z.to(dev))
                sample_grid(shown, out / "samples" / f"epoch_{ep + 1:03d}.png")
            state["epoch"] = ep + 1
            state["step_in_epoch"] = 0
            save()

        # ---- phase 2: encoder (generator frozen, in eval mode) ----
        # the averaged generator, with the same statistics on every resume
        Gf = G
        if cfg.ema_decay > 0:
            recalibrate_bn(G_avg, cfg.nz, dev)
            Gf = G_avg
        Gf.eval()
        D.eval()
        for p in list(Gf.parameters()) + list(D.parameters()):
            p.requires_grad_(False)
        if emit is not None:
            emit(ProgressEvent("encoder", state["enc_steps"], cfg.encoder_steps, "encoder"))
        E.train()
        while state["enc_steps"] < cfg.encoder_steps:
            s = state["enc_steps"]
            with torch.no_grad():
                z = torch.randn(cfg.batch, cfg.nz, generator=gen).to(dev)
                xg = Gf(z)
            loss_z = F.mse_loss(E(xg), z)
            idx = torch.randint(0, n, (cfg.batch,), generator=gen)
            real = _to_tensor(crops, idx, torch.rand(cfg.batch, generator=gen) < 0.5, dev)
            rec = Gf(E(real))
            loss_x = F.mse_loss(rec, real) + 0.5 * F.mse_loss(D.features(rec), D.features(real))
            loss = loss_z + loss_x
            optE.zero_grad(set_to_none=True)
            loss.backward()
            optE.step()
            state["enc_steps"] = s + 1
            if emit is not None:
                emit(
                    ProgressEvent(
                        "encoder",
                        s + 1,
                        cfg.encoder_steps,
                        "encoder",
                        metrics={"z": loss_z.item(), "x": loss_x.item()},
                    )
                )
            if state["enc_steps"] % 10 == 0:
                log.writerow(
                    [
                        "encoder",
                        cfg.epochs,
                        state["enc_steps"],
                        f"{loss_z.item():.4f}",
                        f"{loss_x.item():.4f}",
                        "",
                        "",
                        f"{time.perf_counter() - t0:.1f}",
                    ]
                )
                lf.flush()
            if state["enc_steps"] % cfg.ckpt_every == 0 or state["enc_steps"] == cfg.encoder_steps:
                save()
                with torch.no_grad():
                    E.eval()
                    grid = torch.cat([real[:16], Gf(E(real[:16]))])
                    E.train()
                sample_grid(
                    grid, out / "samples" / f"encoder_{state['enc_steps']:05d}.png", nrow=16
                )
    save()
    return ckpt_path
