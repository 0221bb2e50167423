"""Networks and training loops of the GAN transform (imports torch; see :mod:`pixveil.dataset.ppgan`)."""

from __future__ import annotations

import itertools
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixveil.dataset._nets import ResNet
from pixveil.evaluate.attacks._common import TrainingOptions
from pixveil.evaluate.attacks._nets import PatchDiscriminator as Discriminator
from pixveil.evaluate.attacks._nets import UNet, fit, seeded
from pixveil.evaluate.attacks._nets import lsgan_loss as _lsgan
from pixveil.progress import ProgressCallback, ProgressEvent

# CIFAR-10's per-channel mean and deviation (the standardisation in front of h_theta).
_MEAN = (0.4914, 0.4822, 0.4465)
_STD = (0.2470, 0.2435, 0.2616)
_CHUNK = 256


class Classifier(nn.Module):
    """h_theta: fixed standardisation, then a ResNet-8; ``features`` is phi (stem + stage 1)."""

    def __init__(self, n_classes: int, *, width: int = 16) -> None:
        super().__init__()
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.net = ResNet(n_classes, width=width, blocks=1)

    def features(self, x: Tensor) -> Tensor:
        """phi: ReLU feature maps of the stem and first stage, (N, width, H, W)."""
        z = (x - self.mean) / self.std
        out: Tensor = self.net.stages[0](self.net.stem(z))
        return out

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net((x - self.mean) / self.std)
        return out


