"""Protection methods, registered by name.

Built in: ``blur``, ``pixelate``, ``mask``, ``image``, ``dp-pix``, ``dp-blur``,
``gan-face`` and ``plate-synth``.  Each class says what it does and what it
guarantees in one line (:attr:`ProtectionMethod.summary`,
:attr:`ProtectionMethod.guarantee`) and in full in its docstring.
"""

from __future__ import annotations

import importlib
from typing import Any

from pixveil.protect.base import METHODS, MethodParams, ProtectionMethod, register_method

__all__ = [
    "METHODS",
    "MethodParams",
    "ProtectionMethod",
    "available_methods",
    "get_method",
    "method_class",
    "register_method",
]

_BUILTIN = (
    "pixveil.protect.classic",
    "pixveil.protect.replace",
    "pixveil.protect.dp",
    "pixveil.protect.gan",
    "pixveil.protect.plates",
)
_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _BUILTIN:
        importlib.import_module(mod)
    _loaded = True


def get_method(name: str, **params: Any) -> ProtectionMethod:
    """Build the method registered as ``name`` with these parameters (validated)."""
    _load_builtin()
    return METHODS.get(name)(**params)


def method_class(name: str) -> type[ProtectionMethod]:
    """The class registered as ``name`` (its ``Params``, ``summary``, ``guarantee``), unbuilt."""
    _load_builtin()
    return METHODS.get(name)


def available_methods() -> list[str]:
    _load_builtin()
    return METHODS.names()
