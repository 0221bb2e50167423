"""What of a person is protected: the face, the whole head, or the whole person.

A face detector finds faces; an attacker who re-identifies people also looks at
their hair, ears, head outline, neck, clothes and body (McPherson et al. 2016,
Oh et al. 2016).  :func:`expand_regions` turns the detected faces into the
region kind the user asked for:

``face``
    The detected face box (today's behaviour; ``margin`` and ``shape`` of the
    method apply).
``head``
    A region grown from the face box (and its five landmarks, which centre it):
    :data:`HEAD_GROWTH` of the face's width to each side (ears), of its height
    above (forehead and hair) and below (chin and neck).  Its shape
    (``shape="auto"``) is an ellipse over the skull, hair and ears joined to a
    band over the neck; the proportions were tuned on LFW and AT&T photos
    (see docs/methods.md, "Regions").
``person``
    The whole person: the box of a full-body detection that holds the face
    (OpenCV's built-in HOG people detector, which ships inside OpenCV), else a
    body box grown from the face (:data:`BODY_GROWTH`: about three face widths
    wide, down to seven face heights below the face), always joined with the
    head box.  Full-body detections with no face in them are protected too.
    Its shape is the box.

A head or person region keeps the face inside it: its ``landmarks`` are the
face box's top-left and bottom-right corners followed by the face's five
landmarks when known (:func:`inner_face` gives the face back), so a method
that synthesises faces (``gan-face``) can put the new face where the old one
was.  Head and person regions are never grown further by a method's
``margin``: their growth is part of the region.

What each kind leaves visible is written in docs/methods.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from pixveil.types import Box, Region

__all__ = [
    "BODY_GROWTH",
    "DERIVED_KINDS",
    "HEAD_GROWTH",
    "INFORMED_ATTACKER_NOTE",
    "REGION_KINDS",
    "body_box",
    "check_region_kind",
    "expand_regions",
    "head_box",
    "head_mask",
    "inner_face",
    "people_boxes",
]

#: The region kinds a user can ask for.
REGION_KINDS: tuple[str, ...] = ("face", "head", "person")
#: Region kinds built from a face (never grown again by a method's margin).
DERIVED_KINDS: frozenset[str] = frozenset({"head", "person"})

#: Head region around a face box of width ``w`` and height ``h``: ``side`` x ``w``
#: to each side, ``up`` x ``h`` above, ``down`` x ``h`` below.  Tuned on LFW and
#: AT&T (docs/methods.md, "Regions").
HEAD_GROWTH: dict[str, float] = {"side": 0.45, "up": 0.75, "down": 0.55}
#: Share of the head box's height (from its top) covered by the skull ellipse;
#: below it only the neck band (the middle :data:`NECK_WIDTH` of the box) is.
SKULL_HEIGHT = 0.82
#: Width of the neck band, as a share of the head box's width.
NECK_WIDTH = 0.62
#: Body box around a face box of width ``w`` and height ``h`` when no full-body
#: detection holds the face: ``side`` x ``w`` to each side, ``down`` x ``h`` below.
BODY_GROWTH: dict[str, float] = {"side": 1.3, "down": 7.0}
#: People detection runs on a copy whose longer side is at most this (HOG's cost
#: grows with the area; its smallest person is 64 x 128 pixels of that copy).
PEOPLE_MAX_SIDE = 960
#: What ``pixveil methods`` says about the informed attacker (a CNN trained on
#: protected photos of the same people, seeing the whole photo), one plain
#: sentence with the figures of docs/BENCHMARKS.md §12.
INFORMED_ATTACKER_NOTE = (
    "Against an informed attacker (a CNN trained on protected photos of the same people, "
    "seeing the whole photo) no setting with acceptable utility stays within 2x chance on "
    "both AT&T and LFW: the default blur of the face leaves it 85 % on AT&T and 18 % on LFW "
    "(chance 2.5 %), and only --region person with mask reaches 2.5 % and 3 %, removing the "
    "whole person (docs/BENCHMARKS.md section 12)."
)
#: A full-body detection "holds" a face whose centre lies inside it, in its top
#: half, and which is at most this wide relative to the detection.
_FACE_IN_BODY_MAX_WIDTH = 0.6


def check_region_kind(value: object) -> str:
    """``value`` as one of :data:`REGION_KINDS`, or ``ValueError`` naming them."""
    if not isinstance(value, str) or value.strip().lower() not in REGION_KINDS:
        raise ValueError(f"region must be one of {', '.join(REGION_KINDS)}, got {value!r}")
    return value.strip().lower()


def _centre_x(face: Region) -> float:
    """The face's horizontal centre: the eyes' and mouth's middle when landmarks are known."""
    x0, _, x1, _ = face.box
    lm = face.landmarks
    if lm is not None and len(lm) == 5 and np.all(np.isfinite(lm)):
        mid = float(np.mean(lm[:, 0]))
        w = x1 - x0
        return min(max(mid, x0 + 0.3 * w), x1 - 0.3 * w)  # never far from the box
    return (x0 + x1) / 2


def head_box(face: Region) -> Box:
    """The head box of a face region (image coordinates, not clipped)."""
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx = _centre_x(face)
    half = w / 2 + HEAD_GROWTH["side"] * w
    return (cx - half, y0 - HEAD_GROWTH["up"] * h, cx + half, y1 + HEAD_GROWTH["down"] * h)


def body_box(face: Region) -> Box:
    """A body box grown from a face region, for when no people detection holds it."""
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx = _centre_x(face)
    half = w / 2 + BODY_GROWTH["side"] * w
    hx0, hy0, hx1, _ = head_box(face)
    return (min(cx - half, hx0), hy0, max(cx + half, hx1), y1 + BODY_GROWTH["down"] * h)


