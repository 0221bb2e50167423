"""Detectors of private content: ``faces``, ``plates``, ``text`` and ``text-pii``."""

from __future__ import annotations

import importlib

from pixveil.detect.base import DETECTORS, Detector, get_detector, register_detector

__all__ = ["DETECTORS", "Detector", "available_targets", "get_detector", "register_detector"]

_BUILTIN = (
    "pixveil.detect.faces",
    "pixveil.detect.plates",
    "pixveil.detect.text",
)
_loaded = False


def _load_builtin() -> None:
    """Import the built-in detector modules so they register themselves (lazily)."""
    global _loaded
    if _loaded:
        return
    for mod in _BUILTIN:
        importlib.import_module(mod)
    _loaded = True


def available_targets() -> list[str]:
    """Names accepted by ``--targets``."""
    _load_builtin()
    return DETECTORS.names()
