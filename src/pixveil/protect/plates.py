"""``plate-synth``: replace a licence plate's characters with a differentially private plate.

After the plate mechanism of the DP street-view framework (read the plate, perturb
its character codes with Laplace noise, render a synthetic plate and swap it in).

Steps, for each ``plate`` region:

1. **Geometry.**  The plate quadrilateral is the detector's (``Region.landmarks``: four
   corners, clockwise from top-left).  For the OCR path's regions (they carry their
   reading in ``label``) it is the text line's rotated rectangle grown into the plate
   (see :mod:`pixveil.detect.plates`); for the learned detector's (``plates-net``, and
   the network's regions of ``plates-fused``, without ``label``) it is the
   whole plate, whose text is assumed where a plain box's is.  Without landmarks (a
   plain box, e.g. a hand-drawn region) the ungrown box is taken as the plate.  Inside the plate, the
   *text band* is the text line (for detector regions: the line the quadrilateral was
   grown from) plus a small margin; only the text band is repainted.
2. **Reading.**  The band is rectified (perspective warp to a 48-pixel-high strip) and
   read by the PP-OCRv4 recogniser that the plate detector uses (``rapidocr-onnxruntime``),
   restricted to ``A-Z 0-9``.  The CTC frames where each character is emitted give its
   position along the line, so the layout (groups, gaps) is kept; its class (letter or
   digit) is the class of the character read.  If ``pytesseract`` and the ``tesseract``
   binary are both available, a line that PP-OCR cannot read is given to Tesseract
   (without positions: characters are then spread evenly).
3. **DP text.**  :func:`pixveil.privacy.plate_codes.perturb_plate`: per-character Laplace
   noise on the codes (scale ``1/ε``), rounded and wrapped inside the character's
   class; drawn again if it equals the plate read.  See that module for the exact
   guarantee.
4. **Render and swap.**  Background (a per-channel plane fitted to the band's
   background pixels: colour and lighting gradient) and character colour (the
   extreme third of the text pixels) are estimated on the rectified band; the glyph
   height comes from the rows that hold text.  The new characters are drawn at the
   original characters' positions in Pillow's default FreeType font (Aileron Regular,
   bundled with Pillow >= 10.1; OpenCV's Hershey Duplex stroke font when Pillow cannot
   scale it), thickened and condensed to plate proportions.  The strip is warped back
   with the inverse perspective transform, blurred to the original's sharpness (the
   Gaussian sigma whose steepest edges, 95th percentile of the gradient, match the
   original band's) and given slightly correlated grain at the original's noise level;
   its edge is feathered over about one pixel.  The plate's frame above and below the
   glyph rows is kept; inside the glyph rows every pixel is repainted, except
   full-height structure reaching the band's left or right edge (the plate's side,
   the car past it).
5. **Checks (fail closed).**  The rectified output is read again; if the reading is
   no closer to the synthetic text than to the original one, or the plate could not be
   read, or the original text reaches the edge of the text band (characters outside
   the band would survive), or anything else goes wrong, the whole region is protected
   with the fallback method instead (``dp-pix`` with its defaults, or ``mask``) and
   ``events["fallback"]`` is incremented (the pipeline reports it in the batch summary).

Only pixels inside the text band change (a sub-area of the plate quadrilateral); the
rest of the region's box is returned unchanged.

Guarantee
---------
That of :mod:`pixveil.privacy.plate_codes` for the *text read* from the plate:
per-character ε·d metric privacy on the cyclic code distance, ε·d₁ over the plate
(for plates of the same format), with the re-draw caveat quantified there; ``epsilon=0``
gives a uniformly random plate of the same format.  Not covered: the plate's format,
length, layout, colours, font and everything around the text band (state names,
stickers, frame, the car); characters the reader missed are not in the synthetic
text but are painted over if they lie in the band; regions the detector missed.  The
rendered pixels are computed from the band's background and text colours, blur and
noise level, which are not privatised (they carry no characters).  The fallback has
the guarantee of the fallback method.

Why one module of ~620 lines: the five steps above are one method's private
pipeline, each step tuned against the next (the band's margin against the
re-reading check, the analysis against the rendering), and none of the helpers
serves anything else; the parts that do (the reader, the noise mechanism) live in
:mod:`pixveil.detect.ocr` and :mod:`pixveil.privacy.plate_codes`.  Split by step,
every change to the look of a plate would span three files.
"""

