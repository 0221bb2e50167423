"""Metric-private obfuscation: ``metric-pix``.

After Liyue Fan, "Practical Image Obfuscation with Provable Privacy" (ICME
2019): the region is *transformed* to a feature vector, the vector is *sampled*
with a d_X-private mechanism (metric privacy, Chatzikokolakis et al., PETS
2013) calibrated to a distance between images, and the sample is *inverted*
back to pixels.

Transform
---------
The orthonormal 2-D DCT-II of each colour channel of the region's box, of which
only the ``kh × kw`` lowest frequencies are kept (``blocks`` across the longer
side, like the cell grid of ``pixelate`` and ``dp-pix``).  The basis is fixed,
not learnt from the image: a data-dependent basis (the region's own SVD or
eigen-decomposition) would have to be released unperturbed to invert the
sample, and it carries most of the image, which no guarantee would cover.
Because the kept basis vectors are orthonormal, the Euclidean distance between
two coefficient vectors equals the Euclidean distance between the two *low-pass
images* ``L(x)`` and ``L(x')`` they describe (``L`` projects a box onto the kept
frequencies), and ``||L(x) - L(x')|| ≤ ||x - x'||``.

Metric
------
``d(x, x') = RMS(L(x) - L(x'))``: the root-mean-square difference, in grey
levels (0-255), between the low-pass versions of the two boxes over all
``n = h · w · 3`` channel values.  It is at most the RMS pixel difference of
the boxes themselves, so ``d`` is also bounded by the plain pixel distance.

Sampling
--------
The coefficient vector ``c`` (``D = kh · kw · 3`` numbers) is released as
``c + Z`` where ``Z`` has density proportional to ``exp(-ε' ||z||₂)`` with
``ε' = ε / √n``: a uniformly random direction times a radius drawn from
Gamma(D, 1/ε') (the D-dimensional Euclidean d_X mechanism).  For every pair of
boxes ``x, x'`` of the same size and every output ``y``,
``p(y | x) / p(y | x') = exp(ε' (||y - c'|| - ||y - c||)) ≤ exp(ε' ||c - c'||)
= exp(ε · d(x, x'))`` (triangle inequality), so for every output set ``S``

    P[M(x) ∈ S] ≤ exp(ε · d(x, x')) · P[M(x') ∈ S].

The noise added to the low-pass image has an RMS of ``D / ε`` grey levels on
average (the radius' mean ``D / ε'`` spread over ``n`` values).  Inverting,
clipping to [0, 255] and rounding only use the noisy coefficients
(post-processing).  The bound is that of the ideal real-valued mechanism; the
sampler draws its randomness from the same sources as the Laplace mechanism
(:mod:`pixveil.privacy.rng`), cryptographically secure unless seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.laplace import check_epsilon
from pixveil.privacy.rng import NoiseSource, RandomState, noise_source
from pixveil.protect.base import MethodParams, ProtectionMethod, register_method
from pixveil.protect.classic import check_int, to_uint8
from pixveil.types import Region

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_EPSILON",
    "MetricPix",
    "dct_basis",
    "euclidean_dx_noise",
    "from_coefficients",
    "kept_frequencies",
    "lowpass_coefficients",
    "metric_distance",
]

#: Default privacy parameter, per grey level of RMS low-pass distance.
DEFAULT_EPSILON = 8.0
#: Default number of DCT frequencies kept across the region's longer side.
DEFAULT_BLOCKS = 8
#: Largest ``blocks``: the noise grows with ``3 · blocks²`` dimensions.
MAX_BLOCKS = 64


def dct_basis(n: int, k: int) -> np.ndarray:
    """The first ``k`` orthonormal DCT-II basis vectors of length ``n``, shape ``(k, n)``."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    i = np.arange(n, dtype=np.float64)
    f = np.arange(k, dtype=np.float64)[:, None]
    basis = np.cos(np.pi * (2 * i[None, :] + 1) * f / (2 * n)) * math.sqrt(2.0 / n)
    basis[0] = 1.0 / math.sqrt(n)
    return basis


