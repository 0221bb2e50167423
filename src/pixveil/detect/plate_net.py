"""``plates-net``: the learned licence-plate detector (ONNX Runtime, no torch).

A MobileNetV2 + FPN network with CenterNet-style heads, trained by pixveil's own code
on synthetic plates composited on street photos (:mod:`pixveil.platedet`; the model
card is ``docs/PLATE_DETECTOR.md``, the figures ``pixveil/models/plate_det.json``).
It returns each plate's quadrilateral (four corners, clockwise from the plate's own
top-left) and a score.

Passes, per image: the image at full resolution (long side at most ``max_side``),
which finds plates down to about 20 px wide, plus the same image at half that scale,
which sees plates wider than the network's training crops (about 240 px) whole.
Detections of the passes are merged by non-maximum suppression on their boxes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, check_device, load_session
from pixveil.detect.base import Detector, check_image, detection_failures, register_detector
from pixveil.errors import DetectionError, ModelError
from pixveil.platedet.decode import decode, nms
from pixveil.types import Region

__all__ = [
    "DEFAULT_THRESHOLD",
    "PlateNetDetector",
    "default_model_path",
    "fuse_regions",
    "second_opinion",
]

#: Default score threshold (see docs/PLATE_DETECTOR.md for the recall / false-positive curve).
DEFAULT_THRESHOLD = 0.6
_ALIGN = 32
_STRIDE = 4
_INPUT = "image"
_OUTPUT = "maps"
#: Environment variable naming another exported model (``plate_det.onnx``).
MODEL_ENV = "PIXVEIL_PLATE_MODEL"


def default_model_path() -> Path:
    """The shipped ``pixveil/models/plate_det.onnx`` (or ``$PIXVEIL_PLATE_MODEL``)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models" / "plate_det.onnx"


def _session(path: Path, threads: int | None, device: str) -> LoadedSession:
    def build() -> str:
        if not path.is_file():
            raise ModelError(
                f"{path}: the plate detector model is missing; reinstall pixveil, or train and "
                "export one with `pixveil plates train` and `pixveil plates export`"
            )
        return str(path)

    key = ("plate-net", str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else 0)
    loaded = load_session(
        key, build, threads=threads, device=device, name=f"plate detector {path.name}"
    )
    sess = loaded.session
    ins = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    if ins != [_INPUT] or outs != [_OUTPUT]:
        raise ModelError(f"{path}: unexpected plate model I/O: inputs {ins}, outputs {outs}")
    return loaded


def fuse_regions(
    net: list[Region], ocr: list[Region], *, iou: float = 0.5, ocr_weight: float = 1.0
) -> list[Region]:
    """The network's plates, plus the OCR path's plates that no network plate explains.

    An OCR region is dropped when its box has IoU >= ``iou`` with a network region or
    lies at least 90 % inside one: the network region then covers that plate by the
    bench's rule.  Kept OCR regions keep their quadrilateral and reading, with their
    score times ``ocr_weight``.  The result is sorted by score.

    Parameters
    ----------
    net, ocr : list of Region
        ``plates-net`` and ``plates`` detections of the same image.
    iou : float
        Overlap above which an OCR region counts as the same plate, in ``(0, 1]``.
    ocr_weight : float
        Scale of the OCR scores, in ``[0, 1]``, so one threshold can apply to both.
    """
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou!r}")
    if not 0 <= ocr_weight <= 1:
        raise ValueError(f"ocr_weight must be in [0, 1], got {ocr_weight!r}")
    out = list(net)
    for r in ocr:
        if any(r.iou(n) >= iou or _covered(r, n) >= 0.9 for n in net):
            continue
        out.append(replace(r, score=r.score * ocr_weight))
    out.sort(key=lambda r: -r.score)
    return out


def _agree(a: Region, b: Region) -> bool:
    """Whether two plate regions are the same plate: IoU >= 0.3, or 70 % of either inside
    the other (an OCR box is the grown text line, larger or smaller than the plate)."""
    return a.iou(b) >= 0.3 or _covered(a, b) >= 0.7 or _covered(b, a) >= 0.7


