"""Text detectors: ``text`` (every text line) and ``text-pii`` (lines holding personal data).

Both use the PP-OCRv4 models of :mod:`pixveil.detect.ocr` (the same ones as
the ``plates`` detector; ONNX, from the ``rapidocr-onnxruntime`` wheel).  Per image:

1. **Text lines.**  The DB text detector runs once on the image shrunk so its long
   side is at most ``max_side`` (1920 by default: screenshots and scanned pages
   carry small text); lines whose mean text probability is below ``threshold`` are
   dropped.  ``text`` reports every line.
2. **Reading.**  Every line is rectified at 48 px high *at its full length* (the
   engine's own crop caps the width, which squashes long document lines into
   nonsense) and read by the recogniser with its full character set (``text``
   reads only with ``read=True``, for the labels).  Lines at
   least 1.5 times as tall as wide are read in both 90-degree rotations and the
   more confident reading is kept.
3. **Matching.**  Each reading, and the readings of neighbouring lines joined in
   reading order (same height within 1.5x, parallel, on one baseline, gaps below
   30 line heights: one number the text detector split in two, or a form's label
   and its value; digit runs are not joined across gaps wider than one line
   height, so table columns do not make up numbers), is normalised and searched with the PII patterns of
   :mod:`pixveil.detect.pii`.  Every line that holds part of a match is reported.

What is protected: the **whole text line** that holds (part of) a match, not only
the matching characters.  PP-OCR lines end at wide gaps, so a line is a field of a
form, a line of a paragraph or a chat bubble's line; protecting all of it also
hides the label next to the data (``Tel:``, ``IBAN``), costs little utility and
leaves no half-hidden number whose remaining digits still identify someone.

What is not covered: text the detector does not see (tiny, very low contrast,
strongly curved or handwritten), readings so wrong that no pattern survives the
normalisation, personal data no pattern describes (names, street addresses), and
upside-down text.  Region labels hold the reading (``"phone: Call 555-123-4567"``);
they are never written to sidecars unless asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, check_device, check_threads
from pixveil.detect.base import Detector, check_image, detection_failures, register_detector
from pixveil.detect.ocr import TextLine, TextLineDetector, TextLineRecognizer
from pixveil.detect.pii import PiiPattern, find_pii, normalise, resolve_patterns
from pixveil.types import Region
from pixveil.validate import check_number

__all__ = ["TextDetector", "TextPiiDetector", "rectify_line"]

#: Rectified line height (the recogniser's input height).
_LINE_HEIGHT = TextLineRecognizer.height
#: Longest rectified line, in pixels (a 48 px high line 340 characters long).
_MAX_LINE_WIDTH = 8192
#: Lines on one baseline are joined across gaps up to this many line heights.
_ROW_GAP = 30.0
#: Lines closer than this many line heights are one phrase (joined by a space).
_PHRASE_GAP = 1.0
#: A line this much taller than wide is read as vertical text.
_VERTICAL = 1.5


def rectify_line(image: np.ndarray, quad: np.ndarray, *, rotate: int = 0) -> np.ndarray:
    """The line inside ``quad`` warped upright, 48 px high, at its full length.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8, RGB
    quad : ndarray of shape (4, 2)
        Corners clockwise from top-left, in image pixels.
    rotate : {0, 1, -1}
        0 for text along the quad's width; 1 or -1 for vertical text, turned by
        90 degrees counter-clockwise or clockwise so it reads left to right.

    Returns
    -------
    ndarray of shape (48, w, 3), uint8
        ``w`` is at least 8 and at most 8192.
    """
    q = np.asarray(quad, dtype=np.float32)
    lw = float(np.linalg.norm(q[1] - q[0]))
    lh = float(np.linalg.norm(q[3] - q[0]))
    if lw < 1 or lh < 1:
        raise ValueError("degenerate quad")
    if rotate == 0:
        out_w, out_h = math.ceil(_LINE_HEIGHT * lw / lh), _LINE_HEIGHT
    else:
        out_w, out_h = _LINE_HEIGHT, math.ceil(_LINE_HEIGHT * lh / lw)
    out_w = max(8, min(_MAX_LINE_WIDTH, out_w))
    out_h = max(8, min(_MAX_LINE_WIDTH, out_h))
    dst = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], dtype=np.float32)
    crop = cv2.warpPerspective(
        image,
        cv2.getPerspectiveTransform(q, dst),
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if rotate:
        crop = np.ascontiguousarray(np.rot90(crop, k=rotate))
    return crop


@dataclass(frozen=True)
class _Reading:
    line: TextLine
    text: str
    confidence: float


class _OcrTextDetector(Detector):
    """Shared machinery: text lines from the DB detector, read at full length."""

    kind = "text"
    #: The target name, in error messages.
    target: ClassVar[str]

    def __init__(
        self, *, threshold: float, max_side: int, threads: int | None, device: str
    ) -> None:
        self.threshold = check_number(
            threshold, name="threshold", low=0, high=1, low_open=True, high_open=True
        )
        self.max_side = int(check_number(max_side, name="max_side", low=320, integer=True))
        self.threads = check_threads(threads)
        self.device = check_device(device)
        self._detector = TextLineDetector(threads=threads, device=device)
        self._reader: TextLineRecognizer | None = None

    @property
    def runtime(self) -> LoadedSession:
        """The text-line detector's session: the providers it got and the device it runs on."""
        return self._detector.runtime

    def _recognizer(self) -> TextLineRecognizer:
        if self._reader is None:
            self._reader = TextLineRecognizer(threads=self.threads, device=self.device)
        return self._reader

    def _lines(self, image: np.ndarray) -> list[TextLine]:
        h, w = image.shape[:2]
        prob = self._detector.probability_map(image, max_side=self.max_side)
        lines = TextLineDetector.lines(prob, (w, h), thresh=0.3, box_thresh=self.threshold)
        lines.sort(key=lambda line: (-line.score, float(line.quad[0, 1]), float(line.quad[0, 0])))
        return lines

    def _read(self, image: np.ndarray, lines: Sequence[TextLine]) -> list[_Reading]:
        """Read every line (vertical ones in both rotations, keeping the surer reading)."""
        crops: list[np.ndarray] = []
        owner: list[int] = []
        for i, line in enumerate(lines):
            vertical = line.height >= _VERTICAL * line.width
            for rot in (1, -1) if vertical else (0,):
                crops.append(rectify_line(image, line.quad, rotate=rot))
                owner.append(i)
        # One line per run: batches are padded to their widest line, which cost more
        # than it saved (measured on whole pages).
        reads = self._recognizer().read(crops, batch=1)
        best: list[tuple[str, float]] = [("", -1.0)] * len(lines)
        for i, (text, conf) in zip(owner, reads, strict=True):
            if conf > best[i][1]:
                best[i] = (text, conf)
        return [_Reading(line, t, max(c, 0.0)) for line, (t, c) in zip(lines, best, strict=True)]

    def detect(self, image: np.ndarray) -> list[Region]:
        image = check_image(image)
        with detection_failures(self.target, image):
            return self._detect(image)

    def _detect(self, image: np.ndarray) -> list[Region]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _region(self, line: TextLine, label: str | None, image: np.ndarray) -> Region | None:
        h, w = image.shape[:2]
        return Region.from_quad(line.quad, w, h, kind=self.kind, score=line.score, label=label)


