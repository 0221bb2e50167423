"""Replacement picture: ``image`` puts a picture (a logo, an emoji) over each region.

The picture is read once, when the method is built, and scaled to every region
(``fit``); where it is transparent, and around it when it does not fill the
region, the region shows a solid colour.  The original pixels are never used:
the output inside a region depends only on the region's box and shape and on
the picture, exactly as with ``mask``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from pixveil.errors import InputError
from pixveil.io import read_image
from pixveil.protect.base import MethodParams, ProtectionMethod, register_method
from pixveil.protect.classic import parse_color, to_uint8
from pixveil.types import Region

__all__ = ["FITS", "MAX_SIDE", "ReplaceImage"]

#: How the picture is scaled to a region's box.
FITS = ("stretch", "contain", "cover")
#: Longest side, in pixels, kept of the replacement picture; larger pictures are
#: downscaled once when the method is built (regions larger than this get the
#: picture upscaled).
MAX_SIDE = 2048


@register_method("image")
class ReplaceImage(ProtectionMethod):
    """A replacement picture, scaled to each region, over a solid colour.

    The picture is scaled to the box of the region (grown by ``margin``) as
    ``fit`` says and drawn through the region's shape (an ellipse for faces
    with ``shape="auto"``).  Its alpha channel is respected: where it is
    transparent or partly transparent, it is composited over ``color``; with
    ``fit="contain"`` the bands beside the picture show ``color`` too.  A
    region clipped by the image border shows the matching part of the picture,
    not the whole picture squeezed.

    Privacy: **no formal guarantee**, but the same as ``mask``: nothing of the
    region's pixels is kept, the output inside the region depends only on the
    region's box and shape and on the picture, never on the original pixels.
    Not covered: the region's position, size and shape (the silhouette),
    everything outside it (hair, ears, clothes, body, companions, background),
    missed detections and metadata.  The picture itself is not checked: a
    picture of a face puts that face in the output.

    The picture is loaded, premultiplied by its alpha and turned into a
    pyramid of halved copies once, in the constructor; :meth:`replace` only
    reads them, so one instance may serve several threads.
    """

    summary: ClassVar[str] = (
        "a picture (logo) scaled over each region; a solid colour where it is transparent"
    )
    guarantee: ClassVar[str] = "removes the content; the silhouette remains"

    @dataclass(frozen=True, kw_only=True)
    class Params(MethodParams):
        """Parameters of ``image``.

        Parameters
        ----------
        image : str
            Path of the replacement picture (required): any format
            :func:`pixveil.io.read_image` reads, with or without alpha.  Only
            checked for a non-empty path here; the file is read when the method
            is built.  A path-like object is stored as ``str``.
        fit : {"stretch", "contain", "cover"}
            ``"stretch"`` scales the picture to the region's box, ignoring its
            aspect ratio; ``"contain"`` scales it to fit inside the box, keeping
            the aspect ratio (bands of ``color`` on two sides); ``"cover"``
            (default) scales it to cover the box, keeping the aspect ratio and
            cropping the overflow.
        color : tuple of 3 int, or str
            RGB colour under the picture's transparent parts and beside a
            ``"contain"``-ed picture, each in ``[0, 255]``, or ``"#rrggbb"``;
            stored as a tuple.  Default black.
        """

        image: str
        fit: str = "cover"
        color: tuple[int, int, int] = (0, 0, 0)

        def __post_init__(self) -> None:
            super().__post_init__()
            image: object = self.image
            if isinstance(image, os.PathLike):
                image = os.fspath(image)
            if not isinstance(image, str) or not image.strip():
                raise ValueError(
                    "image must be the path of the replacement picture (e.g. 'logo.png'), "
                    f"got {self.image!r}"
                )
            object.__setattr__(self, "image", image)
            if self.fit not in FITS:
                raise ValueError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")
            object.__setattr__(self, "color", parse_color(self.color))

    params: Params

    def __init__(self, params: MethodParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._levels = _load_pyramid(self.params.image)

    @property
    def picture_size(self) -> tuple[int, int]:
        """``(width, height)`` of the picture as kept (at most :data:`MAX_SIDE` a side)."""
        h, w = self._levels[0].shape[:2]
        return w, h

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        h, w = patch.shape[:2]
        iw, ih = self.picture_size
        # where the picture's outer edges go, in patch pixels (edge coordinates)
        rx0, ry0, rx1, ry1 = region.box
        rw, rh = rx1 - rx0, ry1 - ry0
        sx, sy = rw / iw, rh / ih
        if self.params.fit != "stretch":
            sx = sy = min(sx, sy) if self.params.fit == "contain" else max(sx, sy)
        x0 = rx0 + (rw - sx * iw) / 2
        y0 = ry0 + (rh - sy * ih) / 2
        # shrink by area averaging (from the nearest pyramid level), never enlarge here
        tw, th = min(iw, max(1, round(iw * sx))), min(ih, max(1, round(ih * sy)))
        src = next(
            (lv for lv in reversed(self._levels) if lv.shape[1] >= tw and lv.shape[0] >= th),
            self._levels[0],
        )
        if src.shape[:2] != (th, tw):
            src = cv2.resize(src, (tw, th), interpolation=cv2.INTER_AREA)
        # place it with sub-pixel accuracy (and enlarge it if needed): pixel
        # centres map as  x_patch = kx * x_src + x0 + (kx - 1) / 2
        kx, ky = sx * iw / tw, sy * ih / th
        m = np.array([[kx, 0.0, x0 + (kx - 1) / 2], [0.0, ky, y0 + (ky - 1) / 2]])
        placed = cv2.warpAffine(
            src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # the picture ends at its edges: weight each pixel by the part of it covered
        # (exact anti-aliased edges, however much the picture is enlarged)
        cover_x = _coverage(w, x0, x0 + sx * iw)
        cover_y = _coverage(h, y0, y0 + sy * ih)
        placed *= (cover_y[:, None] * cover_x[None, :])[..., None]
        # premultiplied "over": picture + (1 - alpha) * color; the patch is never read
        alpha = placed[..., 3:]
        color = np.asarray(self.params.color, dtype=np.float32)
        return to_uint8(placed[..., :3] + (1.0 - alpha) * color)


def _coverage(n: int, lo: float, hi: float) -> np.ndarray:
    """Fraction of each of ``n`` unit pixels ``[i, i + 1)`` inside ``[lo, hi]``, float32."""
    i = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(i + 1, hi) - np.maximum(i, lo), 0.0, 1.0).astype(np.float32)


def _load_pyramid(path: str) -> tuple[np.ndarray, ...]:
    """The picture as premultiplied RGBA float32 (RGB in [0, 255], alpha in [0, 1]), halved
    repeatedly down to one pixel; every array is read-only.

    Raises
    ------
    InputError
        Naming the file, when it cannot be read as a picture.
    """
    try:
        loaded = read_image(path)
    except InputError as exc:
        raise InputError(
            f"cannot be used as the replacement picture of the 'image' method: {exc.reason}",
            path=exc.path if exc.path is not None else path,
        ) from exc
    alpha = (
        np.ones(loaded.pixels.shape[:2], np.float32)
        if loaded.alpha is None
        else loaded.alpha.astype(np.float32) / 255.0
    )
    rgba = np.dstack([loaded.pixels.astype(np.float32) * alpha[..., None], alpha])
    h, w = rgba.shape[:2]
    if max(h, w) > MAX_SIDE:
        k = MAX_SIDE / max(h, w)
        size = (max(1, round(w * k)), max(1, round(h * k)))
        rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
    levels = [np.ascontiguousarray(rgba)]
    while max(levels[-1].shape[:2]) > 1:
        h, w = levels[-1].shape[:2]
        levels.append(
            cv2.resize(levels[-1], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        )
    for level in levels:
        level.setflags(write=False)
    return tuple(levels)
