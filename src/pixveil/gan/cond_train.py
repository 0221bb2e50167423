"""Train the conditional face generator (context in, synthetic face out).

Losses (DeepPrivacy's design, our code): a hinge adversarial loss from a
conditional patch critic on the *composited* crop (so the seam must look
right); for the half of each batch whose latent comes from the encoder, a
masked L1 reconstruction, a feature-matching (perceptual) loss on the
critic's features and a KL term that keeps the encoder's codes near N(0, 1)
(the prior that ``ε = 0`` samples from); the other half uses random codes
and only the adversarial loss, so random faces are trained directly.  An
exponential moving average of the generator is what gets exported.

Augmentation on the accelerator: mirror, a random similarity (scale, roll,
shift), colour casts and gains, gamma, grey, landmark jitter and dropout,
mask margin 1.0-1.3 and 15 % box-shaped masks.

Time-bounded and resumable::

    python -m pixveil.gan.cond_train --pack runs/cond/pack.npz --out runs/cond/a --minutes 7
    python -m pixveil.gan.cond_train --pack runs/cond/pack.npz --out runs/cond/a --minutes 60  # resumes

Checkpoints (every ``--every`` seconds, written atomically): ``g_ema.pt``,
``g.pt``, ``e.pt``, ``d.pt`` (float16 weights), ``state.json`` (step, losses)
and ``preview.jpg``.  Optimiser moments are not kept (small files); a resumed
run warms them up again.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixveil.gan.cond_geometry import NZ, SIGMA
from pixveil.gan.cond_models import CondDiscriminator, CondEncoder, CondGenerator

__all__ = ["load_weights", "main", "train"]


def load_pack_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (N,R,R,3) uint8, landmarks (N,5,2), ellipse (N,3)) of a pack (numpy + Pillow only)."""
    z = np.load(path)
    jpeg, off = z["jpeg"], z["offsets"]
    imgs = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(jpeg[off[i] : off[i + 1]].tobytes())).convert("RGB"))
            for i in range(len(off) - 1)
        ]
    )
    return imgs, z["landmarks"].astype(np.float32), z["ellipse"].astype(np.float32)


def heat_torch(lm: torch.Tensor, res: int, sigma: float = SIGMA) -> torch.Tensor:
    """(N,5,2) crop landmarks -> (N,5,res,res) Gaussian maps (as cond_geometry.heatmaps)."""
    g = torch.arange(res, device=lm.device, dtype=torch.float32)
    gx = torch.exp(-((g[None, None, :] - lm[..., 0:1]) ** 2) / (2 * sigma * sigma))
    gy = torch.exp(-((g[None, None, :] - lm[..., 1:2]) ** 2) / (2 * sigma * sigma))
    return gy[..., :, None] * gx[..., None, :]


def ellipse_mask(
    cx: torch.Tensor,
    cy: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    th: torch.Tensor,
    box: torch.Tensor,
    res: int,
) -> torch.Tensor:
    """(N,1,res,res) masks: rotated ellipses (or rotated boxes where ``box``), dilated a pixel."""
    g = torch.arange(res, device=cx.device, dtype=torch.float32)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    c, s = torch.cos(th)[:, None, None], torch.sin(th)[:, None, None]
    u = (c * dx + s * dy) / (a[:, None, None] + 1.0)
    v = (-s * dx + c * dy) / (b[:, None, None] + 1.0)
    ell = (u * u + v * v) <= 1.0
    rect = (u.abs() <= 1.0) & (v.abs() <= 1.0)
    m = torch.where(box[:, None, None], rect, ell)
    return m[:, None].float()


