"""Synthetic licence plates composited on scenes: training and test data for the plate detector.

Everything here is NumPy, OpenCV and Pillow (no torch) and deterministic given a seed:
sample ``index`` of a :class:`SceneSynth` with seed ``s`` is drawn from
``np.random.default_rng([s, index])`` and depends on nothing else (not on the order in
which samples are asked for), so training resumes on exactly the data it would have seen.

Why one module of ~1,300 lines: it is a data generator whose parts (plate formats,
glyph rendering, wear and lighting, backgrounds, distractors, composition) all feed
one sampling function and share its random stream; most of the length is the
per-format drawing code.  It is training-only code (not on the inference path).

What is drawn
-------------
**Plates** (:func:`render_plate`), in the formats of :data:`FORMATS`:

``eu``
    One line, about 4.7:1, blue strip with a ring of dots and a country code on the
    left, black on white (sometimes on yellow).
``eu_double``
    Two lines, about 1.5:1, strip on the left.
``uk``
    One line, no strip or a strip, black on yellow (rear) or white (front).
``us``
    2:1, a state name above and a slogan below the number, coloured ink on white or a
    pale tint, sometimes a gradient and registration stickers.
``us_vanity``
    As ``us`` with letters only (3 to 7 letters).
``dark``
    Light characters on a dark plate (black, dark blue, dark green, maroon), one line.
``square``
    Two short lines on an almost square plate (motorcycles, some vans).

Characters come from Pillow's scalable default font (Aileron, Pillow >= 10.1) and
OpenCV's Hershey fonts (simplex, duplex, complex, triplex), at several stroke weights
and condensed to plate proportions; frames, bolts, stickers, dirt and reflections are
random.  (plate-synth's renderer in :mod:`pixveil.protect.plates` redraws text *inside
an existing plate* from that plate's own colours and has no public drawing function, so
the whole-plate drawing here is separate.)

**Scenes** (:class:`SceneSynth`): a background, plates pasted with perspective (tilt up
to about 20 degrees, yaw and pitch foreshortening), 30 to 400 px wide (log-uniform by
default), lit like their surroundings, blurred to their size, dirty or partly occluded
(the quadrilateral is still the whole plate), and clutter that looks a little like
plates (signs, shop lettering, car badges, tail-lights, numbers painted on vehicles),
then whole-image night colour casts, motion blur, noise and JPEG compression.
Backgrounds are, by weight:

* annotated street photos (:class:`Photo`): their own plate is kept (a positive, its
  axis-aligned box as the quadrilateral), covered by a rendered plate (a positive) or
  inpainted away (then the photo is a background only);
* face photos (LFW-like, a mosaic of 1 to 9): negatives apart from the pasted plates;
* generated clutter (gradients, shapes, lines) when no photos are given.

The output of a sample is a :class:`SynthSample`: the image and one quadrilateral per
plate, ``(N, 4, 2)`` float32, corners clockwise from the plate's own top-left.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "FORMATS",
    "Photo",
    "SceneSynth",
    "SynthConfig",
    "SynthSample",
    "plate_text",
    "quad_boxes",
    "render_plate",
]

#: Plate formats :func:`render_plate` draws.
FORMATS = ("eu", "eu_double", "uk", "us", "us_vanity", "dark", "square")

#: Width / height of each format (the ``dark`` format draws its own, 2.2 to 4.7).
_ASPECT = {
    "eu": 4.6,
    "eu_double": 1.45,
    "uk": 4.6,
    "us": 2.0,
    "us_vanity": 2.0,
    "dark": 3.5,
    "square": 1.2,
}

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_ALL_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
# Character patterns: L letter, D digit, other characters as written.
_EU_PATTERNS = (
    "LL-DDD-LL",
    "LL DDDDD",
    "L LL DDDD",
    "LL L DDD",
    "DDDD LLL",
    "LLL DDD",
    "LL DDD LL",
    "L DDD LLL",
    "LLL-DDDD",
    "DD LLL DD",
    "LLDDDDD",
    "L-DDDDDD",
)
_UK_PATTERNS = ("LLDD LLL", "LDDD LLL", "LLL DDDL", "LLDDLLL")
_US_PATTERNS = ("DLLLDDD", "LLL DDDD", "LLL-DDDD", "DDD LLL", "LLL DDD", "DLLDDD", "LLDDDDD")
_DOUBLE_PATTERNS = (("LL DDD", "LL"), ("LLL", "DDDD"), ("LL", "DDD LL"), ("LL D", "DDDD"))
_SQUARE_PATTERNS = (("LL", "DDD"), ("LLL", "DD"), ("DD", "LLDD"), ("L DD", "DDD"))
_STATES = (
    "CALIFORNIA",
    "TEXAS",
    "NEW YORK",
    "FLORIDA",
    "OHIO",
    "OREGON",
    "NEVADA",
    "ARIZONA",
    "GEORGIA",
    "MICHIGAN",
    "ILLINOIS",
    "VERMONT",
    "MAINE",
    "IOWA",
    "UTAH",
    "IDAHO",
    "ALASKA",
    "COLORADO",
    "VIRGINIA",
    "KANSAS",
)
_SLOGANS = (
    "Sunshine State",
    "Live Free or Die",
    "Land of Lincoln",
    "The Great Lakes State",
    "Famous Potatoes",
    "Lone Star State",
    "Grand Canyon State",
    "dmv.gov",
    "Vacationland",
    "Green Mountain State",
    "Empire State",
    "Wild Wonderful",
)
_COUNTRIES = ("D", "F", "NL", "B", "I", "E", "PL", "CZ", "A", "L", "P", "S", "GB", "UA")
_WORDS = (
    "OPEN",
    "EXIT",
    "STOP",
    "HOTEL",
    "PIZZA",
    "PHARMACY",
    "PARKING",
    "BAKERY",
    "TAXI",
    "BUS",
    "SALE",
    "CAFE",
    "BANK",
    "POLICE",
    "SCHOOL",
    "ONE WAY",
    "NO ENTRY",
    "CITY CENTRE",
    "AIRPORT",
    "MARKET",
    "BAR",
    "SHOP",
    "OUTLET",
    "GARAGE",
    "SERVICE",
    "RENTAL",
    "DELI",
    "BOOKS",
    "ZONE",
    "WASH",
    "TIRES",
    "FUEL",
    "GAS",
    "MOTEL",
    "DINER",
    "KEBAB",
    "APOTHEKE",
    "BOULANGERIE",
    "TABAC",
    "METRO",
    "PUSH",
    "PULL",
    "SPEED LIMIT",
    "YIELD",
    "DETOUR",
)
_BADGES = (
    "GS300",
    "320i",
    "A4",
    "TDI",
    "V6",
    "4MATIC",
    "RS3",
    "GTI",
    "X5",
    "HYBRID",
    "S60",
    "C220",
)

_FONTS = ("pil", "simplex", "duplex", "complex", "triplex")
_CV_FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX,
}

# Height, in pixels, of the canonical plate texture (before warping into a scene).
_TEX_H = 112


# ----------------------------------------------------------------------------- text


def _from_pattern(pattern: str, rng: np.random.Generator) -> str:
    out = []
    for c in pattern:
        if c == "L":
            out.append(_LETTERS[rng.integers(len(_LETTERS))])
        elif c == "D":
            out.append(_DIGITS[rng.integers(10)])
        else:
            out.append(c)
    return "".join(out)


def plate_text(fmt: str, *, rng: np.random.Generator) -> tuple[str, ...]:
    """Random characters for a plate of format ``fmt``: one string per line.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    tuple of str
        One line (most formats) or two (``eu_double``, ``square``).
    """
    _check_format(fmt)
    if fmt in ("eu", "dark"):
        pats = _EU_PATTERNS + _US_PATTERNS if fmt == "dark" else _EU_PATTERNS
        return (_from_pattern(pats[rng.integers(len(pats))], rng),)
    if fmt == "uk":
        return (_from_pattern(_UK_PATTERNS[rng.integers(len(_UK_PATTERNS))], rng),)
    if fmt == "us":
        return (_from_pattern(_US_PATTERNS[rng.integers(len(_US_PATTERNS))], rng),)
    if fmt == "us_vanity":
        n = int(rng.integers(3, 8))
        return ("".join(_ALL_LETTERS[rng.integers(26)] for _ in range(n)),)
    pats2 = _DOUBLE_PATTERNS if fmt == "eu_double" else _SQUARE_PATTERNS
    a, b = pats2[rng.integers(len(pats2))]
    return (_from_pattern(a, rng), _from_pattern(b, rng))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


@lru_cache(maxsize=8)
def _pil_font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no scalable default font
        return None


def _text_alpha(text: str, font: str, weight: float) -> np.ndarray:
    """Alpha mask (float32 in [0, 1]) of ``text``, cropped to its ink, about 96 px high.

    ``weight`` in [0, 1] sets the stroke thickness.
    """
    pil = _pil_font(96) if font == "pil" else None
    if font == "pil" and pil is not None:
        from PIL import Image, ImageDraw

        stroke = round(1 + 5 * weight)
        w = int(70 * max(1, len(text))) + 64
        img = Image.new("L", (w, 192), 0)
        ImageDraw.Draw(img).text(
            (24, 32), text, fill=255, font=pil, stroke_width=stroke, stroke_fill=255
        )
        a = np.asarray(img, dtype=np.float32) / 255.0
    else:
        cv_font = _CV_FONTS.get(font, cv2.FONT_HERSHEY_DUPLEX)
        thick = round(5 + 9 * weight)
        (tw, th), base = cv2.getTextSize(text, cv_font, 3.0, thick)
        a8 = np.zeros((th + base + 40, tw + 40), np.uint8)
        cv2.putText(a8, text, (20, th + 20), cv_font, 3.0, 255, thick, cv2.LINE_AA)
        a = a8.astype(np.float32) / 255.0
    ys, xs = np.nonzero(a > 0.05)
    if ys.size == 0:
        return np.zeros((8, 8), np.float32)
    return np.ascontiguousarray(a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _draw_text(
    canvas: np.ndarray,
    text: str,
    rect: tuple[float, float, float, float],
    ink: np.ndarray,
    *,
    font: str,
    weight: float,
    squeeze: float = 1.0,
    align: str = "center",
) -> None:
    """Draw ``text`` into ``rect`` = (x0, y0, x1, y1) of ``canvas`` (float32 RGB), in place.

    The text fills the rect's height; it is condensed to fit the width (never
    stretched wider than ``squeeze`` times its natural width).
    """
    if not text.strip():
        return
    a = _text_alpha(text, font, weight)
    x0, y0, x1, y1 = rect
    h = max(2, round(y1 - y0))
    natural = a.shape[1] / a.shape[0] * h * squeeze
    w = max(2, round(min(x1 - x0, natural)))
    resized = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
    if align == "left":
        xs = round(x0)
    elif align == "right":
        xs = round(x1 - w)
    else:
        xs = round((x0 + x1 - w) / 2)
    ys = round(y0)
    H, W = canvas.shape[:2]
    xa, xb, ya, yb = max(0, xs), min(W, xs + w), max(0, ys), min(H, ys + h)
    if xb <= xa or yb <= ya:
        return
    sub = resized[ya - ys : yb - ys, xa - xs : xb - xs, None]
    canvas[ya:yb, xa:xb] = canvas[ya:yb, xa:xb] * (1 - sub) + ink * sub


# ---------------------------------------------------------------------------- plates


def _rgb(*v: float) -> np.ndarray:
    return np.array(v, np.float32)


def _jitter(c: np.ndarray, rng: np.random.Generator, amount: float = 12.0) -> np.ndarray:
    return np.clip(c + rng.normal(0, amount, 3), 0, 255).astype(np.float32)


def _rounded_mask(h: int, w: int, radius: float) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    r = int(max(0, min(radius, h / 2 - 1, w / 2 - 1)))
    if r <= 0:
        m[:] = 255
    else:
        cv2.rectangle(m, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(m, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(m, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return m.astype(np.float32) / 255.0


def _eu_strip(canvas: np.ndarray, x1: int, rng: np.random.Generator, font: str) -> None:
    h = canvas.shape[0]
    canvas[:, :x1] = _jitter(_rgb(0, 51, 153), rng, 10)
    cx, cy, r = x1 / 2, h * 0.3, min(x1, h) * 0.28
    yellow = _rgb(255, 204, 0)
    for k in range(12):
        t = 2 * math.pi * k / 12
        cv2.circle(
            canvas,
            (round(cx + r * math.cos(t)), round(cy + r * math.sin(t))),
            max(1, round(r * 0.14)),
            yellow.tolist(),
            -1,
            cv2.LINE_AA,
        )
    code = _COUNTRIES[rng.integers(len(_COUNTRIES))]
    _draw_text(
        canvas,
        code,
        (x1 * 0.12, h * 0.62, x1 * 0.88, h * 0.9),
        _rgb(255, 255, 255),
        font=font,
        weight=0.3,
    )


def render_plate(
    fmt: str,
    *,
    rng: np.random.Generator,
    text: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Draw one plate, face-on.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    rng : numpy.random.Generator
        Source of randomness (colours, font, layout, dirt).
    text : sequence of str, optional
        The lines to draw (default: :func:`plate_text`).

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), float32 in [0, 255]
        The plate; ``H`` is 112 (about 180 for two-line formats).
    alpha : ndarray of shape (H, W), float32 in [0, 1]
        Coverage (rounded corners are transparent).
    text : str
        The characters drawn, lines joined by a space.
    """
    _check_format(fmt)
    lines = tuple(text) if text is not None else plate_text(fmt, rng=rng)
    font = _FONTS[rng.integers(len(_FONTS))]
    weight = float(rng.uniform(0.15, 0.9))
    aspect = _ASPECT[fmt]
    if fmt == "dark":
        aspect = float(rng.uniform(2.2, 4.7))
    aspect *= float(rng.uniform(0.92, 1.08))
    two = len(lines) == 2
    h = _TEX_H if not two else round(_TEX_H * 1.6)
    w = max(h, round(h * aspect))
    squeeze = float(rng.uniform(0.65, 1.0))

    if fmt in ("eu", "eu_double"):
        bg = _rgb(250, 250, 248) if rng.random() < 0.85 else _rgb(250, 205, 20)
        ink = _rgb(15, 15, 15)
    elif fmt == "uk":
        bg = _rgb(250, 210, 30) if rng.random() < 0.6 else _rgb(248, 248, 248)
        ink = _rgb(10, 10, 10)
    elif fmt in ("us", "us_vanity"):
        tint = [
            _rgb(248, 248, 248),
            _rgb(235, 242, 250),
            _rgb(250, 245, 225),
            _rgb(232, 245, 232),
            _rgb(250, 235, 235),
            _rgb(245, 215, 90),
        ][rng.integers(6)]
        bg = tint
        ink = [
            _rgb(20, 30, 110),
            _rgb(15, 15, 15),
            _rgb(150, 20, 25),
            _rgb(20, 90, 40),
            _rgb(60, 30, 110),
        ][rng.integers(5)]
    elif fmt == "dark":
        bg = [_rgb(18, 18, 20), _rgb(20, 35, 95), _rgb(20, 70, 40), _rgb(95, 20, 30)][
            rng.integers(4)
        ]
        ink = [_rgb(245, 245, 245), _rgb(240, 220, 120), _rgb(200, 200, 205)][rng.integers(3)]
    else:  # square
        bg = _rgb(248, 248, 248) if rng.random() < 0.6 else _rgb(250, 210, 30)
        ink = _rgb(12, 12, 12)
    bg, ink = _jitter(bg, rng, 8), _jitter(ink, rng, 10)
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = bg
    if fmt in ("us", "us_vanity") and rng.random() < 0.5:  # a gradient or a scenic band
        g = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        other = _jitter(bg * rng.uniform(0.7, 1.0, 3).astype(np.float32), rng, 10)
        canvas[:] = bg * (1 - g) + other * g

    x_text0, x_text1 = 0.06 * w, 0.94 * w
    if fmt in ("eu", "eu_double") or (fmt == "uk" and rng.random() < 0.4):
        sw = round(h * (0.36 if not two else 0.25))
        _eu_strip(canvas, sw, rng, font)
        x_text0 = sw + 0.04 * w

    # Frame.
    if rng.random() < 0.75:
        t = max(1, round(h * rng.uniform(0.015, 0.05)))
        inset = round(h * rng.uniform(0.0, 0.05))
        cv2.rectangle(
            canvas,
            (inset, inset),
            (w - 1 - inset, h - 1 - inset),
            ink.tolist() if rng.random() < 0.8 else _jitter(bg * 0.6, rng).tolist(),
            t,
            cv2.LINE_AA,
        )

    if fmt in ("us", "us_vanity"):
        state = _STATES[rng.integers(len(_STATES))]
        state_ink = _jitter([_rgb(170, 20, 30), _rgb(20, 40, 130), ink][rng.integers(3)], rng)
        _draw_text(
            canvas,
            state,
            (0.2 * w, 0.07 * h, 0.8 * w, 0.24 * h),
            state_ink,
            font=font,
            weight=0.3,
        )
        if rng.random() < 0.8:
            slogan = _SLOGANS[rng.integers(len(_SLOGANS))]
            _draw_text(
                canvas,
                slogan,
                (0.25 * w, 0.82 * h, 0.75 * w, 0.93 * h),
                state_ink,
                font="pil",
                weight=0.1,
            )
        if rng.random() < 0.5:  # registration stickers in the corners
            for cx in (0.1 * w, 0.9 * w):
                if rng.random() < 0.6:
                    col = _jitter(
                        [_rgb(230, 60, 60), _rgb(60, 160, 70), _rgb(240, 200, 40)][rng.integers(3)],
                        rng,
                    )
                    cv2.rectangle(
                        canvas,
                        (round(cx - 0.06 * w), round(0.08 * h)),
                        (round(cx + 0.06 * w), round(0.26 * h)),
                        col.tolist(),
                        -1,
                    )
        _draw_text(
            canvas,
            lines[0],
            (x_text0, 0.28 * h, x_text1, 0.78 * h),
            ink,
            font=font,
            weight=weight,
            squeeze=squeeze,
        )
    elif two:
        _draw_text(
            canvas,
            lines[0],
            (x_text0, 0.1 * h, x_text1, 0.46 * h),
            ink,
            font=font,
            weight=weight,
            squeeze=squeeze,
        )
        _draw_text(
            canvas,
            lines[1],
            (x_text0, 0.54 * h, x_text1, 0.9 * h),
            ink,
            font=font,
            weight=weight,
            squeeze=squeeze,
        )
    else:
        top = rng.uniform(0.12, 0.2)
        _draw_text(
            canvas,
            lines[0],
            (x_text0, top * h, x_text1, (1 - top) * h),
            ink,
            font=font,
            weight=weight,
            squeeze=squeeze,
        )

    # Bolts.
    if rng.random() < 0.5:
        r = max(2, round(h * 0.04))
        yb = round(h * (0.12 if rng.random() < 0.5 else 0.5))
        for xb in (round(0.22 * w), round(0.78 * w)):
            cv2.circle(canvas, (xb, yb), r, _jitter(bg * 0.55, rng).tolist(), -1, cv2.LINE_AA)

    # Dirt: low-frequency darkening and specks; a soft reflection.
    if rng.random() < 0.35:
        coarse = rng.normal(0, 1, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        low = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        amount = rng.uniform(0.1, 0.45)
        canvas *= np.clip(1 - amount * np.maximum(low, 0), 0.3, 1)[:, :, None]
        if rng.random() < 0.5:
            n = int(rng.integers(10, 80))
            for _ in range(n):
                cv2.circle(
                    canvas,
                    (int(rng.integers(w)), int(rng.integers(h))),
                    int(rng.integers(1, 4)),
                    _jitter(_rgb(90, 75, 55), rng, 20).tolist(),
                    -1,
                )
    if rng.random() < 0.2:
        x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        a, b = rng.uniform(-1, 1, 2)
        glare = np.exp(-((x * a + y * b - rng.uniform(-0.5, 0.5)) ** 2) / 0.05)
        canvas += (rng.uniform(40, 120) * glare)[:, :, None]
    canvas = np.clip(canvas, 0, 255)
    alpha = _rounded_mask(h, w, h * rng.uniform(0.0, 0.12))
    return canvas, alpha, " ".join(lines)


# ---------------------------------------------------------------------------- geometry


def order_quad(quad: np.ndarray) -> np.ndarray:
    """Reorder 4 points clockwise starting from the top-left (smallest x + y)."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    c = q.mean(axis=0)
    ang = np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0])
    q = q[np.argsort(ang)]
    start = int(np.argmin(q.sum(axis=1)))
    return np.roll(q, -start, axis=0)


def quad_boxes(quads: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes ``(N, 4)`` (x0, y0, x1, y1) of quadrilaterals ``(N, 4, 2)``."""
    q = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    return np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)


