"""The latent Laplace mechanism of ``gan-face``.

A face is encoded into a latent code ``z`` of the generator (dimension ``d``,
128 for the shipped model).  The mechanism releases

    y  = clip(z, -c, c) + Lap(Δ/ε)^d,   Δ = 1          (the mechanism)
    z' = project( T(y) )                              (post-processing)

and the generator turns ``z'`` into the replacement face.  ``T`` maps each
coordinate of the noisy code through the CDF of its own distribution under the
generator's prior (a clipped N(0, 1) plus Laplace noise) and then through the
inverse normal CDF, so the released code has N(0, 1) coordinates again,
like the codes the generator was trained on.  Without it the heavy-tailed
Laplace coordinates land off the generator's manifold and the faces come out
blotchy.  ``T`` is monotone per coordinate, so the order of the noisy values
(and thus what they say about the face) is unchanged.

Guarantee (exact statement)
---------------------------
*Metric privacy (ε·d-privacy, Chatzikokolakis et al. 2013) with respect to the
L1 distance between latent codes.*  For any two faces whose codes are ``z1``
and ``z2`` and every set ``S`` of outputs,

    P[M(z1) ∈ S] ≤ exp(ε · ||z1 - z2||_1) · P[M(z2) ∈ S].

Clipping each coordinate to ``[-c, c]`` is 1-Lipschitz in L1, so the bound holds
for the raw codes as well as for the clipped ones.  ``T`` and the final
projection onto the sphere of radius ``√d`` (where the generator's training
codes live) only use the noisy code and public constants (ε, c, the prior), so
they are post-processing and keep the guarantee.

*The ε-DP it implies.*  Over the clipped set ``[-c, c]^d`` the largest L1
distance is its diameter ``D = 2·c·d``, so the mechanism is ``(ε·D)``-DP when
*any* two faces are neighbours.  For the shipped model (d = 128, c = 3)
``D = 768``: at ε = 1 that is a 768-DP statement, which is formally true and
practically empty.  The useful reading is the metric one: codes that are close
(the same person photographed twice, a small change of expression) are hard to
tell apart, and the protection against re-identification between *different*
people is measured empirically (see ``docs/BENCHMARKS.md``), not promised.

*ε = 0* releases a code drawn from the generator's prior, independent of the
face: a random synthetic face (perfect privacy for the face region, no utility
from the original face beyond its position, size and the surrounding colours).

*ε = ∞* adds no noise and warns with :class:`~pixveil.errors.PrivacyLeakWarning`:
the output is then the GAN's reconstruction of the person.

What it does not cover
----------------------
Only the face's latent code is protected.  Not covered: pixels outside the
replaced region (hair, ears, clothes, background, other people), faces the
detector missed, the face's position, size and pose (they steer the swap),
the colour and lighting taken from the region's surroundings to blend the new
face in, and the region's mean colour and contrast, which the new face takes on.  Each face gets independent noise; one person appearing in ``k``
photos composes to ``k·ε`` (metric) over those releases.

Noise comes from the operating system's CSPRNG unless a seed or numpy
Generator is given (tests only).
"""

from __future__ import annotations

import functools
import math
import numbers
from statistics import NormalDist

import numpy as np

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.laplace import check_epsilon, laplace_noise
from pixveil.privacy.rng import NoiseSource, RandomState, noise_source

__all__ = ["LatentLaplace", "gaussianize", "standard_normal"]

_GRID = 4001


