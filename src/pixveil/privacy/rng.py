"""Sources of randomness for privacy noise.

Privacy noise must come from a cryptographically secure source: the output of a
seeded pseudo-random generator is reproducible by anyone who learns or guesses
the seed, and then the noise can be subtracted.  pixveil therefore draws privacy
noise from the operating system's CSPRNG (:func:`os.urandom`) unless a test asks
for reproducibility with an explicit seed.

:func:`noise_source` makes that choice explicit:

==============================  ===============================================
``random_state``                source
==============================  ===============================================
``None`` (the default)          :class:`SecureSource` (``os.urandom``)
``int``                         :class:`SeededSource` over ``np.random.default_rng(seed)``
``numpy.random.Generator``      :class:`SeededSource` over that generator
a :class:`NoiseSource`          itself
==============================  ===============================================

Seeded sources exist for tests and for reproducing a figure; they give no
privacy, because the noise can be regenerated from the seed.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TypeAlias

import numpy as np

__all__ = [
    "NoiseSource",
    "RandomState",
    "SecureSource",
    "SeededSource",
    "noise_source",
]

#: Largest number of values drawn in one call (8 bytes each: 1 GiB).
_MAX_DRAW = 2**27


def _count(size: int | tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    shape = (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"size must be non-negative, got {size!r}")
    count = int(np.prod(shape, dtype=np.int64))
    if count > _MAX_DRAW:
        raise ValueError(f"at most {_MAX_DRAW} values can be drawn at once, asked for {count}")
    return shape, count


class NoiseSource(ABC):
    """Independent uniformly random 64-bit words, and uniforms built from them.

    Attributes
    ----------
    secure : bool
        True when the bits come from a cryptographically secure generator.
    """

    secure: bool

    def random_bits(self, size: int | tuple[int, ...]) -> np.ndarray:
        """Independent words with 64 uniformly random bits each.

        Parameters
        ----------
        size : int or tuple of int
            Output shape (at most 2**27 values per call).

        Returns
        -------
        ndarray of the given shape, uint64
        """
        shape, count = _count(size)
        return self._bits64(count).reshape(shape)

    def open_uniform(self, size: int | tuple[int, ...]) -> np.ndarray:
        """Independent uniform draws on the open interval (0, 1).

        Each value is ``(k + 0.5) · 2**-52`` with ``k`` uniform on the integers
        ``0 .. 2**52 - 1`` (the top 52 bits of a random word).  Every such value
        is exactly representable as a double, so the result is never 0, never 1
        and never exactly 0.5.

        Parameters
        ----------
        size : int or tuple of int
            Output shape.

        Returns
        -------
        ndarray of the given shape, float64, values in (0, 1)
        """
        k = self.random_bits(size) >> np.uint64(12)
        return (k.astype(np.float64) + 0.5) * 2.0**-52

    @abstractmethod
    def _bits64(self, count: int) -> np.ndarray:
        """``count`` independent uniformly random uint64 words, shape ``(count,)``."""


class SecureSource(NoiseSource):
    """Random bits from the operating system's CSPRNG (:func:`os.urandom`).

    This is the source used whenever no seed is given.  It cannot be seeded and
    holds no state that could be copied or replayed.
    """

    secure = True

    def _bits64(self, count: int) -> np.ndarray:
        return np.frombuffer(os.urandom(8 * count), dtype="<u8").astype(np.uint64)

    def __repr__(self) -> str:
        return "SecureSource()"


class SeededSource(NoiseSource):
    """Random bits from a NumPy generator: reproducible, for tests only.

    Parameters
    ----------
    generator : numpy.random.Generator
        Consumed in place: two mechanisms sharing one generator draw different noise.
    """

    secure = False

    def __init__(self, generator: np.random.Generator) -> None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"generator must be a numpy.random.Generator, got {type(generator).__name__}"
            )
        self.generator = generator

    def _bits64(self, count: int) -> np.ndarray:
        return self.generator.integers(0, 2**64, size=count, dtype=np.uint64)

    def __repr__(self) -> str:
        return f"SeededSource({self.generator!r})"


RandomState: TypeAlias = "int | np.integer | np.random.Generator | NoiseSource | None"


def noise_source(random_state: RandomState = None) -> NoiseSource:
    """The source of privacy noise selected by ``random_state``.

    Parameters
    ----------
    random_state : None, int, numpy.random.Generator or NoiseSource
        ``None`` selects the cryptographically secure :class:`SecureSource`
        (use this for every real release).  An int seeds a fresh NumPy
        generator and a Generator is used as is: both are reproducible and
        therefore give *no* privacy; they exist for tests.

    Returns
    -------
    NoiseSource

    Raises
    ------
    TypeError
        For any other type (a float, a bool, ``numpy.random.RandomState``...).
    ValueError
        For a negative seed.
    """
    if random_state is None:
        return SecureSource()
    if isinstance(random_state, NoiseSource):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return SeededSource(random_state)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state seed must be >= 0, got {random_state}")
        return SeededSource(np.random.default_rng(int(random_state)))
    raise TypeError(
        "random_state must be None (secure noise), an int seed or a numpy.random.Generator, "
        f"got {type(random_state).__name__}"
    )
