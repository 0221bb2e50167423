"""A small PP-OCR runtime: text-line detection (DB) and line recognition (CTC).

The ONNX models are the PP-OCRv4 mobile detector and recogniser that ship inside the
``rapidocr-onnxruntime`` wheel (Apache-2.0, trained by PaddleOCR on its public text
sets).  They are loaded from that package's installed files; nothing is downloaded.
Only ONNX Runtime, NumPy and OpenCV are used here: the package's own Python code is
not imported (it pulls in YAML, Shapely and pyclipper, and builds every model).

Images are RGB ``uint8`` arrays of shape ``(H, W, 3)`` everywhere in this module;
the models themselves were trained on BGR input, and the conversion happens inside.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, load_session
from pixveil.errors import MissingDependencyError, ModelError

__all__ = [
    "DET_MODEL",
    "REC_MODEL",
    "TextLine",
    "TextLineDetector",
    "TextLineRecognizer",
    "model_path",
    "order_quad",
]

DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
_PACKAGE = "rapidocr_onnxruntime"


def model_path(name: str) -> Path:
    """Path of one of the PP-OCR ONNX files installed with ``rapidocr-onnxruntime``.

    Raises
    ------
    MissingDependencyError
        When the package is not installed.
    ModelError
        When the package is installed but the model file is missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("rapidocr-onnxruntime", "ocr")
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / name
        if path.is_file():
            return path
    raise ModelError(
        f"the {_PACKAGE} package is installed but has no models/{name}; "
        "reinstall it with: pip install --force-reinstall rapidocr-onnxruntime"
    )


def _session(name: str, threads: int | None, device: str = "cpu") -> LoadedSession:
    """The process-wide ONNX Runtime session for one model, thread count and device."""
    return load_session(
        ("pp-ocr", name), lambda: model_path(name), threads=threads, device=device, name=name
    )


