"""From the plate network's maps to plate quadrilaterals (NumPy and OpenCV only)."""

from __future__ import annotations

import cv2
import numpy as np

from pixveil.platedet.targets import SIZE_UNIT, STRIDE

__all__ = ["box_iou", "decode", "nms"]


def decode(
    out: np.ndarray,
    *,
    threshold: float,
    stride: int = STRIDE,
    max_detections: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Plates in one output map.

    Parameters
    ----------
    out : ndarray of shape (11, H, W), float32
        Channel 0 the heatmap *after* the sigmoid, then the regression channels.
    threshold : float
        Minimum heatmap peak, in ``[0, 1]``.
    stride : int
        Pixels per map cell.
    max_detections : int
        At most this many peaks (the highest).

    Returns
    -------
    quads : ndarray of shape (N, 4, 2), float32
        Corners in input pixels, clockwise from the plate's top-left.
    scores : ndarray of shape (N,), float32
        Heatmap peaks, highest first.
    """
    heat = np.ascontiguousarray(out[0], np.float32)
    peaks = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= threshold)
    ii, jj = np.nonzero(peaks)
    if ii.size == 0:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    s = heat[ii, jj]
    order = np.argsort(-s, kind="stable")[:max_detections]
    ii, jj, s = ii[order], jj[order], s[order]
    r = out[1:, ii, jj].astype(np.float32)  # (10, N)
    bw = SIZE_UNIT * np.exp(np.clip(r[0], -6, 6))
    bh = SIZE_UNIT * np.exp(np.clip(r[1], -6, 6))
    px = (jj + 0.5) * stride
    py = (ii + 0.5) * stride
    quads = np.empty((ii.size, 4, 2), np.float32)
    for k in range(4):
        quads[:, k, 0] = px + r[2 + 2 * k] * bw
        quads[:, k, 1] = py + r[3 + 2 * k] * bh
    return quads, s.astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of boxes ``(x0, y0, x1, y1)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(quads: np.ndarray, scores: np.ndarray, *, iou: float = 0.4) -> np.ndarray:
    """Indices of the quads kept by greedy non-maximum suppression on their boxes.

    A quad is also dropped when its box lies mostly (80 %) inside a kept one.
    """
    n = len(scores)
    if n == 0:
        return np.zeros((0,), np.int64)
    q = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    boxes = np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1).astype(np.float64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    ious = box_iou(boxes, boxes)
    ix = np.clip(
        np.minimum(boxes[:, None, 2], boxes[None, :, 2])
        - np.maximum(boxes[:, None, 0], boxes[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(boxes[:, None, 3], boxes[None, :, 3])
        - np.maximum(boxes[:, None, 1], boxes[None, :, 1]),
        0,
        None,
    )
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    inside = (ix * iy) / area[:, None]  # share of row's box inside column's box
    keep: list[int] = []
    for i in order:
        if all(ious[i, k] < iou and inside[i, k] < 0.8 for k in keep):
            keep.append(int(i))
    return np.asarray(keep, np.int64)
