"""Protection methods, registered by name.

Built in: ``blur``, ``pixelate``, ``mask``, ``image``, ``dp-pix``, ``dp-blur``, ``metric-pix``,
``gan-face`` and ``plate-synth``.  Each class says what it does and what it
guarantees in one line (:attr:`ProtectionMethod.summary`,
:attr:`ProtectionMethod.guarantee`) and in full in its docstring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pixveil.protect.base import (
    METHODS,
    MethodParams,
    Protected,
    ProtectionMethod,
    RegionOutcome,
    Replacement,
    register_method,
)
from pixveil.types import Region

__all__ = [
    "METHODS",
    "MethodParams",
    "Protected",
    "ProtectionMethod",
    "RegionOutcome",
    "Replacement",
    "available_methods",
    "get_method",
    "method_class",
    "protect_regions",
    "register_method",
    "validate_params",
]


def get_method(name: str, **params: Any) -> ProtectionMethod:
    """Build the method registered as ``name`` with these parameters (validated)."""
    return METHODS.get(name)(**params)


def method_class(name: str) -> type[ProtectionMethod]:
    """The class registered as ``name`` (its ``Params``, ``summary``, ``guarantee``), unbuilt."""
    return METHODS.get(name)


def validate_params(name: str, params: Mapping[str, Any] | None = None) -> MethodParams:
    """Check a method name and its parameters without building the method.

    Only the method's ``Params`` dataclass is built: no model is loaded and no
    file is read, so this is cheap enough for a command line or a config check.

    Returns
    -------
    MethodParams
        The validated parameters.

    Raises
    ------
    ValueError
        For an unknown method, a parameter the method does not have (the message
        lists those it has), or a value its ``Params`` refuse
        (:class:`~pixveil.errors.PrivacyParameterError` for privacy parameters).
    """
    if name not in available_methods():
        raise ValueError(f"unknown method {name!r}; known: {', '.join(available_methods())}")
    cls = method_class(name).Params
    given = dict(params or {})
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"method {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(allowed)}"
        )
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in given
    ]
    if required:
        raise ValueError(f"method {name!r} needs the parameter {', '.join(required)}")
    return cls(**given)


def available_methods() -> list[str]:
    """Names of the registered methods (the built-in ones are registered on first use)."""
    return METHODS.names()


def protect_regions(
    method: ProtectionMethod,
    pixels: np.ndarray,
    regions: Iterable[Region],
    *,
    rng: np.random.Generator | None = None,
    companion: ProtectionMethod | None = None,
) -> Protected:
    """Protect every region: with ``method`` where it handles the kind, else with ``companion``.

    ``companion`` defaults to the default method (``blur``); kind-specific methods
    (``gan-face``, ``plate-synth``) thus never leave another kind unprotected.

    Returns
    -------
    Protected
        The protected copy of ``pixels`` and one outcome per region (those of
        ``method`` first, then the companion's).
    """
    from pixveil.config import DEFAULT_METHOD

    regions = list(regions)
    mine = [r for r in regions if method.handles(r)]
    others = [r for r in regions if not method.handles(r)]
    first = method.protect(pixels, mine, rng=rng)
    if not others:
        return first
    if companion is None:
        companion = get_method(DEFAULT_METHOD)
    second = companion.protect(first.image, others, rng=rng)
    return Protected(second.image, first.outcomes + second.outcomes)