from __future__ import annotations

import math
import shutil
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import cv2
import numpy as np

from pixveil.detect.ocr import TextLineRecognizer
from pixveil.detect.plates import LINE_GROW_DOWN, LINE_GROW_UP, LINE_GROW_X
from pixveil.privacy.plate_codes import check_plate_epsilon, levenshtein, perturb_plate
from pixveil.protect.base import MethodParams, ProtectionMethod, Replacement, register_method
from pixveil.protect.classic import Mask
from pixveil.protect.dp import DPPix
from pixveil.types import Region

__all__ = ["DEFAULT_PLATE_EPSILON", "FALLBACKS", "PlateSynth", "levenshtein"]

#: Default ε of the plate codes (chosen with ``bench/bench_plate_synth.py``; see
#: docs/methods.md for the trade-off).
DEFAULT_PLATE_EPSILON = 0.5
#: Methods a region falls back to when no synthetic plate can be made.
FALLBACKS = ("dp-pix", "mask")

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Where the detector's text line sits inside its plate quadrilateral, as fractions
# of the quad's width and height (the inverse of the detector's growth).
_QUAD_W = 1.0 + LINE_GROW_X
_QUAD_H = 1.0 + LINE_GROW_UP + LINE_GROW_DOWN
_LINE_S = (LINE_GROW_X / 2 / _QUAD_W, (1.0 + LINE_GROW_X / 2) / _QUAD_W)
_LINE_T = (LINE_GROW_UP / _QUAD_H, (1.0 + LINE_GROW_UP) / _QUAD_H)
# Where the text is assumed to be inside a plain box taken as the plate.
_BOX_S = (0.03, 0.97)
_BOX_T = (0.15, 0.85)
# Band margin around the text line, fractions of the line's width / height.
_BAND_S = 0.03
_BAND_T = 0.08
# Height of the rectified strip (the recogniser's input height).
_STRIP_H = 48
# Candidate blur sigmas (image pixels) matched against the original band.
_SIGMAS = (0.0, 0.4, 0.7, 1.0, 1.4, 1.9, 2.5, 3.3)


class _Unusable(Exception):
    """Why no synthetic plate could be made (leads to the fallback)."""


# ------------------------------------------------------------------------- reading


def _tesseract_read(strip: np.ndarray) -> str:
    """Tesseract's reading of a strip, or "" when Tesseract is not available."""
    try:
        import pytesseract
    except ImportError:
        return ""
    if shutil.which("tesseract") is None:
        return ""
    cfg = f"--psm 7 -c tessedit_char_whitelist={_ALPHABET}"
    try:
        raw = str(pytesseract.image_to_string(strip, config=cfg))
    except Exception:
        return ""
    return "".join(c for c in raw.upper() if c in _ALPHABET)


# ------------------------------------------------------------------------- glyphs


@lru_cache(maxsize=64)
def _glyph(char: str) -> np.ndarray:
    """Alpha mask (float32 in [0, 1]) of one character, cropped to its ink, ~96 px high."""
    size = 96
    from PIL import Image, ImageDraw, ImageFont

    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no scalable default font
        font = None
    if isinstance(font, ImageFont.FreeTypeFont):
        img = Image.new("L", (2 * size, 2 * size), 0)
        draw = ImageDraw.Draw(img)
        draw.text(
            (size // 2, size // 4), char, fill=255, font=font, stroke_width=5, stroke_fill=255
        )
        a = np.asarray(img, dtype=np.float32) / 255.0
    else:
        a8 = np.zeros((2 * size, 2 * size), np.uint8)
        cv2.putText(
            a8,
            char,
            (size // 4, int(1.5 * size)),
            cv2.FONT_HERSHEY_DUPLEX,
            3.0,
            255,
            9,
            cv2.LINE_AA,
        )
        a = a8.astype(np.float32) / 255.0
    ys, xs = np.nonzero(a > 0.05)
    if ys.size == 0:
        raise _Unusable(f"the font has no glyph for {char!r}")
    return np.ascontiguousarray(a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


# ------------------------------------------------------------------------- geometry


def _unit_to_quad(quad: np.ndarray) -> np.ndarray:
    """Homography from the unit square (s, t) to ``quad`` (corners clockwise from top-left)."""
    src = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    return cv2.getPerspectiveTransform(src, quad.astype(np.float32))


def _map(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float32), h).reshape(-1, 2)


def _sub_quad(h: np.ndarray, s: tuple[float, float], t: tuple[float, float]) -> np.ndarray:
    pts = np.array([[s[0], t[0]], [s[1], t[0]], [s[1], t[1]], [s[0], t[1]]], np.float32)
    return _map(h, pts)


def _side_lengths(quad: np.ndarray) -> tuple[float, float]:
    w = 0.5 * float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3]))
    h = 0.5 * float(np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1]))
    return w, h