class Batcher:
    """Samples augmented batches from the pack held on the device."""

    FLIP: ClassVar[list[int]] = [1, 0, 2, 4, 3]

    def __init__(self, pack: Path, device: torch.device, seed: int) -> None:
        imgs, lm, ell = load_pack_arrays(pack)
        self.n, self.res = len(imgs), imgs.shape[1]
        self.imgs = torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).contiguous()
        self.lm = torch.from_numpy(lm).to(device)
        self.ell = torch.from_numpy(ell).to(device)
        self.dev = device
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, device=self.dev, generator=self.gen)

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images (N,3,R,R) in [-1,1], masks (N,1,R,R), heat maps (N,5,R,R)."""
        r = self.res
        idx = torch.randint(0, self.n, (n,), device=self.dev, generator=self.gen)
        x = self.imgs[idx].float() / 127.5 - 1.0
        lm = self.lm[idx].clone()
        a, b, th = self.ell[idx].unbind(1)
        cx = torch.full((n,), r / 2, device=self.dev)  # the box centre (crop_transform)
        cy = cx.clone()
        # mirror
        flip = torch.rand(n, device=self.dev, generator=self.gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        lm_f = lm[:, self.FLIP].clone()
        lm_f[..., 0] = r - 1 - lm_f[..., 0]
        lm = torch.where(flip[:, None, None], lm_f, lm)
        th = torch.where(flip, -th, th)
        # random similarity: output pixel p samples input at q = S R (p - c) + c + t
        sc = self._u(n, 0.92, 1.08)
        rot = self._u(n, -0.14, 0.14)
        tx, ty = self._u(n, -0.04, 0.04) * r, self._u(n, -0.04, 0.04) * r
        cos, sin = torch.cos(rot), torch.sin(rot)
        half = (r - 1) / 2
        # affine_grid works in normalised coordinates (align_corners=True: -1..1 = pixel centres)
        theta = torch.zeros(n, 2, 3, device=self.dev)
        theta[:, 0, 0], theta[:, 0, 1] = sc * cos, -sc * sin
        theta[:, 1, 0], theta[:, 1, 1] = sc * sin, sc * cos
        theta[:, 0, 2], theta[:, 1, 2] = tx / half, ty / half
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

        # points move by the inverse: p = R^-1 S^-1 (q - c - t) + c
        def inv(px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            qx, qy = px - half - tx[:, None], py - half - ty[:, None]
            ux = (cos[:, None] * qx + sin[:, None] * qy) / sc[:, None]
            uy = (-sin[:, None] * qx + cos[:, None] * qy) / sc[:, None]
            return ux + half, uy + half

        lx, ly = inv(lm[..., 0], lm[..., 1])
        lm = torch.stack([lx, ly], -1)
        ex, ey = inv(cx[:, None], cy[:, None])
        cx, cy = ex[:, 0], ey[:, 0]
        a, b, th = a / sc, b / sc, th - rot
        # colour: per-channel gain, brightness, contrast, saturation, gamma, grey
        x01 = (x + 1) / 2
        gain = 1 + self._u(n * 3, -0.08, 0.08).view(n, 3, 1, 1)
        x01 = x01 * gain
        grey = x01.mean(1, keepdim=True)
        sat = self._u(n, 0.6, 1.3).view(n, 1, 1, 1)
        sat = torch.where(
            torch.rand(n, 1, 1, 1, device=self.dev, generator=self.gen) < 0.04, 0.0, sat
        )
        x01 = grey + (x01 - grey) * sat
        mean = x01.mean(dim=(1, 2, 3), keepdim=True)
        x01 = (x01 - mean) * self._u(n, 0.75, 1.25).view(n, 1, 1, 1) + mean
        x01 = x01 + self._u(n, -0.12, 0.12).view(n, 1, 1, 1)
        x01 = x01.clamp(0, 1) ** self._u(n, 0.8, 1.25).view(n, 1, 1, 1)
        x = x01 * 2 - 1
        # mask: the face ellipse grown by a random margin (15 % boxes)
        margin = self._u(n, 1.0, 1.3)
        box = torch.rand(n, device=self.dev, generator=self.gen) < 0.15
        mask = ellipse_mask(cx, cy, a * margin, b * margin, th, box, r)
        # landmarks: jitter (detector noise) and 10 % dropout
        lm = lm + torch.randn(lm.shape, device=self.dev, generator=self.gen) * 1.5
        heat = heat_torch(lm, r)
        keep = (torch.rand(n, device=self.dev, generator=self.gen) >= 0.1).float()
        heat = heat * keep[:, None, None, None]
        return x.contiguous(), mask, heat


def _save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _half(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
    }


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a (float16) state dict saved by :func:`train` into ``model`` as float32."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})


def _preview(g: CondGenerator, e: CondEncoder, batch: tuple[torch.Tensor, ...], path: Path) -> None:
    x, mask, heat = batch
    with torch.no_grad():
        mu, _ = e(x, mask)
        rows = [x, x * (1 - mask)]
        rows.append(mask * g(x, mask, heat, mu) + (1 - mask) * x)
        for s in range(2):
            z = torch.randn(
                len(x), g.nz, device=x.device, generator=torch.Generator(x.device).manual_seed(s)
            )
            rows.append(mask * g(x, mask, heat, z) + (1 - mask) * x)
    grid = torch.cat([torch.cat(list(r.float()), 2) for r in rows], 1)
    arr = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    tmp = path.with_suffix(".tmp.jpg")
    Image.fromarray(arr).save(tmp, "JPEG", quality=85)
    os.replace(tmp, path)


def train(
    pack: Path,
    out: Path,
    *,
    minutes: float,
    batch: int = 32,
    lr: float = 2e-4,
    every: float = 60.0,
    seed: int = 0,
    device: str = "auto",
    max_steps: int = 0,
) -> dict[str, object]:
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    torch.manual_seed(seed)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    data = Batcher(pack, dev, seed)
    g, e, d = CondGenerator().to(dev), CondEncoder().to(dev), CondDiscriminator().to(dev)
    state: dict[str, object] = {"step": 0, "seconds": 0.0, "pack": str(pack), "faces": data.n}
    if (out / "state.json").exists():
        state = json.loads((out / "state.json").read_text())
        load_weights(g, out / "g.pt")
        load_weights(e, out / "e.pt")
        load_weights(d, out / "d.pt")
        print(f"resumed at step {state['step']}", file=sys.stderr, flush=True)
    g_ema = copy.deepcopy(g).eval()
    if (out / "g_ema.pt").exists():
        load_weights(g_ema, out / "g_ema.pt")
    for p in g_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(list(g.parameters()) + list(e.parameters()), lr=lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.0, 0.99))
    amp = dev.type == "cuda" or os.environ.get("PIXVEIL_TRAIN_AMP") == "1"
    fixed = data.sample(8)
    step = int(state["step"])  # type: ignore[call-overload]
    t_start, t_ckpt = time.time(), time.time()
    base_seconds = float(state.get("seconds", 0.0))  # type: ignore[arg-type]
    hist: dict[str, float] = {}
    half_b = batch // 2

    def save() -> None:
        _save(_half(g_ema), out / "g_ema.pt")
        _save(_half(g), out / "g.pt")
        _save(_half(e), out / "e.pt")
        _save(_half(d), out / "d.pt")
        state.update(step=step, seconds=base_seconds + time.time() - t_start, losses=hist)
        tmp = out / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, out / "state.json")
        _preview(g_ema, e, fixed, out / "preview.jpg")

    while True:
        elapsed = time.time() - t_start
        if elapsed > minutes * 60 or (max_steps and step >= max_steps):
            break
        x, mask, heat = data.sample(batch)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            mu, logvar = e(x[:half_b], mask[:half_b])
            z_enc = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            z = torch.cat([z_enc, torch.randn(batch - half_b, NZ, device=dev)], 0)
            fake = g(x, mask, heat, z)
            comp = mask * fake + (1 - mask) * x
            # critic
            real_logit, _ = d(x, mask, heat)
            fake_logit, _ = d(comp.detach(), mask, heat)
            loss_d = F.relu(1 - real_logit).mean() + F.relu(1 + fake_logit).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            fake_logit, ffeat = d(comp, mask, heat)
            with torch.no_grad():
                _, rfeat = d(x[:half_b], mask[:half_b], heat[:half_b])
            adv = -fake_logit.float().mean()
            m = mask[:half_b]
            area = m.sum() * 3 + 1.0
            l1 = ((fake[:half_b].float() - x[:half_b]).abs() * m).sum() / area
            fm = sum(
                (ff[:half_b].float() - rf.float()).abs().mean()
                for ff, rf in zip(ffeat, rfeat, strict=True)
            ) / len(ffeat)
            kl = 0.5 * (mu.float() ** 2 + logvar.float().exp() - 1 - logvar.float()).mean()
            loss_g = adv + 8.0 * l1 + 4.0 * fm + 0.02 * kl
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pg in zip(g_ema.parameters(), g.parameters(), strict=True):
                pe.lerp_(pg, 1 - decay)
        if step % 50 == 0:
            vals = {
                "d": float(loss_d),
                "adv": float(adv),
                "l1": float(l1),
                "fm": float(fm),
                "kl": float(kl),
            }
            for k, v in vals.items():
                hist[k] = 0.9 * hist.get(k, v) + 0.1 * v
        if step % 200 == 0:
            rate = step / max(1e-6, time.time() - t_start)
            print(
                f"step {step} {time.time() - t_start:.0f}s {rate:.1f} it/s "
                + " ".join(f"{k}={v:.3f}" for k, v in hist.items()),
                file=sys.stderr,
                flush=True,
            )
        if time.time() - t_ckpt > every:
            save()
            t_ckpt = time.time()
    save()
    return state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--every", type=float, default=60.0, help="seconds between checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-steps", type=int, default=0)
    a = ap.parse_args(argv)
    st = train(
        a.pack,
        a.out,
        minutes=a.minutes,
        batch=a.batch,
        lr=a.lr,
        every=a.every,
        seed=a.seed,
        device=a.device,
        max_steps=a.max_steps,
    )
    print(json.dumps({k: st[k] for k in ("step", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