def head_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    """Boolean (h, w) head silhouette of ``box`` (in the crop's coordinates).

    An ellipse over the top :data:`SKULL_HEIGHT` of the box (skull, hair, ears)
    joined to a band over the middle :data:`NECK_WIDTH` of its width from the
    ellipse's centre down to the bottom (neck).  A pixel belongs to it when its
    centre does; a box too small to hold any pixel centre gives all True.
    """
    h, w = size
    bx0, by0, bx1, by1 = box
    bw, bh = bx1 - bx0, by1 - by0
    cx = (bx0 + bx1) / 2
    ax = max(bw / 2, 0.5)
    ay = max(bh * SKULL_HEIGHT / 2, 0.5)
    cy = by0 + ay
    yy, xx = np.ogrid[0:h, 0:w]
    px, py = xx + 0.5, yy + 0.5
    skull = ((px - cx) / ax) ** 2 + ((py - cy) / ay) ** 2 <= 1.0
    neck = (np.abs(px - cx) <= bw * NECK_WIDTH / 2) & (py >= cy) & (py < by1)
    mask = np.asarray(skull | neck)
    if not mask.any():
        return np.ones((h, w), dtype=bool)
    return mask


def inner_face(region: Region) -> Region | None:
    """The face a head or person region was grown from (same coordinates), or None.

    For a ``face`` region, the region itself.  A person found by the people
    detector with no face in it has none.
    """
    if region.kind == "face":
        return region
    lm = region.landmarks
    if region.kind not in DERIVED_KINDS or lm is None or len(lm) < 2:
        return None
    (x0, y0), (x1, y1) = lm[0], lm[1]
    if not (x1 > x0 and y1 > y0):
        return None
    return Region(
        (float(x0), float(y0), float(x1), float(y1)),
        kind="face",
        score=region.score,
        landmarks=lm[2:] if len(lm) == 7 else None,
    )


def _derived(face: Region, kind: str, box: Box) -> Region:
    corners = np.array([face.box[:2], face.box[2:]], dtype=np.float32)
    lm = corners
    if face.landmarks is not None and len(face.landmarks) == 5:
        lm = np.vstack([corners, face.landmarks.astype(np.float32)])
    return Region(box, kind=kind, score=face.score, landmarks=lm)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def people_boxes(image: np.ndarray, *, threshold: float = 0.5) -> list[tuple[Box, float]]:
    """Full-body people boxes found by OpenCV's built-in HOG + linear SVM detector.

    The detector (Dalal and Triggs 2005, trained on INRIA pedestrians) ships
    inside OpenCV: nothing is downloaded.  It finds upright people at least
    64 x 128 pixels of a copy whose longer side is at most
    :data:`PEOPLE_MAX_SIDE`; it does not find seated, cropped or small people.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    threshold : float
        SVM score below which a detection is dropped.

    Returns
    -------
    list of (box, score)
        Boxes in ``image`` pixels, scores squashed to ``(0, 1)``.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, PEOPLE_MAX_SIDE / max(h, w))
    small = image
    if scale < 1.0:
        small = cv2.resize(
            image,
            (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA,
        )
    if small.shape[0] < 128 or small.shape[1] < 64:
        return []
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    rects, weights = hog.detectMultiScale(
        cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY),
        winStride=(8, 8),
        padding=(8, 8),
        scale=1.05,
    )
    out: list[tuple[Box, float]] = []
    for (x, y, rw, rh), wt in zip(rects, np.ravel(weights), strict=False):
        if float(wt) < threshold:
            continue
        box = (x / scale, y / scale, (x + rw) / scale, (y + rh) / scale)
        out.append((box, 1.0 / (1.0 + math.exp(-float(wt)))))
    return out


def _holds(body: Box, face: Region) -> bool:
    fx, fy = face.center
    bw, bh = body[2] - body[0], body[3] - body[1]
    return (
        body[0] <= fx <= body[2]
        and body[1] <= fy <= body[1] + bh / 2
        and face.width <= _FACE_IN_BODY_MAX_WIDTH * bw
    )


def expand_regions(
    regions: Iterable[Region],
    kind: str,
    *,
    image: np.ndarray | None = None,
    people: Sequence[tuple[Box, float]] | None = None,
) -> list[Region]:
    """The regions to protect when ``kind`` of each person is asked for.

    Parameters
    ----------
    regions : iterable of Region
        Detections of one image; only ``face`` regions change (plates, text
        and the rest are returned as they are, in order).
    kind : {"face", "head", "person"}
        See the module's docstring.
    image : ndarray of shape (H, W, 3), uint8, optional
        For ``person``: the image the people detector runs on.  Without it (and
        without ``people``) each person is the body box grown from the face.
    people : sequence of (box, score), optional
        For ``person``: full-body detections already made (skips the detector).

    Returns
    -------
    list of Region
        Each face replaced by its ``head`` or ``person`` region (unclipped, the
        compositing clips), then, for ``person``, the full-body detections that
        hold no face.
    """
    kind = check_region_kind(kind)
    regions = list(regions)
    if kind == "face":
        return regions
    if kind == "person" and people is None:
        people = people_boxes(image) if image is not None else []
    bodies = list(people or ())
    used = [False] * len(bodies)
    out: list[Region] = []
    for r in regions:
        if r.kind != "face":
            out.append(r)
            continue
        head = head_box(r)
        if kind == "head":
            out.append(_derived(r, "head", head))
            continue
        box = _union(body_box(r), head)
        for j, (b, _) in enumerate(bodies):
            if _holds(b, r):
                box = _union(b, head)
                used[j] = True
                break
        out.append(_derived(r, "person", box))
    for j, (b, score) in enumerate(bodies):
        if not used[j]:
            out.append(Region(b, kind="person", score=score))
    return out