def second_opinion(
    net: list[Region], ocr: list[Region], *, ocr_weight: float = 1.0
) -> list[Region]:
    """One plate score for the network's and the OCR path's candidates of an image.

    * a network region whose plate the OCR path also reads (:func:`_agree`) scores the
      noisy-OR of both, ``1 - (1 - p_net) * (1 - p_ocr)`` (the best agreeing OCR score);
      it keeps the network's quadrilateral (the whole plate) and no ``label``;
    * a network region alone keeps its own score;
    * an OCR region that no network region explains scores ``ocr_weight * p_ocr`` and
      keeps its quadrilateral (the grown text line) and reading (``label``): the label
      tells plate-synth which geometry a region's corners have.

    Callers keep the regions whose score reaches one threshold.  Feed it every
    candidate (the network at a low threshold, the OCR path at a low threshold), not
    just those above the final one: a weak network plate that the OCR path reads is
    what the second opinion is for.  Sorted by score, best first.
    """
    if not 0 <= ocr_weight <= 1:
        raise ValueError(f"ocr_weight must be in [0, 1], got {ocr_weight!r}")
    out: list[Region] = []
    used = [False] * len(ocr)
    for n in net:
        q = 0.0
        for k, o in enumerate(ocr):
            if _agree(n, o):
                used[k] = True
                q = max(q, o.score)
        score = 1.0 - (1.0 - n.score) * (1.0 - q)
        out.append(replace(n, score=float(min(max(score, 0.0), 1.0))))
    for k, o in enumerate(ocr):
        if not used[k]:
            out.append(replace(o, score=float(o.score * ocr_weight)))
    out.sort(key=lambda r: -r.score)
    return out


def _covered(r: Region, by: Region) -> float:
    """Share of ``r``'s box inside ``by``'s box."""
    ix = max(0.0, min(r.box[2], by.box[2]) - max(r.box[0], by.box[0]))
    iy = max(0.0, min(r.box[3], by.box[3]) - max(r.box[1], by.box[1]))
    return ix * iy / r.area if r.area > 0 else 0.0


def _align(v: float) -> int:
    return max(_ALIGN, math.ceil(v / _ALIGN) * _ALIGN)