@register_detector("text")
class TextDetector(_OcrTextDetector):
    """Every text line the OCR text detector finds (PP-OCRv4 DB).

    Parameters
    ----------
    threshold : float, default 0.5
        Minimum mean text probability of a line, in ``(0, 1)``.  Lower finds fainter
        text and more texture that looks like text.
    max_side : int, default 1920
        Long side, in pixels, at which the text detector sees the image (larger
        images are shrunk, smaller ones are not enlarged); at least 320.  Text
        smaller than about 6 px high at that scale is missed.
    read : bool, default False
        Also read each line and put the reading in ``Region.label``.  Off by default:
        the protected area does not depend on it, and reading costs one to four
        times the detection time.
    threads, device
        Of the OCR networks, as for :class:`~pixveil.detect.ocr.TextLineDetector`.

    Notes
    -----
    Regions have ``kind="text"``, the line's rotated rectangle as ``landmarks``
    (four corners clockwise from top-left), its bounding box, clipped to the
    image, as ``box``, and the reading as ``label`` when ``read``.
    """

    target = "text"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        max_side: int = 1920,
        read: bool = False,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(threshold=threshold, max_side=max_side, threads=threads, device=device)
        if not isinstance(read, bool):
            raise ValueError(f"read must be True or False, got {read!r}")
        self.read = read

    def __repr__(self) -> str:
        return (
            f"TextDetector(threshold={self.threshold}, max_side={self.max_side}, read={self.read})"
        )

    def _detect(self, image: np.ndarray) -> list[Region]:
        lines = self._lines(image)
        if self.read and lines:
            labels: list[str | None] = [r.text for r in self._read(image, lines)]
        else:
            labels = [None] * len(lines)
        regions = [
            self._region(line, label, image) for line, label in zip(lines, labels, strict=True)
        ]
        return [r for r in regions if r is not None]


