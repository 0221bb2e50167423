"""Reconstruction attack: a U-Net trained to undo a protection.

An attacker who can produce pairs (original face, protected face), for example
by protecting photos he owns with the same method and parameters, trains a
network to map protected faces back to originals and applies it to protected
faces he has never seen.  This is the "GAN-based attack" setting of
Sirichotedumrong and Kiya ("A GAN-Based Image Transformation Scheme for
Privacy-Preserving Deep Neural Networks", 2020; U-Net generator, results as
the average SSIM between reconstructions and originals, their Table I) in its
supervised form; recovering content from mosaics and blur with learned priors
goes back to Hill et al. (2016) and McPherson et al. (2016).

* **Network**: a small U-Net (three 2x2 max-pooling steps down, bilinear
  upsampling back up with skip connections, channels 12-24-48-96 by default)
  whose output is ``protected + correction``, the correction starting at zero,
  so before training the attack returns its input unchanged.
* **Training**: L1 loss plus ``ssim_weight`` x (1 - SSIM), AdamW with warm-up
  and cosine decay; horizontal flips (applied to both images of a pair;
  ``flip=False`` for position-keyed protections).
* **Score**: on held-out faces, the mean SSIM (and PSNR) of the reconstruction
  against the original, next to the mean SSIM (PSNR) of the protected face
  against the original.  All are computed at ``image_size`` with
  :func:`pixveil.evaluate.metrics.ssim` and :func:`~pixveil.evaluate.metrics.psnr`.
  ``ssim_reconstructed`` clearly above ``ssim_protected`` means the protection
  leaks structure that a learned prior can put back.

A reconstruction close to the *average* face of the training set scores a
moderate SSIM even when the protection removed everything (as a solid mask
does): compare methods with each other, and with ``mask`` as the floor.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixveil.errors import InputError
from pixveil.evaluate.attacks._common import (
    check_batch,
    check_positive_int,
    check_training_options,
    import_torch,
    resize_batch,
    to_tensor,
)
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress
from pixveil.validate import check_number

__all__ = [
    "DEFAULT_RECONSTRUCTION_EPOCHS",
    "ReconstructionResult",
    "reconstruction_attack",
    "unpaired_reconstruction_attack",
]

#: Default number of passes over the training pairs.
DEFAULT_RECONSTRUCTION_EPOCHS = 20
_WEIGHT_DECAY = 1e-4
_EVAL_CHUNK = 128


@dataclass(frozen=True)
class ReconstructionResult:
    """Outcome of :func:`reconstruction_attack`.

    Attributes
    ----------
    ssim_protected, ssim_reconstructed : float
        Mean SSIM over the test faces of the protected face, and of its
        reconstruction, against the original (at most 1; 1 = identical).
    psnr_protected, psnr_reconstructed : float
        Mean PSNR in dB, likewise; ``inf`` when some pair is identical.
    reconstructions : ndarray of shape (M, image_size, image_size, 3), uint8
        The reconstructed test faces, RGB.
    epochs : int
        Passes over the training pairs.
    train_seconds : float
        Wall-clock time of the training.
    """

    ssim_protected: float
    ssim_reconstructed: float
    psnr_protected: float
    psnr_reconstructed: float
    reconstructions: np.ndarray
    epochs: int
    train_seconds: float


def _check_pair(name_a: str, a: object, name_b: str, b: object) -> tuple[np.ndarray, np.ndarray]:
    a = check_batch(name_a, a)
    b = check_batch(name_b, b)
    if a.shape != b.shape:
        raise InputError(
            f"{name_a} and {name_b} must have the same shape (one protected image per "
            f"original), got {a.shape} and {b.shape}"
        )
    return a, b


def reconstruction_attack(
    train_original: np.ndarray,
    train_protected: np.ndarray,
    test_original: np.ndarray,
    test_protected: np.ndarray,
    *,
    epochs: int = DEFAULT_RECONSTRUCTION_EPOCHS,
    image_size: int = 64,
    seed: int = 0,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    ssim_weight: float = 0.5,
    width: int = 12,
    flip: bool = True,
    block_size: int | None = None,
    pixel_affine: bool = False,
    progress: ProgressCallback | None = None,
) -> ReconstructionResult:
    """Train a U-Net to map protected faces to originals and score it on held-out faces.

    Parameters
    ----------
    train_original, train_protected : ndarray of shape (N, H, W, 3), uint8
        The attacker's training pairs: face crops and the same crops after
        protection (RGB).  Resized internally to ``image_size`` x ``image_size``.
    test_original, test_protected : ndarray of shape (M, H', W', 3), uint8
        Held-out pairs: the attack only sees ``test_protected``;
        ``test_original`` is the ground truth for the scores.
    epochs : int
        Passes over the training pairs, ``>= 1``.
    image_size : int
        Side of the network's input and output, a multiple of 8 in ``[16, 256]``.
    seed : int
        Fixes initialisation, batch order and flips: two calls with the same
        inputs, seed and ``torch.get_num_threads()`` return the same
        reconstructions.  The caller's global torch random state is left as it was.
    batch_size : int
        Pairs per optimisation step, ``>= 1``.
    learning_rate : float
        Peak AdamW learning rate, in ``(0, 1]``.
    ssim_weight : float
        Weight of the ``1 - SSIM`` term added to the L1 loss, in ``[0, 10]``.
    width : int
        Channels of the first U-Net level (doubled at each of the three levels
        down), ``>= 4``.
    flip : bool
        Augment by mirroring both images of a pair.  Right for protections that
        commute with a mirror (blur, pixelation); turn it off for key-based
        schemes whose transform depends on the pixel position (the mirrored
        protected image is then not the protection of the mirrored original).
    block_size : int, optional
        Put a learnt block-wise adaptation network (space-to-depth by this size,
        1x1 convolutions, depth-to-space) in front of the U-Net: an attacker who
        knows a scheme works block by block (block scrambling) lets the network
        undo the same mapping in every block.  Must divide ``image_size``.
    pixel_affine : bool
        Put a learnt per-pixel affine colour map in front of the U-Net (its own
        3x3 matrix and offset at every position): an attacker who knows the
        protection is a fixed position-dependent colour transform (pixel-based
        encryption with one shared key) learns its inverse from the pairs.
        Not with ``block_size``.
    progress : callable taking a ProgressEvent, optional
        Called once per epoch (:mod:`pixveil.progress`): stage
        ``"reconstruction"``, ``done`` epochs of ``epochs``, ``metrics`` the mean
        ``loss``, and a one-line message.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    InputError
        For arrays of the wrong shape or dtype, or originals and protected
        images whose shapes differ.
    ValueError
        For an out-of-range option.
    MissingDependencyError
        If torch is not installed (``pip install 'pixveil[eval]'``).
    """
    train_original, train_protected = _check_pair(
        "train_original", train_original, "train_protected", train_protected
    )
    test_original, test_protected = _check_pair(
        "test_original", test_original, "test_protected", test_protected
    )
    options = check_training_options(
        epochs=epochs,
        image_size=image_size,
        multiple=8,
        batch_size=batch_size,
        width=width,
        max_width=256,
        seed=seed,
        learning_rate=learning_rate,
    )
    weight = check_number(ssim_weight, name="ssim_weight", low=0, high=10, error=ValueError)
    progress = check_progress(progress)
    block_size = _check_front(block_size, pixel_affine, options.image_size)

    torch = import_torch()
    from pixveil.evaluate.attacks import _nets

    size = options.image_size
    originals_small = resize_batch(test_original, size)
    protected_small = resize_batch(test_protected, size)
    x_train = to_tensor(torch, resize_batch(train_protected, size))
    y_train = to_tensor(torch, resize_batch(train_original, size))
    x_test = to_tensor(torch, protected_small)

    with _nets.seeded(options.seed) as generator:
        model = _nets.channels_last(
            _nets.UNet(
                width=options.width,
                block_size=block_size,
                pixel_affine=options.image_size if pixel_affine else None,
            )
        )

        def batch_loss(idx: Any) -> tuple[Any, dict[str, float]]:
            xb, yb = x_train[idx], y_train[idx]
            if flip:
                mirror = (torch.rand(idx.shape[0], generator=generator) < 0.5)[:, None, None, None]
                xb = torch.where(mirror, xb.flip(-1), xb)
                yb = torch.where(mirror, yb.flip(-1), yb)
            out = model(xb.contiguous(memory_format=torch.channels_last))
            loss = (out - yb).abs().mean()
            if weight > 0:
                loss = loss + weight * _nets.ssim_loss(out, yb)
            return loss, {}

        train_seconds = _nets.fit(
            model,
            batch_loss,
            x_train.shape[0],
            options,
            weight_decay=_WEIGHT_DECAY,
            warmup_epochs=2,
            generator=generator,
            stage="reconstruction",
            title="reconstruction",
            describe=lambda m: f"loss {m['loss']:.4f}",
            progress=progress,
        )
        reconstructions = _predict(torch, model, x_test)

    return _score(originals_small, protected_small, reconstructions, options.epochs, train_seconds)


def _score(
    originals: np.ndarray,
    protected: np.ndarray,
    reconstructions: np.ndarray,
    epochs: int,
    train_seconds: float,
) -> ReconstructionResult:
    from pixveil.evaluate.metrics import psnr, ssim

    ssim_p = [ssim(o, p) for o, p in zip(originals, protected, strict=True)]
    ssim_r = [ssim(o, r) for o, r in zip(originals, reconstructions, strict=True)]
    psnr_p = [psnr(o, p) for o, p in zip(originals, protected, strict=True)]
    psnr_r = [psnr(o, r) for o, r in zip(originals, reconstructions, strict=True)]
    return ReconstructionResult(
        ssim_protected=float(np.mean(ssim_p)),
        ssim_reconstructed=float(np.mean(ssim_r)),
        psnr_protected=_mean_psnr(psnr_p),
        psnr_reconstructed=_mean_psnr(psnr_r),
        reconstructions=reconstructions,
        epochs=epochs,
        train_seconds=train_seconds,
    )


def _check_front(block_size: int | None, pixel_affine: bool, image_size: int) -> int | None:
    if block_size is None:
        return None
    block_size = check_positive_int("block_size", block_size, hi=64)
    if image_size % block_size:
        raise ValueError(f"block_size {block_size} does not divide image_size")
    if pixel_affine:
        raise ValueError("give block_size or pixel_affine, not both")
    return block_size


def unpaired_reconstruction_attack(
    train_protected: np.ndarray,
    train_plain: np.ndarray,
    test_original: np.ndarray,
    test_protected: np.ndarray,
    *,
    epochs: int = DEFAULT_RECONSTRUCTION_EPOCHS,
    image_size: int = 64,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 2e-4,
    width: int = 12,
    disc_width: int = 16,
    block_size: int | None = None,
    pixel_affine: bool = False,
    progress: ProgressCallback | None = None,
) -> ReconstructionResult:
    """The GAN-based attack (GA) of Madono et al. as Sirichotedumrong & Kiya use it: *unpaired*.

    The attacker owns protected images and plain images, but never a protected
    image together with its own original: the reference paper divides the
    attacker's training set T into halves T1 and T2, protects T1 and trains on
    ``Enc(T1)`` and ``T2`` (its §II-B, Fig. 2).  A generator ``G_att`` (the
    U-Net of :func:`reconstruction_attack`, with the same optional
    scheme-specific front: the paper's Fig. 4(a) block-wise network against
    Tanaka's scheme, 4(b) a per-pixel one against pixel-based encryption, a plain
    U-Net against its GAN transform) maps protected images to plain-looking
    ones; a discriminator ``D_att`` (:class:`~pixveil.evaluate.attacks._nets.PatchDiscriminator`,
    a PatchGAN) tells its outputs from the plain images of T2.  The only loss is
    the adversarial one (least-squares GAN): nothing ties an output to its own
    original, so whatever content survives comes from the generator's structure
    (it starts as the identity and works per pixel or per block).  Adam with
    ``betas = (0.5, 0.999)``; the paper trains 100 epochs at learning rate 2e-4
    and batch 64.

    Parameters
    ----------
    train_protected : ndarray of shape (N, H, W, 3), uint8
        The attacker's protected images (``Enc(T1)``).
    train_plain : ndarray of shape (M, H, W, 3), uint8
        The attacker's plain images (``T2``), *other* images than those of
        ``train_protected`` (the function cannot check it; the caller must).
    test_original, test_protected : ndarray of shape (K, H', W', 3), uint8
        Held-out pairs, as in :func:`reconstruction_attack` (only
        ``test_protected`` is attacked; ``test_original`` scores it).
    epochs, image_size, seed, batch_size, learning_rate, width, block_size, pixel_affine, progress
        As in :func:`reconstruction_attack` (``progress`` stage ``"ga"``; an
        epoch is one pass over ``train_protected``; ``image_size`` at least 32
        for the discriminator).
    disc_width : int
        Channels of the discriminator's first convolution, ``>= 4``.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    InputError, ValueError, MissingDependencyError
        As :func:`reconstruction_attack`.
    """
    train_protected = check_batch("train_protected", train_protected)
    train_plain = check_batch("train_plain", train_plain)
    test_original, test_protected = _check_pair(
        "test_original", test_original, "test_protected", test_protected
    )
    options = check_training_options(
        epochs=epochs,
        image_size=image_size,
        multiple=8,
        batch_size=batch_size,
        width=width,
        max_width=256,
        seed=seed,
        learning_rate=learning_rate,
    )
    if options.image_size < 32:
        raise ValueError(f"image_size must be at least 32 for the discriminator, got {image_size}")
    disc_width = check_positive_int("disc_width", disc_width, lo=4, hi=256)
    block_size = _check_front(block_size, pixel_affine, options.image_size)
    progress = check_progress(progress)

    torch = import_torch()
    from pixveil.evaluate.attacks import _nets

    size = options.image_size
    originals_small = resize_batch(test_original, size)
    protected_small = resize_batch(test_protected, size)
    x_enc = to_tensor(torch, resize_batch(train_protected, size))
    x_plain = to_tensor(torch, resize_batch(train_plain, size))
    x_test = to_tensor(torch, protected_small)

    with _nets.seeded(options.seed) as generator:
        g_att = _nets.UNet(
            width=options.width,
            block_size=block_size,
            pixel_affine=size if pixel_affine else None,
        )
        d_att = _nets.PatchDiscriminator(width=disc_width)
        opt_g = torch.optim.Adam(g_att.parameters(), lr=options.learning_rate, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d_att.parameters(), lr=options.learning_rate, betas=(0.5, 0.999))
        n, m = x_enc.shape[0], x_plain.shape[0]
        start = time.perf_counter()
        g_att.train()
        d_att.train()
        for epoch in range(options.epochs):
            order = torch.randperm(n, generator=generator)
            sums = {"g": 0.0, "d": 0.0}
            for first in range(0, n, options.batch_size):
                idx = order[first : first + options.batch_size]
                real = x_plain[torch.randint(0, m, (idx.shape[0],), generator=generator)]
                fake = g_att(x_enc[idx])
                loss_g = _nets.lsgan_loss(d_att(fake), True)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                loss_d = 0.5 * (
                    _nets.lsgan_loss(d_att(real), True)
                    + _nets.lsgan_loss(d_att(fake.detach()), False)
                )
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                sums["g"] += float(loss_g.detach()) * idx.shape[0]
                sums["d"] += float(loss_d.detach()) * idx.shape[0]
            if progress is not None:
                metrics = {"loss": sums["g"] / n, "disc": sums["d"] / n}
                progress(
                    ProgressEvent(
                        "ga",
                        epoch + 1,
                        options.epochs,
                        f"GA (unpaired): epoch {epoch + 1}/{options.epochs}, "
                        f"G {metrics['loss']:.3f}, D {metrics['disc']:.3f}",
                        metrics=metrics,
                    )
                )
        train_seconds = time.perf_counter() - start
        reconstructions = _predict(torch, g_att, x_test)
    return _score(originals_small, protected_small, reconstructions, options.epochs, train_seconds)


def _mean_psnr(values: list[float]) -> float:
    return math.inf if any(math.isinf(v) for v in values) else float(np.mean(values))


def _predict(torch: Any, model: Any, x: Any) -> np.ndarray:
    model.eval()
    outs = []
    with torch.no_grad():
        for first in range(0, x.shape[0], _EVAL_CHUNK):
            xb = x[first : first + _EVAL_CHUNK].contiguous(memory_format=torch.channels_last)
            outs.append(model(xb).clamp(0.0, 1.0))
    out = torch.cat(outs).permute(0, 2, 3, 1).contiguous().numpy()
    return np.rint(out * 255.0).astype(np.uint8)
