"""The latent Laplace mechanism of ``gan-face``.

A face is encoded into a latent code ``z`` of the generator (dimension ``d``,
128 for the shipped model).  The mechanism releases

    z' = project( clip(z, -c, c) + Lap(Δ/ε)^d ),   Δ = 1

and the generator turns ``z'`` into the replacement face.

Guarantee (exact statement)
---------------------------
*Metric privacy (ε·d-privacy, Chatzikokolakis et al. 2013) with respect to the
L1 distance between latent codes.*  For any two faces whose codes are ``z1``
and ``z2`` and every set ``S`` of outputs,

    P[M(z1) ∈ S] ≤ exp(ε · ||z1 - z2||_1) · P[M(z2) ∈ S].

Clipping each coordinate to ``[-c, c]`` is 1-Lipschitz in L1, so the bound holds
for the raw codes as well as for the clipped ones.  The final projection onto
the sphere of radius ``√d`` (where the generator's training codes live) only
uses the noisy code, so it is post-processing and keeps the guarantee.

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
detector missed, the face's position, size and pose (they steer the swap), and
the colour and lighting taken from the region's surroundings to blend the new
face in.  Each face gets independent noise; one person appearing in ``k``
photos composes to ``k·ε`` (metric) over those releases.

Noise comes from the operating system's CSPRNG unless a seed or numpy
Generator is given (tests only).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.laplace import check_epsilon, laplace_noise
from pixveil.privacy.rng import NoiseSource, RandomState, noise_source

__all__ = ["LatentLaplace", "standard_normal"]


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
    """Clip, add Laplace noise, project: the latent mechanism (see the module docstring).

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
        arr = np.asarray(z, dtype=np.float64)
        if arr.shape[-1] != self.dim:
            raise ValueError(f"latent codes must have {self.dim} coordinates, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("latent codes must be finite")
        source = self._source if random_state is None else noise_source(random_state)
        if self.epsilon == 0.0:
            noisy = standard_normal(arr.shape, source)
        else:
            clipped = np.clip(arr, -self.clip, self.clip)
            scale = self.scale
            noisy = clipped + laplace_noise(scale, arr.shape, source) if scale > 0 else clipped
        norm = np.linalg.norm(noisy, axis=-1, keepdims=True)
        return (noisy * (math.sqrt(self.dim) / np.maximum(norm, 1e-12))).astype(np.float32)

    def __repr__(self) -> str:
        return f"LatentLaplace(epsilon={self.epsilon!r}, clip={self.clip!r}, dim={self.dim})"
