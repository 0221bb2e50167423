"""The detector interface and registry.

A detector turns an RGB image into a list of :class:`~pixveil.types.Region`.
Detectors are registered under the *target* name the user types
(``--targets faces,plates``).  Instances hold loaded models and are reused: get
them through :func:`get_detector`, which caches one instance per set of options.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from pixveil.registry import Registry
from pixveil.types import Region
from pixveil.validate import check_image

__all__ = ["DETECTORS", "Detector", "check_image", "get_detector", "register_detector"]


class Detector(ABC):
    """Finds one kind of private object.

    Subclasses set :attr:`kind` (the ``Region.kind`` they emit) and implement
    :meth:`detect`.  Constructor options are keyword-only and validated on
    construction (``ValueError`` naming the parameter).
    """

    kind: ClassVar[str]

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Region]:
        """Find the objects in ``image``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
            The oriented image.

        Returns
        -------
        list of Region
            Boxes in pixel coordinates of ``image``, clipped to it, best score first.
        """


DETECTORS: Registry[type[Detector]] = Registry("detector")


def register_detector(name: str, *, force: bool = False) -> Any:
    """Class decorator registering a :class:`Detector` under a target name."""
    return DETECTORS.decorator(name, force=force)


_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Detector] = {}
_cache_lock = threading.Lock()


def get_detector(name: str, **options: Any) -> Detector:
    """The shared detector instance for ``name`` with these options (built once)."""
    from pixveil.detect import _load_builtin  # registers the built-in detectors

    _load_builtin()
    key = (name, tuple(sorted(options.items())))
    with _cache_lock:
        det = _cache.get(key)
        if det is None:
            det = DETECTORS.get(name)(**options)
            _cache[key] = det
    return det