def kept_frequencies(h: int, w: int, blocks: int) -> tuple[int, int]:
    """``(kh, kw)``: ``blocks`` frequencies across the longer side, in proportion across
    the shorter one, at least 1 and at most the side's length."""
    side = max(h, w)
    kh = min(h, max(1, round(blocks * h / side)))
    kw = min(w, max(1, round(blocks * w / side)))
    return kh, kw


def lowpass_coefficients(patch: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The ``(kh, kw, 3)`` lowest orthonormal DCT coefficients of each channel.

    Parameters
    ----------
    patch : ndarray of shape (h, w, 3), uint8 or float
    kh, kw : int

    Returns
    -------
    ndarray of shape (kh, kw, 3), float64
    """
    h, w = patch.shape[:2]
    bh, bw = dct_basis(h, kh), dct_basis(w, kw)
    x = patch.astype(np.float64)
    return np.einsum("ah,hwc,bw->abc", bh, x, bw)


def from_coefficients(coef: np.ndarray, h: int, w: int) -> np.ndarray:
    """The ``(h, w, 3)`` float image whose kept DCT coefficients are ``coef`` (others 0)."""
    kh, kw = coef.shape[:2]
    return np.einsum("ah,abc,bw->hwc", dct_basis(h, kh), coef, dct_basis(w, kw))


def metric_distance(x: np.ndarray, y: np.ndarray, *, blocks: int = DEFAULT_BLOCKS) -> float:
    """``d(x, y)``: RMS grey-level difference of the two boxes' low-pass versions.

    The distance ``metric-pix`` is private for: ``P[M(x) ∈ S] ≤ exp(ε · d(x, y))
    · P[M(y) ∈ S]``.

    Parameters
    ----------
    x, y : ndarray of shape (h, w, 3)
        Two boxes of the same size.
    blocks : int, keyword-only
        The method's ``blocks``.
    """
    if x.shape != y.shape or x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"need two (h, w, 3) boxes of one size, got {x.shape} and {y.shape}")
    h, w = x.shape[:2]
    kh, kw = kept_frequencies(h, w, blocks)
    diff = lowpass_coefficients(x, kh, kw) - lowpass_coefficients(y, kh, kw)
    return float(np.linalg.norm(diff) / math.sqrt(h * w * 3))


def euclidean_dx_noise(
    dim: int, epsilon: float, size: int = 1, *, random_state: RandomState = None
) -> np.ndarray:
    """Samples of the ``dim``-dimensional Euclidean d_X mechanism's noise.

    Each row has density proportional to ``exp(-epsilon · ||z||₂)``: a uniform
    direction (a normalised standard normal vector, Box-Muller from 52-bit
    uniforms) times a Gamma(dim, 1/epsilon) radius (a sum of ``dim``
    exponentials).  Adding one to ``f(x)`` makes the release ε-d_X-private for
    ``d(x, x') = ||f(x) - f(x')||₂``.

    Parameters
    ----------
    dim : int
        Dimension, ``>= 1``.
    epsilon : float
        ``> 0``; ``math.inf`` gives zeros (and warns).
    size : int
        Number of samples.
    random_state : None, int, numpy.random.Generator or NoiseSource, keyword-only
        None: cryptographically secure (:class:`~pixveil.privacy.SecureSource`).

    Returns
    -------
    ndarray of shape (size, dim), float64
    """
    eps = check_epsilon(epsilon)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if math.isinf(eps):
        return np.zeros((size, dim))
    source: NoiseSource = noise_source(random_state)
    u1 = source.open_uniform((size, dim))
    u2 = source.open_uniform((size, dim))
    g = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # probability 0; keeps the direction finite
    radius = -np.log(source.open_uniform((size, dim))).sum(axis=1, keepdims=True) / eps
    return g / norms * radius


@register_method("metric-pix")
class MetricPix(ProtectionMethod):
    """Metric-private obfuscation in the DCT domain (after Fan, ICME 2019).

    The region's box becomes its ``kh × kw`` lowest orthonormal DCT
    coefficients per channel (``blocks`` across the longer side), those
    ``D = 3 · kh · kw`` numbers get noise of density ∝ ``exp(-ε ||z||₂ / √n)``
    (``n = 3 · h · w``), and the noisy coefficients are turned back into a
    smooth image, clipped and rounded.  On average the noise has an RMS of
    ``D / ε`` grey levels.

    Guarantee
    ---------
    ε-d_X-privacy (metric privacy) for the content of the region's box: for
    any two boxes ``x, x'`` of the same size and any set ``S`` of outputs,
    ``P[output(x) ∈ S] ≤ exp(ε · d(x, x')) · P[output(x') ∈ S]``, where
    ``d(x, x')`` is the root-mean-square difference in grey levels between
    the two boxes' low-pass versions (their kept DCT frequencies), which is at
    most the RMS pixel difference between the boxes
    (:func:`metric_distance`).  Every box of the same size is a "neighbour",
    at its own distance: images that look alike at the kept resolution are
    hard to tell apart, images that look different are not (two different
    faces typically lie 40-90 grey levels apart, a loss of 40-90 ε; so at the
    useful ε of a few units this hides small and smooth changes, *not*
    identity).  This is a weaker notion than ``dp-pix``'s ε-DP: there is no
    fixed budget for a whole face.

    Not covered: the position, size and shape of the regions (chosen by a
    detector that is not private); faces the detector missed; pixels outside
    the region's box; metadata; repeated releases (``k`` releases of the same
    content cost ``k · ε · d``).  When grown boxes overlap a pixel feeds
    several releases.  Pixels of the box outside an ellipse mask feed the
    coefficients (they are covered by the bound) but are not replaced.  The
    bound is that of the ideal real-valued mechanism (see
    :class:`~pixveil.privacy.LaplaceMechanism` on floating point).  Noise is
    cryptographically secure unless a seeded generator is passed (tests only).
    """

    summary: ClassVar[str] = "low-pass DCT + Euclidean metric-privacy noise (Fan, ICME 2019)"
    guarantee: ClassVar[str] = (
        "ε-metric privacy: exp(ε·d) indistinguishability, d = RMS low-pass grey-level distance"
    )
    randomized: ClassVar[bool] = True

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``metric-pix``.

        Parameters
        ----------
        epsilon : float
            Privacy parameter per grey level of distance ``d``, ``> 0``
            (default 8.0).  ``math.inf`` removes the noise (a plain low-pass
            filter) and warns (:class:`~pixveil.errors.PrivacyLeakWarning`).
        blocks : int
            DCT frequencies kept across the region's longer side, ``[1, 64]``
            (default 8, as the grid of ``dp-pix``).  The noise grows with ``3 · blocks²`` dimensions.

        Raises
        ------
        PrivacyParameterError
            For any value out of range.
        """

        epsilon: float = DEFAULT_EPSILON
        blocks: int = DEFAULT_BLOCKS

        def __post_init__(self) -> None:
            super().__post_init__()
            check_epsilon(self.epsilon)
            check_int("blocks", self.blocks, 1, MAX_BLOCKS, error=PrivacyParameterError)

    params: Params

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        h, w = patch.shape[:2]
        kh, kw = kept_frequencies(h, w, int(self.params.blocks))
        coef = lowpass_coefficients(patch, kh, kw)
        eps_prime = float(self.params.epsilon) / math.sqrt(h * w * 3)
        noise = euclidean_dx_noise(coef.size, eps_prime, random_state=rng)
        noisy = coef + noise.reshape(coef.shape)
        return to_uint8(from_coefficients(noisy, h, w))
