"""Privacy mechanisms: the Laplace mechanism and the source of its randomness.

>>> from pixveil.privacy import LaplaceMechanism
>>> mech = LaplaceMechanism(epsilon=0.5, sensitivity=1.0)  # noise from os.urandom
>>> mech.scale
2.0
"""

from __future__ import annotations

from pixveil.privacy.laplace import LaplaceMechanism, check_epsilon, laplace_noise
from pixveil.privacy.rng import NoiseSource, SecureSource, SeededSource, noise_source

__all__ = [
    "LaplaceMechanism",
    "NoiseSource",
    "SecureSource",
    "SeededSource",
    "check_epsilon",
    "laplace_noise",
    "noise_source",
]
