"""Geometry of the conditional face generator (no torch: shared by training and inference).

The conditional generator (:mod:`pixveil.gan.cond_models`) works on a square
*context crop* of ``RES`` pixels around a detected face:

* centre: the centre of the detected face box;
* side: ``CONTEXT`` times the box side ``s = (w + h) / 2`` (so the face box is
  ``RES / CONTEXT`` = 128 px wide in the crop and a ring of context, a quarter
  of the face on each side, stays visible: hair line, ears, neck, background);
* rotation: the in-plane roll of the eye line (from the five landmarks, clamped
  to ±:data:`MAX_ROLL` degrees; zero without landmarks), so the eyes are level.

The face region to synthesise is the ellipse inscribed in the face box grown by
the method's margin, carried into the crop (:func:`crop_mask`).  The pose goes
in as five Gaussian heat maps of the landmarks in crop coordinates
(:func:`heatmaps`); a face without usable landmarks gets empty maps (the model
is trained with landmark dropout for this case).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "CONTEXT",
    "MAX_ROLL",
    "NZ",
    "RES",
    "SIGMA",
    "context_dilation",
    "crop_mask",
    "crop_transform",
    "heatmaps",
    "roll_angle",
    "to_crop",
    "warp_crop",
]

#: Side of the context crop, in pixels.
RES = 192
#: Crop side over face-box side (the face box is RES / CONTEXT = 128 px in the crop).
CONTEXT = 1.5
#: Largest in-plane roll (degrees) the crop is rotated by.
MAX_ROLL = 40.0
#: Landmark heat-map spread, in crop pixels.
SIGMA = 0.02 * RES
#: Size of the latent code.
NZ = 64


def roll_angle(landmarks: np.ndarray | None) -> float:
    """Roll of the eye line in radians (image y down), 0 when landmarks are missing or odd."""
    if landmarks is None or len(landmarks) != 5:
        return 0.0
    lm = np.asarray(landmarks, np.float64)
    dx, dy = lm[1] - lm[0]
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx <= 0:
        return 0.0  # eyes swapped or collapsed: do not trust the angle
    ang = math.atan2(dy, dx)
    lim = math.radians(MAX_ROLL)
    return float(min(lim, max(-lim, ang)))


def crop_transform(
    box: tuple[float, float, float, float],
    landmarks: np.ndarray | None,
    *,
    res: int = RES,
    context: float = CONTEXT,
) -> np.ndarray:
    """2x3 similarity mapping crop pixels ``(u, v)`` to image pixels (for WARP_INVERSE_MAP)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = ((x1 - x0) + (y1 - y0)) / 2.0
    k = context * side / res  # image pixels per crop pixel
    th = roll_angle(landmarks)
    c, s = math.cos(th) * k, math.sin(th) * k
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    h = res / 2.0
    # pixel centres: crop (u, v) -> image (x, y); crop centre (h, h) -> box centre
    return np.array([[c, -s, cx - c * h + s * h], [s, c, cy - s * h - c * h]], np.float64)


def to_crop(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Image points (N, 2) -> crop points under the crop->image transform ``m``."""
    inv = cv2.invertAffineTransform(np.asarray(m, np.float64))
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return (pts @ inv[:, :2].T + inv[:, 2]).astype(np.float32)


def heatmaps(points: np.ndarray | None, *, res: int = RES, sigma: float = SIGMA) -> np.ndarray:
    """(5, res, res) float32 Gaussian maps of five crop-space landmarks (zeros when None)."""
    out = np.zeros((5, res, res), np.float32)
    if points is None:
        return out
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    grid = np.arange(res, dtype=np.float32)
    for i, (x, y) in enumerate(pts[:5]):
        gx = np.exp(-((grid - x) ** 2) / (2 * sigma * sigma))
        gy = np.exp(-((grid - y) ** 2) / (2 * sigma * sigma))
        out[i] = gy[:, None] * gx[None, :]
    return out


def crop_mask(
    m: np.ndarray,
    region_mask: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    *,
    res: int = RES,
    dilate: int = 1,
) -> np.ndarray:
    """The region's boolean mask carried into the crop, as (res, res) float32 in {0, 1}.

    ``region_mask`` is the mask in image (or patch) pixels, ``offset`` the
    ``(x, y)`` of its top-left pixel in the coordinates ``m`` maps to.  Any crop
    pixel that touches the region is 1, dilated by ``dilate`` pixels: the
    generator must redraw at least what will be written back, and every crop
    pixel whose interpolation read a region pixel (:func:`context_dilation`).
    """
    mm = np.asarray(m, np.float64).copy()
    mm[0, 2] -= offset[0]
    mm[1, 2] -= offset[1]
    warped = cv2.warpAffine(
        region_mask.astype(np.uint8) * 255,
        mm,
        (res, res),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    warped = (warped > 0).astype(np.uint8)
    if dilate > 0:
        warped = cv2.dilate(warped, np.ones((3, 3), np.uint8), iterations=dilate)
    return warped.astype(np.float32)


def context_dilation(m: np.ndarray) -> int:
    """Crop pixels around the carried mask that :func:`warp_crop` may have mixed with the region.

    Bicubic interpolation reads 2 source pixels on each side, i.e. ``2 / k`` crop
    pixels when one crop pixel spans ``k`` source pixels, and the area
    pre-shrink of large faces one more; plus one for rounding.
    """
    k = math.hypot(m[0, 0], m[1, 0])
    return int(min(24, math.ceil(2.0 / max(k, 1e-6)) + 2))


def warp_crop(image: np.ndarray, m: np.ndarray, res: int = RES) -> np.ndarray:
    """The context crop of ``image`` under crop->image transform ``m`` (reflected borders).

    A crop that shrinks the image by more than 1.5x is taken from an
    area-averaged copy first (warpAffine's own filter would alias).
    """
    k = math.hypot(m[0, 0], m[1, 0])  # image px per crop px
    src, mm = image, np.asarray(m, np.float64)
    if k > 1.5:
        f = 1.0 / k
        h, w = image.shape[:2]
        sw, sh = max(1, round(w * f)), max(1, round(h * f))
        src = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        mm = np.array([[sw / w, 0, 0], [0, sh / h, 0]]) @ np.vstack([mm, [0, 0, 1]])
    return cv2.warpAffine(
        src,
        mm,
        (res, res),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