# ------------------------------------------------------------------------- rows


def _rows(lines: Sequence[TextLine]) -> list[list[int]]:
    """Indices of horizontal lines chained into rows (reading order), two lines or more.

    Two lines are neighbours when their heights differ by at most 1.5x, their axes
    by at most 10 degrees, their centres lie on one baseline (offset across the
    wider line's axis at most half the taller height) and the gap between them is at most
    ``_ROW_GAP`` (30) times the taller height (a form's label and its value).  Each
    line is joined to its nearest neighbour on the right, so a row is a chain.
    """
    n = len(lines)
    if n < 2:
        return []
    quads = np.stack([line.quad for line in lines]).astype(np.float64)
    u = quads[:, 1] - quads[:, 0]
    wid = np.linalg.norm(u, axis=1)
    hei = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    axis = u / np.maximum(wid, 1e-6)[:, None]
    centre = quads.mean(axis=1)
    horizontal = hei < _VERTICAL * wid
    d = centre[None, :, :] - centre[:, None, :]  # d[i, j] = c_j - c_i
    # Distances along the axis of the wider line of each pair: a short word's
    # rectangle can be tilted by several degrees, which a long line's is not.
    pair_axis = np.where(
        (wid[:, None] >= wid[None, :])[..., None], axis[:, None, :], axis[None, :, :]
    )
    along = np.einsum("ijk,ijk->ij", d, pair_axis)
    across = np.abs(d[..., 0] * pair_axis[..., 1] - d[..., 1] * pair_axis[..., 0])
    tall = np.maximum(hei[:, None], hei[None, :])
    short = np.maximum(np.minimum(hei[:, None], hei[None, :]), 1e-6)
    gap = along - (wid[:, None] + wid[None, :]) / 2
    ok = (
        horizontal[:, None]
        & horizontal[None, :]
        & (tall <= 1.5 * short)
        & (np.abs(axis @ axis.T) >= math.cos(math.radians(10)))
        & (across <= 0.5 * tall)
        & (along > 0)
        & (gap <= _ROW_GAP * tall)
        & (gap >= -0.5 * tall)
    )
    np.fill_diagonal(ok, False)
    nxt = np.full(n, -1)
    prv = np.full(n, -1)
    for i in np.argsort(centre[:, 0], kind="stable"):
        cands = np.flatnonzero(ok[i])
        cands = cands[prv[cands] < 0]
        if len(cands):
            j = int(cands[np.argmin(along[i, cands])])
            nxt[i], prv[j] = j, int(i)
    rows = []
    for start in range(n):
        if prv[start] >= 0 or nxt[start] < 0:
            continue
        row, k = [start], int(nxt[start])
        while k >= 0 and len(row) <= n:
            row.append(k)
            k = int(nxt[k])
        rows.append(row)
    return rows


def _gap(a: TextLine, b: TextLine) -> float:
    """The gap between two lines along the wider one's axis, in units of the taller height."""
    wide = a if a.width >= b.width else b
    u = wide.quad[1] - wide.quad[0]
    axis = u / max(float(np.linalg.norm(u)), 1e-6)
    along = float((b.quad.mean(axis=0) - a.quad.mean(axis=0)) @ axis)
    return (along - (a.width + b.width) / 2) / max(a.height, b.height, 1e-6)


def _flag(
    readings: Sequence[_Reading], patterns: Sequence[PiiPattern]
) -> dict[int, dict[str, str]]:
    """Line index -> {pattern name: matched text} for every line holding part of a match."""
    hits: dict[int, dict[str, str]] = {}

    def add(i: int, name: str, text: str) -> None:
        hits.setdefault(i, {}).setdefault(name, text)

    for i, r in enumerate(readings):
        for m in find_pii(r.text, patterns):
            add(i, m.pattern, m.text)
    for row in _rows([r.line for r in readings]):
        # find_pii normalises; the parts are normalised first so offsets agree.  Pieces
        # close together are joined by a space (one phrase the detector split); across
        # a wider gap by " : ", which no digit run bridges but keyword patterns do
        # (a form's "Date of birth:" and its value).
        joined, spans = "", []
        for k, i in enumerate(row):
            if k:
                near = _gap(readings[row[k - 1]].line, readings[i].line) <= _PHRASE_GAP
                joined += " " if near else " : "
            part = normalise(readings[i].text)
            spans.append((len(joined), len(joined) + len(part)))
            joined += part
        for m in find_pii(joined, patterns):
            for i, (s, e) in zip(row, spans, strict=True):
                if m.start < e and s < m.end:
                    add(i, m.pattern, m.text)
    return hits


@register_detector("text-pii")
class TextPiiDetector(_OcrTextDetector):
    """Text lines whose reading holds personal data (e-mail, phone, IBAN, ID numbers...).

    Parameters
    ----------
    threshold : float, default 0.5
        Minimum mean text probability of a line, in ``(0, 1)``, for it to be read.
    max_side : int, default 1920
        Long side, in pixels, at which the text detector sees the image; at least
        320.  Lines are read from the full-resolution image.
    patterns : sequence of str, default ()
        Patterns added to the built-in ones: ``"NAME=REGEX"`` defines a new one,
        a bare ``"NAME"`` turns on an optional built-in one (``"date"``).  See
        :mod:`pixveil.detect.pii`.
    threads, device
        Of the OCR networks, as for :class:`~pixveil.detect.ocr.TextLineDetector`.

    Notes
    -----
    Regions have ``kind="text"``; ``label`` is ``"<pattern names>: <reading>"``
    (``"email: Contact: john@example.com"``), ``landmarks`` the line's rotated
    rectangle.  The whole line is reported, see the module notes.
    """

    target = "text-pii"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        max_side: int = 1920,
        patterns: Sequence[str] = (),
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        if isinstance(patterns, str):
            raise ValueError(f"patterns must be a sequence of strings, got the string {patterns!r}")
        self.patterns: tuple[PiiPattern, ...] = resolve_patterns(tuple(patterns))
        super().__init__(threshold=threshold, max_side=max_side, threads=threads, device=device)
        self._recognizer()

    def __repr__(self) -> str:
        names = ",".join(p.name for p in self.patterns)
        return f"TextPiiDetector(threshold={self.threshold}, max_side={self.max_side}, patterns={names})"

    def _detect(self, image: np.ndarray) -> list[Region]:
        lines = self._lines(image)
        if not lines:
            return []
        readings = self._read(image, lines)
        hits = _flag(readings, self.patterns)
        regions = []
        order = {p.name: k for k, p in enumerate(self.patterns)}
        for i in sorted(hits):
            names = sorted(hits[i], key=order.__getitem__)
            label = f"{','.join(names)}: {readings[i].text}"
            region = self._region(readings[i].line, label, image)
            if region is not None:
                regions.append(region)
        return regions