@register_detector("plates-net")
class PlateNetDetector(Detector):
    """Find licence plates with pixveil's own network; regions carry the plate's corners.

    Parameters
    ----------
    threshold : float, default 0.6
        Minimum score, in ``(0, 1)``.
    max_side : int, default 1280
        Long side, in pixels, of the full-resolution pass (larger images are shrunk;
        at least 128).
    scales : tuple of float, default (1.0, 0.5)
        Passes, as fractions of that resolution (each in ``(0, 2]``).  Passes whose
        long side would fall below 128 px are skipped.
    nms_iou : float, default 0.4
        IoU above which the lower-scored of two overlapping boxes is dropped.
    threads : int, optional
        ONNX Runtime intra-op threads (default: all cores).
    device : str, default "cpu"
        Where the network runs (see :mod:`pixveil._onnx`).
    model : str, optional
        Path of another exported ``plate_det.onnx`` (default: the shipped one).

    Notes
    -----
    ``Region.landmarks`` is the ``(4, 2)`` plate quadrilateral (clipped to the image),
    ``box`` its bounding box.  The session is shared by every instance with the same
    model, thread count and device; :meth:`detect` is thread-safe.
    """

    kind = "plate"

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        max_side: int = 1280,
        scales: tuple[float, ...] = (1.0, 0.5),
        nms_iou: float = 0.4,
        threads: int | None = None,
        device: str = "cpu",
        model: str | None = None,
    ) -> None:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not 0 < threshold < 1
        ):
            raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 128:
            raise ValueError(f"max_side must be an integer >= 128, got {max_side!r}")
        scales = tuple(scales)
        if not scales or any(
            isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 2 for s in scales
        ):
            raise ValueError(
                f"scales must be a non-empty tuple of numbers in (0, 2], got {scales!r}"
            )
        if (
            isinstance(nms_iou, bool)
            or not isinstance(nms_iou, (int, float))
            or not 0 < nms_iou <= 1
        ):
            raise ValueError(f"nms_iou must be a number in (0, 1], got {nms_iou!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        check_device(device)
        self.threshold = float(threshold)
        self.max_side = max_side
        self.scales = tuple(float(s) for s in scales)
        self.nms_iou = float(nms_iou)
        self.threads = threads
        self.device = device
        self.model_path = Path(model) if model is not None else default_model_path()
        self.runtime = _session(self.model_path, threads, device)

    def __repr__(self) -> str:
        return (
            f"PlateNetDetector(threshold={self.threshold}, max_side={self.max_side}, "
            f"scales={self.scales}, threads={self.threads}, device={self.device!r})"
        )

    @staticmethod
    def card(model: str | Path | None = None) -> dict[str, Any]:
        """The JSON model card beside the model (``{}`` when there is none)."""
        path = Path(model) if model is not None else default_model_path()
        card = path.with_suffix(".json")
        return json.loads(card.read_text()) if card.is_file() else {}

    def _run(self, image: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        img = (
            image
            if (nw, nh) == (w, h)
            else cv2.resize(
                image, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
            )
        )
        pw, ph = _align(nw), _align(nh)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :nh, :nw] = img.transpose(2, 0, 1)
        if pw > nw:  # replicate the last column / row rather than a black border
            blob[0, :, :nh, nw:] = blob[0, :, :nh, nw - 1 : nw]
        if ph > nh:
            blob[0, :, nh:, :] = blob[0, :, nh - 1 : nh, :]
        try:
            maps = self.runtime.session.run([_OUTPUT], {_INPUT: blob})[0][0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectionError(f"the plate network failed on a {pw}x{ph} input: {exc}") from exc
        quads, scores = decode(maps, threshold=self.threshold, stride=_STRIDE)
        quads[:, :, 0] *= w / nw
        quads[:, :, 1] *= h / nh
        return quads, scores

    def detect_arrays(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quadrilaterals ``(N, 4, 2)`` and scores ``(N,)``, best first (not clipped).

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
        """
        image = check_image(image)
        h, w = image.shape[:2]
        base = min(1.0, self.max_side / max(h, w))
        all_q, all_s = [], []
        for s in self.scales:
            f = base * s
            if max(h, w) * f < 128 and s != self.scales[0]:
                continue
            q, sc = self._run(image, f)
            all_q.append(q)
            all_s.append(sc)
        quads = np.concatenate(all_q) if all_q else np.zeros((0, 4, 2), np.float32)
        scores = np.concatenate(all_s) if all_s else np.zeros((0,), np.float32)
        keep = nms(quads, scores, iou=self.nms_iou)
        return quads[keep], scores[keep]

    def detect(self, image: np.ndarray) -> list[Region]:
        # Detector.detect's contract; each region's landmarks are the (4, 2) plate
        # quadrilateral, clipped to the image; failures raise DetectionError.
        h, w = check_image(image).shape[:2]
        with detection_failures("plate", image):
            quads, scores = self.detect_arrays(image)
        regions: list[Region] = []
        for q, s in zip(quads, scores, strict=True):
            q = q.copy()
            q[:, 0] = np.clip(q[:, 0], 0, w)
            q[:, 1] = np.clip(q[:, 1], 0, h)
            x0, y0 = q.min(axis=0)
            x1, y1 = q.max(axis=0)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            regions.append(
                Region(
                    (float(x0), float(y0), float(x1), float(y1)),
                    kind=self.kind,
                    score=float(min(max(s, 0.0), 1.0)),
                    landmarks=q,
                )
            )
        return regions
