"""Attribution under obfuscation: does a GAN-fingerprint classifier still tell sources apart?

GANs leave fingerprints in their images (Yu, Davis and Fritz, "Attributing
Fake Images to GANs", ICCV 2019): a classifier trained on images of several
sources (real photos and generators) attributes new images to their source,
even between two trainings of one architecture that differ only in the seed.
This module measures whether that still works after pixveil's protections are
applied to the whole image, for a classifier trained on clean images and for
one fine-tuned on protected images ("immunised", Yu et al. Sec. 5.3).

Sources (``--sources``)
-----------------------
``real``
    LFW face crops, 64x64 (:func:`pixveil.gan.data.crop_face`), from the
    identities held out of pixveil's GAN training (never seen by the generators).
``pixveil-g64:seedN``
    pixveil's DCGAN (:mod:`pixveil.gan.train`) trained on the other LFW
    identities with seed ``N`` for ``gan_epochs`` epochs (the raw generator: after
    so short a training the weight average still mostly holds the initialisation).
``dcgan-baseline``
    The DCGAN of the ``gan-face-generate`` package (trained on DigiFace1M).
``vae:seedN``
    pixveil's small convolutional VAE (:mod:`pixveil.gan.vae`), a different
    architecture and objective, ``vae_steps`` steps with seed ``N``.

Trained generators are cached in the ``work`` folder (resumable checkpoints);
samples are drawn at run time.

Classifier
----------
A close variant of Yu et al.'s attribution network, cut down to train on a
CPU in minutes: theirs is a PGGAN-discriminator-like stack (pairs of 3x3
convolutions and average pooling at every scale, 32-512 channels); ours keeps
one full-resolution 3x3 convolution (where the high-frequency fingerprint
lives) and then downsamples with four strided 4x4 convolutions, DCGAN-
discriminator style (``width`` to ``16 · width`` channels, LeakyReLU(0.2)),
ending in a linear layer over the 4x4 map.  No augmentation (it would blur the
fingerprints).  Fine-tuning starts from the clean weights and trains on
protected training images of every source.

Fingerprints
------------
Per source, the mean noise residual ``x - GaussianBlur(x, σ=1)`` over the test
images (the visualisation of Marra et al. 2019 that Yu et al. compare with),
and the log-magnitude spectrum of that mean.

Protection
----------
Each method is applied to the whole 64x64 image (region = the image, box
shape, no margin): here the whole image is the private content.  Noise is
seeded from ``seed`` for reproducibility (an evaluation, not a release).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.progress import ProgressCallback, ProgressEvent, check_progress

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_SOURCES",
    "DEFAULT_STRENGTHS",
    "AttributionConfig",
    "AttributionResult",
    "ConditionResult",
    "baseline_generator",
    "fingerprints",
    "parse_strengths",
    "protect_whole",
    "run_attribution",
]

SIZE = 64
DEFAULT_SOURCES: tuple[str, ...] = (
    "real",
    "pixveil-g64:seed0",
    "pixveil-g64:seed1",
    "dcgan-baseline",
    "vae:seed0",
)
DEFAULT_METHODS: tuple[str, ...] = ("pixelate", "blur", "dp-pix", "dp-blur", "metric-pix")
#: Swept parameter and values per method; each DP method's default is included.
DEFAULT_STRENGTHS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "pixelate": ("blocks", (16, 8, 4)),
    "blur": ("strength", (0.03, 0.1, 0.2)),
    "dp-pix": ("epsilon", (20.0, 5.0, 1.0)),
    "dp-blur": ("epsilon", (20.0, 5.0, 1.0)),
    "metric-pix": ("epsilon", (32.0, 8.0, 2.0)),
}


def parse_strengths(specs: Sequence[str]) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """``["dp-pix:epsilon=1,5"]`` -> ``{"dp-pix": ("epsilon", (1.0, 5.0))}``."""
    from pixveil.evaluate.spec import parse_sweep

    out: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for spec in specs:
        method, key, values = parse_sweep(spec)
        out[method] = (key, values)
    return out


@dataclass(frozen=True, kw_only=True)
class AttributionConfig:
    """What one attribution study measures.

    Parameters
    ----------
    real : path
        LFW-layout folder ``<identity>/<images>`` (real faces; also the GANs'
        training data).
    work : path
        Cache of trained generators (and crops); reused between runs.
    sources : tuple of str
        At least two; see the module docstring.
    methods : tuple of str
        Registered protection methods (``none``, the baseline, is always run).
    strengths : mapping
        Method -> (parameter, values); methods not named use
        :data:`DEFAULT_STRENGTHS`, or their defaults alone.
    n_train, n_test : int
        Images per source for training and testing the classifier.
    gan_epochs, vae_steps : int
        Training length of pixveil's DCGANs and of the VAE (when not cached).
    clf_epochs, finetune_epochs : int
        Classifier training on clean images; fine-tuning on protected ones.
    width : int
        Channels of the classifier's first stage.
    seed : int
        Seeds the sampling, the splits, the protection noise and the training.
    threads : int
        Torch threads (0: torch's default).
    device : str
        ``cpu`` or ``cuda`` (generator training, sampling, classifier).
    """

    real: Path
    work: Path
    sources: tuple[str, ...] = DEFAULT_SOURCES
    methods: tuple[str, ...] = DEFAULT_METHODS
    strengths: Mapping[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    n_train: int = 200
    n_test: int = 100
    gan_epochs: int = 1
    vae_steps: int = 200
    clf_epochs: int = 10
    finetune_epochs: int = 1
    width: int = 8
    seed: int = 0
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "real", Path(self.real))
        object.__setattr__(self, "work", Path(self.work))
        if len(self.sources) < 2 or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"need at least two distinct sources, got {self.sources!r}")
        for s in self.sources:
            _source_kind(s)  # raises on an unknown source
        for name, lo in (
            ("n_train", 10),
            ("n_test", 10),
            ("gan_epochs", 1),
            ("vae_steps", 1),
            ("clf_epochs", 1),
            ("finetune_epochs", 0),
            ("width", 4),
            ("threads", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.settings()  # validates methods and parameters

    def settings(self) -> list[tuple[str, dict[str, Any], str | None, Any]]:
        """``(method, params, parameter, value)`` for the baseline and every strength."""
        from pixveil.protect import available_methods, validate_params

        known = available_methods()
        out: list[tuple[str, dict[str, Any], str | None, Any]] = [("none", {}, None, None)]
        for m in self.strengths:
            if m not in self.methods:
                raise ValueError(f"--strengths names {m!r}, which is not among --methods")
        for m in self.methods:
            if m == "none":
                continue
            if m not in known:
                raise ValueError(f"unknown method {m!r}; known: {', '.join(known)}")
            param, values = self.strengths.get(m, DEFAULT_STRENGTHS.get(m, ("", ())))
            if not param:
                validate_params(m, {})
                out.append((m, {}, None, None))
                continue
            for v in values:
                validate_params(m, {param: v})
                out.append((m, {param: v}, param, v))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["real"], d["work"] = str(self.real), str(self.work)
        d["strengths"] = {
            m: {"parameter": p, "values": list(v)} for m, (p, v) in self.strengths.items()
        }
        d["settings"] = [
            {"method": m, "params": p, "parameter": k, "value": v} for m, p, k, v in self.settings()
        ]
        return d


@dataclass(frozen=True)
class ConditionResult:
    """One method at one strength.

    ``acc_clean`` / ``acc_finetuned``: test accuracy of the clean-trained and of
    the fine-tuned classifier on protected test images; ``confusion_*``:
    ``[true][predicted]`` counts; ``ssim``: mean SSIM of protected vs clean
    test images (utility).  For ``none`` both accuracies are the clean
    classifier's (nothing to fine-tune on).
    """

    method: str
    params: Mapping[str, Any]
    parameter: str | None
    value: Any
    ssim: float
    acc_clean: float
    acc_finetuned: float | None
    confusion_clean: list[list[int]]
    confusion_finetuned: list[list[int]] | None
    seconds: float

    @property
    def label(self) -> str:
        if self.parameter is None:
            return self.method
        v = self.value
        text = f"{v:g}" if isinstance(v, float) else str(v)
        return f"{self.method} {self.parameter}={text}"

    def row(self, chance: float) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameter": self.parameter or "",
            "value": "" if self.value is None else self.value,
            "ssim": round(self.ssim, 4),
            "acc_clean_trained": round(self.acc_clean, 4),
            "acc_finetuned": None if self.acc_finetuned is None else round(self.acc_finetuned, 4),
            "chance": round(chance, 4),
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class AttributionResult:
    config: AttributionConfig
    sources: tuple[str, ...]
    clean_accuracy: float
    conditions: tuple[ConditionResult, ...]
    fingerprints: np.ndarray  # (n_sources, 64, 64, 3) uint8, visualised mean residuals
    spectra: np.ndarray  # (n_sources, 64, 64) uint8, log |FFT| of the mean residual
    examples: Mapping[str, np.ndarray]  # label -> (n_sources, 64, 64, 3) uint8
    timings: Mapping[str, float]
    notes: tuple[str, ...] = ()

    @property
    def chance(self) -> float:
        return 1.0 / len(self.sources)

    def rows(self) -> list[dict[str, Any]]:
        return [c.row(self.chance) for c in self.conditions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "chance": self.chance,
            "clean_accuracy": self.clean_accuracy,
            "conditions": [
                {
                    **c.row(self.chance),
                    "params": dict(c.params),
                    "confusion_clean_trained": c.confusion_clean,
                    "confusion_finetuned": c.confusion_finetuned,
                }
                for c in self.conditions
            ],
            "timings": dict(self.timings),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- #
# sources
# --------------------------------------------------------------------------- #
def _source_kind(source: str) -> tuple[str, int]:
    if source in ("real", "dcgan-baseline"):
        return source, 0
    kind, sep, rest = source.partition(":")
    if sep and kind in ("pixveil-g64", "vae") and rest.startswith("seed") and rest[4:].isdigit():
        return kind, int(rest[4:])
    raise ValueError(
        f"unknown source {source!r}; known: real, pixveil-g64:seedN, dcgan-baseline, vae:seedN"
    )


def _stable_seed(*parts: object) -> int:
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def _to_uint8(t: Any) -> np.ndarray:
    """(N, 3, H, W) tensor in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((t.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def baseline_generator() -> Any:
    """The DCGAN of ``gan-face-generate`` (64x64, nz=100), in eval mode.

    Raises
    ------
    MissingDependencyError
        When ``gan-face-generate`` (or its weights file) is not installed.
    """
    import torch
    from torch import nn

    spec = importlib.util.find_spec("gan_face_generate")
    weights = (
        None if spec is None or spec.origin is None else Path(spec.origin).parent / "weights.tar"
    )
    if weights is None or not weights.is_file():
        from pixveil.errors import MissingDependencyError

        raise MissingDependencyError("gan-face-generate", "gan")

    class BaselineG(nn.Module):  # the layer layout of gan_face_generate.models.Generator
        def __init__(self, nz: int = 100, ngf: int = 64) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            ch_in = nz
            for ch in (ngf * 8, ngf * 4, ngf * 2, ngf):
                stride, pad = (1, 0) if ch_in == nz else (2, 1)
                layers += [
                    nn.ConvTranspose2d(ch_in, ch, 4, stride, pad, bias=False),
                    nn.BatchNorm2d(ch),
                    nn.ReLU(True),
                ]
                ch_in = ch
            layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
            self.main = nn.Sequential(*layers)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.main(z.view(z.shape[0], -1, 1, 1))

    g = BaselineG()
    g.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"])
    g.eval()
    return g


def _real_crops(cfg: AttributionConfig) -> np.ndarray:
    from pixveil.gan.data import load_crops, training_files

    files = training_files(cfg.real, held_out=True)
    if not files:
        raise FileNotFoundError(f"{cfg.real}: no held-out identities with images")
    return load_crops(files, SIZE, cfg.work / f"real_heldout_crops_{SIZE}.npy")


def _train_crops(cfg: AttributionConfig) -> np.ndarray:
    from pixveil.gan.data import load_crops, training_files

    files = training_files(cfg.real, held_out=False)
    if not files:
        raise FileNotFoundError(f"{cfg.real}: no training identities with images")
    return load_crops(files, SIZE, cfg.work / f"train_crops_{SIZE}.npy")


def _sample_source(
    cfg: AttributionConfig, source: str, n: int, emit: ProgressCallback | None
) -> np.ndarray:
    """``n`` images (N, 64, 64, 3) uint8 of ``source``, training its generator if needed."""
    import torch

    kind, seed = _source_kind(source)
    rng_seed = _stable_seed(cfg.seed, source, "samples")
    if kind == "real":
        crops = _real_crops(cfg)
        if crops.shape[0] < n:
            raise ValueError(f"only {crops.shape[0]} real held-out crops, {n} asked")
        idx = np.random.default_rng(rng_seed).choice(crops.shape[0], n, replace=False)
        return crops[idx]
    gen = torch.Generator().manual_seed(rng_seed)
    if kind == "dcgan-baseline":
        g = baseline_generator().to(cfg.device)
        z = torch.randn(n, 100, generator=gen)
        with torch.no_grad():
            return np.concatenate(
                [_to_uint8(g(z[i : i + 256].to(cfg.device))) for i in range(0, n, 256)]
            )
    if kind == "pixveil-g64":
        from pixveil.gan.models import Generator
        from pixveil.gan.train import TrainConfig, train

        run = cfg.work / f"pixveil-g64-seed{seed}"
        tc = TrainConfig(
            data=str(cfg.real),
            out=str(run),
            epochs=cfg.gan_epochs,
            encoder_steps=0,
            seed=seed,
            threads=cfg.threads,
            device=cfg.device,
        )
        ckpt_path = run / "ckpt.pt"
        if not _gan_done(ckpt_path, cfg.gan_epochs):
            train(tc, progress=_relabel(emit, source))
        ck = torch.load(ckpt_path, map_location=cfg.device, weights_only=False)
        c = ck["config"]
        g = Generator(int(c["nz"]), int(c["ngf"]), int(c["size"])).to(cfg.device)
        # the raw generator: after a training this short, the averaged one (decay
        # 0.999) is still mostly its random initialisation
        g.load_state_dict(ck["G"])
        g.eval()
        z = torch.randn(n, int(c["nz"]), generator=gen)
        with torch.no_grad():
            return np.concatenate(
                [_to_uint8(g(z[i : i + 256].to(cfg.device))) for i in range(0, n, 256)]
            )
    # vae
    from pixveil.gan.vae import VAEConfig, load_vae, train_vae

    run = cfg.work / f"vae-seed{seed}"
    vc = VAEConfig(
        out=str(run), steps=cfg.vae_steps, seed=seed, threads=cfg.threads, device=cfg.device
    )
    if not _vae_done(run / "vae.pt", cfg.vae_steps):
        train_vae(vc, _train_crops(cfg), progress=_relabel(emit, source))
    model = load_vae(run, cfg.device)
    z = torch.randn(n, model.nz, generator=gen)
    with torch.no_grad():
        return np.concatenate(
            [_to_uint8(model.decode(z[i : i + 256].to(cfg.device))) for i in range(0, n, 256)]
        )


def _gan_done(ckpt: Path, epochs: int) -> bool:
    if not ckpt.is_file():
        return False
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state"]
    return int(state["epoch"]) >= epochs


def _vae_done(ckpt: Path, steps: int) -> bool:
    if not ckpt.is_file():
        return False
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"]) >= steps


def _relabel(emit: ProgressCallback | None, source: str) -> ProgressCallback | None:
    if emit is None:
        return None

    def inner(e: ProgressEvent) -> None:
        emit(dataclasses.replace(e, stage=f"train {source}: {e.stage}"))

    return inner


# --------------------------------------------------------------------------- #
# protection, fingerprints
# --------------------------------------------------------------------------- #
def protect_whole(
    images: np.ndarray, method: str, params: Mapping[str, Any], *, seed: int
) -> np.ndarray:
    """Apply ``method`` to each whole image (box region = the image, no margin).

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
    method : str
        A registered method, or ``"none"`` (a copy).
    params : mapping
        The method's parameters (``shape`` and ``margin`` are set here).
    seed : int
        Seeds the privacy noise (evaluation only: seeded noise gives no privacy).

    Returns
    -------
    ndarray like ``images``
    """
    if method == "none":
        return images.copy()
    from pixveil.protect import get_method
    from pixveil.types import Region

    m = get_method(method, **{**params, "shape": "box", "margin": 1.0})
    h, w = images.shape[1:3]
    regions = [Region((0, 0, w, h), "face")]
    rng = np.random.default_rng(seed)
    return np.stack([m.apply(img, regions, rng=rng) for img in images])


def _residuals(images: np.ndarray) -> np.ndarray:
    import cv2

    x = images.astype(np.float32)
    return np.stack([im - cv2.GaussianBlur(im, (0, 0), 1.0) for im in x])


def fingerprints(images_by_source: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Visualised mean noise residual and its log spectrum, per source.

    Returns
    -------
    residual : ndarray of shape (S, H, W, 3), uint8
        Each source's mean ``x - GaussianBlur(x, 1)``, stretched to [0, 255]
        (same scale for all sources: ±4 standard deviations of all of them).
    spectrum : ndarray of shape (S, H, W), uint8
        ``log(1 + |FFT|)`` of the grey mean residual, centred, stretched per source.
    """
    means = np.stack([_residuals(x).mean(axis=0) for x in images_by_source])
    scale = 4 * float(means.std()) or 1.0
    vis = np.clip((means / scale + 1) * 127.5, 0, 255).round().astype(np.uint8)
    spectra = []
    for m in means:
        f = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(m.mean(axis=2)))))
        f = (f - f.min()) / (np.ptp(f) or 1.0)
        spectra.append((f * 255).round().astype(np.uint8))
    return vis, np.stack(spectra)


def _ssim_mean(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(
        np.mean(
            [
                structural_similarity(x, y, channel_axis=2, data_range=255)
                for x, y in zip(a, b, strict=True)
            ]
        )
    )


# --------------------------------------------------------------------------- #
# classifier
# --------------------------------------------------------------------------- #
def _attribution_net(n_classes: int, width: int) -> Any:
    """The attribution classifier: a full-resolution 3x3 convolution, then four strided
    4x4 convolutions (64 -> 4, channels doubling from ``width``), LeakyReLU(0.2), linear."""
    from torch import nn

    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1), nn.LeakyReLU(0.2, True)]
    c = width
    for _ in range(4):  # 64 -> 4
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c *= 2
    layers += [nn.Flatten(), nn.Linear(c * 16, n_classes)]
    return nn.Sequential(*layers)


def _tensor(images: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _train(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    seed: int,
    device: str,
    stage: str,
    emit: ProgressCallback | None,
) -> None:
    import torch
    import torch.nn.functional as F

    from pixveil.evaluate.attacks._common import TrainingOptions
    from pixveil.evaluate.attacks._nets import fit

    xt, yt = _tensor(x).to(device), torch.from_numpy(y).long().to(device)

    def batch_loss(idx: Any) -> tuple[Any, dict[str, float]]:
        logits = model(xt[idx])
        correct = float((logits.argmax(1) == yt[idx]).sum())
        return F.cross_entropy(logits, yt[idx]), {"acc": correct}

    options = TrainingOptions(
        epochs=epochs, image_size=SIZE, batch_size=64, width=0, seed=seed, learning_rate=lr
    )
    fit(
        model,
        batch_loss,
        x.shape[0],
        options,
        weight_decay=1e-4,
        warmup_epochs=1 if epochs > 2 else 0,
        generator=torch.Generator().manual_seed(seed),
        stage=stage,
        title=stage,
        describe=lambda m: f"loss {m['loss']:.3f}, train acc {m.get('acc', 0):.3f}",
        progress=emit,
    )


def _predict(model: Any, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], 256):
            out.append(model(_tensor(x[i : i + 256]).to(device)).argmax(1).cpu().numpy())
    return np.concatenate(out)


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> list[list[int]]:
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm.tolist()


# --------------------------------------------------------------------------- #
# the study
# --------------------------------------------------------------------------- #
def run_attribution(
    cfg: AttributionConfig, *, progress: ProgressCallback | None = None
) -> AttributionResult:
    """Sample every source, train the classifier, and measure every protection.

    Parameters
    ----------
    cfg : AttributionConfig
    progress : callable, optional, keyword-only
        Gets :class:`~pixveil.progress.ProgressEvent` values: generator training
        (``"train <source>: ..."``), ``"sources"``, ``"classifier"``,
        ``"conditions"`` and per-condition ``"fine-tune ..."``.

    Raises
    ------
    FileNotFoundError
        When ``cfg.real`` holds no LFW-layout images.
    MissingDependencyError
        When torch (``pixveil[gan]``) or ``gan-face-generate`` is missing.
    """
    import torch

    emit = check_progress(progress)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    k = len(cfg.sources)
    per = cfg.n_train + cfg.n_test
    train_x, test_x, train_y, test_y = [], [], [], []
    by_source_test: list[np.ndarray] = []
    for i, source in enumerate(cfg.sources):
        if emit is not None:
            emit(ProgressEvent("sources", i, k, f"sampling {source}"))
        imgs = _sample_source(cfg, source, per, emit)
        train_x.append(imgs[: cfg.n_train])
        test_x.append(imgs[cfg.n_train :])
        by_source_test.append(imgs[cfg.n_train :])
        train_y.append(np.full(cfg.n_train, i))
        test_y.append(np.full(cfg.n_test, i))
    if emit is not None:
        emit(ProgressEvent("sources", k, k, "sources ready"))
    xtr, xte = np.concatenate(train_x), np.concatenate(test_x)
    ytr, yte = np.concatenate(train_y), np.concatenate(test_y)
    timings["sources"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    clean = _attribution_net(k, cfg.width).to(cfg.device)
    _train(
        clean,
        xtr,
        ytr,
        epochs=cfg.clf_epochs,
        lr=1e-3,
        seed=cfg.seed,
        device=cfg.device,
        stage="classifier",
        emit=emit,
    )
    clean_pred = _predict(clean, xte, cfg.device)
    clean_acc = float(np.mean(clean_pred == yte))
    timings["classifier"] = time.perf_counter() - t1

    fp, spec = fingerprints(by_source_test)
    settings = cfg.settings()
    conditions: list[ConditionResult] = []
    examples: dict[str, np.ndarray] = {}
    pick = np.array([i * cfg.n_test for i in range(k)])  # first test image of each source
    t2 = time.perf_counter()
    for j, (method, params, parameter, value) in enumerate(settings):
        tc = time.perf_counter()
        label = method if parameter is None else f"{method} {parameter}={value}"
        if emit is not None:
            emit(ProgressEvent("conditions", j, len(settings), label))
        s = _stable_seed(cfg.seed, method, sorted(params.items()))
        pte = protect_whole(xte, method, params, seed=s)
        pred = clean_pred if method == "none" else _predict(clean, pte, cfg.device)
        acc_c = float(np.mean(pred == yte))
        acc_f: float | None = None
        conf_f: list[list[int]] | None = None
        if cfg.finetune_epochs > 0:
            if method == "none":
                acc_f, conf_f = acc_c, _confusion(yte, pred, k)
            else:
                ptr = protect_whole(xtr, method, params, seed=s + 1)
                tuned = copy.deepcopy(clean)
                _train(
                    tuned,
                    ptr,
                    ytr,
                    epochs=cfg.finetune_epochs,
                    lr=5e-4,
                    seed=cfg.seed + 1,
                    device=cfg.device,
                    stage=f"fine-tune {label}",
                    emit=emit,
                )
                pf = _predict(tuned, pte, cfg.device)
                acc_f, conf_f = float(np.mean(pf == yte)), _confusion(yte, pf, k)
        examples[label] = pte[pick]
        conditions.append(
            ConditionResult(
                method=method,
                params=params,
                parameter=parameter,
                value=value,
                ssim=1.0 if method == "none" else _ssim_mean(xte, pte),
                acc_clean=acc_c,
                acc_finetuned=acc_f,
                confusion_clean=_confusion(yte, pred, k),
                confusion_finetuned=conf_f,
                seconds=time.perf_counter() - tc,
            )
        )
    if emit is not None:
        emit(ProgressEvent("conditions", len(settings), len(settings), "done"))
    timings["conditions"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    notes = []
    if clean_acc < 0.95:
        notes.append(
            f"clean attribution accuracy {clean_acc:.1%} is below 95 %: its failures on "
            "protected images mean less (train longer: --clf-epochs, more --n-train)"
        )
    return AttributionResult(
        config=cfg,
        sources=tuple(cfg.sources),
        clean_accuracy=clean_acc,
        conditions=tuple(conditions),
        fingerprints=fp,
        spectra=spec,
        examples=examples,
        timings=timings,
        notes=tuple(notes),
    )
