"""Train a classifier from scratch on (protected) images and measure its test accuracy.

The classification half of the privacy-preserving training setting of
Sirichotedumrong & Kiya (a GAN-based image transformation scheme for
privacy-preserving DNNs, Table I): the model owner trains on protected training
images and classifies protected test images made with the same key; the score
is the test accuracy, to compare with the same network trained on plain images.

* **Network**: :class:`pixveil.dataset._nets.ResNet`, a CIFAR-style ResNet
  (``blocks`` basic blocks per stage, channels ``width``-``2w``-``4w``); the CPU
  default ``width=16, blocks=1`` is a ResNet-8.  The paper's ResNet-18
  (``stages=4, blocks=2, width=64``) and 200 epochs are far beyond a CPU: run
  them on a GPU (``device="cuda"``).
* **Block scrambling**: with ``adaptation_block=M`` Tanaka's adaptation network
  (space-to-depth by M, 1x1 convolutions, depth-to-space) is put in front of
  the ResNet and trained with it.
* **Training**: cross-entropy, AdamW with warm-up and cosine decay (the loop
  of :func:`pixveil.evaluate.attacks._nets.fit`); inputs standardised per
  channel with the training set's mean and deviation.  No augmentation: random
  crops and mirrors do not commute with position-keyed schemes (a mirrored
  protected image is not the protection of the mirrored image), and the plain
  baseline is trained the same way so the comparison is fair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixveil.errors import InputError
from pixveil.evaluate.attacks._common import (
    check_batch,
    check_positive_int,
    check_training_options,
    import_torch,
    to_tensor,
)
from pixveil.progress import ProgressCallback, check_progress

__all__ = ["ClassifierResult", "train_classifier"]

_WEIGHT_DECAY = 5e-4
_EVAL_CHUNK = 256


@dataclass(frozen=True)
class ClassifierResult:
    """Outcome of :func:`train_classifier`.

    Attributes
    ----------
    accuracy : float
        Share of test images classified correctly, in [0, 1].
    train_accuracy : float
        The same on the training images (after training; no augmentation).
    n_train, n_test, epochs : int
    train_seconds : float
        Wall-clock time of the training.
    """

    accuracy: float
    train_accuracy: float
    n_train: int
    n_test: int
    epochs: int
    train_seconds: float


def _labels(name: str, labels: object, n: int, n_classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must be {n} integer labels, got shape {arr.shape} {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise InputError(f"{name} must lie in [0, {n_classes - 1}]")
    return arr.astype(np.int64)


def train_classifier(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    n_classes: int,
    adaptation_block: int | None = None,
    epochs: int = 5,
    width: int = 16,
    blocks: int = 1,
    stages: int = 3,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressCallback | None = None,
) -> ClassifierResult:
    """Train a ResNet on ``train_images`` and return its accuracy on ``test_images``.

    Parameters
    ----------
    train_images, test_images : ndarray of shape (N, S, S, 3), uint8
        Same-size square images (protected with the same scheme and key, or
        plain), side a multiple of 4 in [16, 256].
    train_labels, test_labels : ndarray of int
        Class indices in ``[0, n_classes)``.
    n_classes : int
    adaptation_block : int, optional
        Block size M of Tanaka's adaptation network put in front of the ResNet
        (for ``block-scramble``); None for none.
    epochs, width, blocks, batch_size, learning_rate : training options
        ``blocks`` basic blocks per stage (1: ResNet-8, 3: ResNet-20).
    stages : int
        Stages of the ResNet, 1..5 (``stages=4, blocks=2, width=64``: ResNet-18).
    seed : int
        Fixes initialisation and batch order (caller's torch random state kept).
    device : str
        ``"cpu"`` or ``"cuda"``.
    progress : callable taking a ProgressEvent, optional
        Called once per epoch, stage ``"classifier"``.

    Raises
    ------
    InputError
        For malformed arrays or labels.
    ValueError
        For out-of-range options.
    MissingDependencyError
        If torch is missing (``pip install 'pixveil[eval]'``).
    """
    train_images = check_batch("train_images", train_images)
    test_images = check_batch("test_images", test_images)
    if (
        train_images.shape[1:] != test_images.shape[1:]
        or train_images.shape[1] != train_images.shape[2]
    ):
        raise InputError(
            f"train and test images must be square and of one size, got "
            f"{train_images.shape[1:]} and {test_images.shape[1:]}"
        )
    n_classes = check_positive_int("n_classes", n_classes, lo=2)
    y_train = _labels("train_labels", train_labels, train_images.shape[0], n_classes)
    y_test = _labels("test_labels", test_labels, test_images.shape[0], n_classes)
    options = check_training_options(
        epochs=epochs,
        image_size=train_images.shape[1],
        multiple=4,
        batch_size=batch_size,
        width=width,
        max_width=512,
        seed=seed,
        learning_rate=learning_rate,
    )
    blocks = check_positive_int("blocks", blocks, hi=16)
    stages = check_positive_int("stages", stages, hi=5)
    if adaptation_block is not None:
        adaptation_block = check_positive_int("adaptation_block", adaptation_block, hi=64)
        if train_images.shape[1] % adaptation_block:
            raise ValueError(
                f"adaptation_block {adaptation_block} does not divide the image side "
                f"{train_images.shape[1]}"
            )
    progress = check_progress(progress)

    torch = import_torch()
    from pixveil.dataset import _nets as nets
    from pixveil.evaluate.attacks import _nets

    dev = torch.device(device)
    x_train = to_tensor(torch, train_images).to(dev)
    x_test = to_tensor(torch, test_images).to(dev)
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    y = torch.from_numpy(y_train).to(dev)

    with _nets.seeded(options.seed) as generator:
        layers: list[Any] = [
            nets.ResNet(n_classes, width=options.width, blocks=blocks, stages=stages)
        ]
        if adaptation_block is not None:
            layers.insert(0, nets.AdaptationNet(adaptation_block))
        model = torch.nn.Sequential(*layers).to(dev)
        loss_fn = torch.nn.CrossEntropyLoss()

        def batch_loss(idx: Any) -> tuple[Any, dict[str, float]]:
            idx = idx.to(dev)
            logits = model((x_train[idx] - mean) / std)
            correct = float((logits.argmax(dim=1) == y[idx]).sum())
            return loss_fn(logits, y[idx]), {"accuracy": correct}

        train_seconds = _nets.fit(
            model,
            batch_loss,
            x_train.shape[0],
            options,
            weight_decay=_WEIGHT_DECAY,
            warmup_epochs=1,
            generator=generator,
            stage="classifier",
            title="classifier",
            describe=lambda m: f"loss {m['loss']:.3f}, training accuracy {m['accuracy']:.1%}",
            progress=progress,
        )
        train_acc = _accuracy(torch, model, x_train, y, mean, std)
        acc = _accuracy(torch, model, x_test, torch.from_numpy(y_test).to(dev), mean, std)
    return ClassifierResult(
        accuracy=acc,
        train_accuracy=train_acc,
        n_train=int(train_images.shape[0]),
        n_test=int(test_images.shape[0]),
        epochs=options.epochs,
        train_seconds=train_seconds,
    )


def _accuracy(torch: Any, model: Any, x: Any, y: Any, mean: Any, std: Any) -> float:
    model.eval()
    hits = 0
    with torch.no_grad():
        for first in range(0, x.shape[0], _EVAL_CHUNK):
            logits = model((x[first : first + _EVAL_CHUNK] - mean) / std)
            hits += int((logits.argmax(dim=1) == y[first : first + _EVAL_CHUNK]).sum())
    return hits / max(1, x.shape[0])