@functools.lru_cache(maxsize=32)
def _gaussianize_table(scale: float, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid ``y <= 0`` and ``Φ⁻¹(F(y))`` for ``F`` the CDF of clip(N(0,1), ±clip) + Lap(scale)."""
    nd = NormalDist()
    y = np.linspace(-(clip + 40.0 * scale), 0.0, _GRID)
    x = np.linspace(-clip, clip, 801)
    w = np.exp(-0.5 * x**2)
    w[[0, -1]] *= 0.5  # trapezoid
    tail = nd.cdf(-clip)  # mass clipped onto each bound
    w *= (1.0 - 2.0 * tail) / w.sum()
    xs = np.concatenate([x, [-clip, clip]])
    ws = np.concatenate([w, [tail, tail]])
    t = (y[:, None] - xs[None, :]) / scale
    lap_cdf = np.where(
        t < 0, 0.5 * np.exp(np.minimum(t, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(t, 0.0))
    )
    cdf = np.clip(lap_cdf @ ws, 1e-300, 0.5)
    g = np.array([nd.inv_cdf(float(p)) if p < 0.5 else 0.0 for p in cdf])
    return y, g


def gaussianize(noisy: np.ndarray, *, scale: float, clip: float) -> np.ndarray:
    """Map noisy latent coordinates to N(0, 1) ones: ``Φ⁻¹(F(y))`` per coordinate.

    ``F`` is the CDF of ``clip(N(0, 1), -clip, clip) + Laplace(scale)``, the
    distribution of a noisy coordinate when the face's code follows the
    generator's prior.  Monotone and odd; post-processing of the noisy code.
    """
    if scale <= 0:
        return np.asarray(noisy, np.float64)
    y, g = _gaussianize_table(float(scale), float(clip))
    a = np.asarray(noisy, np.float64)
    out = np.interp(-np.abs(a), y, g)  # symmetric: F(-y) = 1 - F(y)
    return np.where(a > 0, -out, out)


def standard_normal(size: int | tuple[int, ...], source: NoiseSource) -> np.ndarray:
    """Independent N(0, 1) draws from ``source`` (Box-Muller on open uniforms)."""
    shape = (size,) if isinstance(size, int) else tuple(size)
    n = int(np.prod(shape))
    m = (n + 1) // 2
    u1 = source.open_uniform(m)
    u2 = source.open_uniform(m)
    r = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])
    return z[:n].reshape(shape)


class LatentLaplace:
    """Clip, add Laplace noise, map back to the prior: the latent mechanism (see the module docstring).

    Parameters
    ----------
    epsilon : float
        Metric-privacy parameter per unit of L1 latent distance, ``>= 0``.
        ``0`` = random code; ``math.inf`` = no noise (warns).
    clip : float
        Coordinate bound ``c`` of the clipped set, ``> 0``.
    dim : int
        Latent dimension ``d``.
    random_state : None, int, numpy Generator or NoiseSource
        None (default) = CSPRNG.  Seeds are for tests only.
    """

    sensitivity = 1.0

    def __init__(
        self, *, epsilon: float, clip: float = 3.0, dim: int, random_state: RandomState = None
    ) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
            raise PrivacyParameterError(f"epsilon must be a real number >= 0, got {epsilon!r}")
        self.epsilon: float = 0.0 if float(epsilon) == 0.0 else check_epsilon(epsilon)
        if isinstance(clip, bool) or not isinstance(clip, numbers.Real):
            raise PrivacyParameterError(f"clip must be a real number > 0, got {clip!r}")
        if not (math.isfinite(float(clip)) and float(clip) > 0):
            raise PrivacyParameterError(f"clip must be finite and > 0, got {clip!r}")
        if int(dim) < 1:
            raise PrivacyParameterError(f"dim must be >= 1, got {dim!r}")
        self.clip: float = float(clip)
        self.dim: int = int(dim)
        self._source: NoiseSource = noise_source(random_state)

    @property
    def scale(self) -> float:
        """Laplace scale per coordinate, ``Δ/ε`` (inf for ε = 0, 0 for ε = ∞)."""
        if self.epsilon == 0.0:
            return math.inf
        return 0.0 if math.isinf(self.epsilon) else self.sensitivity / self.epsilon

    @property
    def diameter(self) -> float:
        """L1 diameter ``2·c·d`` of the clipped set."""
        return 2.0 * self.clip * self.dim

    @property
    def dp_epsilon(self) -> float:
        """The ε of the standard DP bound over the clipped set: ``ε · diameter``."""
        return self.epsilon * self.diameter

    def privatize(self, z: np.ndarray, *, random_state: RandomState = None) -> np.ndarray:
        """Release a private code for each row of ``z`` (shape (d,) or (n, d)).

        ``random_state`` overrides the mechanism's noise source for this call
        (a seeded generator, for tests); None uses the source given at construction.
        """
        return self.to_prior(self.release(z, random_state=random_state))

    def release(self, z: np.ndarray, *, random_state: RandomState = None) -> np.ndarray:
        """The mechanism itself: ``clip(z) + Lap(Δ/ε)`` (float64, no post-processing).

        For ε = 0 a draw from the prior N(0, I), independent of ``z``.
        """
        arr = np.asarray(z, dtype=np.float64)
        if arr.shape[-1] != self.dim:
            raise ValueError(f"latent codes must have {self.dim} coordinates, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("latent codes must be finite")
        source = self._source if random_state is None else noise_source(random_state)
        if self.epsilon == 0.0:
            return standard_normal(arr.shape, source)
        clipped = np.clip(arr, -self.clip, self.clip)
        scale = self.scale
        return clipped + laplace_noise(scale, arr.shape, source) if scale > 0 else clipped

    def to_prior(self, noisy: np.ndarray) -> np.ndarray:
        """Post-processing: :func:`gaussianize` (for finite ε > 0), then project to the √d sphere."""
        out = np.asarray(noisy, np.float64)
        if 0.0 < self.epsilon < math.inf:
            out = gaussianize(out, scale=self.scale, clip=self.clip)
        norm = np.linalg.norm(out, axis=-1, keepdims=True)
        return (out * (math.sqrt(self.dim) / np.maximum(norm, 1e-12))).astype(np.float32)

    def __repr__(self) -> str:
        return f"LatentLaplace(epsilon={self.epsilon!r}, clip={self.clip!r}, dim={self.dim})"
