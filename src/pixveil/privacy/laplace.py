"""The Laplace mechanism.

For a query ``f`` whose L1 sensitivity over the chosen neighbouring relation is
``Δ = max ||f(x) - f(x')||_1``, releasing ``f(x) + Z`` with ``Z`` a vector of
independent Laplace(0, Δ/ε) variables is ε-differentially private (Dwork,
McSherry, Nissim and Smith 2006): for every pair of neighbours ``x, x'`` and
every set of outputs ``S``, ``P[M(x) ∈ S] ≤ exp(ε) · P[M(x') ∈ S]``.  Anything
computed from the released values alone (rounding, clipping, resizing,
blurring) keeps the guarantee (post-processing).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from pixveil.errors import PrivacyLeakWarning, PrivacyParameterError
from pixveil.privacy.rng import NoiseSource, RandomState, noise_source

__all__ = ["LaplaceMechanism", "check_epsilon", "laplace_noise"]


def check_epsilon(epsilon: object, *, name: str = "epsilon") -> float:
    """Validate a privacy budget and return it as a float.

    Parameters
    ----------
    epsilon : float
        Must be a real number > 0.  ``math.inf`` is accepted (it means *no*
        privacy) and emits a :class:`~pixveil.errors.PrivacyLeakWarning`.
    name : str
        Parameter name used in messages.

    Raises
    ------
    PrivacyParameterError
        When ``epsilon`` is not a real number, is NaN, or is <= 0.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise PrivacyParameterError(
            f"{name} must be a real number > 0, got {type(epsilon).__name__} {epsilon!r}"
        )
    value = float(epsilon)
    if math.isnan(value) or value <= 0.0:
        raise PrivacyParameterError(
            f"{name} must be > 0 (smaller is more private), got {epsilon!r}"
        )
    if math.isinf(value):
        warnings.warn(
            f"{name}=inf adds no noise: the output carries NO differential-privacy guarantee",
            PrivacyLeakWarning,
            stacklevel=3,
        )
    return value


def laplace_noise(scale: float, size: int | tuple[int, ...], source: NoiseSource) -> np.ndarray:
    """Independent Laplace(0, ``scale``) samples.

    A Laplace variable is an exponential one with a random sign:
    ``Z = scale · S · (-log V)`` with ``S = ±1`` (one random bit) and ``V``
    uniform on ``(0, 1]`` on the grid ``j · 2**-53``, ``j = 1 .. 2**53`` (53 other
    bits of the same random word).  Every sample is finite: ``|Z| ≤ 53 · ln 2 ·
    scale ≈ 36.7 · scale`` (the tail beyond has probability 2**-53).

    Parameters
    ----------
    scale : float
        ``b`` of the Laplace density ``exp(-|z| / b) / (2 b)``; >= 0 and finite.
    size : int or tuple of int
        Output shape.
    source : NoiseSource
        Where the random bits come from (see :func:`pixveil.privacy.rng.noise_source`).

    Returns
    -------
    ndarray of the given shape, float64
    """
    if not (math.isfinite(scale) and scale >= 0.0):
        raise PrivacyParameterError(f"scale must be finite and >= 0, got {scale!r}")
    bits = source.random_bits(size)
    v = ((bits >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53  # (0, 1]
    sign = np.where((bits & np.uint64(1)) == 1, -1.0, 1.0)
    return (-scale) * sign * np.log(v)


class LaplaceMechanism:
    """The Laplace mechanism: add Laplace(0, sensitivity/ε) noise to every value.

    Notes
    -----
    Guarantee: if ``sensitivity`` bounds the L1 distance ``||f(x) - f(x')||_1`` between the
    values of *any* two neighbouring inputs (all coordinates of the vector passed
    to :meth:`randomise` together), then :meth:`randomise` is ε-differentially
    private with respect to that neighbouring relation:
    ``P[M(x) ∈ S] ≤ exp(ε) · P[M(x') ∈ S]`` for every output set ``S``.  The
    sensitivity is the caller's claim: the mechanism cannot check it.

    The guarantee is the one of the ideal real-valued mechanism.  Samples are
    double-precision floats computed from 54 random bits (see
    :func:`laplace_noise`), which is known to leave small departures from the
    ideal distribution (Mironov, CCS 2012);
    pixveil quantises every released value to an integer in [0, 255], which
    hides the low-order bits such attacks rely on, but no formal bound for the
    floating-point implementation is claimed.

    Parameters
    ----------
    epsilon : float
        Privacy budget, ``0 < epsilon``.  ``math.inf`` means no noise at all and
        warns with :class:`~pixveil.errors.PrivacyLeakWarning`.
    sensitivity : float
        L1 sensitivity ``Δ`` of the query, finite and ``>= 0``.
    random_state : None, int, numpy.random.Generator or NoiseSource
        ``None`` (default) draws from the operating system's CSPRNG.  A seed or
        Generator makes the noise reproducible and is for tests only: it gives
        no privacy.

    Raises
    ------
    PrivacyParameterError
        When ``epsilon`` or ``sensitivity`` is out of range.

    Examples
    --------
    >>> mech = LaplaceMechanism(epsilon=1.0, sensitivity=2.0, random_state=0)
    >>> mech.scale
    2.0
    >>> mech.randomise(np.zeros(3)).shape
    (3,)
    """

    def __init__(
        self, *, epsilon: float, sensitivity: float, random_state: RandomState = None
    ) -> None:
        self._epsilon: float = check_epsilon(epsilon)
        if isinstance(sensitivity, bool) or not isinstance(sensitivity, numbers.Real):
            raise PrivacyParameterError(
                f"sensitivity must be a real number >= 0, got {type(sensitivity).__name__}"
            )
        sens = float(sensitivity)
        if not (math.isfinite(sens) and sens >= 0.0):
            raise PrivacyParameterError(f"sensitivity must be finite and >= 0, got {sensitivity!r}")
        self._sensitivity: float = sens
        self._source: NoiseSource = noise_source(random_state)

    @property
    def epsilon(self) -> float:
        """The privacy budget ε."""
        return self._epsilon

    @property
    def sensitivity(self) -> float:
        """The L1 sensitivity Δ the noise is calibrated to."""
        return self._sensitivity

    @property
    def scale(self) -> float:
        """The Laplace scale ``b = Δ / ε`` (0 when ε is infinite); the noise std is ``√2 · b``."""
        if math.isinf(self._epsilon):
            return 0.0
        return self._sensitivity / self._epsilon

    @property
    def variance(self) -> float:
        """Variance of the added noise, ``2 b²``."""
        return 2.0 * self.scale**2

    @property
    def secure(self) -> bool:
        """Whether the noise comes from a cryptographically secure source."""
        return self._source.secure

    def randomise(self, values: np.ndarray) -> np.ndarray:
        """Return ``values`` plus independent Laplace(0, scale) noise on every element.

        Parameters
        ----------
        values : array_like of real numbers, any shape
            The exact query answers ``f(x)``; must be finite.

        Returns
        -------
        ndarray of the same shape, float64
            ``f(x) + Z``.  A new array; ``values`` is not modified.

        Raises
        ------
        ValueError
            When ``values`` holds NaN or infinities (they would pass through
            the noise unchanged).
        """
        arr = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("values must be finite (NaN or inf would leak through the noise)")
        scale = self.scale
        if scale == 0.0:
            return arr.copy()
        return arr + laplace_noise(scale, arr.shape, self._source)

    def __repr__(self) -> str:
        return (
            f"LaplaceMechanism(epsilon={self._epsilon!r}, sensitivity={self._sensitivity!r}, "
            f"random_state={self._source!r})"
        )
