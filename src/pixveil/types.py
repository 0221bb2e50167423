"""Core value types shared by every stage.

Coordinate convention (used everywhere in pixveil)
--------------------------------------------------
Images are NumPy arrays of shape ``(H, W, 3)``, dtype ``uint8``, RGB, in the
*displayed* orientation (EXIF orientation already applied).  A box is
``(x0, y0, x1, y1)`` in pixel units of that array, floats, with ``x0, y0``
inclusive and ``x1, y1`` exclusive: the pixel ``image[y, x]`` covers the square
``[x, x+1) x [y, y+1)``.  Landmarks are ``(N, 2)`` arrays of ``(x, y)`` in the same
units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Box", "Detections", "Region", "box_iou"]

Box = tuple[float, float, float, float]

#: The five facial landmarks, in the order CenterFace returns them.
FACE_LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True, eq=False)
class Region:
    """One detected private object.

    Parameters
    ----------
    box : tuple of 4 floats
        ``(x0, y0, x1, y1)`` in pixels of the oriented image; ``x1 > x0`` and ``y1 > y0``.
    kind : str
        What was found: ``"face"``, ``"plate"``, ``"text"``, ``"text-pii"``...
    score : float
        Detector confidence in ``[0, 1]``.
    landmarks : ndarray of shape (N, 2), float32, optional
        Keypoints in image pixels (five face landmarks for faces; the four plate
        corners, clockwise from top-left, for plates when known).
    label : str, optional
        Free text attached by the detector (for example the OCR text of a plate).
        It is never written to sidecars unless the user asks for it.
    """

    box: Box
    kind: str
    score: float = 1.0
    landmarks: np.ndarray | None = field(default=None, repr=False)
    label: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"box must have 4 values (x0, y0, x1, y1), got {len(self.box)}")
        x0, y0, x1, y1 = (float(v) for v in self.box)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError(f"box must be finite, got {self.box}")
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box must have x1 > x0 and y1 > y0, got {self.box}")
        object.__setattr__(self, "box", (x0, y0, x1, y1))
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float32)
            if lm.ndim != 2 or lm.shape[1] != 2:
                raise ValueError(f"landmarks must have shape (N, 2), got {lm.shape}")
            lm.setflags(write=False)
            object.__setattr__(self, "landmarks", lm)

    @classmethod
    def from_quad(
        cls,
        quad: np.ndarray,
        width: int,
        height: int,
        *,
        kind: str,
        score: float,
        label: str | None = None,
        min_side: float = 0.0,
    ) -> Region | None:
        """The region of a quadrilateral (a text line, a plate) clipped to the image.

        Parameters
        ----------
        quad : ndarray of shape (4, 2)
            Corners in image pixels, clockwise from top-left; not modified.
        width, height : int
            The image size: the corners are clipped to it.
        kind, label : str
            As for the constructor.
        score : float
            Clamped to ``[0, 1]``.
        min_side : float, keyword-only
            Quadrilaterals whose clipped box is narrower or lower than this (or
            empty) give None.

        Returns
        -------
        Region or None
            ``box`` the clipped corners' bounding box, ``landmarks`` the clipped
            corners (float32); None when too little of it is inside the image.
        """
        q = np.array(quad, dtype=np.float32)
        q[:, 0] = np.clip(q[:, 0], 0, width)
        q[:, 1] = np.clip(q[:, 1], 0, height)
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        if x1 <= x0 or y1 <= y0 or x1 - x0 < min_side or y1 - y0 < min_side:
            return None
        return cls(
            (float(x0), float(y0), float(x1), float(y1)),
            kind=kind,
            score=min(max(float(score), 0.0), 1.0),
            landmarks=q,
            label=label,
        )

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def area(self) -> float:
        return self.width * self.height

    def scaled(self, factor: float) -> Region:
        """The same region grown (or shrunk) by ``factor`` about its centre."""
        if factor <= 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        cx, cy = self.center
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return replace(self, box=(cx - hw, cy - hh, cx + hw, cy + hh))

    def clipped(self, width: int, height: int) -> Region | None:
        """The region clipped to an image of ``width`` x ``height``, or None if nothing is left."""
        x0, y0, x1, y1 = self.box
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(width), x1), min(float(height), y1)
        if x1 <= x0 or y1 <= y0:
            return None
        return replace(self, box=(x0, y0, x1, y1))

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer ``(x0, y0, x1, y1)`` covering every pixel the box touches, clipped to the image."""
        x0, y0, x1, y1 = self.box
        return (
            max(0, math.floor(x0)),
            max(0, math.floor(y0)),
            min(width, math.ceil(x1)),
            min(height, math.ceil(y1)),
        )

    def iou(self, other: Region | Box) -> float:
        """Intersection over union of the two boxes (see :func:`box_iou`)."""
        return box_iou(self.box, other.box if isinstance(other, Region) else other)

    def to_dict(self, *, include_label: bool = False) -> dict[str, Any]:
        """A JSON-ready description (box, kind, score, landmarks).  No pixels, ever."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 4),
        }
        if self.landmarks is not None:
            d["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]
        if include_label and self.label is not None:
            d["label"] = self.label
        return d


@dataclass(frozen=True)
class Detections(Sequence[Region]):
    """The regions found in one image, with the image size they refer to."""

    regions: tuple[Region, ...]
    width: int
    height: int

    @classmethod
    def of(cls, regions: Iterable[Region], width: int, height: int) -> Detections:
        return cls(tuple(regions), int(width), int(height))

    def __len__(self) -> int:
        return len(self.regions)

    def __getitem__(self, i: int) -> Region:  # type: ignore[override]
        return self.regions[i]

    def __iter__(self) -> Iterator[Region]:
        return iter(self.regions)

    def count(self, kind: str) -> int:
        """Number of regions of the given kind."""
        return sum(1 for r in self.regions if r.kind == kind)

    def of_kind(self, kind: str) -> list[Region]:
        return [r for r in self.regions if r.kind == kind]

    def to_dict(self, *, include_labels: bool = False) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "regions": [r.to_dict(include_label=include_labels) for r in self.regions],
        }


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes, in ``[0, 1]``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
