"""Classic obfuscation: ``blur``, ``pixelate`` and ``mask``.

None of these methods has a formal privacy guarantee.  Blurring and pixelation
remove detail that *people* use to recognise a face, but they keep the
low-frequency structure that machines use: McPherson, Shokri and Shmatikov
("Defeating Image Obfuscation with Deep Learning", 2016) re-identified 57-96 %
of pixelated or blurred faces (AT&T, FaceScrub) with CNNs trained on obfuscated
examples, and Hill et al. (2016) recovered content from mosaics.  A solid
``mask`` removes the pixels' content entirely, but nothing outside the region
(hair, clothes, body, background, context) is touched by any of them.

The module also holds the grid helpers shared with the differentially private
methods (:mod:`pixveil.protect.dp`).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from pixveil.protect.base import MethodParams, ProtectionMethod, register_method
from pixveil.types import Region

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_BLUR_STRENGTH",
    "DEFAULT_TEXT_BLUR_STRENGTH",
    "Blur",
    "Mask",
    "Pixelate",
    "cell_sums",
    "fill_cells",
    "gaussian_blur",
    "grid_edges",
    "parse_color",
]

#: Default number of cells across the longer side of a region (``pixelate``, ``dp-*``).
DEFAULT_BLOCKS = 8
#: Default blur sigma as a fraction of the region's smaller side; chosen with
#: ``bench/bench_reid.py`` (see docs/methods.md for the measurement).
DEFAULT_BLUR_STRENGTH = 0.1
#: Default blur sigma for plates and text, as a fraction of the region's smaller
#: side; chosen so that OCR no longer reads the plate (``bench/bench_plates.py``).
DEFAULT_TEXT_BLUR_STRENGTH = 0.3

_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def check_int(
    name: str,
    value: object,
    lo: int,
    hi: int,
    *,
    error: type[ValueError] = ValueError,
    optional: bool = False,
) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= int(value) <= hi:
        raise error(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def check_real(
    name: str,
    value: object,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    error: type[ValueError] = ValueError,
) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number, got {value!r}")
    v = float(value)
    ok = (lo < v if lo_open else lo <= v) and v <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise error(f"{name} must be in {bracket}{lo}, {hi}], got {value!r}")


def check_grid_params(
    blocks: object, block_size: object, *, error: type[ValueError] = ValueError
) -> None:
    """Validate the mutually exclusive ``blocks`` / ``block_size`` pair."""
    if blocks is not None and block_size is not None:
        raise error(
            f"give either blocks (cells across the region) or block_size (pixels), "
            f"not both: got blocks={blocks!r}, block_size={block_size!r}"
        )
    check_int("blocks", blocks, 1, 256, error=error, optional=True)
    check_int("block_size", block_size, 1, 4096, error=error, optional=True)


# ---------------------------------------------------------------------------
# Image helpers
# ---------------------------------------------------------------------------


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels, fast for any sigma.

    Up to ``sigma = 6`` this is ``cv2.GaussianBlur`` with a ±3σ kernel.  Larger
    sigmas blur a copy downscaled by ``f = sigma / 3`` (area averaging) and
    upscale it bilinearly; the blur applied at the small scale is reduced so the
    total spread (box prefilter + Gaussian + linear interpolation) still has
    standard deviation ``sigma``.  The cost no longer grows with ``sigma``.
    Borders are reflected (``BORDER_REFLECT_101``): only ``image``'s own pixels
    are mixed.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8
    sigma : float
        Standard deviation in pixels, >= 0 (0 returns a copy).

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    if sigma <= 0:
        return image.copy()
    h, w = image.shape[:2]
    factor = sigma / 3.0
    if factor < 2.0:
        k = 2 * math.ceil(3 * sigma) + 1
        return cv2.GaussianBlur(
            image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101
        )
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = w / sw, h / sh
    # The box prefilter (variance f²/12) and the linear upscaling (f²/6) add f²/4.
    sx = math.sqrt(max((sigma / fx) ** 2 - 0.25, 0.25))
    sy = math.sqrt(max((sigma / fy) ** 2 - 0.25, 0.25))
    k = 2 * math.ceil(3 * max(sx, sy)) + 1
    small = cv2.GaussianBlur(small, (k, k), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def grid_edges(
    height: int,
    width: int,
    region: Region,
    *,
    blocks: int | None,
    block_size: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column edges of a grid of near-equal cells over a patch.

    The nominal cell side ``s`` is ``block_size`` pixels, or the region's longer
    side divided by ``blocks`` (``DEFAULT_BLOCKS`` when both are None).  The
    patch is split into ``round(height / s)`` rows and ``round(width / s)``
    columns (at least 1, at most one per pixel) of near-equal size, so no edge
    cell is a thin sliver: every cell side is within a factor of about 1.5 of
    ``s`` (or the whole patch side when the patch is smaller than ``s``).

    Parameters
    ----------
    height, width : int
        Patch size in pixels.
    region : Region
        The region in patch coordinates (used for the nominal size with
        ``blocks``, so that a region clipped by the image border keeps its
        cell size).
    blocks, block_size : int or None
        Mutually exclusive.

    Returns
    -------
    row_edges : ndarray of shape (rows + 1,), int64
        ``0 = row_edges[0] < ... < row_edges[-1] = height``.
    col_edges : ndarray of shape (cols + 1,), int64
    """
    if block_size is not None:
        size = float(block_size)
    else:
        n = DEFAULT_BLOCKS if blocks is None else blocks
        size = max(region.width, region.height) / n
    size = max(size, 1.0)

    def edges(length: int) -> np.ndarray:
        cells = min(length, max(1, math.floor(length / size + 0.5)))
        return np.floor(np.linspace(0, length, cells + 1) + 0.5).astype(np.int64)

    return edges(height), edges(width)


