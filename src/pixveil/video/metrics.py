"""Temporal metrics: coverage of reference regions, and flicker inside the protected ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pixveil.protect.base import region_geometry
from pixveil.types import Box, Region

__all__ = ["Coverage", "coverage", "flicker", "protected_mask"]


def protected_mask(
    regions: Iterable[Region], size: tuple[int, int], *, shape: str = "auto", margin: float = 1.3
) -> np.ndarray:
    """Boolean (H, W) mask of the pixels a method with ``shape``/``margin`` replaces.

    ``size`` is ``(width, height)``.  The geometry is that of
    :func:`pixveil.protect.base.region_geometry`, so the mask is exactly where a
    method's output is composited.
    """
    width, height = size
    mask = np.zeros((height, width), bool)
    for r in regions:
        geom = region_geometry(r, width, height, shape=shape, margin=margin)
        if geom is None:
            continue
        (x0, y0, x1, y1), m, _ = geom
        mask[y0:y1, x0:x1] |= m
    return mask


@dataclass(frozen=True)
class Coverage:
    """Reference boxes covered, out of all, over a clip."""

    covered: int
    total: int
    #: Frames (indices) holding at least one reference box that was not covered.
    missed_frames: tuple[int, ...] = ()

    @property
    def rate(self) -> float:
        return self.covered / self.total if self.total else 1.0


def coverage(
    reference: Sequence[Sequence[Box]],
    protected: Sequence[Sequence[Region]],
    size: tuple[int, int],
    *,
    shape: str = "auto",
    margin: float = 1.3,
    need: float = 0.9,
) -> Coverage:
    """Share of reference boxes (e.g. every-frame detections) that the protected regions cover.

    A reference box counts as covered in its frame when at least ``need`` of its
    pixels lie in :func:`protected_mask` of that frame's protected regions (an
    ellipse inscribed in a box grown by 1.3 holds 98.6 % of the box it was
    grown from).

    Parameters
    ----------
    reference : per frame, a sequence of (x0, y0, x1, y1)
    protected : per frame, the regions handed to the method
    size : (width, height)
    shape, margin : the method's (``blur``: ``"auto"``, 1.3)
    need : float in (0, 1]
    """
    if len(reference) != len(protected):
        raise ValueError(f"{len(reference)} reference frames but {len(protected)} protected ones")
    if not 0.0 < need <= 1.0:
        raise ValueError(f"need must be in (0, 1], got {need!r}")
    width, height = size
    covered = total = 0
    missed: list[int] = []
    for i, (refs, regions) in enumerate(zip(reference, protected, strict=True)):
        if not refs:
            continue
        mask = protected_mask(regions, size, shape=shape, margin=margin)
        frame_missed = False
        for x0, y0, x1, y1 in refs:
            total += 1
            xa, ya = max(0, int(x0)), max(0, int(y0))
            xb, yb = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
            sub = mask[ya:yb, xa:xb]
            if sub.size and float(sub.mean()) >= need:
                covered += 1
            else:
                frame_missed = True
        if frame_missed:
            missed.append(i)
    return Coverage(covered, total, tuple(missed))


def flicker(
    originals: Sequence[np.ndarray],
    protected: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
) -> float:
    """Temporal warping error inside the protected regions (mean absolute, 0..255).

    For each pair of consecutive frames, the optical flow of the *original*
    frames (OpenCV's DIS, from frame ``t+1`` back to ``t``) warps protected frame
    ``t`` onto frame ``t+1``; the error is the mean absolute difference between
    that warped frame and protected frame ``t+1`` over the pixels of ``masks[t+1]``
    (the protected area of ``t+1``), averaged over all pairs weighted by area.
    A method whose output moves with the scene scores low; one that redraws its
    noise or its synthetic content every frame scores high.  Computed on the
    originals, the same number is the error the flow itself makes (a floor).

    Parameters
    ----------
    originals, protected : sequences of (H, W, 3) uint8 frames
    masks : sequence of (H, W) bool
        Protected area of each frame (e.g. :func:`protected_mask`).
    """
    import cv2

    if not (len(originals) == len(protected) == len(masks)):
        raise ValueError("originals, protected and masks must have the same length")
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    total, count = 0.0, 0
    for t in range(len(originals) - 1):
        m = np.asarray(masks[t + 1], bool)
        if not m.any():
            continue
        g0 = cv2.cvtColor(originals[t], cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(originals[t + 1], cv2.COLOR_RGB2GRAY)
        flow = np.asarray(dis.calc(g1, g0, None))  # type: ignore[call-overload]  # g1(x) ~ g0(x + flow(x))
        h, w = g1.shape
        grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=2).astype(np.float32)
        mapping = grid + flow
        warped = cv2.remap(
            protected[t],
            mapping[..., 0],
            mapping[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        diff = np.abs(warped.astype(np.float32) - protected[t + 1].astype(np.float32)).mean(axis=2)
        total += float(diff[m].sum())
        count += int(m.sum())
    return total / count if count else 0.0
