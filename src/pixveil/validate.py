"""Checks and parsing of user-supplied values, written once for the whole package.

Every bad value raises :class:`~pixveil.errors.InputError` (a ``ValueError``) or, for a
privacy parameter, :class:`~pixveil.errors.PrivacyParameterError` (also a
``ValueError``), with a one-line message that names the parameter, says what was
expected and what was received.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pixveil.errors import InputError

__all__ = ["check_image", "check_number", "check_pixel_limit", "describe", "parse_value"]


def describe(value: object) -> str:
    """``"uint8 array of shape (2, 3)"`` for arrays, the type name otherwise."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def check_image(image: object, *, name: str = "image") -> np.ndarray:
    """Check an RGB image array; returns it (C-contiguous).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        H and W at least 1.
    name : str
        How the value is called in the message.

    Raises
    ------
    InputError
        For anything else: ``"<name> must be an (H, W, 3) uint8 array, got <what>"``.
    """
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    ):
        raise InputError(f"{name} must be an (H, W, 3) uint8 array, got {describe(image)}")
    return np.ascontiguousarray(image)


def check_pixel_limit(pixels: object, max_pixels: int, *, name: str = "pixels") -> np.ndarray:
    """:func:`check_image`, then refuse more than ``max_pixels`` pixels (width x height).

    Raises
    ------
    InputError
        ``"<n> pixels exceeds the limit of <max> (use --max-pixels to raise it)"``,
        the same words as for a file.
    """
    image = check_image(pixels, name=name)
    n = int(image.shape[0]) * int(image.shape[1])
    if n > max_pixels:
        raise InputError(
            f"{n:,} pixels exceeds the limit of {max_pixels:,} (use --max-pixels to raise it)"
        )
    return image


def check_number(
    value: object,
    *,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    error: type[ValueError] = InputError,
) -> float:
    """Check that ``value`` is a finite number (an integer if asked) within the bounds.

    Returns
    -------
    float or int
        The value (an ``int`` when ``integer``).

    Raises
    ------
    ValueError (``error``)
        ``"<name> must be in [low, high), got <value>"`` and the like.
    """
    ok_type = (
        isinstance(value, (int, np.integer))
        if integer
        else isinstance(value, (int, float, np.integer, np.floating))
    )
    number: Any = value
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(number)):
        kind = "an integer" if integer else "a finite number"
        raise error(f"{name} must be {kind}, got {value!r}")
    v = float(number)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise error(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return int(number) if integer else v


def parse_value(text: str) -> Any:
    """Turn the text of a ``KEY=VALUE`` option into a value.

    ``true/yes/on`` -> True, ``false/no/off`` -> False, ``none/null`` -> None,
    ``inf/+inf/infinity`` -> ``math.inf`` (``-inf`` -> ``-math.inf``), integers, then
    floats; anything else stays a string (stripped).  Case-insensitive.
    """
    raw = text.strip()
    low = raw.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw
