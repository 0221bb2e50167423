"""Licence-plate detector: PP-OCR text lines, read and filtered by what plates look like.

No licence-plate detector ships offline, so plates are found as a special kind of
text.  The pipeline, per image:

1. **Text lines.**  The PP-OCRv4 DB text detector (ONNX, from the
   ``rapidocr-onnxruntime`` wheel, see :mod:`pixveil.detect.ocr`) runs once on
   the image resized so its long side is ``max_side`` (1280 by default; a 1280x720
   photo runs at full resolution).  Its probability map gives rotated text-line boxes.
   Neighbouring pieces of one line (plates often have a gap, an emblem or a sticker
   between character groups) are also merged into one candidate.
2. **Geometry filter.**  A candidate must be at least 6 px high and 1.3 to 9 times as
   wide as high (the text of a plate, not the plate itself).
3. **Reading.**  Each candidate is rectified and read by the PP-OCRv4 recogniser,
   restricted to ``A-Z 0-9`` and a few separators (``- . : /`` and space).
4. **Plate score** in ``[0, 1]``: the mean character confidence, times a prior on the
   reading (after dropping separators): 5 to 8 characters mixing letters and digits
   score 1; digits only 0.6 (up to 7 digits); letters only 0.35 (words on signs and
   car badges are far more common than vanity plates); 4 or 9 characters count 0.7,
   3 or 10 characters 0.3, anything else 0.  Readings that look like a date or a time
   (camera timestamps), and digit strings stacked next to one, score 0.  The score is
   finally scaled down when the text detector itself was unsure (mean line
   probability below 0.6).
5. **Plate box.**  The text line is grown into the plate quadrilateral (15 % wider,
   35 % of the text height above and 20 % below, along the line's own axes: US plates
   carry a state name above the number).  Lines whose centre falls inside a plate
   already accepted (state names, slogans, a second reading of the same plate) are not
   reported again.

Measured on the 330 annotated photos of ``../shared/data/plates`` (108 EU, 222 US;
``python bench/bench_plates.py --thresholds 0.5,0.35,0.25``; a plate counts as found
when a box has IoU >= 0.5 with it or covers >= 90 % of it; one thread, under load):

===============  =========  =========  =========  ==========  ============  ========
max_side         threshold  recall EU  recall US  recall all  FP per image  ms/image
===============  =========  =========  =========  ==========  ============  ========
1280 (default)   0.5        97.2 %     93.2 %     94.5 %      0.073         250-400
1280             0.25       100 %      94.6 %     96.4 %      0.30          same
960              0.5        97.2 %     89.2 %     91.8 %      0.076         170-220
===============  =========  =========  =========  ==========  ============  ========

The box is about 1.6 times the annotated plate's area (median).  Of the 24 "false
positives" at the default settings, 6 are real plates that the data set does not
annotate (other cars in the picture); the rest are model badges and signs that mix
letters and digits (``GS300``, ``EXIT 79B``), fleet, phone and bus numbers, and a
photographer's watermark.  The misses are letter-only vanity plates (found with
``threshold`` 0.25, at four times the false positives), plates the text detector does
not see at all (low contrast, night infrared), and plates misread as letters only.
The rules above were chosen by looking at this same set (nothing was fitted to it
beyond a handful of round-number thresholds), so expect somewhat lower figures on
other photos.

Speed: about 0.3 s for a 1280x720 photo on one CPU core, four fifths of it in the
text detector; ``bench/bench_plates.py`` prints the current figure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, check_device, check_threads
from pixveil.detect.base import Detector, check_image, detection_failures, register_detector
from pixveil.detect.ocr import TextLine, TextLineDetector, TextLineRecognizer, order_quad
from pixveil.types import Region
from pixveil.validate import check_number

__all__ = [
    "FUSED_OCR_WEIGHT",
    "FUSED_THRESHOLD",
    "LINE_GROW_DOWN",
    "LINE_GROW_UP",
    "LINE_GROW_X",
    "FusedPlateDetector",
    "PlateDetector",
    "plate_text_prior",
]

#: What the recogniser may read on a plate (separators are dropped from the label).
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:/ "

#: A date (2014-05-13, 2014.05.13, 13/05/14) or a time with seconds (07:25:13).
_STAMP = re.compile(
    r"(?:19|20)\d\d[-./]?[01]\d[-./]|\d\d?[:.]\d\d[:.]\d\d|\d\d?/\d\d?/\d\d|^(?:19|20)\d{6,}$"
)

# Text-line geometry accepted as plate text.
_MIN_HEIGHT = 6.0
_MIN_ASPECT = 1.3
_MAX_ASPECT = 9.0

#: How a detected text line grows into its plate quadrilateral: by this fraction
#: of the line's width in all (half on each side), and by these fractions of its
#: height above and below.  plate-synth inverts it to find the line in the quad.
LINE_GROW_X = 0.15
LINE_GROW_UP = 0.35
LINE_GROW_DOWN = 0.20


def plate_text_prior(text: str) -> float:
    """How plate-like a reading is, in ``[0, 1]``, from its characters alone.

    Parameters
    ----------
    text : str
        The recognised text, separators included (``"RK-763AS"``).

    Returns
    -------
    float
        0 for timestamps and impossible lengths, up to 1 for 5 to 8 characters that
        mix letters and digits.
    """
    if _STAMP.search(text):
        return 0.0
    t = _normalise(text)
    n = len(t)
    letters = sum(c.isalpha() for c in t)
    digits = n - letters
    if letters and digits:
        base = 1.0
    elif digits:
        base = 0.6 if n <= 7 else 0.0
    elif letters:
        base = 0.35
    else:
        return 0.0
    length = {3: 0.3, 4: 0.7, 5: 1.0, 6: 1.0, 7: 1.0, 8: 1.0, 9: 0.7, 10: 0.3}.get(n, 0.0)
    return base * length


def _normalise(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


# ----------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Frame:
    """A rotated rectangle: centre, unit axis along the text, width and height."""

    centre: np.ndarray
    axis: np.ndarray
    width: float
    height: float

    @classmethod
    def of(cls, quad: np.ndarray) -> _Frame:
        u = quad[1] - quad[0]
        w = float(np.linalg.norm(u))
        h = float(np.linalg.norm(quad[3] - quad[0]))
        return cls(quad.mean(axis=0), u / max(w, 1e-6), w, h)

    @property
    def normal(self) -> np.ndarray:
        """Unit vector across the text, pointing down the image."""
        v = np.array([-self.axis[1], self.axis[0]], dtype=np.float32)
        return v if v[1] >= 0 else -v


def _merge_pieces(lines: list[TextLine]) -> list[TextLine]:
    """Lines formed by joining collinear neighbours of similar height (greedy).

    Only the new, merged lines are returned.
    """
    items = [(line.quad, line.score) for line in lines]
    merged_any = False
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            fi = _Frame.of(items[i][0])
            for j in range(i + 1, len(items)):
                fj = _Frame.of(items[j][0])
                hi, hj = fi.height, fj.height
                if max(hi, hj) > 1.6 * max(min(hi, hj), 1e-6):
                    continue
                if abs(float(fi.axis @ fj.axis)) < math.cos(math.radians(12)):
                    continue
                d = fj.centre - fi.centre
                along = abs(float(d @ fi.axis))
                across = abs(float(d[1] * fi.axis[0] - d[0] * fi.axis[1]))
                tall = max(hi, hj)
                if across > 0.35 * tall or along - (fi.width + fj.width) / 2 > 1.2 * tall:
                    continue
                pts = np.vstack([items[i][0], items[j][0]]).astype(np.float32)
                quad = order_quad(cv2.boxPoints(cv2.minAreaRect(pts)))
                score = (items[i][1] * fi.width + items[j][1] * fj.width) / (fi.width + fj.width)
                items[i] = (quad, score)
                items.pop(j)
                changed = merged_any = True
                break
            if changed:
                break
    if not merged_any:
        return []
    originals = {np.round(line.quad).tobytes() for line in lines}
    return [TextLine(q, float(s)) for q, s in items if np.round(q).tobytes() not in originals]


def _plate_quad(quad: np.ndarray) -> np.ndarray:
    """The plate around a text line: ``(4, 2)`` float32, clockwise from top-left."""
    f = _Frame.of(quad)
    u, v = f.axis, f.normal
    half = f.width * (1 + LINE_GROW_X) / 2
    top = -f.height * (0.5 + LINE_GROW_UP)
    bottom = f.height * (0.5 + LINE_GROW_DOWN)
    c = f.centre
    pts = np.array(
        [
            c - u * half + v * top,
            c + u * half + v * top,
            c + u * half + v * bottom,
            c - u * half + v * bottom,
        ],
        dtype=np.float32,
    )
    return order_quad(pts)


def _near_stamp(line: TextLine, stamps: list[TextLine]) -> bool:
    """True when ``line`` sits just above or below a timestamp line."""
    f = _Frame.of(line.quad)
    x0, x1 = float(line.quad[:, 0].min()), float(line.quad[:, 0].max())
    for s in stamps:
        g = _Frame.of(s.quad)
        if max(f.height, g.height) > 2.5 * max(min(f.height, g.height), 1e-6):
            continue
        a0, a1 = float(s.quad[:, 0].min()), float(s.quad[:, 0].max())
        if min(x1, a1) - max(x0, a0) <= 0:
            continue
        if abs(float(f.centre[1] - g.centre[1])) <= 1.8 * max(f.height, g.height):
            return True
    return False


@dataclass(frozen=True)
class _Candidate:
    line: TextLine
    raw: str
    confidence: float
    score: float


# ----------------------------------------------------------------------- detector


@register_detector("plates")
class PlateDetector(Detector):
    """Find licence plates as plate-like text (PP-OCRv4 detector and recogniser).

    The default target ``plates``; ``plates-fused`` (:class:`FusedPlateDetector`) runs
    the learned detector first with this path as a second opinion.

    Parameters
    ----------
    threshold : float, default 0.5
        Minimum plate score, in ``[0, 1]`` (see the module notes).  0.5 keeps readings
        that mix letters and digits, and clear digit-only readings; 0.35 or lower also
        keeps letter-only readings (vanity plates, but also words on signs).
    max_side : int, default 1280
        Long side, in pixels, at which the text detector sees the image (larger images
        are shrunk; smaller ones are not enlarged).  At least 320.  Plates whose
        characters end up smaller than about 6 px at that scale are missed.
    max_candidates : int, default 48
        At most this many text lines (the most confident ones) are read per image;
        this bounds the time spent on text-heavy pictures.  At least 1.
    threads, device
        Of the OCR networks, as for :class:`~pixveil.detect.ocr.TextLineDetector`.

    Notes
    -----
    Regions carry the plate quadrilateral as ``landmarks`` (four corners clockwise
    from top-left, in image pixels) and the recognised characters as ``label``
    (letters and digits only).  The box is the quadrilateral's bounding box, clipped
    to the image; it is a little larger than the plate, on purpose.
    """

    kind = "plate"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        max_side: int = 1280,
        max_candidates: int = 48,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.threshold = check_number(threshold, name="threshold", low=0, high=1)
        self.max_side = int(check_number(max_side, name="max_side", low=320, integer=True))
        self.max_candidates = int(
            check_number(max_candidates, name="max_candidates", low=1, integer=True)
        )
        self.threads = check_threads(threads)
        self.device = check_device(device)
        self._detector = TextLineDetector(threads=threads, device=device)
        self._reader = TextLineRecognizer(threads=threads, alphabet=_ALPHABET, device=device)

    @property
    def runtime(self) -> LoadedSession:
        """The text-line detector's session: the providers it got and the device it runs on."""
        return self._detector.runtime

    def __repr__(self) -> str:
        return (
            f"PlateDetector(threshold={self.threshold}, max_side={self.max_side}, "
            f"max_candidates={self.max_candidates})"
        )

    def detect(self, image: np.ndarray) -> list[Region]:
        image = check_image(image)
        with detection_failures("plate", image):
            prob = self._detector.probability_map(image, max_side=self.max_side)
            return self._from_map(image, prob)

    # -- the steps after the text detector (separate so they can be tested and timed)

    def _candidates(self, image: np.ndarray, prob: np.ndarray) -> list[_Candidate]:
        h, w = image.shape[:2]
        lines = TextLineDetector.lines(prob, (w, h), thresh=0.3, box_thresh=0.3)
        lines = lines + _merge_pieces(lines)
        lines = [
            line
            for line in lines
            if line.height >= _MIN_HEIGHT and _MIN_ASPECT <= line.width / line.height <= _MAX_ASPECT
        ]
        lines.sort(key=lambda line: -line.score)
        lines = lines[: self.max_candidates]
        if not lines:
            return []
        reads = self._reader.read([self._reader.crop(image, line.quad) for line in lines])
        stamps = [line for line, (raw, _) in zip(lines, reads, strict=True) if _STAMP.search(raw)]
        out = []
        for line, (raw, conf) in zip(lines, reads, strict=True):
            prior = plate_text_prior(raw)
            if prior > 0 and stamps and _normalise(raw).isdigit() and _near_stamp(line, stamps):
                prior = 0.0
            score = conf * prior * min(1.0, line.score / 0.6)
            out.append(_Candidate(line, raw, conf, float(min(max(score, 0.0), 1.0))))
        out.sort(key=lambda c: -c.score)
        return out

    def _from_map(
        self, image: np.ndarray, prob: np.ndarray, threshold: float | None = None
    ) -> list[Region]:
        h, w = image.shape[:2]
        threshold = self.threshold if threshold is None else threshold
        regions: list[Region] = []
        for cand in self._candidates(image, prob):
            if cand.score < threshold or cand.score <= 0.0:
                break
            cx, cy = (float(v) for v in cand.line.quad.mean(axis=0))
            if any(r.box[0] <= cx <= r.box[2] and r.box[1] <= cy <= r.box[3] for r in regions):
                continue
            region = Region.from_quad(
                _plate_quad(cand.line.quad),
                w,
                h,
                kind=self.kind,
                score=cand.score,
                label=_normalise(cand.raw) or None,
            )
            if region is not None:
                regions.append(region)
        return regions


