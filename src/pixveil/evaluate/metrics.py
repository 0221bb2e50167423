"""Utility metrics: how much a protected image still looks like its original.

Every function compares an *original* image with its *protected* version.  Both
are ``(H, W, 3)`` ``uint8`` RGB arrays of the same shape.  An optional boolean
``mask`` of shape ``(H, W)`` restricts the measurement to the protected region
("region only"); without it the whole image is measured ("whole image").  With a
mask, a change *outside* the mask never counts: the pixel-wise metrics only look
at the pixels under the mask, and the window-based ones (SSIM, MS-SSIM, dHash)
are computed on a copy of the protected image whose pixels outside the mask are
reset to the original's.

The metrics follow section 5.2.2 of Yu et al., "A Privacy-Preserving Image
Protection Method Based on GAN and Differential Privacy" (Sensors, 2021),
where ``X`` is the original and ``X^a`` the protected image:

* ``L0 = num(X^a, X)``: the number of pixels changed.  Here a pixel counts as
  changed when *any* of its three channels differs (:func:`l0`);
  :func:`l0_fraction` divides by the number of pixels measured.
* ``L2 = ||X^a - X||_2 = sqrt(sum_i (X^a_i - X_i)^2)``, the sum running over every
  channel value (:func:`l2`).  Values are in intensity units of the 0..255
  scale and are *not* normalised by the image size, as in the paper (its
  Table 1 reports L2 in the thousands), so L2 grows with the size of the
  changed area; compare it only between images of the same size.
* ``ALD_p = (1/n) sum_i ||X^a_i - X_i||_p / ||X_i||_p`` over ``n`` images: the
  relative ``Lp`` distortion, each image flattened to one vector of all its
  channel values.  :func:`ald` returns the term of one image; average it over
  the images of a data set to obtain the paper's ``ALD_p``.
* SSIM, averaged over images by the caller as in the paper's eq. (16)
  (:func:`ssim`, scikit-image's ``structural_similarity``).
* ``Dhash(X^a, X) = hash(X^a) - hash(X)``: here the Hamming distance between
  the two difference hashes (:func:`dhash_distance`, ``imagehash.dhash``), an
  integer in ``[0, hash_size**2]``.  The paper's Table 1 reports values above
  64 (in the thousands), so its ``hash`` difference was not the Hamming
  distance of 64-bit hashes; our values are not comparable with its table.

Two further standard metrics are provided: PSNR (:func:`psnr`) and MS-SSIM
(:func:`ms_ssim`, Wang et al. 2003, from the ``pytorch-msssim`` package).
:func:`utility_report` computes them all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError
from pixveil.validate import check_image

__all__ = [
    "MS_SSIM_MIN_SIDE",
    "SSIM_MIN_SIDE",
    "UtilityReport",
    "ald",
    "dhash_distance",
    "l0",
    "l0_fraction",
    "l2",
    "ms_ssim",
    "psnr",
    "ssim",
    "utility_report",
]

#: Smallest image side (pixels) for :func:`ssim` (scikit-image's 7x7 window).
SSIM_MIN_SIDE = 7
#: Smallest image side (pixels) for :func:`ms_ssim`: five scales with an 11-pixel
#: Gaussian window need ``(11 - 1) * 2**4 + 1 = 161`` pixels at full resolution.
MS_SSIM_MIN_SIDE = 161
_DATA_RANGE = 255.0
_ALD_ORDERS = (0.0, 1.0, 2.0, math.inf)


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_inputs(
    original: Any, protected: Any, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    original = check_image(original, name="original")
    protected = check_image(protected, name="protected")
    if original.shape != protected.shape:
        raise InputError(
            f"original and protected must have the same shape, got {original.shape} "
            f"and {protected.shape}"
        )
    if mask is None:
        return original, protected, None
    if not isinstance(mask, np.ndarray):
        raise InputError(f"mask must be a numpy array, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise InputError(f"mask must have dtype bool, got {mask.dtype}")
    if mask.shape != original.shape[:2]:
        raise InputError(f"mask must have shape {original.shape[:2]} (H, W), got {mask.shape}")
    if not mask.any():
        raise InputError("mask selects no pixel: a region-only metric needs at least one")
    return original, protected, mask


def _masked_values(
    original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The measured pixels as ``(n, 3)`` float64 arrays (original, protected)."""
    if mask is None:
        return (
            original.reshape(-1, 3).astype(np.float64),
            protected.reshape(-1, 3).astype(np.float64),
        )
    return original[mask].astype(np.float64), protected[mask].astype(np.float64)


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _region_only(
    original: np.ndarray, protected: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Crop both images to the mask's bounding box, outside-mask pixels from ``original``."""
    window = _bounding_box(mask)
    composite = np.where(mask[window][:, :, None], protected[window], original[window])
    return original[window], composite


# --------------------------------------------------------------------------- #
# pixel-wise metrics
# --------------------------------------------------------------------------- #
def l0(original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None) -> int:
    """Number of changed pixels (the paper's ``L0``).

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection.
    mask : ndarray of shape (H, W), bool, optional
        Count only the pixels where ``mask`` is True.

    Returns
    -------
    int
        Pixels where at least one of the three channels differs.
    """
    original, protected, mask = _check_inputs(original, protected, mask)
    changed = np.any(original != protected, axis=2)
    if mask is not None:
        changed &= mask
    return int(np.count_nonzero(changed))


def l0_fraction(
    original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Share of the measured pixels that changed: :func:`l0` divided by ``H * W``
    (or by the number of pixels under ``mask``).

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    original, protected, mask = _check_inputs(original, protected, mask)
    total = original.shape[0] * original.shape[1] if mask is None else int(mask.sum())
    return l0(original, protected, mask) / total


def l2(original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Euclidean distance ``sqrt(sum (protected - original)**2)`` (the paper's ``L2``).

    The sum runs over every channel value of every measured pixel, in intensity
    units of the 0..255 scale, without any normalisation by the image size.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection.
    mask : ndarray of shape (H, W), bool, optional
        Sum only over the pixels where ``mask`` is True.

    Returns
    -------
    float
        ``>= 0``; at most ``255 * sqrt(3 * n_pixels)``.
    """
    original, protected, mask = _check_inputs(original, protected, mask)
    x, x_adv = _masked_values(original, protected, mask)
    return float(np.sqrt(np.sum((x_adv - x) ** 2)))


def _parse_order(p: float | str) -> float:
    if isinstance(p, str):
        if p.lower() not in {"inf", "infinity"}:
            raise ValueError(f"p must be one of 0, 1, 2, inf; got {p!r}")
        return math.inf
    try:
        order = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"p must be one of 0, 1, 2, inf; got {p!r}") from None
    if order not in _ALD_ORDERS:
        raise ValueError(f"p must be one of 0, 1, 2, inf; got {p!r}")
    return order


def ald(
    original: np.ndarray,
    protected: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    p: float | str = 2,
) -> float:
    """Relative ``Lp`` distortion of one image, ``||protected - original||_p / ||original||_p``.

    This is the per-image term of the paper's ``ALD_p`` (its eq. 15); the
    paper's figure is the mean of this value over the images of a data set.
    Both images are flattened to one vector of all their channel values
    (0..255 scale), so ``p = 0`` counts changed *channel values* (not pixels,
    unlike :func:`l0`) relative to the original's non-zero channel values.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection.
    mask : ndarray of shape (H, W), bool, optional
        Use only the pixels where ``mask`` is True (in both norms).
    p : {0, 1, 2, inf}, keyword-only
        The norm.  ``"inf"`` is accepted for ``math.inf``.

    Returns
    -------
    float
        ``>= 0``.  When the original's norm is 0 (a black image or region) the
        ratio is ``0.0`` if nothing changed and ``inf`` otherwise.

    Raises
    ------
    ValueError
        If ``p`` is not one of 0, 1, 2, inf.
    """
    order = _parse_order(p)
    original, protected, mask = _check_inputs(original, protected, mask)
    x, x_adv = _masked_values(original, protected, mask)
    diff = (x_adv - x).ravel()
    base = x.ravel()
    if order == 0.0:
        num, den = float(np.count_nonzero(diff)), float(np.count_nonzero(base))
    else:
        num, den = float(np.linalg.norm(diff, ord=order)), float(np.linalg.norm(base, ord=order))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def psnr(original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255**2 / MSE)``.

    scikit-image's ``peak_signal_noise_ratio`` with ``data_range=255``; the mean
    squared error runs over every channel value of the measured pixels.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection.
    mask : ndarray of shape (H, W), bool, optional
        Use only the pixels where ``mask`` is True.

    Returns
    -------
    float
        ``inf`` for identical inputs; otherwise ``>= 0`` (0 dB is the largest
        possible error, every value off by 255).
    """
    from skimage.metrics import peak_signal_noise_ratio

    original, protected, mask = _check_inputs(original, protected, mask)
    if mask is None:
        a, b = original, protected
    else:
        a, b = original[mask], protected[mask]
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=_DATA_RANGE))


# --------------------------------------------------------------------------- #
# structural metrics
# --------------------------------------------------------------------------- #
def ssim(original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Structural similarity (Wang et al. 2004), scikit-image's ``structural_similarity``.

    Computed on the three RGB channels (``channel_axis=-1``, ``data_range=255``,
    scikit-image's default 7x7 uniform window) and averaged over the channels.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection; both sides at least
        :data:`SSIM_MIN_SIDE` (7) pixels.
    mask : ndarray of shape (H, W), bool, optional
        Region only: the SSIM map of the whole image (with the protected
        image's pixels outside ``mask`` reset to the original's) is averaged over
        the pixels under ``mask``.  Like scikit-image's own mean, the average
        leaves out the 3-pixel image border where the window does not fit,
        unless the mask lies entirely inside that border.

    Returns
    -------
    float
        At most 1 (identical images); can be negative.

    Raises
    ------
    InputError
        If a side of the image is shorter than 7 pixels.
    """
    from skimage.metrics import structural_similarity

    original, protected, mask = _check_inputs(original, protected, mask)
    if min(original.shape[:2]) < SSIM_MIN_SIDE:
        raise InputError(
            f"SSIM needs images of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels, "
            f"got {original.shape[:2]}"
        )
    if mask is None:
        return float(
            structural_similarity(original, protected, channel_axis=-1, data_range=_DATA_RANGE)
        )
    composite = np.where(mask[:, :, None], protected, original)
    _, ssim_map = structural_similarity(
        original, composite, channel_axis=-1, data_range=_DATA_RANGE, full=True
    )
    pad = (SSIM_MIN_SIDE - 1) // 2
    interior = np.zeros_like(mask)
    interior[pad:-pad, pad:-pad] = True
    selected = mask & interior
    if not selected.any():
        selected = mask
    return float(ssim_map[selected].mean())


def ms_ssim(original: np.ndarray, protected: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Multi-scale structural similarity (Wang, Simoncelli & Bovik 2003).

    Computed by ``pytorch_msssim.ms_ssim`` (5 scales, 11-pixel Gaussian window
    with sigma 1.5, the standard scale weights
    ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, ``data_range=255``), which
    reproduces TensorFlow's ``tf.image.ssim_multiscale``: the scales are combined
    per RGB channel and the three channel values are averaged.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection; both sides at least
        :data:`MS_SSIM_MIN_SIDE` (161) pixels.
    mask : ndarray of shape (H, W), bool, optional
        Region only: MS-SSIM of the mask's bounding box, with the protected
        image's pixels outside ``mask`` reset to the original's.  The box must
        be at least 161 pixels on each side.

    Returns
    -------
    float
        In ``[0, 1]``; 1 for identical images.

    Raises
    ------
    InputError
        If the image (or the mask's bounding box) is smaller than 161 pixels on
        a side.
    MissingDependencyError
        If torch or pytorch-msssim is not installed (``pip install 'pixveil[eval]'``).
    """
    original, protected, mask = _check_inputs(original, protected, mask)
    if mask is not None:
        original, protected = _region_only(original, protected, mask)
    if min(original.shape[:2]) < MS_SSIM_MIN_SIDE:
        where = "the mask's bounding box" if mask is not None else "the image"
        raise InputError(
            f"MS-SSIM (5 scales) needs at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} pixels; "
            f"{where} is {original.shape[0]}x{original.shape[1]}"
        )
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "eval") from None
    try:
        from pytorch_msssim import ms_ssim as _ms_ssim
    except ImportError:
        raise MissingDependencyError("pytorch-msssim", "eval") from None

    # float64: in float32 the variances of flat bright areas lose ~1e-4 to
    # cancellation and MS-SSIM can exceed 1.
    def to_tensor(image: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None]).double()

    with torch.no_grad():
        value = _ms_ssim(to_tensor(protected), to_tensor(original), data_range=_DATA_RANGE)
    return float(value)


def dhash_distance(
    original: np.ndarray,
    protected: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    hash_size: int = 8,
) -> int:
    """Hamming distance between the difference hashes (``imagehash.dhash``).

    dHash converts the image to grayscale, resizes it to ``(hash_size + 1)`` x
    ``hash_size`` pixels and keeps one bit per horizontally adjacent pair
    (``right > left``).

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection.
    mask : ndarray of shape (H, W), bool, optional
        Region only: hash the mask's bounding box, with the protected image's
        pixels outside ``mask`` reset to the original's.
    hash_size : int, keyword-only
        Hash side; the hash has ``hash_size**2`` bits.  At least 2.

    Returns
    -------
    int
        In ``[0, hash_size**2]``; 0 when the hashes agree.
    """
    import imagehash
    from PIL import Image

    if isinstance(hash_size, bool) or not isinstance(hash_size, (int, np.integer)):
        raise ValueError(f"hash_size must be an int, got {type(hash_size).__name__}")
    if hash_size < 2:
        raise ValueError(f"hash_size must be at least 2, got {hash_size}")
    original, protected, mask = _check_inputs(original, protected, mask)
    if mask is not None:
        original, protected = _region_only(original, protected, mask)
    h_original = imagehash.dhash(Image.fromarray(original), hash_size=int(hash_size))
    h_protected = imagehash.dhash(Image.fromarray(protected), hash_size=int(hash_size))
    return int(h_original - h_protected)


# --------------------------------------------------------------------------- #
# the report
# --------------------------------------------------------------------------- #
class UtilityReport(dict[str, float]):
    """The metrics of one image pair, ``name -> value``, plus :attr:`notes`.

    Attributes
    ----------
    notes : dict of str to str
        For each metric reported as NaN, why it could not be computed.
    """

    def __init__(self, values: dict[str, float], notes: dict[str, str] | None = None) -> None:
        super().__init__(values)
        self.notes: dict[str, str] = dict(notes or {})


def utility_report(
    original: np.ndarray,
    protected: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    hash_size: int = 8,
    include_ms_ssim: bool = True,
) -> UtilityReport:
    """Every utility metric of one image pair.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3), uint8
        The image before and after protection (at least 7x7 pixels).
    mask : ndarray of shape (H, W), bool, optional
        Measure only the protected region (see each metric for what that means).
    hash_size : int, keyword-only
        dHash size (default 8: 64-bit hashes).
    include_ms_ssim : bool, keyword-only
        Compute MS-SSIM (needs torch and pytorch-msssim).  When False, the
        ``"ms_ssim"`` entry is NaN with a note.

    Returns
    -------
    UtilityReport
        A ``dict[str, float]`` with the keys ``"ssim"``, ``"ms_ssim"``,
        ``"psnr"`` (dB), ``"l0"`` (changed pixels), ``"l0_fraction"``, ``"l2"``,
        ``"ald_0"``, ``"ald_2"``, ``"ald_inf"`` and ``"dhash"`` (Hamming
        distance).  ``"ms_ssim"`` is NaN, with the reason in ``.notes``, when
        the image (or the mask's bounding box) is smaller than 161 pixels on a
        side.

    Raises
    ------
    InputError
        If the inputs are not two same-shape ``(H, W, 3)`` uint8 images, or the
        mask is not a non-empty ``(H, W)`` bool array.
    MissingDependencyError
        If ``include_ms_ssim`` is True and torch or pytorch-msssim is missing.
    """
    original, protected, mask = _check_inputs(original, protected, mask)
    notes: dict[str, str] = {}
    values: dict[str, float] = {
        "ssim": ssim(original, protected, mask),
        "psnr": psnr(original, protected, mask),
        "l0": float(l0(original, protected, mask)),
        "l0_fraction": l0_fraction(original, protected, mask),
        "l2": l2(original, protected, mask),
        "ald_0": ald(original, protected, mask, p=0),
        "ald_2": ald(original, protected, mask, p=2),
        "ald_inf": ald(original, protected, mask, p=math.inf),
        "dhash": float(dhash_distance(original, protected, mask, hash_size=hash_size)),
    }
    if not include_ms_ssim:
        values["ms_ssim"] = math.nan
        notes["ms_ssim"] = "not computed (include_ms_ssim=False)"
    else:
        if mask is None:
            side = min(original.shape[:2])
        else:
            rows, cols = _bounding_box(mask)
            side = min(rows.stop - rows.start, cols.stop - cols.start)
        if side < MS_SSIM_MIN_SIDE:
            values["ms_ssim"] = math.nan
            notes["ms_ssim"] = (
                f"{'mask bounding box' if mask is not None else 'image'} too small for "
                f"5-scale MS-SSIM: shortest side {side} < {MS_SSIM_MIN_SIDE} pixels"
            )
        else:
            values["ms_ssim"] = ms_ssim(original, protected, mask)
    order = ("ssim", "ms_ssim", "psnr", "l0", "l0_fraction", "l2", "ald_0", "ald_2", "ald_inf")
    ordered = {key: values[key] for key in (*order, "dhash")}
    return UtilityReport(ordered, notes)
