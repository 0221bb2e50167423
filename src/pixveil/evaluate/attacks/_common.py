"""Validation, resizing and seeding shared by the attacks (no torch at import time)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pixveil.errors import InputError, MissingDependencyError
from pixveil.validate import check_number

__all__ = [
    "MAX_IMAGE_SIZE",
    "TrainingOptions",
    "check_batch",
    "check_image_size",
    "check_positive_int",
    "check_training_options",
    "import_torch",
    "resize_batch",
    "to_tensor",
]

#: Largest side the attacks accept for their internal resolution.
MAX_IMAGE_SIZE = 256


def import_torch() -> Any:
    """Import torch or raise :class:`MissingDependencyError` naming the ``eval`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "eval") from None
    return torch


def check_positive_int(name: str, value: object, *, lo: int = 1, hi: int = 1 << 30) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def check_image_size(value: object, *, multiple: int) -> int:
    """``image_size`` as an int in ``[16, MAX_IMAGE_SIZE]`` and a multiple of ``multiple``."""
    size = check_positive_int("image_size", value, lo=16, hi=MAX_IMAGE_SIZE)
    if size % multiple:
        raise ValueError(f"image_size must be a multiple of {multiple}, got {size}")
    return size


@dataclass(frozen=True)
class TrainingOptions:
    """The training options both attacks take, checked (see :func:`check_training_options`)."""

    epochs: int
    image_size: int
    batch_size: int
    width: int
    seed: int
    learning_rate: float


def check_training_options(
    *,
    epochs: object,
    image_size: object,
    multiple: int,
    batch_size: object,
    width: object,
    max_width: int,
    seed: object,
    learning_rate: object,
) -> TrainingOptions:
    """Check the options of an attack's training; ``ValueError`` naming the first bad one.

    ``epochs`` and ``batch_size`` are integers ``>= 1``; ``image_size`` see
    :func:`check_image_size`; ``width`` an integer in ``[4, max_width]``; ``seed``
    an integer in ``[0, 2**63 - 1]``; ``learning_rate`` a number in ``(0, 1]``.
    """
    return TrainingOptions(
        epochs=check_positive_int("epochs", epochs),
        image_size=check_image_size(image_size, multiple=multiple),
        batch_size=check_positive_int("batch_size", batch_size),
        width=check_positive_int("width", width, lo=4, hi=max_width),
        seed=check_positive_int("seed", seed, lo=0, hi=2**63 - 1),
        learning_rate=check_number(
            learning_rate, name="learning_rate", low=0, high=1, low_open=True, error=ValueError
        ),
    )


def check_batch(name: str, images: object) -> np.ndarray:
    """Check an ``(N, H, W, 3)`` uint8 batch with ``N >= 1`` and sides ``>= 2``."""
    if not isinstance(images, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[3] != 3:
        raise InputError(f"{name} must have shape (N, H, W, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise InputError(f"{name} must have dtype uint8, got {images.dtype}")
    if images.shape[0] == 0:
        raise InputError(f"{name} holds no image: shape {images.shape}")
    if images.shape[1] < 2 or images.shape[2] < 2:
        raise InputError(f"{name} images are too small: shape {images.shape}")
    return images


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Resize every image of an ``(N, H, W, 3)`` uint8 batch to ``(size, size)``.

    Area averaging when shrinking, bicubic when enlarging; the aspect ratio is not
    kept (the caller crops the faces).

    Returns
    -------
    ndarray of shape (N, size, size, 3), uint8
    """
    n, h, w, _ = images.shape
    if (h, w) == (size, size):
        return np.ascontiguousarray(images)
    interp = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_CUBIC
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = cv2.resize(np.ascontiguousarray(images[i]), (size, size), interpolation=interp)
    return out


def to_tensor(torch: Any, images: np.ndarray) -> Any:
    """``(N, S, S, 3)`` uint8 -> float32 tensor ``(N, 3, S, S)`` in ``[0, 1]``."""
    arr = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)
