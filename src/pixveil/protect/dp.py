"""Differentially private pixelation: ``dp-pix`` and ``dp-blur``.

After Liyue Fan, "Image Pixelization with Differential Privacy" (DBSec 2018)
and "Differential Privacy for Image Publication" (TPDP 2019).

Neighbouring images (the m-neighbourhood of Fan 2018)
-----------------------------------------------------
Two images are neighbours when they have the same size, the same protected
regions (same boxes, same shape masks) and differ in at most ``m`` pixels, all
inside the protected areas.  A *pixel* is the RGB triple: a differing pixel
may differ in all three channels, each by up to 255.

Sensitivity
-----------
The region's box is cut into a grid of cells; cell ``j`` has ``n_j`` pixels.
The query is the vector of per-cell, per-channel pixel *sums*.  Changing one
pixel changes one cell's three channel sums by at most 255 each, so changing
``m`` pixels moves the vector by at most ``Δ = 3 · 255 · m`` in L1 norm,
wherever those pixels lie.  The Laplace mechanism adds Laplace(0, Δ/ε) noise to
every sum; dividing by ``n_j`` gives the noisy mean, i.e. noise of scale

    λ_j = 3 · 255 · m / (n_j · ε)

on cell ``j``'s mean in each channel.  For full ``b × b`` cells this is Fan's
``255 · m / (b² · ε)`` times 3 for the three colour channels (Fan works on
grey-level images).  Edge cells with fewer pixels get proportionally more noise.
Note that the per-cell choice ``255 · min(m, n_j) / (n_j · ε)`` would *not* be
ε-DP: ``m`` changed pixels split between a small cell (``n_j < m``) and a full
one would cost more than ε.  With the uniform scale on sums the privacy loss is
at most ``ε · (number of differing pixels) / m`` whatever the split.

Rounding, clipping to [0, 255], painting the cells, resizing and blurring only
use the noisy values, so they keep the guarantee (post-processing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.laplace import LaplaceMechanism, check_epsilon
from pixveil.privacy.rng import RandomState
from pixveil.protect.base import MethodParams, ProtectionMethod, register_method
from pixveil.protect.classic import (
    cell_sums,
    check_grid_params,
    check_int,
    check_real,
    fill_cells,
    gaussian_blur,
    grid_edges,
    to_uint8,
)
from pixveil.types import Region

__all__ = [
    "CHANNELS",
    "DEFAULT_EPSILON",
    "DEFAULT_M",
    "DPBlur",
    "DPPix",
    "cell_noise_scale",
    "noisy_cell_means",
    "sum_sensitivity",
]

#: Colour channels that may all change when one pixel changes.
CHANNELS = 3
#: Range of one channel value.
PIXEL_RANGE = 255
#: Default privacy budget per release of one image.
DEFAULT_EPSILON = 1.0
#: Default number of pixels in which neighbouring images may differ.
DEFAULT_M = 16
#: Default DP-Blur sigma, in cell sides.
DEFAULT_DP_BLUR_SIGMA = 0.5


def sum_sensitivity(m: int) -> float:
    """L1 sensitivity of the per-cell, per-channel sums when up to ``m`` pixels differ."""
    return float(CHANNELS * PIXEL_RANGE * m)


def cell_noise_scale(n: int | np.ndarray, *, epsilon: float, m: int) -> float | np.ndarray:
    """Laplace scale of the noise on a cell *mean* (per channel), ``3·255·m / (n·ε)``.

    Parameters
    ----------
    n : int or ndarray of int
        Pixels in the cell.
    epsilon : float
    m : int

    Returns
    -------
    float or ndarray of float
        0 when ``epsilon`` is infinite.
    """
    counts = np.asarray(n, dtype=np.float64)
    if np.any(counts < 1):
        raise ValueError(f"cell pixel counts must be >= 1, got {n!r}")
    if math.isinf(epsilon):
        scale = np.zeros_like(counts)
    else:
        scale = sum_sensitivity(m) / (counts * epsilon)
    return float(scale) if scale.ndim == 0 else scale


def noisy_cell_means(
    patch: np.ndarray,
    row_edges: np.ndarray,
    col_edges: np.ndarray,
    *,
    epsilon: float,
    m: int,
    random_state: RandomState = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ε-DP cell means of ``patch`` (before rounding and clipping).

    Parameters
    ----------
    patch : ndarray of shape (h, w, 3), uint8
    row_edges, col_edges : ndarray of int
        The grid (see :func:`pixveil.protect.classic.grid_edges`).
    epsilon : float
        Privacy budget, > 0.
    m : int
        Number of pixels in which neighbouring patches may differ, >= 1.
    random_state : None, int, numpy.random.Generator or NoiseSource
        None: cryptographically secure noise.  Seeds are for tests only.

    Returns
    -------
    means : ndarray of shape (rows, cols, 3), float64
        Noisy means; may lie outside [0, 255].
    counts : ndarray of shape (rows, cols), int64
        Pixels per cell.
    """
    if patch.ndim != 3 or patch.shape[2] != CHANNELS:
        raise ValueError(f"patch must have shape (h, w, {CHANNELS}), got {patch.shape}")
    sums, counts = cell_sums(patch, row_edges, col_edges)
    mechanism = LaplaceMechanism(
        epsilon=epsilon, sensitivity=sum_sensitivity(m), random_state=random_state
    )
    return mechanism.randomise(sums) / counts[:, :, None], counts


@dataclass(frozen=True, kw_only=True)
class _DPParams(MethodParams):
    """Parameters shared by ``dp-pix`` and ``dp-blur`` (documented there)."""

    epsilon: float = DEFAULT_EPSILON
    m: int = DEFAULT_M
    blocks: int | None = None
    block_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_epsilon(self.epsilon)
        check_int("m", self.m, 1, 1 << 30, error=PrivacyParameterError)
        check_grid_params(self.blocks, self.block_size, error=PrivacyParameterError)


