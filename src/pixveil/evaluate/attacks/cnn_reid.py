"""Re-identification by a CNN trained on protected faces (McPherson et al. 2016).

McPherson, Shokri and Shmatikov ("Defeating Image Obfuscation with Deep
Learning", 2016) showed that an attacker does not need to *undo* an
obfuscation to see through it: a plain convolutional classifier trained on
obfuscated photos of known people recognises new obfuscated photos of the same
people.  They re-identified 57-96 % of pixelated or blurred faces (AT&T,
FaceScrub) and most faces behind P3 encryption.

The attack here follows that protocol with a small network sized for a CPU:

* **Attacker's knowledge**: labelled *protected* photos of every identity
  (``train_images``, ``train_labels``), protected by the same method with the
  same parameters as the target photos, e.g. photos the attacker took and
  protected himself, or earlier published ones with known names.
* **Targets**: other protected photos of the same identities (``test_images``);
  the attack succeeds when the classifier names the right identity (top-1) or
  has it among its five best guesses (top-5).  Compare with chance
  (``1 / n_classes`` and ``min(5, n_classes) / n_classes``).
* **Network**: four blocks of conv3x3-BN-ReLU and 2x2 max-pooling (channels
  24-48-96-192 by default), global average pooling, dropout 0.5 and a linear
  layer; cross-entropy with label smoothing 0.1, AdamW with a warm-up and
  cosine learning-rate schedule; augmentation by random crops (shifts of 1/16
  of the side), horizontal flips and small brightness, contrast and colour
  jitter; test-time averaging with the mirrored image.

A protection that defeats this attacker is not proven safe (stronger networks,
more photos per person or face-specific pre-training do better); one it does
not defeat is certainly not safe against re-identification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixveil.errors import InputError
from pixveil.evaluate.attacks._common import (
    check_batch,
    check_training_options,
    import_torch,
    resize_batch,
    to_tensor,
)
from pixveil.progress import ProgressCallback, check_progress

__all__ = ["DEFAULT_REID_EPOCHS", "ReidAttackResult", "cnn_reid_attack"]

#: Default number of passes over the training images.
DEFAULT_REID_EPOCHS = 30
_LABEL_SMOOTHING = 0.1
_WEIGHT_DECAY = 5e-4
_JITTER = 0.2
_EVAL_CHUNK = 256


@dataclass(frozen=True)
class ReidAttackResult:
    """Outcome of :func:`cnn_reid_attack`.

    Attributes
    ----------
    top1, top5 : float
        Share of test images whose identity is the classifier's best guess, or
        among its five best guesses, in ``[0, 1]``.
    chance_top1, chance_top5 : float
        The same rates for a random guess: ``1 / n_classes`` and
        ``min(5, n_classes) / n_classes``.
    n_classes, n_train, n_test : int
        Identities, training images and test images.
    epochs : int
        Passes over the training images.
    train_seconds : float
        Wall-clock time of the training.
    """

    top1: float
    top5: float
    chance_top1: float
    chance_top5: float
    n_classes: int
    n_train: int
    n_test: int
    epochs: int
    train_seconds: float


def _check_labels(name: str, labels: object, n: int) -> np.ndarray:
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    if not isinstance(labels, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(labels).__name__}")
    if labels.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {labels.shape}")
    if labels.shape[0] != n:
        raise InputError(f"{name} has {labels.shape[0]} labels for {n} images")
    return labels


def _encode_labels(train_labels: np.ndarray, test_labels: np.ndarray) -> tuple[np.ndarray, ...]:
    try:
        classes, train_idx = np.unique(train_labels, return_inverse=True)
    except TypeError as exc:
        raise InputError(f"train_labels cannot be sorted: {exc}") from exc
    if classes.shape[0] < 2:
        raise InputError(f"train_labels must name at least 2 identities, got {classes.shape[0]}")
    try:
        pos = np.searchsorted(classes, test_labels)
    except TypeError as exc:
        raise InputError(f"test_labels are not comparable with train_labels: {exc}") from exc
    pos = np.clip(pos, 0, classes.shape[0] - 1)
    unknown = classes[pos] != test_labels
    if np.any(unknown):
        missing = np.unique(test_labels[unknown])[:5].tolist()
        raise InputError(
            f"test_labels holds identities absent from train_labels (e.g. {missing}); "
            "the classifier can only name identities it was trained on"
        )
    return classes, train_idx.astype(np.int64), pos.astype(np.int64)


def cnn_reid_attack(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    epochs: int = DEFAULT_REID_EPOCHS,
    image_size: int = 64,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    width: int = 24,
    progress: ProgressCallback | None = None,
) -> ReidAttackResult:
    """Train a CNN on labelled protected faces and measure how often it names new ones.

    Parameters
    ----------
    train_images : ndarray of shape (N, H, W, 3), uint8
        The attacker's labelled examples: protected face crops (RGB; grey
        images repeated on the three channels).  Resized internally to
        ``image_size`` x ``image_size`` (aspect ratio not kept).
    train_labels : ndarray of shape (N,), or a list
        Identity of each training image (integers or strings); at least two
        identities.
    test_images : ndarray of shape (M, H', W', 3), uint8
        Protected face crops to re-identify.
    test_labels : ndarray of shape (M,), or a list
        Their true identities, each present in ``train_labels``.
    epochs : int
        Passes over the training images, ``>= 1``.
    image_size : int
        Side of the network's input in pixels, a multiple of 16 in ``[16, 256]``.
    seed : int
        Fixes initialisation, batch order, augmentation and dropout: two calls
        with the same inputs, seed and ``torch.get_num_threads()`` return the
        same accuracies.  The caller's global torch random state is left as it was.
    batch_size : int
        Images per optimisation step, ``>= 1``.
    learning_rate : float
        Peak AdamW learning rate, in ``(0, 1]``.
    width : int
        Channels of the first block (doubled at each of the four blocks), ``>= 4``.
    progress : callable taking a ProgressEvent, optional
        Called once per epoch (:mod:`pixveil.progress`): stage ``"cnn"``,
        ``done`` epochs of ``epochs``, ``metrics`` the mean ``loss`` and the
        training ``accuracy``, and a one-line message.

    Returns
    -------
    ReidAttackResult

    Raises
    ------
    InputError
        For arrays of the wrong shape or dtype, label counts that do not match
        the images, fewer than two identities, or test identities absent from
        the training labels.
    ValueError
        For an out-of-range option.
    MissingDependencyError
        If torch is not installed (``pip install 'pixveil[eval]'``).
    """
    train_images = check_batch("train_images", train_images)
    test_images = check_batch("test_images", test_images)
    train_labels = _check_labels("train_labels", train_labels, train_images.shape[0])
    test_labels = _check_labels("test_labels", test_labels, test_images.shape[0])
    options = check_training_options(
        epochs=epochs,
        image_size=image_size,
        multiple=16,
        batch_size=batch_size,
        width=width,
        max_width=512,
        seed=seed,
        learning_rate=learning_rate,
    )
    progress = check_progress(progress)
    classes, y_train, y_test = _encode_labels(train_labels, test_labels)

    torch = import_torch()
    from pixveil.evaluate.attacks import _nets

    size = options.image_size
    x_train = to_tensor(torch, resize_batch(train_images, size))
    x_test = to_tensor(torch, resize_batch(test_images, size))
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    n_classes = int(classes.shape[0])
    y = torch.from_numpy(y_train)
    pad = max(1, size // 16)

    with _nets.seeded(options.seed) as generator:
        model = _nets.channels_last(_nets.ReidNet(n_classes, width=options.width))
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=_LABEL_SMOOTHING)

        def batch_loss(idx: Any) -> tuple[Any, dict[str, float]]:
            xb = _nets.augment(x_train[idx], generator, pad=pad, jitter=_JITTER)
            logits = model(((xb - mean) / std).contiguous(memory_format=torch.channels_last))
            correct = float((logits.argmax(dim=1) == y[idx]).sum())
            return loss_fn(logits, y[idx]), {"accuracy": correct}

        train_seconds = _nets.fit(
            model,
            batch_loss,
            x_train.shape[0],
            options,
            weight_decay=_WEIGHT_DECAY,
            warmup_epochs=3,
            generator=generator,
            stage="cnn",
            title="cnn re-identification",
            describe=lambda m: f"loss {m['loss']:.3f}, training accuracy {m['accuracy']:.1%}",
            progress=progress,
        )
        top1, top5 = _evaluate(torch, model, x_test, torch.from_numpy(y_test), mean, std)

    k5 = min(5, n_classes)
    return ReidAttackResult(
        top1=top1,
        top5=top5,
        chance_top1=1.0 / n_classes,
        chance_top5=k5 / n_classes,
        n_classes=n_classes,
        n_train=int(train_images.shape[0]),
        n_test=int(test_images.shape[0]),
        epochs=options.epochs,
        train_seconds=train_seconds,
    )


def _evaluate(torch: Any, model: Any, x: Any, y: Any, mean: Any, std: Any) -> tuple[float, float]:
    model.eval()
    k = min(5, model.head[-1].out_features)
    hits1 = hits5 = 0
    with torch.no_grad():
        for first in range(0, x.shape[0], _EVAL_CHUNK):
            xb = ((x[first : first + _EVAL_CHUNK] - mean) / std).contiguous(
                memory_format=torch.channels_last
            )
            logits = model(xb).softmax(dim=1) + model(xb.flip(-1)).softmax(dim=1)
            yb = y[first : first + _EVAL_CHUNK]
            best = logits.topk(k, dim=1).indices
            hits1 += int((best[:, 0] == yb).sum())
            hits5 += int((best == yb[:, None]).any(dim=1).sum())
    n = x.shape[0]
    return hits1 / n, hits5 / n