@dataclass(frozen=True)
class _Band:
    """The text band: its quad in patch pixels and the rectified strip's size."""

    quad: np.ndarray
    width: int  # strip width at height _STRIP_H
    px_height: float  # band height in image pixels

    @property
    def to_strip(self) -> np.ndarray:
        dst = np.array([[0, 0], [self.width, 0], [self.width, _STRIP_H], [0, _STRIP_H]], np.float32)
        return cv2.getPerspectiveTransform(self.quad.astype(np.float32), dst)

    def strip(self, image: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(
            image,
            self.to_strip,
            (self.width, _STRIP_H),
            flags=cv2.INTER_AREA if self.px_height > _STRIP_H else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )


def _plate_and_line(region: Region, margin: float) -> tuple[np.ndarray, tuple, tuple]:
    """Plate quad in patch coordinates and the text line's (s, t) ranges inside it."""
    x0, y0, x1, y1 = region.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w0, h0 = (x1 - x0) / margin, (y1 - y0) / margin
    lm = region.landmarks
    if lm is not None and lm.shape == (4, 2):
        (bx0, by0), (bx1, by1) = lm.min(axis=0), lm.max(axis=0)
        # The detector's box is the quad's bounding box: that fixes the offset.
        if abs((bx1 - bx0) - w0) <= 1.0 and abs((by1 - by0) - h0) <= 1.0:
            off = np.array([(bx0 + bx1) / 2 - cx, (by0 + by1) / 2 - cy], np.float32)
            if region.label is None:
                # The learned detector's corners (plates-net, and the network's regions
                # of plates-fused, which carry no reading) are the whole
                # plate, not a grown text line: its text sits where a plain box's does.
                return np.asarray(lm, np.float32) - off, _BOX_S, _BOX_T
            return np.asarray(lm, np.float32) - off, _LINE_S, _LINE_T
    quad = np.array(
        [
            [cx - w0 / 2, cy - h0 / 2],
            [cx + w0 / 2, cy - h0 / 2],
            [cx + w0 / 2, cy + h0 / 2],
            [cx - w0 / 2, cy + h0 / 2],
        ],
        np.float32,
    )
    return quad, _BOX_S, _BOX_T


def _band(plate: np.ndarray, s: tuple[float, float], t: tuple[float, float]) -> _Band:
    ds, dt = _BAND_S * (s[1] - s[0]), _BAND_T * (t[1] - t[0])
    s2 = (max(0.0, s[0] - ds), min(1.0, s[1] + ds))
    t2 = (max(0.0, t[0] - dt), min(1.0, t[1] + dt))
    quad = _sub_quad(_unit_to_quad(plate), s2, t2)
    bw, bh = _side_lengths(quad)
    if bh < 6 or bw < 2 * bh * 0.5:
        raise _Unusable(f"text band too small or too narrow ({bw:.0f}x{bh:.0f} px)")
    width = int(min(1024, max(16, round(_STRIP_H * bw / bh))))
    return _Band(quad, width, bh)


# ------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Look:
    background: np.ndarray  # (48, W, 3) float32: fitted background of the strip
    ink: np.ndarray  # (3,) float32: character colour
    keep: np.ndarray  # (48, W) bool: original pixels to keep (the plate's frame)
    top: float
    bottom: float  # glyph rows in the strip
    centres: tuple[float, ...]  # character positions (strip px), snapped to the glyphs


def _analyse(strip: np.ndarray, centres: list[float]) -> _Look:
    """Colours, lighting, glyph rows and frame of the rectified band.

    ``centres`` are the x positions of the characters read (strip pixels).
    """
    img = strip.astype(np.float32)
    gray = cv2.cvtColor(strip, cv2.COLOR_RGB2GRAY)
    thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = gray > thr
    h, w = gray.shape
    # Background is the majority class in the middle rows (text covers less than
    # half of a plate's text line; the band's edges may hold the plate's frame).
    bg_bright = bright[h // 5 : h - h // 5].mean() >= 0.5
    bg = bright == bg_bright
    text = ~bg
    if bg.mean() < 0.3 or text.mean() < 0.03:
        raise _Unusable("no clear text/background split in the text band")
    ys, xs = np.nonzero(bg)
    a = np.column_stack([np.ones(ys.size), xs / w, ys / h]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, img[ys, xs].astype(np.float64), rcond=None)
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.stack([np.ones_like(xx, dtype=np.float64), xx / w, yy / h], axis=-1)
    background = (grid @ coef).astype(np.float32)
    tg = gray[text].astype(np.float32)
    extreme = tg >= np.percentile(tg, 67) if not bg_bright else tg <= np.percentile(tg, 33)
    ink = np.median(img[text][extreme], axis=0).astype(np.float32)

    # Components: those touching the strip's border are the frame (or glyphs merged
    # with it); the others of a glyph's height are characters.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(text.astype(np.uint8), connectivity=8)
    x, y, cw, ch = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    border = (x == 0) | (y == 0) | (x + cw >= w) | (y + ch >= h)
    border[0] = False
    glyphs = np.flatnonzero(~border & (ch >= 0.3 * h) & (cw <= 0.3 * w))
    glyphs = glyphs[glyphs > 0]
    if glyphs.size >= 2:
        top = float(np.median(y[glyphs]))
        bottom = float(np.median(y[glyphs] + ch[glyphs]))
    else:  # glyphs merged with the frame: rows where the text class is common
        span = slice(int(max(0, min(centres) - 8)), int(min(w, max(centres) + 8)))
        rows = text[:, span].mean(axis=1)
        inner = rows[2:-2]
        on = np.flatnonzero(inner >= 0.5 * np.median(inner[inner > 0])) + 2
        if on.size == 0:
            raise _Unusable("no glyph rows found")
        top, bottom = float(on.min()), float(on.max() + 1)
    if bottom - top < 0.3 * h:
        raise _Unusable("glyph rows cover too little of the band")

    # Keep the frame's pixels (components touching the band's border) above and below
    # the glyph rows only: inside the glyph rows every pixel is repainted (a glyph
    # merged with the frame, an unread character, an emblem), except columns filled
    # from top to bottom in a run that reaches the band's left or right edge (the car
    # body past the plate's edge, the plate's side): a full-height stroke in the
    # middle (an H's stem touching the band's top and bottom) is repainted.
    c = np.asarray(centres, np.float64)
    pitch = float(np.median(np.diff(c))) if c.size > 1 else (bottom - top) * 0.6
    frame = np.isin(labels, np.flatnonzero(border))
    pad = 1.0 + 0.1 * (bottom - top)
    glyph_band = (yy >= top - pad) & (yy < bottom + pad)
    full = frame.mean(axis=0) >= 0.9
    structure = np.zeros_like(full)
    if full.all():
        structure[:] = True
    else:
        left, right = int(np.argmin(full)), int(np.argmin(full[::-1]))
        structure[:left] = True
        structure[full.size - right :] = True
    keep = frame & (~glyph_band | structure[None, :])
    gx = (x[glyphs] + cw[glyphs] / 2).astype(np.float64)
    return _Look(background, ink, keep, top, bottom, _snap(c, gx, pitch))


def _snap(centres: np.ndarray, glyph_x: np.ndarray, pitch: float) -> tuple[float, ...]:
    """CTC character positions moved onto the glyph found nearest (8-px CTC frames are coarse)."""
    out = centres.astype(np.float64).copy()
    if glyph_x.size:
        d = np.abs(out[:, None] - glyph_x[None, :])
        near = d.argmin(axis=1)
        for i, j in enumerate(near):
            if d[i, j] <= 0.6 * pitch and np.sum(near == j) == 1:
                out[i] = glyph_x[j]
    # Even spacing inside each group of characters (groups are split at gaps wider
    # than 1.5 pitches): single mis-snapped positions would look irregular.
    if out.size > 2:
        gaps = np.flatnonzero(np.diff(out) > 1.5 * pitch) + 1
        for group in np.split(np.arange(out.size), gaps):
            if group.size > 2:
                out[group] = np.linspace(out[group[0]], out[group[-1]], group.size)
    return tuple(float(v) for v in out)


def _noise_sigma(patch: np.ndarray, mask: np.ndarray) -> float:
    """Robust estimate of the image noise (std, grey levels) under ``mask``.

    The high-pass residual is dominated by text edges, so the flattest quarter is
    used (for Gaussian noise the 25th percentile of ``|X|`` is ``0.3186 σ``), and the
    result is scaled by 0.6: JPEG photos carry less fine-grained noise than its
    Gaussian equivalent, and more looked grainy next to the original.
    """
    g = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hp = g - cv2.GaussianBlur(g, (0, 0), 1.0)
    v = np.abs(hp[mask])
    if v.size < 16:
        return 0.0
    return float(min(5.0, 0.6 * np.percentile(v, 25) / 0.3186 / 0.96))


def _sharpness(img: np.ndarray, mask: np.ndarray) -> float:
    """Steepest edges (95th percentile of the gradient magnitude) under ``mask``.

    A step of contrast ``C`` blurred by a Gaussian of sigma ``σ`` has a largest
    gradient of ``C / (σ √(2π))``: with the same colours, equal values mean equal blur,
    whatever the amount of text.
    """
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.percentile(np.sqrt(gx * gx + gy * gy)[mask], 95))


# ------------------------------------------------------------------------- rendering


def _even_positions(n: int, width: int) -> list[float]:
    return [width * (i + 0.5) / n for i in range(n)]


def _render_strip(
    look: _Look, text: str, centres: list[float], px_height: float, oversample: float
) -> np.ndarray:
    """The new strip (float32 RGB, like ``look.background``) with ``text`` at ``centres``."""
    h, w = look.keep.shape
    gh = look.bottom - look.top
    c = np.asarray(centres, np.float64)
    diffs = np.diff(c)
    pitch = float(np.median(diffs)) if diffs.size else gh * 0.6
    closest = float(diffs.min()) if diffs.size else pitch
    gw_max = max(2.0, min(0.85 * max(closest, 0.75 * pitch), 0.62 * gh))
    alpha: np.ndarray = np.zeros((h, w), np.float32)
    y0 = round(look.top)
    gh_i = max(2, round(gh))
    for ch, x in zip(text, c, strict=True):
        g = _glyph(ch)
        natural = g.shape[1] / g.shape[0] * gh  # width at the target height
        gw = int(max(2, round(min(gw_max, natural * 0.85))))
        resized = cv2.resize(g, (gw, gh_i), interpolation=cv2.INTER_AREA)
        x0 = round(x - gw / 2)
        xa, xb = max(0, x0), min(w, x0 + gw)
        ya, yb = max(0, y0), min(h, y0 + gh_i)
        if xb <= xa or yb <= ya:
            raise _Unusable("a character falls outside the band")
        sub = resized[ya - y0 : yb - y0, xa - x0 : xb - x0]
        alpha[ya:yb, xa:xb] = np.maximum(alpha[ya:yb, xa:xb], sub.astype(np.float32))
    if oversample > 1.0:  # the strip will be shrunk: pre-filter to avoid aliasing
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.45 * oversample)
    return look.background + alpha[:, :, None] * (look.ink - look.background)


