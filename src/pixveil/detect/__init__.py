"""Detectors of private content: ``faces``, ``plates``, ``text`` and ``text-pii``."""

from __future__ import annotations

from pixveil.detect.base import DETECTORS, Detector, get_detector, register_detector

__all__ = ["DETECTORS", "Detector", "available_targets", "get_detector", "register_detector"]


def available_targets() -> list[str]:
    """Names accepted by ``--targets`` (the built-in detectors are registered on first use)."""
    return DETECTORS.names()