def _plate_quad(
    cx: float, cy: float, w: float, h: float, rng: np.random.Generator, tilt: float
) -> np.ndarray:
    """A plate of ``w`` x ``h`` centred at (cx, cy): rotated, foreshortened, sheared."""
    yaw = float(rng.uniform(0.72, 1.0)) if rng.random() < 0.5 else 1.0
    pitch = float(rng.uniform(0.85, 1.0)) if rng.random() < 0.3 else 1.0
    left_h, right_h = (h, h * yaw) if rng.random() < 0.5 else (h * yaw, h)
    top_w, bot_w = (w * pitch, w) if rng.random() < 0.5 else (w, w * pitch)
    shear = float(rng.normal(0, 0.08)) * h
    pts = np.array(
        [
            [-top_w / 2 + shear, -left_h / 2],
            [top_w / 2 + shear, -right_h / 2],
            [bot_w / 2 - shear, right_h / 2],
            [-bot_w / 2 - shear, left_h / 2],
        ],
        np.float32,
    )
    ang = math.radians(float(np.clip(rng.normal(0, tilt / 2), -tilt, tilt)))
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]], np.float32)
    return pts @ rot.T + np.array([cx, cy], np.float32)


def _paste(
    image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, quad: np.ndarray, blur: float = 0.0
) -> None:
    """Warp ``rgb``/``alpha`` (texture) onto ``quad`` of ``image`` (float32 RGB), in place."""
    H, W = image.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 3
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if xb <= xa or yb <= ya:
        return
    th, tw = alpha.shape
    # Shrink the texture close to the target size first (area filter), then warp.
    qw = float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))
    scale = min(1.0, 1.5 * qw / tw)
    if scale < 1.0:
        nw, nh = max(4, round(tw * scale)), max(4, round(th * scale))
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_AREA)
        th, tw = alpha.shape
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    dst = (quad - np.array([xa, ya], np.float32)).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    size = (xb - xa, yb - ya)
    warped = cv2.warpPerspective(
        rgb, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    a = cv2.warpPerspective(alpha, m, size, flags=cv2.INTER_LINEAR, borderValue=0)
    if blur > 0.25:
        warped = cv2.GaussianBlur(warped, (0, 0), blur)
        a = cv2.GaussianBlur(a, (0, 0), blur * 0.7)
    roi = image[ya:yb, xa:xb]
    roi[:] = roi * (1 - a[:, :, None]) + warped * a[:, :, None]


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return k / max(float(k.sum()), 1e-6)


# ---------------------------------------------------------------------------- clutter


def _clutter(image: np.ndarray, rng: np.random.Generator, min_w: float, max_w: float) -> None:
    """One plate-like distractor (sign, shop text, badge, tail-light, vehicle number)."""
    H, W = image.shape[:2]
    kind = ("sign", "shop", "badge", "light", "number", "stripes", "stamp")[rng.integers(7)]
    w = float(np.exp(rng.uniform(math.log(min_w), math.log(max(min_w + 1, max_w)))))
    cx, cy = rng.uniform(0, W), rng.uniform(0, H)
    font = _FONTS[rng.integers(len(_FONTS))]
    if kind == "light":
        h = w * rng.uniform(0.25, 0.8)
        mask = np.zeros((H, W), np.float32)
        axes = (max(1, round(w / 2)), max(1, round(h / 2)))
        cv2.ellipse(
            mask, (round(cx), round(cy)), axes, float(rng.uniform(-20, 20)), 0, 360, 1.0, -1
        )
        glow = cv2.GaussianBlur(mask, (0, 0), max(1.0, h * 0.3))
        col = [_rgb(230, 20, 20), _rgb(255, 140, 20), _rgb(255, 60, 40)][rng.integers(3)]
        core = _rgb(255, 235, 220)
        image[:] = image * (1 - glow[:, :, None] * 0.8) + col * glow[:, :, None] * 0.8
        inner = cv2.GaussianBlur(mask, (0, 0), max(1.0, h * 0.15)) * mask
        image[:] = image * (1 - inner[:, :, None] * 0.6) + core * inner[:, :, None] * 0.6
        return
    if kind == "stripes":  # grilles, barcodes, railings: regular high-contrast texture
        h = w * rng.uniform(0.2, 0.6)
        tex_h, tex_w = 64, max(16, round(64 * w / h))
        tex = np.empty((tex_h, tex_w, 3), np.float32)
        tex[:] = _jitter(_rgb(200, 200, 200), rng, 40)
        period = int(rng.integers(4, 16))
        dark = _jitter(_rgb(30, 30, 30), rng, 20)
        vertical = rng.random() < 0.5
        for k in range(0, tex_w if vertical else tex_h, period):
            if vertical:
                tex[:, k : k + period // 2] = dark
            else:
                tex[k : k + period // 2] = dark
        quad = _plate_quad(cx, cy, w, h, rng, 15)
        _paste(image, tex, np.ones((tex_h, tex_w), np.float32), quad)
        return
    if kind == "stamp":  # camera date/time overlays: a common false positive
        _stamp(image, rng)
        return
    if kind == "badge":
        text = _BADGES[rng.integers(len(_BADGES))]
    elif kind == "number":
        n = int(rng.integers(2, 5))
        text = "".join(_DIGITS[rng.integers(10)] for _ in range(n))
        if rng.random() < 0.5:
            text = f"{rng.integers(100, 999)} {rng.integers(100, 999)} {rng.integers(1000, 9999)}"
    else:
        text = _WORDS[rng.integers(len(_WORDS))]
        if kind == "sign" and rng.random() < 0.3:
            text = f"{text} {rng.integers(1, 99)}"
    a = _text_alpha(text, font, float(rng.uniform(0.1, 0.9)))
    th = max(8, round(w * a.shape[0] / a.shape[1]))
    if kind == "sign":
        pad = rng.uniform(0.15, 0.6)
        tex_h, tex_w = round(th * (1 + 2 * pad)) + 4, round(w * (1 + pad)) + 4
        tex_h = max(tex_h, 8)
        bg = [
            _rgb(0, 110, 60),
            _rgb(20, 60, 160),
            _rgb(120, 70, 30),
            _rgb(200, 30, 30),
            _rgb(245, 245, 245),
            _rgb(250, 200, 20),
            _rgb(30, 30, 30),
        ][rng.integers(7)]
        bg = _jitter(bg, rng)
        ink = _rgb(250, 250, 250) if bg.mean() < 128 else _rgb(15, 15, 15)
        tex = np.empty((tex_h, tex_w, 3), np.float32)
        tex[:] = bg
        # Signs carry more than one line of text, in two sizes, often an arrow or symbol.
        _draw_text(
            tex,
            text,
            (0.05 * tex_w, 0.08 * tex_h, 0.95 * tex_w, 0.55 * tex_h),
            ink,
            font=font,
            weight=0.4,
        )
        sub = _WORDS[rng.integers(len(_WORDS))]
        _draw_text(
            tex,
            sub,
            (0.1 * tex_w, 0.65 * tex_h, 0.9 * tex_w, 0.9 * tex_h),
            ink,
            font=font,
            weight=0.3,
        )
        quad = _plate_quad(cx, cy, tex_w, tex_h, rng, 15)
        _paste(image, tex, np.ones((tex_h, tex_w), np.float32), quad)
        return
    # Lettering straight on the surface (shop fronts, badges, vehicle numbers).
    ink = _jitter(
        [_rgb(230, 230, 230), _rgb(20, 20, 20), _rgb(200, 30, 30), _rgb(190, 190, 200)][
            rng.integers(4)
        ],
        rng,
    )
    tex_h, tex_w = max(8, th), max(8, round(w))
    alpha = cv2.resize(a, (tex_w, tex_h), interpolation=cv2.INTER_AREA)
    tex = np.empty((tex_h, tex_w, 3), np.float32)
    tex[:] = ink
    quad = _plate_quad(cx, cy, tex_w, tex_h, rng, 12)
    _paste(image, tex, alpha, quad)


def _stamp(image: np.ndarray, rng: np.random.Generator) -> None:
    """A camera's date/time overlay (one or two lines), near an edge of the image."""
    H, W = image.shape[:2]
    y, mo, d = int(rng.integers(2005, 2030)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    date = (f"{y}-{mo:02d}-{d:02d}", f"{mo:02d}/{d:02d}/{y}", f"{d:02d}.{mo:02d}.{y}")[
        rng.integers(3)
    ]
    time_ = f"{hh:02d}:{mm:02d}:{ss:02d}"
    lines = [f"{date} {time_}"] if rng.random() < 0.6 else [date, time_]
    if rng.random() < 0.3:
        lines.append(f"CAM {int(rng.integers(1, 20)):02d}")
    h = float(rng.uniform(8, max(9.0, min(34.0, H / 12))))
    font = ("simplex", "duplex", "pil")[rng.integers(3)]
    ink = [_rgb(250, 250, 250), _rgb(250, 240, 90), _rgb(230, 230, 230)][rng.integers(3)]
    x0 = (
        float(rng.uniform(2, W * 0.15))
        if rng.random() < 0.5
        else float(rng.uniform(W * 0.4, W * 0.7))
    )
    y0 = (
        float(rng.uniform(2, H * 0.1))
        if rng.random() < 0.5
        else float(rng.uniform(H * 0.75, H * 0.92))
    )
    if rng.random() < 0.4:  # a dark box behind the text
        width = h * 0.62 * max(len(t) for t in lines)
        cv2.rectangle(
            image,
            (int(x0 - 2), int(y0 - 2)),
            (int(x0 + width + 2), int(y0 + len(lines) * h * 1.3 + 2)),
            (10, 10, 10),
            -1,
        )
    for k, text in enumerate(lines):
        top = y0 + k * h * 1.3
        width = h * 0.62 * len(text)
        _draw_text(image, text, (x0, top, x0 + width, top + h), ink, font=font, weight=0.2)


def _procedural_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Gradients, shapes and lines: a stand-in scene when no photos are given."""
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    g = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.empty((h, w, 3), np.float32)
    img[:] = c0 * (1 - g) + c1 * g
    for _ in range(int(rng.integers(4, 20))):
        col = rng.uniform(0, 255, 3).tolist()
        kind = rng.integers(3)
        p = (int(rng.integers(w)), int(rng.integers(h)))
        if kind == 0:
            q = (int(p[0] + rng.normal(0, w / 4)), int(p[1] + rng.normal(0, h / 4)))
            cv2.rectangle(img, p, q, col, -1)
        elif kind == 1:
            axes = (int(rng.integers(4, max(5, w // 4))), int(rng.integers(4, max(5, h // 4))))
            cv2.ellipse(img, p, axes, float(rng.uniform(0, 180)), 0, 360, col, -1, cv2.LINE_AA)
        else:
            q = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.line(img, p, q, col, int(rng.integers(1, 8)), cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(2, 12), (h, w, 1)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 3))) + noise, 0, 255)


# ---------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Photo:
    """A background photo, with its annotated plate when it has one.

    Parameters
    ----------
    path : Path
        An image file OpenCV can read.
    box : tuple of 4 floats, optional
        ``(x0, y0, x1, y1)`` of the photo's plate, in its pixels.
    negatives : tuple of boxes, optional
        ``(x0, y0, x1, y1)`` boxes of things in the photo that are *not* plates but
        that a detector took for one (hard negatives, see :mod:`pixveil.platedet.mine`);
        a share ``SynthConfig.p_hard`` of the crops of this photo is centred on one.
    others : tuple of boxes, optional
        ``(x0, y0, x1, y1)`` boxes of other real plates in the photo that its
        annotation leaves out (``bench/plate_unannotated.json``).  They are always
        positives (axis-aligned quadrilaterals, format ``"photo"``), whatever happens
        to the annotated plate; without them they would be taught as background.
    """

    path: Path
    box: tuple[float, float, float, float] | None = None
    negatives: tuple[tuple[float, float, float, float], ...] = ()
    others: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """What :class:`SceneSynth` draws.

    Parameters
    ----------
    size : tuple of 2 ints
        ``(height, width)`` of every sample, each at least 32.
    min_plate_width, max_plate_width : float
        Range of the pasted plates' widths, in pixels (log-uniform); at least 8 and
        ``min <= max``.  Plates wider than 85 % of the sample are drawn smaller.
    max_plates : int
        At most this many pasted plates per sample (0 to 16).
    max_clutter : int
        At most this many distractors per sample (0 to 32).
    formats : tuple of str
        Formats drawn (a non-empty subset of :data:`FORMATS`).
    tilt : float
        Largest in-plane rotation, degrees (0 to 45).
    p_keep, p_cover : float
        For photos with an annotated plate: the share kept as it is (a positive) and
        covered by a rendered plate (a positive); the rest is inpainted away.
    p_faces : float
        Share of samples on a face-photo mosaic (when face photos are given).
    effects : bool
        Blur, noise, colour casts, dirt, occlusion and JPEG (False gives clean samples,
        for tests).
    format_weights : tuple of float, optional
        Relative frequency of each of ``formats`` among pasted plates (non-negative,
        one per format, not all zero); None draws them equally often.
    p_hard : float
        Share of the crops of a photo with hard negatives (``Photo.negatives``) that
        is placed to contain one of them.
    """

    size: tuple[int, int] = (320, 320)
    min_plate_width: float = 30.0
    max_plate_width: float = 400.0
    max_plates: int = 4
    max_clutter: int = 5
    formats: tuple[str, ...] = FORMATS
    tilt: float = 20.0
    p_keep: float = 0.45
    p_cover: float = 0.3
    p_faces: float = 0.15
    effects: bool = True
    format_weights: tuple[float, ...] | None = None
    p_hard: float = 0.0

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 32:
            raise ValueError(f"size must be (height, width), each >= 32, got {self.size!r}")
        if not 8 <= self.min_plate_width <= self.max_plate_width:
            raise ValueError(
                "min_plate_width and max_plate_width must satisfy 8 <= min <= max, got "
                f"{self.min_plate_width!r}, {self.max_plate_width!r}"
            )
        if not 0 <= self.max_plates <= 16:
            raise ValueError(f"max_plates must be in [0, 16], got {self.max_plates!r}")
        if not 0 <= self.max_clutter <= 32:
            raise ValueError(f"max_clutter must be in [0, 32], got {self.max_clutter!r}")
        if not self.formats or any(f not in FORMATS for f in self.formats):
            raise ValueError(
                f"formats must be a non-empty subset of {FORMATS}, got {self.formats!r}"
            )
        if not 0 <= self.tilt <= 45:
            raise ValueError(f"tilt must be in [0, 45] degrees, got {self.tilt!r}")
        if self.format_weights is not None:
            fw = tuple(self.format_weights)
            if (
                len(fw) != len(self.formats)
                or any(not math.isfinite(v) or v < 0 for v in fw)
                or sum(fw) <= 0
            ):
                raise ValueError(
                    "format_weights must hold one non-negative weight per format, not all "
                    f"zero, got {self.format_weights!r} for {self.formats!r}"
                )
        for name in ("p_keep", "p_cover", "p_faces", "p_hard"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.p_keep + self.p_cover > 1:
            raise ValueError(f"p_keep + p_cover must be <= 1, got {self.p_keep + self.p_cover}")


@dataclass(frozen=True)
class SynthSample:
    """One generated image and its plates.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8, RGB
    quads : ndarray of shape (N, 4, 2), float32
        Plate corners in image pixels, clockwise from the plate's own top-left.
    formats : tuple of str
        Each plate's format (``"photo"`` for a photo's own plate).
    texts : tuple of str
        Each plate's characters (``""`` when unknown).
    """

    image: np.ndarray
    quads: np.ndarray
    formats: tuple[str, ...] = field(default=())
    texts: tuple[str, ...] = field(default=())


class SceneSynth:
    """Deterministic generator of plate scenes (see the module notes).

    Parameters
    ----------
    config : SynthConfig
        What to draw.
    photos : sequence of Photo, optional
        Street photos (backgrounds; their annotated plates become positives or are removed).
    faces : sequence of Path, optional
        Face photos used as negative backgrounds.
    seed : int
        Sample ``i`` is drawn from ``np.random.default_rng([seed, i])``.
    cache_size : int
        Decoded photos kept in memory (least recently used are dropped).
    """

    def __init__(
        self,
        config: SynthConfig | None = None,
        *,
        photos: Sequence[Photo] = (),
        faces: Sequence[Path] = (),
        seed: int = 0,
        cache_size: int = 512,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.config = config or SynthConfig()
        self.photos = tuple(photos)
        self.faces = tuple(Path(p) for p in faces)
        self.seed = seed
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:  # an endless stream; len is for samplers that need one
        return 2**31 - 1

    def _load(self, path: Path) -> np.ndarray:
        img = self._cache.get(path)
        if img is not None:
            self._cache.move_to_end(path)
            return img
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: cannot read this image")
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._cache[path] = img
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return img

    def __getitem__(self, index: int) -> SynthSample:
        return self.sample(index)

    def sample(self, index: int) -> SynthSample:
        """Sample number ``index`` (a non-negative int); the same index gives the same sample."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}")
        rng = np.random.default_rng([self.seed, int(index)])
        cfg = self.config
        H, W = cfg.size
        quads: list[np.ndarray] = []
        formats: list[str] = []
        texts: list[str] = []

        u = rng.random()
        if self.photos and (not self.faces or u >= cfg.p_faces):
            image = self._photo_background(rng, quads, formats, texts)
        elif self.faces and u < cfg.p_faces:
            image = self._face_background(rng)
        else:
            image = _procedural_background(H, W, rng)

        if cfg.effects:
            for _ in range(int(rng.integers(0, cfg.max_clutter + 1))):
                _clutter(
                    image,
                    rng,
                    max(8.0, cfg.min_plate_width * 0.7),
                    min(W * 0.6, cfg.max_plate_width),
                )

        n = int(rng.integers(0, cfg.max_plates + 1))
        if not quads and n == 0 and rng.random() < 0.7:
            n = 1
        boxes = [quad_boxes(q[None])[0] for q in quads]
        for _ in range(n):
            placed = self._paste_plate(image, rng, boxes)
            if placed is not None:
                q, fmt, text = placed
                quads.append(q)
                formats.append(fmt)
                texts.append(text)
                boxes.append(quad_boxes(q[None])[0])

        if cfg.effects:
            image = _global_effects(image, rng)
        out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if cfg.effects and rng.random() < 0.5:
            quality = int(rng.integers(35, 96))
            ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        arr = np.stack(quads).astype(np.float32) if quads else np.zeros((0, 4, 2), np.float32)
        return SynthSample(out, arr, tuple(formats), tuple(texts))

    # -- backgrounds

    def _face_background(self, rng: np.random.Generator) -> np.ndarray:
        H, W = self.config.size
        k = int(rng.integers(1, 4))
        cell_h, cell_w = math.ceil(H / k), math.ceil(W / k)
        img = np.empty((H, W, 3), np.float32)
        for i in range(k):
            for j in range(k):
                face = self._load(self.faces[rng.integers(len(self.faces))])
                tile = cv2.resize(face, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
                ys, xs = i * cell_h, j * cell_w
                img[ys : ys + cell_h, xs : xs + cell_w] = tile[: H - ys, : W - xs]
        return img

    def _photo_background(
        self,
        rng: np.random.Generator,
        quads: list[np.ndarray],
        formats: list[str],
        texts: list[str],
    ) -> np.ndarray:
        cfg = self.config
        H, W = cfg.size
        photo = self.photos[rng.integers(len(self.photos))]
        src = self._load(photo.path)
        sh, sw = src.shape[:2]
        box = photo.box
        plate_quad: np.ndarray | None = None
        if box is not None:
            mode = rng.random()
            x0, y0, x1, y1 = box
            if mode < cfg.p_keep:
                plate_quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
                formats.append("photo")
                texts.append("")
            else:
                src = src.astype(np.float32)
                if mode < cfg.p_keep + cfg.p_cover:
                    plate_quad = self._cover(src, box, rng)
                    formats.append("cover")
                    texts.append("")
                else:
                    src = _inpaint(src, box)
        # Scale: the photo's plate ends up between ~0.3x and ~1.6x its size.
        lo = max(H / sh, W / sw)
        f = float(np.exp(rng.uniform(math.log(0.3), math.log(1.6))))
        f = max(f, lo)
        ch, cw = min(sh, math.ceil(H / f)), min(sw, math.ceil(W / f))
        # The box the crop is placed around: a hard negative (a share p_hard of the
        # crops of photos that have some), else the plate (80 %), else none.
        target: np.ndarray | None = None
        if photo.negatives and rng.random() < cfg.p_hard:
            nb = photo.negatives[int(rng.integers(len(photo.negatives)))]
            target = np.array([[nb[0], nb[1]], [nb[2], nb[3]]], np.float32)
        elif plate_quad is not None and rng.random() < 0.8:
            target = plate_quad
        if target is not None:
            bx0, by0 = target.min(axis=0)
            bx1, by1 = target.max(axis=0)
            ox_lo, ox_hi = max(0.0, bx1 - cw), min(float(sw - cw), bx0)
            oy_lo, oy_hi = max(0.0, by1 - ch), min(float(sh - ch), by0)
            ox = rng.uniform(ox_lo, ox_hi) if ox_hi > ox_lo else rng.uniform(0, sw - cw + 1e-3)
            oy = rng.uniform(oy_lo, oy_hi) if oy_hi > oy_lo else rng.uniform(0, sh - ch + 1e-3)
        else:
            ox, oy = rng.uniform(0, sw - cw + 1e-3), rng.uniform(0, sh - ch + 1e-3)
        ox, oy = int(min(ox, sw - cw)), int(min(oy, sh - ch))
        crop = np.asarray(src[oy : oy + ch, ox : ox + cw], np.float32)
        interp = cv2.INTER_AREA if cw > W else cv2.INTER_LINEAR
        img = cv2.resize(crop, (W, H), interpolation=interp)
        if rng.random() < 0.25:
            img = img[:, ::-1].copy()
            flip = True
        else:
            flip = False
        if plate_quad is not None:
            q = _to_crop(plate_quad, ox, oy, W / cw, H / ch, W, flip)
            c = q.mean(axis=0)
            if 0 <= c[0] < W and 0 <= c[1] < H:
                quads.append(q)
            else:
                formats.pop()
                texts.pop()
        for ob in photo.others:
            box_quad = np.array(
                [[ob[0], ob[1]], [ob[2], ob[1]], [ob[2], ob[3]], [ob[0], ob[3]]], np.float32
            )
            q = _to_crop(box_quad, ox, oy, W / cw, H / ch, W, flip)
            c = q.mean(axis=0)
            if 0 <= c[0] < W and 0 <= c[1] < H:
                quads.append(q)
                formats.append("photo")
                texts.append("")
        return img

    def _cover(
        self, src: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator
    ) -> np.ndarray:
        """Paste a rendered plate over the photo's plate (in place); return its quad."""
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        gx, gy = 0.08 * bw, 0.12 * bh
        aspect = bw / max(bh, 1e-6)
        long_fmts: list[str] = [f for f in ("eu", "uk", "dark") if f in self.config.formats]
        short_fmts: list[str] = [
            f for f in ("us", "us_vanity", "dark", "eu_double") if f in self.config.formats
        ]
        pool = long_fmts if aspect > 3.0 else short_fmts
        pool = pool or list(self.config.formats)
        fmt = pool[rng.integers(len(pool))]
        rgb, alpha, _ = render_plate(fmt, rng=rng)
        quad = np.array(
            [[x0 - gx, y0 - gy], [x1 + gx, y0 - gy], [x1 + gx, y1 + gy], [x0 - gx, y1 + gy]],
            np.float32,
        )
        region = src[max(0, int(y0)) : int(y1) + 1, max(0, int(x0)) : int(x1) + 1]
        gain = _light_gain(region, rng)
        _paste(src, rgb * gain, np.ones_like(alpha), quad, blur=_size_blur(bw, rng))
        return quad

    # -- plates

    def _paste_plate(
        self, image: np.ndarray, rng: np.random.Generator, boxes: list[np.ndarray]
    ) -> tuple[np.ndarray, str, str] | None:
        cfg = self.config
        H, W = image.shape[:2]
        if cfg.format_weights is None:
            fmt = cfg.formats[rng.integers(len(cfg.formats))]
        else:
            p = np.asarray(cfg.format_weights, np.float64)
            fmt = cfg.formats[int(rng.choice(len(cfg.formats), p=p / p.sum()))]
        rgb, alpha, text = render_plate(fmt, rng=rng)
        th, tw = alpha.shape
        hi = min(cfg.max_plate_width, 0.85 * W, 0.85 * H * tw / th)
        lo = min(cfg.min_plate_width, hi)
        w = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
        h = w * th / tw
        for _ in range(10):
            cx = rng.uniform(w / 2 + 1, W - w / 2 - 1) if w + 2 < W else W / 2
            cy = rng.uniform(h / 2 + 1, H - h / 2 - 1) if h + 2 < H else H / 2
            quad = _plate_quad(cx, cy, w, h, rng, cfg.tilt)
            b = quad_boxes(quad[None])[0]
            if b[0] < 0 or b[1] < 0 or b[2] > W or b[3] > H:
                continue
            if any(_overlap(b, o) > 0.0 for o in boxes):
                continue
            break
        else:
            return None
        if cfg.effects:
            x0, y0, x1, y1 = (int(v) for v in b)
            rgb = rgb * _light_gain(image[y0 : y1 + 1, x0 : x1 + 1], rng)
            blur = _size_blur(w, rng)
        else:
            blur = 0.0
        _paste(image, rgb, alpha, quad, blur=blur)
        if cfg.effects and rng.random() < 0.15:
            _occlude(image, quad, rng)
        return quad.astype(np.float32), fmt, text


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return float(ix * iy)


def _light_gain(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-channel gain making a plate about as bright as its surroundings."""
    if region.size == 0:
        return np.ones(3, np.float32)
    mean = float(np.mean(region))
    base = float(np.clip((mean + 40) / 170, 0.3, 1.15)) ** 0.6
    g = base * rng.uniform(0.75, 1.1) * rng.uniform(0.92, 1.08, 3)
    return g.astype(np.float32)


def _size_blur(width: float, rng: np.random.Generator) -> float:
    """Gaussian sigma for a plate of this width: small plates are a little soft."""
    if rng.random() < 0.4:
        return 0.0
    return float(rng.uniform(0.3, 0.9 + min(2.0, width / 150)))


def _occlude(image: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """Cover part (about 10-35 %) of the plate: a tow bar, a bumper edge, a leaf."""
    c = quad.mean(axis=0)
    u = (quad[1] - quad[0] + quad[2] - quad[3]) / 2
    v = (quad[3] - quad[0] + quad[2] - quad[1]) / 2
    col = _jitter(rng.uniform(10, 200, 3).astype(np.float32), rng)
    kind = rng.integers(3)
    if kind == 0:  # vertical bar
        s = rng.uniform(-0.35, 0.35)
        half = rng.uniform(0.05, 0.15)
        pts = [
            c + u * (s - half) - v * 0.7,
            c + u * (s + half) - v * 0.7,
            c + u * (s + half) + v * 0.7,
            c + u * (s - half) + v * 0.7,
        ]
    elif kind == 1:  # band from the top or bottom
        side = 1 if rng.random() < 0.5 else -1
        t = rng.uniform(0.15, 0.35)
        pts = [
            c - u * 0.7 + side * v * 0.7,
            c + u * 0.7 + side * v * 0.7,
            c + u * 0.7 + side * v * (0.5 - t),
            c - u * 0.7 + side * v * (0.5 - t),
        ]
    else:  # a blob at one end
        side = 1 if rng.random() < 0.5 else -1
        e = c + side * u * rng.uniform(0.3, 0.5)
        r = float(np.linalg.norm(v)) * rng.uniform(0.35, 0.6)
        cv2.circle(
            image,
            (round(float(e[0])), round(float(e[1]))),
            max(1, round(r)),
            col.tolist(),
            -1,
            cv2.LINE_AA,
        )
        return
    cv2.fillConvexPoly(image, np.round(np.array(pts)).astype(np.int32), col.tolist(), cv2.LINE_AA)


def _to_crop(
    quad: np.ndarray, ox: int, oy: int, fx: float, fy: float, width: int, flip: bool
) -> np.ndarray:
    """A photo quadrilateral in the resized (and maybe mirrored) crop's pixels."""
    q = (quad - np.array([ox, oy], np.float32)) * np.array([fx, fy], np.float32)
    if flip:
        q[:, 0] = width - q[:, 0]
        q = q[[1, 0, 3, 2]]
    return q


def _inpaint(src: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The photo with the plate box (grown by 15 %) inpainted away (float32 RGB)."""
    h, w = src.shape[:2]
    x0, y0, x1, y1 = box
    gx, gy = 0.15 * (x1 - x0) + 2, 0.25 * (y1 - y0) + 2
    ax0, ay0 = max(0, int(x0 - gx)), max(0, int(y0 - gy))
    ax1, ay1 = min(w, int(x1 + gx) + 1), min(h, int(y1 + gy) + 1)
    m = 12
    rx0, ry0, rx1, ry1 = max(0, ax0 - m), max(0, ay0 - m), min(w, ax1 + m), min(h, ay1 + m)
    roi = np.clip(src[ry0:ry1, rx0:rx1], 0, 255).astype(np.uint8)
    mask = np.zeros(roi.shape[:2], np.uint8)
    mask[ay0 - ry0 : ay1 - ry0, ax0 - rx0 : ax1 - rx0] = 255
    # Inpaint at reduced scale (fast), then add back a little texture.
    scale = min(1.0, 48.0 / max(1, ay1 - ay0))
    if scale < 1.0:
        small = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        smask = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
        filled = cv2.inpaint(small, smask, 3, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        filled = cv2.inpaint(roi, mask, 3, cv2.INPAINT_TELEA)
    out = src.astype(np.float32, copy=True)
    sel = mask > 0
    out[ry0:ry1, rx0:rx1][sel] = filled[sel]
    return out


def _global_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Night and dusk colour casts, motion or focus blur, sensor noise."""
    img = image
    if rng.random() < 0.3:  # night / dusk / sodium light
        cast = [
            _rgb(1.0, 0.75, 0.45),
            _rgb(0.7, 0.8, 1.1),
            _rgb(1.05, 0.9, 0.7),
            _rgb(0.8, 1.0, 0.8),
            _rgb(1.0, 1.0, 1.0),
        ][rng.integers(5)]
        dark = rng.uniform(0.25, 0.9)
        gamma = rng.uniform(1.0, 1.8)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma * dark * cast
    if rng.random() < 0.2:
        k = _motion_kernel(int(rng.integers(3, 10)), float(rng.uniform(0, math.pi)))
        img = cv2.filter2D(img, -1, k)
    elif rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, 1.3)))
    if rng.random() < 0.6:
        sigma = rng.uniform(1, 9)
        img = img + rng.normal(0, sigma, (*img.shape[:2], 1)).astype(np.float32) * rng.uniform(
            0.8, 1.2, 3
        ).astype(np.float32)
    if rng.random() < 0.2:  # contrast / brightness
        img = (img - 128) * rng.uniform(0.6, 1.3) + 128 + rng.uniform(-30, 30)
    return np.asarray(img, np.float32)