def _restore(rendered: np.ndarray, strip: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``rendered`` with the kept original pixels (the frame) put back, softly."""
    k = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), 0.7)[:, :, None]
    return rendered * (1 - k) + strip.astype(np.float32) * k


def _feather(w: int, ramp: float) -> np.ndarray:
    """A (48, w) mask, 1 inside and falling linearly to 0 over ``ramp`` strip px at the edges."""
    ys = np.arange(_STRIP_H, dtype=np.float32) + 0.5
    xs = np.arange(w, dtype=np.float32) + 0.5
    fy = np.clip(np.minimum(ys, _STRIP_H - ys) / max(ramp, 1e-3), 0, 1)
    fx = np.clip(np.minimum(xs, w - xs) / max(ramp, 1e-3), 0, 1)
    return np.minimum(fy[:, None], fx[None, :])


# ------------------------------------------------------------------------- method


@register_method("plate-synth")
class PlateSynth(ProtectionMethod):
    """Swap each licence plate's text for a differentially private synthetic text.

    The plate is read, its characters' codes get Laplace noise of scale ``1/ε``
    (rounded, wrapped inside the character's class: letters stay letters, digits stay
    digits; drawn again if the result equals the plate), and the new text is rendered
    in place of the old one, matched to the plate's colours, lighting, blur and noise,
    with the perspective of the plate.  Plates that cannot be read or rendered go to
    the fallback method (counted in ``events["fallback"]``).  Only ``plate`` regions
    are handled; other kinds go to the pipeline's default method.

    Guarantee
    ---------
    Per character, ε·d metric privacy on the cyclic code distance inside its class
    (``P[M(c) = y] ≤ exp(ε·d(c, c'))·P[M(c') = y]``; digits are at most 5 steps
    apart, letters 13); per plate, ``exp(ε·Σᵢ d(xᵢ, x'ᵢ))`` for plates of the same
    format; the re-draw (the output never equals the plate read) adds
    ``δ = exp(ε·d)·q/(1 - q)`` with ``q`` the probability that the plain mechanism
    returns the plate unchanged (2.7e-5 for 7 characters at ε = 0.5).  ``epsilon=0``:
    a uniformly random plate of the same format.  Not covered: format, length,
    layout, colours and font of the plate, everything outside the text band, OCR
    mistakes (the text *read* is protected), missed plates.  See
    :mod:`pixveil.privacy.plate_codes` and :mod:`pixveil.protect.plates`.
    """

    summary: ClassVar[str] = (
        "each plate re-rendered with DP-perturbed characters of the same format"
    )
    guarantee: ClassVar[str] = (
        "per-character ε·d metric privacy on code distance; plate-level bound in the docs"
    )
    randomized: ClassVar[bool] = True
    kinds: ClassVar[frozenset[str] | None] = frozenset({"plate"})

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``plate-synth``.

        Parameters
        ----------
        epsilon : float
            Budget per unit of code distance, in ``[0, 10]`` (default 0.5); 0 draws a
            uniformly random plate of the same format.
        fallback : {"dp-pix", "mask"}
            What protects a plate that cannot be read or rendered (default
            ``"dp-pix"`` with its own defaults: ε = 1, m = 16, 8 cells across).
        verify : bool
            Read the output again and fall back when it reads closer to the original
            than to the synthetic text (default True; costs one recogniser call).

        Raises
        ------
        PrivacyParameterError
            For ε out of range.
        ValueError
            For an unknown fallback.
        """

        epsilon: float = DEFAULT_PLATE_EPSILON
        fallback: str = "dp-pix"
        verify: bool = True

        def __post_init__(self) -> None:
            super().__post_init__()
            check_plate_epsilon(self.epsilon)
            if self.fallback not in FALLBACKS:
                raise ValueError(
                    f"fallback must be one of {', '.join(FALLBACKS)}, got {self.fallback!r}"
                )
            if not isinstance(self.verify, bool):
                raise ValueError(f"verify must be a bool, got {self.verify!r}")

    params: Params

    def __init__(self, params: MethodParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._reader: TextLineRecognizer | None = None
        self._reader_lock = threading.Lock()
        self._fallback: ProtectionMethod = DPPix() if self.params.fallback == "dp-pix" else Mask()

    @property
    def reader(self) -> TextLineRecognizer:
        with self._reader_lock:
            if self._reader is None:
                self._reader = TextLineRecognizer(alphabet=_ALPHABET)
            return self._reader

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> Replacement:
        """The re-rendered plate; details ``"texts"`` = (text read, text written).

        On any failure the fallback method protects the region instead: events
        ``{"fallback": 1}``, details ``"fallback_reason"`` says why.
        """
        try:
            pixels, texts = self._synthesize(patch, region, rng)
        except Exception as exc:  # fail closed: any failure protects the region another way
            reason = type(exc).__name__ if not isinstance(exc, _Unusable) else str(exc)
            fallback = self._fallback.replace(patch, region, rng=rng)
            pixels = fallback.pixels if isinstance(fallback, Replacement) else fallback
            return Replacement(pixels, {"fallback": 1}, {"fallback_reason": reason.split(" (")[0]})
        return Replacement(pixels, {}, {"texts": texts})

    # -- the steps

    def _synthesize(
        self, patch: np.ndarray, region: Region, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, tuple[str, str]]:
        plate, s, t = _plate_and_line(region, float(self.params.margin))
        band = _band(plate, s, t)
        strip = band.strip(patch)
        text, conf, centres = self.reader.read_positions(strip)
        if len(text) < 2 or conf < 0.3:
            alt = _tesseract_read(strip)
            if len(alt) < 2:
                raise _Unusable("the plate could not be read")
            text, centres = alt, _even_positions(len(alt), band.width)
        look = _analyse(strip, centres)
        new_text = perturb_plate(text, epsilon=float(self.params.epsilon), random_state=rng)

        oversample = _STRIP_H / band.px_height
        rendered = _render_strip(look, new_text, list(look.centres), band.px_height, oversample)
        rendered = _restore(rendered, strip, look.keep)
        out = self._swap(patch, band, rendered, rng)

        if self.params.verify:
            reread, _, _ = self.reader.read_positions(band.strip(out))
            originals = {text, region.label or text}
            to_new = levenshtein(reread, new_text)
            if any(levenshtein(reread, o) <= to_new for o in originals):
                raise _Unusable("the output reads closer to the original than to the new text")
        return out, (text, new_text)

    def _swap(
        self,
        patch: np.ndarray,
        band: _Band,
        rendered: np.ndarray,
        rng: np.random.Generator | None,
    ) -> np.ndarray:
        ph, pw = patch.shape[:2]
        inv = np.linalg.inv(band.to_strip)
        warped = cv2.warpPerspective(
            rendered, inv, (pw, ph), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        ramp = 1.0 * _STRIP_H / band.px_height
        alpha = cv2.warpPerspective(
            _feather(band.width, ramp),
            inv,
            (pw, ph),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        inner = alpha > 0.99
        if inner.sum() < 16:
            raise _Unusable("text band too small in the image")
        noise_rng = rng if rng is not None else np.random.default_rng()
        sigma_n = _noise_sigma(patch, inner)
        # Grain, not privacy noise (the text is already private): slightly correlated,
        # like the noise left in a JPEG photo, scaled back to unit variance.
        grain: np.ndarray = cv2.GaussianBlur(
            noise_rng.normal(0.0, 1.0, size=(ph, pw)).astype(np.float32), (0, 0), 0.7
        )
        noise = grain[:, :, None] * (sigma_n / max(float(grain.std()), 1e-6))
        target = _sharpness(patch, inner)
        best: np.ndarray | None = None
        best_err = math.inf
        for sigma in _SIGMAS:
            cand = warped if sigma == 0 else cv2.GaussianBlur(warped, (0, 0), sigma)
            cand8 = np.clip(cand + noise, 0, 255).astype(np.uint8)
            err = abs(_sharpness(cand8, inner) - target)
            if err < best_err:
                best, best_err = cand8, err
        if best is None:
            raise _Unusable("no blur candidate")
        a = alpha[:, :, None]
        out = best.astype(np.float32) * a + patch.astype(np.float32) * (1 - a)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
