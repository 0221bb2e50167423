"""The attackers' networks and differentiable helpers (imports torch: load lazily)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixveil.evaluate.attacks._common import TrainingOptions
from pixveil.progress import ProgressCallback, ProgressEvent

__all__ = [
    "BlockAdaptation",
    "PatchDiscriminator",
    "PixelAffine",
    "ReidNet",
    "UNet",
    "augment",
    "channels_last",
    "cosine_lr",
    "fit",
    "seeded",
    "ssim_loss",
]

_M = TypeVar("_M", bound=nn.Module)


def channels_last(module: _M) -> _M:
    """Move ``module``'s parameters to the channels-last layout (faster convolutions on CPU)."""
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class ReidNet(nn.Module):
    """A small VGG-like classifier: ``blocks`` x (conv3x3-BN-ReLU, max-pool), then a linear head.

    Channels double at each block from ``width``; a global average pool and
    dropout precede the linear layer, so any input side divisible by
    ``2**blocks`` works.
    """

    def __init__(self, n_classes: int, *, width: int = 24, blocks: int = 4, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(blocks):
            c_out = width * 2**i
            layers += [*_conv_bn_relu(c_in, c_out), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, n_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(*_conv_bn_relu(c_in, c_out), *_conv_bn_relu(c_out, c_out))


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015) with a residual output.

    ``levels`` max-pool steps down and bilinear upsampling steps back up, with
    skip connections; channels double per level from ``width``.  The output is
    ``input + correction``; the last 1x1 convolution starts at zero, so the
    untrained network is the identity map and training only has to learn what
    the protection changed.
    """

    def __init__(
        self,
        *,
        width: int = 12,
        levels: int = 3,
        block_size: int | None = None,
        pixel_affine: int | None = None,
    ):
        super().__init__()
        #: a learnt :class:`BlockAdaptation` (``block_size``) or :class:`PixelAffine`
        #: (``pixel_affine``, the image side) first; the residual output is then
        #: relative to its output
        self.front: nn.Module = nn.Identity()
        if block_size is not None:
            self.front = BlockAdaptation(block_size)
        elif pixel_affine is not None:
            self.front = PixelAffine(pixel_affine)
        widths = [width * 2**i for i in range(levels + 1)]
        self.inc = _double_conv(3, widths[0])
        self.down = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(levels))
        # Decoder: one conv per level (after the concatenation) keeps it cheap on CPU.
        self.up = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(widths[i + 1] + widths[i], widths[i]))
            for i in reversed(range(levels))
        )
        self.out = nn.Conv2d(widths[0], 3, kernel_size=1)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.front(x)
        skips = [self.inc(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for block in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return x + self.out(y)


class BlockAdaptation(nn.Module):
    """Tanaka's block-wise adaptation network (in front of a classifier or a U-Net).

    Space-to-depth by the block size M (each M x M x 3 block becomes one
    3*M*M-vector, the unit the scramble permutes), two 1x1 convolutions with
    batch norm and ReLU acting on those vectors (so the same learnt unscrambling
    applies to every block, as the key does), then depth-to-space back to an
    image of the input's size.
    """

    def __init__(self, block_size: int, *, expansion: int = 1) -> None:
        super().__init__()
        c = 3 * block_size * block_size
        hidden = c * expansion
        self.net = nn.Sequential(
            nn.PixelUnshuffle(block_size),
            nn.Conv2d(c, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.PixelShuffle(block_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PixelAffine(nn.Module):
    """A learnt affine map of the three channels at every pixel position, its own per pixel.

    ``y[:, :, i, j] = W[i, j] @ x[:, :, i, j] + b[i, j]``, starting at the
    identity.  It can represent any per-pixel, position-dependent colour
    transform of a fixed image size, e.g. a key's negative-positive flips and
    channel orders when one key protects every image.  The parameters are
    stored divided by ``_SCALE``: with Adam that multiplies their step size, so
    that each position, seen once per image, can move from the identity to a
    flip within a few hundred steps.
    """

    _SCALE = 10.0

    def __init__(self, size: int) -> None:
        super().__init__()
        eye = torch.eye(3).reshape(3, 3, 1, 1).expand(3, 3, size, size)
        self.weight = nn.Parameter(eye.clone() / self._SCALE)
        self.bias = nn.Parameter(torch.zeros(3, size, size))

    def forward(self, x: Tensor) -> Tensor:
        y = torch.einsum("bkhw,ckhw->bchw", x, self.weight) + self.bias
        return y * self._SCALE


class PatchDiscriminator(nn.Module):
    """A PatchGAN as in CycleGAN, scaled to 32x32 inputs (three 4x4 convolutions, then one).

    Input: (B, 3, S, S) images in [0, 1]; output: one real/fake score per patch
    (B, 1, S/4 - 2, S/4 - 2).  The GAN transform's discriminators and the
    unpaired reconstruction attack's use it.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            nn.InstanceNorm2d(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=1, padding=1),
            nn.InstanceNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 4, stride=1, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(2 * x - 1)
        return out


def lsgan_loss(pred: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss of a :class:`PatchDiscriminator`'s scores against 1 (real) or 0."""
    return F.mse_loss(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))


def augment(x: Tensor, generator: torch.Generator, *, pad: int, jitter: float) -> Tensor:
    """Random crop (reflect padding ``pad``), horizontal flip and colour jitter.

    Parameters
    ----------
    x : Tensor of shape (B, 3, S, S), float in [0, 1]
    generator : torch.Generator
        Source of all the randomness (so a seed fixes the augmentation).
    pad : int
        Maximal shift in pixels of the random crop.
    jitter : float
        Relative range of the brightness and contrast jitter; a third of it is
        applied per channel (colour jitter).
    """
    b, _, s, _ = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
        x = torch.stack(
            [
                padded[i, :, int(oy) : int(oy) + s, int(ox) : int(ox) + s]
                for i, (oy, ox) in enumerate(offsets)
            ]
        )
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if jitter > 0:
        u = torch.rand(b, 6, generator=generator) * 2 - 1
        brightness = 1 + jitter * u[:, 0, None, None, None]
        contrast = 1 + jitter * u[:, 1, None, None, None]
        colour = 1 + (jitter / 3) * u[:, 2:5, None, None]
        shift = (jitter / 2) * u[:, 5, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * brightness * colour + shift
        x = x.clamp(0.0, 1.0)
    return x


def _gaussian_window(size: int, sigma: float) -> Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_loss(x: Tensor, y: Tensor) -> Tensor:
    """``1 - SSIM`` (Gaussian 11x11 window, sigma 1.5, data range 1), averaged over pixels.

    Parameters
    ----------
    x, y : Tensor of shape (B, 3, S, S), float in about [0, 1], ``S >= 11``
    """
    size = min(11, x.shape[-1], x.shape[-2])
    window = _gaussian_window(size, 1.5 * size / 11).to(x)
    c1, c2 = 0.01**2, 0.03**2

    def filt(t: Tensor) -> Tensor:
        return F.conv2d(t, window, groups=3)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return 1 - ssim.mean()


def cosine_lr(step: int, total: int, *, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch for the block and yield a generator seeded alike; restore the global state after.

    The caller's global (CPU) random state is the same after the block as before it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


#: ``batch indices -> (loss, figures)``: the loss of one batch, and figures summed
#: over its examples (``{"correct": 12.0}``) that :func:`fit` averages per epoch.
BatchLoss = Callable[[Tensor], tuple[Tensor, dict[str, float]]]


def fit(
    model: nn.Module,
    batch_loss: BatchLoss,
    n: int,
    options: TrainingOptions,
    *,
    weight_decay: float,
    warmup_epochs: int,
    generator: torch.Generator,
    stage: str,
    title: str,
    describe: Callable[[dict[str, float]], str],
    progress: ProgressCallback | None,
) -> float:
    """Train ``model`` with AdamW and a warm-up + cosine schedule (both attacks' loop).

    Returns the training time in seconds.  Each epoch visits the ``n`` training
    examples once in an order drawn from ``generator``, ``options.batch_size`` at a
    time, at peak learning rate ``options.learning_rate``; ``batch_loss`` computes a
    batch's loss (and figures to average).  The warm-up lasts ``warmup_epochs`` epochs, at
    most a tenth of the steps.  After each epoch ``progress`` (if any) gets a
    :class:`~pixveil.progress.ProgressEvent` of ``stage``: ``done`` epochs of
    ``epochs``, ``metrics`` the mean loss (``"loss"``) and figures, and the message
    ``"<title>: epoch E/N, <describe(metrics)>"``.
    """
    start = time.perf_counter()
    epochs, batch_size = options.epochs, options.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=options.learning_rate, weight_decay=weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: cosine_lr(
            step, total, warmup=min(total // 10, warmup_epochs * steps_per_epoch)
        ),
    )
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        sums: dict[str, float] = {"loss": 0.0}
        for first in range(0, n, batch_size):
            idx = order[first : first + batch_size]
            loss, figures = batch_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sums["loss"] += float(loss.detach()) * idx.shape[0]
            for key, value in figures.items():
                sums[key] = sums.get(key, 0.0) + value
        if progress is not None:
            metrics = {key: value / n for key, value in sums.items()}
            progress(
                ProgressEvent(
                    stage,
                    epoch + 1,
                    epochs,
                    f"{title}: epoch {epoch + 1}/{epochs}, {describe(metrics)}",
                    metrics=metrics,
                )
            )
    return time.perf_counter() - start