def cell_sums(
    patch: np.ndarray, row_edges: np.ndarray, col_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell, per-channel pixel sums and pixel counts.

    Parameters
    ----------
    patch : ndarray of shape (h, w, C), uint8
    row_edges, col_edges : ndarray of int
        As returned by :func:`grid_edges`.

    Returns
    -------
    sums : ndarray of shape (rows, cols, C), float64
    counts : ndarray of shape (rows, cols), int64
        Number of pixels in each cell.
    """
    data = patch.astype(np.float64)
    sums = np.add.reduceat(data, row_edges[:-1], axis=0)
    sums = np.add.reduceat(sums, col_edges[:-1], axis=1)
    counts = np.outer(np.diff(row_edges), np.diff(col_edges))
    return sums, counts


def fill_cells(values: np.ndarray, row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Paint each cell with its value.

    Parameters
    ----------
    values : ndarray of shape (rows, cols, C)
    row_edges, col_edges : ndarray of int

    Returns
    -------
    ndarray of shape (row_edges[-1], col_edges[-1], C), same dtype as ``values``
    """
    out = np.repeat(values, np.diff(row_edges), axis=0)
    return np.repeat(out, np.diff(col_edges), axis=1)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and clip to [0, 255]."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------


@register_method("blur")
class Blur(ProtectionMethod):
    """Gaussian blur whose strength follows the region's size.

    The blur's standard deviation is ``sigma = strength × min(region width,
    region height)`` in pixels (the region grown by ``margin``), so a face is
    blurred by the same *relative* amount whatever its size in the image.
    Plates and text use ``text_strength`` instead: their characters are nearly
    as tall as the region's smaller side, so the face strength would leave them
    readable.

    Privacy: **no formal guarantee.**  Blur removes fine detail but keeps the
    low-frequency structure; CNNs trained on blurred faces re-identify them
    (McPherson et al. 2016), and mild blur can be partly inverted by
    deconvolution.  The default strength was chosen by measurement so that an
    off-the-shelf recogniser (dlib ResNet, given the true face location) ranks
    the right person first for fewer than 5 % of 100 LFW identities (see
    docs/methods.md); an attacker who trains on blurred faces does better.
    """

    summary: ClassVar[str] = "Gaussian blur, strength scaled to the region size"
    guarantee: ClassVar[str] = (
        "none formal; measured against a face recognizer in docs/BENCHMARKS.md"
    )

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``blur``.

        Parameters
        ----------
        strength : float
            Sigma as a fraction of a face region's smaller side, in ``(0, 1]``.
        text_strength : float
            Sigma as a fraction of the smaller side of any other region (plates,
            text), in ``(0, 1]``.
        passes : int
            How many times the blur is applied, in ``[1, 8]`` (``n`` passes of
            sigma ``s`` act like one of ``s·√n``).
        """

        strength: float = DEFAULT_BLUR_STRENGTH
        text_strength: float = DEFAULT_TEXT_BLUR_STRENGTH
        passes: int = 1

        def __post_init__(self) -> None:
            super().__post_init__()
            check_real("strength", self.strength, 0.0, 1.0, lo_open=True)
            check_real("text_strength", self.text_strength, 0.0, 1.0, lo_open=True)
            check_int("passes", self.passes, 1, 8)

    params: Params

    def sigma_for(self, region: Region) -> float:
        """The blur sigma (pixels) used for ``region``."""
        fraction = self.params.strength if region.kind == "face" else self.params.text_strength
        return float(fraction) * min(region.width, region.height)

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        sigma = self.sigma_for(region)
        out = patch
        for _ in range(self.params.passes):
            out = gaussian_blur(out, sigma)
        return out


@register_method("pixelate")
class Pixelate(ProtectionMethod):
    """Pixelation (mosaic): each cell of a grid becomes the mean of its pixels.

    The grid has ``blocks`` cells across the region's longer side (default 8),
    or cells of ``block_size`` pixels; edge cells are balanced so none is a
    sliver (see :func:`grid_edges`).  Cell values are the exact means, rounded.

    Privacy: **no formal guarantee.**  Pixelation keeps the coarse layout of
    the face; McPherson et al. (2016) re-identified 57-96 % of pixelated faces
    with a CNN trained on pixelated examples, and coarse grids of a known
    person can be matched by brute force.  See ``dp-pix`` for a variant with a
    differential-privacy guarantee.
    """

    summary: ClassVar[str] = "mosaic: each grid cell becomes the mean colour of its pixels"
    guarantee: ClassVar[str] = "none formal (defeated by trained CNNs, McPherson et al. 2016)"

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``pixelate``.

        Parameters
        ----------
        blocks : int or None
            Cells across the region's longer side, in ``[1, 256]``.  Default
            (when ``block_size`` is also None): 8.
        block_size : int or None
            Nominal cell side in pixels, in ``[1, 4096]``.  Mutually exclusive
            with ``blocks``.
        """

        blocks: int | None = None
        block_size: int | None = None

        def __post_init__(self) -> None:
            super().__post_init__()
            check_grid_params(self.blocks, self.block_size)

    params: Params

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        h, w = patch.shape[:2]
        rows, cols = grid_edges(
            h, w, region, blocks=self.params.blocks, block_size=self.params.block_size
        )
        sums, counts = cell_sums(patch, rows, cols)
        means = to_uint8(sums / counts[:, :, None])
        return fill_cells(means, rows, cols)


def parse_color(value: object) -> tuple[int, int, int]:
    """The ``color`` parameter: ``"#rrggbb"`` or three integers in [0, 255] -> an RGB tuple.

    Raises
    ------
    ValueError
        Naming ``color`` when ``value`` is neither.
    """
    if isinstance(value, str):
        match = _HEX_COLOR.match(value.strip())
        if match is None:
            raise ValueError(
                f"color must be '#rrggbb' or three integers in [0, 255], got {value!r}"
            )
        h = match.group(1)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    if isinstance(value, (tuple, list)) and len(value) == 3:
        for c in value:
            if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 0 <= int(c) <= 255:
                raise ValueError(f"color must be three integers in [0, 255], got {value!r}")
        return (int(value[0]), int(value[1]), int(value[2]))
    raise ValueError(f"color must be '#rrggbb' or three integers in [0, 255], got {value!r}")


@register_method("mask")
class Mask(ProtectionMethod):
    """A solid colour over the region (black by default).

    Privacy: **no formal guarantee**, but nothing of the region's pixels is
    kept: the output inside the region does not depend on the input at all.
    What remains is everything outside it: the region's position and size,
    hair, ears, clothes, body shape, companions and background, any of which
    can identify a person.
    """

    summary: ClassVar[str] = "a solid colour over the region"
    guarantee: ClassVar[str] = "removes the content; the silhouette remains"

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``mask``.

        Parameters
        ----------
        color : tuple of 3 int, or str
            RGB fill colour, each in ``[0, 255]``, or ``"#rrggbb"``; stored as a
            tuple.  Default black.
        """

        color: tuple[int, int, int] = (0, 0, 0)

        def __post_init__(self) -> None:
            super().__post_init__()
            object.__setattr__(self, "color", parse_color(self.color))

    params: Params

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        out = np.empty_like(patch)
        out[...] = np.asarray(self.params.color, dtype=np.uint8)
        return out