class _DPPixelation(ProtectionMethod):
    randomized: ClassVar[bool] = True

    params: _DPParams

    def _noisy_pixelation(
        self, patch: np.ndarray, region: Region, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = patch.shape[:2]
        rows, cols = grid_edges(
            h, w, region, blocks=self.params.blocks, block_size=self.params.block_size
        )
        means, _ = noisy_cell_means(
            patch,
            rows,
            cols,
            epsilon=float(self.params.epsilon),
            m=int(self.params.m),
            random_state=rng,
        )
        return fill_cells(to_uint8(means), rows, cols), rows, cols


@register_method("dp-pix")
class DPPix(_DPPixelation):
    """Differentially private pixelation (DP-Pix, Fan 2018).

    The region's box is cut into cells of about ``b × b`` pixels; each cell
    becomes its mean colour plus Laplace noise of scale ``3·255·m / (n·ε)`` per
    channel (``n`` = pixels in the cell), rounded and clipped to [0, 255].

    Guarantee
    ---------
    The release of each region is ε-differentially private for the *pixel
    content of its protected area*: for any two images that have the same
    protected regions and differ in at most ``m`` pixels (RGB triples) inside
    that area, and any set ``S`` of outputs,
    ``P[output(x) ∈ S] ≤ exp(ε) · P[output(x') ∈ S]``.  The privacy loss adds
    up over differing pixels: when the regions' grown boxes do not overlap,
    ``m`` differing pixels anywhere in the protected areas cost at most ε for
    the whole image.  Where boxes overlap, a pixel can feed the cell means of
    every box that contains it (ellipse corners are averaged too), so the
    bound becomes ``c · ε`` with ``c`` the largest number of grown boxes
    covering one differing pixel.

    Not covered: the position, size and shape of the regions (chosen by a
    detector that is not private); faces the detector missed; every pixel
    outside the protected areas (hair, body, background, context), including
    the corners of a region's box outside an ellipse mask; metadata; and
    repeated releases: protecting the same image ``k`` times (or frames of a
    video that show the same content) costs ``k·ε`` (sequential composition).
    A change of more than ``m`` pixels (a whole face has thousands) is only
    protected at level ``ε · changed / m``: the guarantee hides small details
    (up to ``m`` pixels), not a whole identity.  The bound is that of the ideal
    real-valued Laplace mechanism (see
    :class:`~pixveil.privacy.LaplaceMechanism` on floating point).
    Noise is cryptographically secure unless a seeded generator is passed
    (tests only).
    """

    summary: ClassVar[str] = "pixelation + Laplace noise (Fan, DBSec 2018)"
    guarantee: ClassVar[str] = "ε-DP for the region's pixels w.r.t. images differing in ≤ m pixels"

    @dataclass(frozen=True, kw_only=True)
    class Params(_DPParams):
        """Parameters of ``dp-pix``.

        Parameters
        ----------
        epsilon : float
            Privacy budget per image, ``> 0`` (default 1.0).  ``math.inf``
            removes the noise and warns (:class:`~pixveil.errors.PrivacyLeakWarning`).
        m : int
            Pixels in which neighbouring images may differ, ``>= 1`` (default 16).
        blocks : int or None
            Cells across the region's longer side, ``[1, 256]``; default 8
            when ``block_size`` is None too.
        block_size : int or None
            Nominal cell side ``b`` in pixels, ``[1, 4096]``; exclusive with ``blocks``.

        Raises
        ------
        PrivacyParameterError
            For any value out of range.
        """

    params: Params

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        out, _, _ = self._noisy_pixelation(patch, region, rng)
        return out


@register_method("dp-blur")
class DPBlur(_DPPixelation):
    """DP-Pix followed by a Gaussian blur (DP-Blur, Fan 2019).

    The noisy cells of :class:`DPPix` are painted at the region's size and
    blurred with sigma ``sigma × cell side`` pixels, which hides the cell edges.
    The blur only sees the noisy cells, so it is post-processing.

    Guarantee
    ---------
    Exactly that of ``dp-pix`` with the same ``epsilon``, ``m`` and grid:
    ε-differential privacy for the pixel content of the protected areas with
    respect to images differing in at most ``m`` pixels inside them.  Not
    covered: region location and size, missed detections, pixels outside the
    protected areas, metadata, repeated releases (composition); see
    :class:`DPPix`.
    """

    summary: ClassVar[str] = "DP-Pix, upsampled, then blurred"
    guarantee: ClassVar[str] = "same as dp-pix (post-processing)"

    @dataclass(frozen=True, kw_only=True)
    class Params(_DPParams):
        """Parameters of ``dp-blur``.

        Parameters
        ----------
        epsilon, m, blocks, block_size
            As for ``dp-pix``.
        sigma : float
            Blur standard deviation as a multiple of the cell side, ``(0, 4]``
            (default 0.5).

        Raises
        ------
        PrivacyParameterError
            For privacy parameters out of range (``ValueError`` for ``sigma``).
        """

        sigma: float = DEFAULT_DP_BLUR_SIGMA

        def __post_init__(self) -> None:
            super().__post_init__()
            check_real("sigma", self.sigma, 0.0, 4.0, lo_open=True)

    params: Params

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        cells, rows, cols = self._noisy_pixelation(patch, region, rng)
        h, w = patch.shape[:2]
        cell_side = 0.5 * (h / (len(rows) - 1) + w / (len(cols) - 1))
        return gaussian_blur(cells, float(self.params.sigma) * cell_side)