class Generator(nn.Module):
    """A U-Net generator: [0, 1] image in, [0, 1] image out (tanh on [-1, 1] inside)."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.unet = UNet(width=width, levels=2)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (torch.tanh(self.unet(2 * x - 1)) + 1)


def train_classifier(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    *,
    config: Any,
    progress: ProgressCallback | None,
) -> None:
    """Train h_theta on plain images (cross-entropy, AdamW, warm-up + cosine; random mirrors)."""
    options = TrainingOptions(
        epochs=config.clf_epochs,
        image_size=x.shape[2],
        batch_size=64,
        width=16,
        seed=config.seed,
        learning_rate=3e-3,
    )
    dev = torch.device(config.device)
    clf.to(dev)
    x, y = x.to(dev), y.to(dev)
    with seeded(config.seed) as generator:
        loss_fn = nn.CrossEntropyLoss()

        def batch_loss(idx: Tensor) -> tuple[Tensor, dict[str, float]]:
            xb = x[idx.to(dev)]
            flip = torch.rand(xb.shape[0], generator=generator) < 0.5
            xb = torch.where(flip.to(dev).view(-1, 1, 1, 1), xb.flip(3), xb)
            logits = clf(xb)
            correct = float((logits.argmax(1) == y[idx.to(dev)]).sum())
            return loss_fn(logits, y[idx.to(dev)]), {"accuracy": correct}

        fit(
            clf,
            batch_loss,
            x.shape[0],
            options,
            weight_decay=5e-4,
            warmup_epochs=1,
            generator=generator,
            stage="classifier",
            title="h_theta",
            describe=lambda m: f"loss {m['loss']:.3f}, training accuracy {m['accuracy']:.1%}",
            progress=progress,
        )
    clf.cpu()


def accuracy(clf: Classifier, x: Tensor, y: Tensor, dev: Any) -> float:
    hits = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            logits = clf(x[i : i + _CHUNK].to(dev))
            hits += int((logits.argmax(1).cpu() == y[i : i + _CHUNK]).sum())
    return hits / max(1, x.shape[0])


def preliminary_protection(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    *,
    config: Any,
    device: Any,
    progress: ProgressCallback | None,
) -> Tensor:
    """Eq. (1)-(3): ``pgd_steps`` steps of projected sign-gradient *descent* on CE, L_inf <= epsilon."""
    eps, alpha = float(config.epsilon), float(config.alpha)
    out = torch.empty_like(x)
    n = x.shape[0]
    with seeded(config.seed + 1) as generator:
        for i in range(0, n, _CHUNK):
            xb = x[i : i + _CHUNK].to(device)
            yb = y[i : i + _CHUNK].to(device)
            start = (torch.rand(xb.shape, generator=generator) * 2 - 1).to(device) * eps
            xp = (xb + start).clamp(0, 1)
            for _ in range(config.pgd_steps):
                xp.requires_grad_(True)
                loss = F.cross_entropy(clf(xp), yb)
                (grad,) = torch.autograd.grad(loss, xp)
                with torch.no_grad():
                    xp = xp - alpha * grad.sign()
                    xp = torch.min(torch.max(xp, xb - eps), xb + eps).clamp(0, 1)
            out[i : i + _CHUNK] = xp.detach().cpu()
            if progress is not None:
                done = min(n, i + _CHUNK)
                progress(
                    ProgressEvent(
                        "preliminary", done, n, f"preliminary protection: {done}/{n} images"
                    )
                )
    return out


class ImageNetPhi(nn.Module):
    """phi from ImageNet weights: MobileNetV2's second ReLU(6) feature maps.

    The paper's phi is VGG16's second ReLU (ImageNet weights), which no package
    ships for offline use; the ImageNet MobileNetV2 of
    :func:`pixveil.evaluate.features.load_mobilenet_v2` is the one ImageNet
    backbone that does.  The [0, 1] image is upsampled 2x (CIFAR objects are
    small for an ImageNet network), ImageNet-normalised, then run through the
    stem (conv 3x3 stride 2, BN, ReLU6) and the depthwise conv + BN + ReLU6 of
    the first block: 32 channels at the input's resolution.  Frozen.
    """

    def __init__(self, device: Any) -> None:
        super().__init__()
        from pixveil.evaluate.features import _IMAGENET_MEAN, _IMAGENET_STD, load_mobilenet_v2

        net = load_mobilenet_v2(device=str(device))
        self.stem = net.features[0]
        self.relu2 = net.features[1].conv[0]
        self.mean: Tensor = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1).to(device)
        self.std: Tensor = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1).to(device)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out: Tensor = self.relu2(self.stem((x - self.mean) / self.std))
        return out


def feature_map(clf: Classifier, config: Any, device: Any) -> Callable[[Tensor], Tensor]:
    """phi of the perceptual loss: ``config.features`` ``"h_theta"`` or ``"imagenet"``."""
    if config.features == "imagenet":
        return ImageNetPhi(device).eval()
    return clf.features


def perceptual_margin(
    phi: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    config: Any,
    device: Any,
    generator: torch.Generator,
) -> float:
    """The cap on L_p when it is maximised: ``config.perceptual_margin``, or by default
    L_p between the training images and *other* training images (a random pairing).

    Maximising an unbounded feature distance diverges (the features of h_theta
    grow without limit on out-of-distribution inputs, and the classification and
    cycle losses are swamped); once a transformed image is as far from its
    original, in phi's features, as an unrelated image is, it gets no further push.
    """
    if config.perceptual_margin is not None:
        return float(config.perceptual_margin)
    perm = torch.randperm(x.shape[0], generator=generator)
    total = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            a = phi(x[i : i + _CHUNK].to(device))
            b = phi(x[perm[i : i + _CHUNK]].to(device))
            total += float(F.mse_loss(a, b, reduction="none").mean(dim=(1, 2, 3)).sum())
    # two terms in L_p (eq. 6)
    return 2 * total / x.shape[0]


def train_cyclegan(
    clf: Classifier,
    x: Tensor,
    prelim: Tensor,
    y: Tensor,
    *,
    config: Any,
    device: Any,
    previous: dict[str, Any] | None,
    checkpoint: Callable[[int, dict[str, Any], dict[str, float]], None],
    progress: ProgressCallback | None,
    on_margin: Callable[[float], None] = lambda m: None,
) -> Generator:
    """Train the CycleGAN with the paper's losses; returns G_AB (see the module notes of ppgan)."""
    c = config
    with seeded(c.seed + 2) as generator:
        g_ab, g_ba = Generator(width=c.gen_width), Generator(width=c.gen_width)
        f_a, f_b = Discriminator(width=c.disc_width), Discriminator(width=c.disc_width)
        for m in (g_ab, g_ba, f_a, f_b):
            m.to(device)
        opt_g = torch.optim.Adam(
            itertools.chain(g_ab.parameters(), g_ba.parameters()),
            lr=c.learning_rate,
            betas=(0.5, 0.999),
        )
        opt_d = torch.optim.Adam(
            itertools.chain(f_a.parameters(), f_b.parameters()),
            lr=c.learning_rate,
            betas=(0.5, 0.999),
        )
        phi = feature_map(clf, c, device)
        margin = perceptual_margin(phi, x, config=c, device=device, generator=generator)
        on_margin(margin)
        start_epoch = 0
        if previous is not None:
            for name, m in (("g_ab", g_ab), ("g_ba", g_ba), ("f_a", f_a), ("f_b", f_b)):
                m.load_state_dict(previous[name])
            opt_g.load_state_dict(previous["opt_g"])
            opt_d.load_state_dict(previous["opt_d"])
            start_epoch = int(previous["epoch"])
            generator.set_state(previous["generator"])
        n = x.shape[0]
        for epoch in range(start_epoch, c.epochs):
            order = torch.randperm(n, generator=generator)
            sums = {"adv": 0.0, "perceptual": 0.0, "cls": 0.0, "rec": 0.0, "disc": 0.0}
            for first in range(0, n, c.batch_size):
                idx = order[first : first + c.batch_size]
                xa, xb, yb = x[idx].to(device), prelim[idx].to(device), y[idx].to(device)
                # generators
                fake_b, fake_a = g_ab(xa), g_ba(xb)
                l_ad = _lsgan(f_a(fake_a), True) + _lsgan(f_b(fake_b), True)
                phi_x = phi(xa)
                l_p = F.mse_loss(phi(fake_b), phi_x) + F.mse_loss(phi(fake_a), phi_x)
                l_c = F.cross_entropy(clf(fake_b), yb) + F.cross_entropy(clf(fake_a), yb)
                l_r = F.mse_loss(g_ba(fake_b), xa) + F.mse_loss(g_ab(fake_a), xb)
                # gamma1 < 0 maximises L_p; capped at the margin (see perceptual_margin)
                l_p_used = torch.clamp(l_p, max=margin) if c.gamma1 < 0 else l_p
                loss_g = c.lam * l_ad + c.gamma1 * l_p_used + c.gamma2 * l_c + c.gamma3 * l_r
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                # discriminators
                l_d = 0.5 * (
                    _lsgan(f_a(xa), True)
                    + _lsgan(f_a(fake_a.detach()), False)
                    + _lsgan(f_b(xb), True)
                    + _lsgan(f_b(fake_b.detach()), False)
                )
                opt_d.zero_grad(set_to_none=True)
                l_d.backward()
                opt_d.step()
                k = idx.shape[0]
                for key, v in (
                    ("adv", l_ad),
                    ("perceptual", l_p),
                    ("cls", l_c),
                    ("rec", l_r),
                    ("disc", l_d),
                ):
                    sums[key] += float(v.detach()) * k
            losses = {key: v / n for key, v in sums.items()}
            checkpoint(
                epoch + 1,
                {
                    "g_ab": g_ab.state_dict(),
                    "g_ba": g_ba.state_dict(),
                    "f_a": f_a.state_dict(),
                    "f_b": f_b.state_dict(),
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "epoch": epoch + 1,
                    "generator": generator.get_state(),
                },
                losses,
            )
            if progress is not None:
                progress(
                    ProgressEvent(
                        "cyclegan",
                        epoch + 1,
                        c.epochs,
                        f"CycleGAN: epoch {epoch + 1}/{c.epochs}, perceptual "
                        f"{losses['perceptual']:.3f}, cls {losses['cls']:.3f}, "
                        f"rec {losses['rec']:.4f}, adv {losses['adv']:.3f}",
                        metrics=losses,
                    )
                )
    return g_ab


def export_onnx(g_ab: Generator, size: int, path: Path) -> None:
    """Export G_AB to ONNX (opset 17; batch, height and width dynamic), atomically."""
    example = torch.rand(1, 3, size, size)
    with tempfile.TemporaryDirectory(prefix="pixveil-ppgan-", dir=path.parent) as folder:
        tmp = Path(folder) / "graph.onnx"
        with warnings.catch_warnings():
            # the TorchScript exporter (the one that handles this graph) is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                g_ab,
                (example,),
                str(tmp),
                input_names=["image"],
                output_names=["protected"],
                dynamic_axes={
                    "image": {0: "N", 2: "H", 3: "W"},
                    "protected": {0: "N", 2: "H", 3: "W"},
                },
                opset_version=17,
                dynamo=False,
            )
        tmp.replace(path)
