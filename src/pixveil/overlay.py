"""Drawing detections on an image, for checking thresholds (``pixveil anonymize --boxes``)."""

from __future__ import annotations

import numpy as np

from pixveil.types import Detections

__all__ = ["KIND_COLOURS", "draw_detections"]

#: Box colour (RGB) of each region kind; other kinds are drawn in white.
KIND_COLOURS: dict[str, tuple[int, int, int]] = {
    "face": (0, 255, 0),
    "plate": (255, 200, 0),
    "text": (0, 200, 255),
    "text-pii": (255, 0, 255),
}


def draw_detections(image: np.ndarray, detections: Detections) -> np.ndarray:
    """Draw each region's box, kind and score on a copy of ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        RGB; usually the protected image (drawing never reveals pixels).
    detections : Detections
        Regions in pixel coordinates of ``image``.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        A copy with a rectangle per region and a ``"<kind> <score>"`` label above it.
    """
    import cv2

    out = np.ascontiguousarray(image.copy())
    height, width = out.shape[:2]
    thickness = max(1, round(max(height, width) / 500))
    font_scale = max(0.4, max(height, width) / 1500)
    for region in detections:
        x0, y0, x1, y1 = region.pixel_box(width, height)
        if x1 <= x0 or y1 <= y0:
            continue
        colour = KIND_COLOURS.get(region.kind, (255, 255, 255))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, thickness)
        label = f"{region.kind} {region.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        ty = y0 - base - 2 if y0 - th - base - 2 >= 0 else min(height - 1, y1 + th + 2)
        cv2.rectangle(out, (x0, ty - th - 2), (x0 + tw + 2, ty + base), colour, cv2.FILLED)
        cv2.putText(
            out,
            label,
            (x0 + 1, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )
    return out