def order_quad(pts: np.ndarray) -> np.ndarray:
    """The four corners ordered clockwise from top-left, as float32 ``(4, 2)``."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


@dataclass(frozen=True)
class TextLine:
    """One detected text line.

    Attributes
    ----------
    quad : ndarray of shape (4, 2), float32
        Corners in image pixels, clockwise from top-left (a rotated rectangle).
    score : float
        Mean text probability inside the line, in ``[0, 1]``.
    """

    quad: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.quad[1] - self.quad[0]))

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.quad[3] - self.quad[0]))


class TextLineDetector:
    """PP-OCRv4 DB text detector.

    Parameters
    ----------
    threads : int, optional
        ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
    device : str, default "cpu"
        One of :data:`pixveil._onnx.DEVICES`; an accelerator this ONNX Runtime
        lacks falls back to the CPU (:attr:`runtime` says what the session got).
    """

    def __init__(self, *, threads: int | None = None, device: str = "cpu") -> None:
        self.runtime = _session(DET_MODEL, threads, device)
        self._session = self.runtime.session
        self._input = self._session.get_inputs()[0].name

    def probability_map(self, image: np.ndarray, *, max_side: int) -> np.ndarray:
        """The text probability map of ``image`` resized so its long side is ``max_side``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
        max_side : int
            Long side of the network input (rounded to a multiple of 32); smaller
            images are not enlarged beyond the next multiple of 32.

        Returns
        -------
        ndarray of shape (h, w), float32 in [0, 1]
            ``h`` and ``w`` are multiples of 32; map pixel ``(i, j)`` covers image
            pixels scaled by ``(H / h, W / w)``.
        """
        h, w = image.shape[:2]
        ratio = min(1.0, max_side / max(h, w))
        rh = max(32, round(h * ratio / 32) * 32)
        rw = max(32, round(w * ratio / 32) * 32)
        resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
        x = resized[:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        try:
            out = self._session.run(None, {self._input: x})[0]
        except Exception as exc:
            raise ModelError(f"the text detector failed on a {w}x{h} image ({exc})") from exc
        return np.asarray(out[0, 0], dtype=np.float32)

    @staticmethod
    def lines(
        prob: np.ndarray,
        image_size: tuple[int, int],
        *,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        min_side: float = 3.0,
        max_candidates: int = 1000,
    ) -> list[TextLine]:
        """Text lines from a probability map (the DB post-processing).

        Parameters
        ----------
        prob : ndarray of shape (h, w), float32
            From :meth:`probability_map`.
        image_size : (W, H)
            Size of the original image; the quads are returned in its pixels.
        thresh, box_thresh : float
            Binarisation threshold, and minimum mean probability of a kept line.
        unclip_ratio : float
            How far the shrunk text kernel is grown back (DB's ``unclip_ratio``).
        """
        W, H = image_size
        mh, mw = prob.shape
        sx, sy = W / mw, H / mh
        mask = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        out: list[TextLine] = []
        for contour in contours[:max_candidates]:
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
            if min(rw, rh) < min_side:
                continue
            box = cv2.boxPoints(((cx, cy), (rw, rh), angle))
            x0, y0 = np.floor(box.min(axis=0)).astype(int)
            x1, y1 = np.ceil(box.max(axis=0)).astype(int)
            x0, y0 = max(x0, 0), max(y0, 0)
            x1, y1 = min(x1, mw - 1), min(y1, mh - 1)
            if x1 < x0 or y1 < y0:
                continue
            poly = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
            cv2.fillPoly(poly, [np.round(box - [x0, y0]).astype(np.int32)], 1)
            score = float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], poly)[0])
            if score < box_thresh:
                continue
            # Growing a rectangle by the DB offset distance d = A * r / L on every side.
            d = rw * rh * unclip_ratio / (2.0 * (rw + rh))
            rw2, rh2 = rw + 2 * d, rh + 2 * d
            if min(rw2, rh2) < min_side + 2:
                continue
            quad = cv2.boxPoints(((cx, cy), (rw2, rh2), angle))
            # Map-pixel centres to image coordinates (the map is a resize of the image).
            quad[:, 0] = np.clip(quad[:, 0] * sx, 0, W)
            quad[:, 1] = np.clip(quad[:, 1] * sy, 0, H)
            out.append(TextLine(order_quad(quad), score))
        return out


class TextLineRecognizer:
    """PP-OCRv4 CTC line recogniser, optionally restricted to a character set.

    Parameters
    ----------
    threads : int, optional
        ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
    alphabet : str, optional
        When given, decoding only considers these characters (plus the CTC blank):
        the network's scores for every other symbol are ignored.
    device : str, default "cpu"
        One of :data:`pixveil._onnx.DEVICES`; :attr:`runtime` says what the session got.
    """

    height = 48

    def __init__(
        self, *, threads: int | None = None, alphabet: str | None = None, device: str = "cpu"
    ) -> None:
        self.runtime = _session(REC_MODEL, threads, device)
        self._session = self.runtime.session
        self._input = self._session.get_inputs()[0].name
        meta = self._session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise ModelError(f"{REC_MODEL} carries no character list in its metadata")
        # Index 0 is the CTC blank; the last class is a space.
        chars = ["", *meta["character"].splitlines(), " "]
        self._chars = chars
        if alphabet is None:
            self._keep = np.arange(len(chars))
        else:
            index = {c: i for i, c in enumerate(chars)}
            missing = [c for c in alphabet if c not in index]
            if missing:
                raise ModelError(f"the recogniser cannot read {''.join(missing)!r}")
            self._keep = np.array([0, *(index[c] for c in alphabet)])

    def crop(self, image: np.ndarray, quad: np.ndarray, *, pad: float = 0.0) -> np.ndarray:
        """The rectified line image for ``quad`` (RGB uint8, height :attr:`height`).

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
        quad : ndarray of shape (4, 2)
            Corners clockwise from top-left.
        pad : float
            Extra margin, as a fraction of the line height, added on every side.
        """
        q = np.asarray(quad, dtype=np.float32)
        wv = q[1] - q[0]
        hv = q[3] - q[0]
        lw = float(np.linalg.norm(wv))
        lh = float(np.linalg.norm(hv))
        if lw < 1 or lh < 1:
            raise ValueError("degenerate quad")
        if pad:
            ux, uy = wv / lw, hv / lh
            m = pad * lh
            q = q + np.array([-ux - uy, ux - uy, ux + uy, -ux + uy], np.float32) * m
            lw += 2 * m
            lh += 2 * m
        out_w = max(8, min(640, math.ceil(self.height * lw / lh)))
        dst = np.array(
            [[0, 0], [out_w, 0], [out_w, self.height], [0, self.height]], dtype=np.float32
        )
        mat = cv2.getPerspectiveTransform(q, dst)
        return cv2.warpPerspective(
            image,
            mat,
            (out_w, self.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def read(self, crops: list[np.ndarray], *, batch: int = 8) -> list[tuple[str, float]]:
        """Recognise rectified line images.

        Parameters
        ----------
        crops : list of ndarray of shape (48, w, 3), uint8, RGB
            From :meth:`crop`.

        Returns
        -------
        list of (text, confidence)
            ``confidence`` is the mean probability of the emitted characters, in ``[0, 1]``
            (0 for an empty reading).
        """
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        order = np.argsort([c.shape[1] for c in crops], kind="stable")
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            width = max(crops[i].shape[1] for i in idx)
            width = max(width, 64)
            x = np.zeros((len(idx), 3, self.height, width), np.float32)
            for k, i in enumerate(idx):
                c = crops[i][:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
                x[k, :, :, : c.shape[1]] = c.transpose(2, 0, 1)
            try:
                probs = self._session.run(None, {self._input: x})[0]
            except Exception as exc:
                raise ModelError(f"the text recogniser failed ({exc})") from exc
            for k, i in enumerate(idx):
                results[i] = self._decode(probs[k])
        return results

    def read_positions(self, strip: np.ndarray) -> tuple[str, float, list[float]]:
        """Read one line and say where along it each character is.

        Parameters
        ----------
        strip : ndarray of shape (48, w, 3), uint8, RGB
            One rectified line (from :meth:`crop`).

        Returns
        -------
        text : str
        confidence : float
            Mean probability of the emitted characters, in ``[0, 1]`` (0 when empty).
        centres : list of float
            The x position (pixels of ``strip``) of each character's centre.
        """
        x = strip[:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
        w = x.shape[1]
        if w < 64:
            x = np.concatenate([x, np.zeros((self.height, 64 - w, 3), np.float32)], axis=1)
        try:
            probs = self._session.run(None, {self._input: x.transpose(2, 0, 1)[None]})[0][0]
        except Exception as exc:
            raise ModelError(f"the text recogniser failed ({exc})") from exc
        stride = x.shape[1] / probs.shape[0]
        text, conf, frames = self._decode_frames(probs)
        centres = [(float(np.mean(f)) + 0.5) * stride for f in frames]
        return text, conf, centres

    def _decode(self, probs: np.ndarray) -> tuple[str, float]:
        text, conf, _ = self._decode_frames(probs)
        return text, conf

    def _decode_frames(self, probs: np.ndarray) -> tuple[str, float, list[list[int]]]:
        """Greedy CTC decoding: text, mean confidence and the frames of each character."""
        p = probs[:, self._keep]
        best = p.argmax(axis=1)
        conf = p[np.arange(len(best)), best]
        text: list[str] = []
        scores: list[float] = []
        frames: list[list[int]] = []
        prev = 0
        for t, (b, c) in enumerate(zip(best, conf, strict=True)):
            if b != 0 and b != prev:
                text.append(self._chars[self._keep[b]])
                scores.append(float(c))
                frames.append([t])
            elif b != 0 and frames:
                frames[-1].append(t)
            prev = b
        return "".join(text), float(np.mean(scores)) if scores else 0.0, frames
