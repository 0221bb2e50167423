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
from pixveil.progress import ProgressCallback, check_progress
from pixveil.validate import check_number

__all__ = ["DEFAULT_RECONSTRUCTION_EPOCHS", "ReconstructionResult", "reconstruction_attack"]

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
    if block_size is not None:
        block_size = check_positive_int("block_size", block_size, hi=64)
        if options.image_size % block_size:
            raise ValueError(f"block_size {block_size} does not divide image_size")
        if pixel_affine:
            raise ValueError("give block_size or pixel_affine, not both")

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

    from pixveil.evaluate.metrics import psnr, ssim

    ssim_p = [ssim(o, p) for o, p in zip(originals_small, protected_small, strict=True)]
    ssim_r = [ssim(o, r) for o, r in zip(originals_small, reconstructions, strict=True)]
    psnr_p = [psnr(o, p) for o, p in zip(originals_small, protected_small, strict=True)]
    psnr_r = [psnr(o, r) for o, r in zip(originals_small, reconstructions, strict=True)]
    return ReconstructionResult(
        ssim_protected=float(np.mean(ssim_p)),
        ssim_reconstructed=float(np.mean(ssim_r)),
        psnr_protected=_mean_psnr(psnr_p),
        psnr_reconstructed=_mean_psnr(psnr_r),
        reconstructions=reconstructions,
        epochs=options.epochs,
        train_seconds=train_seconds,
    )


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