# ----------------------------------------------------------------------- fusion

#: The fused score a region needs in the ``plates-fused`` target (see
#: :class:`FusedPlateDetector`; chosen by ``bench/bench_plate_fusion.py``).
FUSED_THRESHOLD = 0.85
#: Scale of the OCR score of a plate that the network does not find.
FUSED_OCR_WEIGHT = 0.5
#: Floors of the two candidate lists fed to the fusion.
_NET_FLOOR = 0.3
_OCR_FLOOR = 0.05


@register_detector("plates-fused")
class FusedPlateDetector(PlateDetector):
    """The ``plates-fused`` target: the learned detector first, the OCR path as a second opinion.

    Both paths run on every image: the network (``plates-net``,
    :class:`~pixveil.detect.plate_net.PlateNetDetector`) keeps its candidates down to a
    score of 0.3, the OCR path (:class:`PlateDetector`) down to 0.05.  One score then
    decides (:func:`pixveil.detect.plate_net.second_opinion`):

    * a network plate that the OCR path also reads: ``1 - (1 - p_net)(1 - p_ocr)``;
    * a network plate alone: ``p_net``;
    * an OCR plate that no network plate explains: ``ocr_weight * p_ocr``;

    and a region is reported when that score reaches ``threshold``.  Network regions
    carry the whole plate's quadrilateral and no ``label``; OCR regions the grown text
    line's quadrilateral and their reading.  ``plates`` (the default) is the OCR path
    alone, ``plates-net`` the network alone.  Figures (recall and false positives
    against each path alone, on photos never trained or tuned on):
    ``bench/bench_plate_fusion.py``, ``docs/BENCHMARKS.md`` section 10.  It finds more
    plates than ``plates`` at about the same false positives, for the time of both
    paths; it is not the default because on the held-out photos its false positives
    were not below the OCR path's (18 against 14 in 222 photos).

    Parameters
    ----------
    threshold : float, default FUSED_THRESHOLD
        Minimum fused score, in ``[0, 1]``.
    ocr_weight : float, default FUSED_OCR_WEIGHT
        Scale of the scores of OCR plates the network does not find, in ``[0, 1]``.
    max_side, max_candidates, threads, device
        As for :class:`PlateDetector` (``max_side`` for the OCR path); ``threads`` and
        ``device`` apply to the network too.
    model : str, optional
        Another exported network (``plate_det.onnx``).
    """

    def __init__(
        self,
        *,
        threshold: float = FUSED_THRESHOLD,
        ocr_weight: float = FUSED_OCR_WEIGHT,
        max_side: int = 1280,
        max_candidates: int = 48,
        threads: int | None = None,
        device: str = "cpu",
        model: str | None = None,
    ) -> None:
        from pixveil.detect.plate_net import PlateNetDetector

        super().__init__(
            threshold=threshold,
            max_side=max_side,
            max_candidates=max_candidates,
            threads=threads,
            device=device,
        )
        self.ocr_weight = check_number(ocr_weight, name="ocr_weight", low=0, high=1)
        self._net = PlateNetDetector(
            threshold=_NET_FLOOR, threads=threads, device=device, model=model
        )

    def __repr__(self) -> str:
        return (
            f"FusedPlateDetector(threshold={self.threshold}, ocr_weight={self.ocr_weight}, "
            f"max_side={self.max_side}, max_candidates={self.max_candidates})"
        )

    def detect(self, image: np.ndarray) -> list[Region]:
        from pixveil.detect.plate_net import second_opinion

        image = check_image(image)
        net = self._net.detect(image)  # raises DetectionError itself
        with detection_failures("plate", image):
            prob = self._detector.probability_map(image, max_side=self.max_side)
            ocr = self._from_map(image, prob, threshold=min(_OCR_FLOOR, self.threshold))
        fused = second_opinion(net, ocr, ocr_weight=self.ocr_weight)
        return [r for r in fused if r.score >= self.threshold]
