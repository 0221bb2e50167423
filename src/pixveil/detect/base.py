"""The detector interface and registry.

A detector turns an RGB image into a list of :class:`~pixveil.types.Region`.
Detectors are registered under the *target* name the user types
(``--targets faces,plates``).  Instances hold loaded models and are reused: get
them through :func:`get_detector`, which caches one instance per set of options.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from pixveil.errors import DetectionError, PixveilError
from pixveil.registry import Registry
from pixveil.types import Region
from pixveil.validate import check_image

__all__ = [
    "DETECTORS",
    "Detector",
    "check_image",
    "detection_failures",
    "get_detector",
    "register_detector",
]


class Detector(ABC):
    """Finds one kind of private object.

    Subclasses set :attr:`kind` (the ``Region.kind`` they emit) and implement
    :meth:`detect`.  Constructor options are keyword-only and validated on
    construction (``ValueError`` naming the parameter).  What a detector puts in
    ``Region.landmarks`` and ``Region.label`` is written in its class notes; its
    :meth:`detect` inherits the docstring below.
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
            ``kind`` the detector's :attr:`kind`; boxes in pixel coordinates of
            ``image``, clipped to it; best score first.

        Raises
        ------
        InputError
            If ``image`` is not an ``(H, W, 3)`` uint8 array.
        ModelError
            If a model cannot be loaded or fails to run.
        DetectionError
            When anything else goes wrong (the image must then not be released).
        """


@contextmanager
def detection_failures(what: str, image: np.ndarray) -> Iterator[None]:
    """Report an unexpected failure inside the block as a :class:`DetectionError`.

    pixveil's own errors (a :class:`~pixveil.errors.ModelError`...) pass through;
    anything else becomes ``DetectionError("<what> detection failed on a WxH image:
    <cause>")``, chained to its cause, so that the caller fails closed.
    """
    try:
        yield
    except PixveilError:
        raise
    except Exception as exc:
        h, w = image.shape[:2]
        raise DetectionError(f"{what} detection failed on a {w}x{h} image: {exc}") from exc


DETECTORS: Registry[type[Detector]] = Registry(
    "detector",
    builtin=(
        "pixveil.detect.faces",
        "pixveil.detect.plates",
        "pixveil.detect.plate_net",
        "pixveil.detect.text",
    ),
)


def register_detector(name: str, *, force: bool = False) -> Any:
    """Class decorator registering a :class:`Detector` under a target name."""
    return DETECTORS.decorator(name, force=force)


_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Detector] = {}
_cache_lock = threading.Lock()


def get_detector(name: str, **options: Any) -> Detector:
    """The shared detector instance for ``name`` with these options (built once)."""
    key = (name, tuple(sorted(options.items())))
    with _cache_lock:
        det = _cache.get(key)
        if det is None:
            det = DETECTORS.get(name)(**options)
            _cache[key] = det
    return det
