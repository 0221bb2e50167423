"""Where CenterFace will fire: pixveil's face-proposal network, run by ONNX Runtime.

A small CNN of our own (``pixveil/models/face_proposals.onnx``, 16 k
parameters; trained by :mod:`pixveil.proposals.train`, card
``pixveil/models/face_proposals.json``) reads the image at half resolution and
gives one probability per 16x16-px cell (of the full-resolution image) that CenterFace, run at full resolution, reaches
its threshold in that cell.  It costs a small fraction of CenterFace per pixel, so
the cascade of :class:`pixveil.detect.faces.FaceDetector` can run it over the whole
frame and spend CenterFace only around the cells it proposes.

The file's SHA-256 is checked against the card before it is loaded; a missing,
changed or unloadable file raises :class:`pixveil.errors.ModelError` (nothing falls
back silently to fewer passes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from pixveil._onnx import LoadedSession, load_session, verified_model
from pixveil.errors import DetectionError

__all__ = ["CELL", "MODEL_CARD", "ProposalNet"]

#: Side, in input px, of one proposal cell.
CELL = 16

#: The shipped model card (SHA-256 of the ONNX file, training configuration, figures).
MODEL_CARD = Path(__file__).resolve().parent.parent / "models" / "face_proposals.json"


def _verified_bytes(card: Path) -> bytes:
    return verified_model(card, "the face-proposal model")


class ProposalNet:
    """The face-proposal network (one shared session per thread count and device).

    Parameters
    ----------
    threads : int, optional
        ONNX Runtime intra-op threads (None: one per physical core).
    device : str, default "cpu"
        One of :data:`pixveil._onnx.DEVICES`.
    card : path, optional
        Another model card (default: :data:`MODEL_CARD`).
    """

    def __init__(
        self, *, threads: int | None = None, device: str = "cpu", card: Path | None = None
    ) -> None:
        card = MODEL_CARD if card is None else Path(card)
        data = _verified_bytes(card)
        digest = hashlib.sha256(data).hexdigest()
        self.runtime: LoadedSession = load_session(
            ("face-proposals", digest), lambda: data, threads=threads, device=device,
            name="the face-proposal network",
        )  # fmt: skip
        self._session = self.runtime.session

    @staticmethod
    def halve(image: np.ndarray) -> np.ndarray:
        """The network's view of ``image``: padded to a multiple of 16, then halved.

        Returns an ndarray of shape (ceil16(H) / 2, ceil16(W) / 2, 3), uint8; its
        top-left ``H / 2`` x ``W / 2`` is ``image`` at half resolution.
        """
        h, w = image.shape[:2]
        ph, pw = -h % CELL, -w % CELL
        if ph or pw:
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
        return np.asarray(
            cv2.resize(image, ((w + pw) // 2, (h + ph) // 2), interpolation=cv2.INTER_AREA),
            np.uint8,
        )

    def __call__(self, image: np.ndarray, *, half: np.ndarray | None = None) -> np.ndarray:
        """Cell probabilities of ``image``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB

        Returns
        -------
        ndarray of shape (ceil(H / 16), ceil(W / 16)), float32 in [0, 1]
            Cell ``(i, j)`` covers rows ``16 i .. 16 i + 15`` and columns
            ``16 j .. 16 j + 15`` of ``image`` (the image is padded by edge
            replication to a multiple of 16 first, then halved with
            ``cv2.INTER_AREA``).

        ``half``, when given, is :meth:`halve` of ``image`` (computed once when the
        caller needs it too).
        """
        h, w = image.shape[:2]
        ph, pw = -h % CELL, -w % CELL
        hh, hw = (h + ph) // 2, (w + pw) // 2
        small = self.halve(image) if half is None else half
        if small.shape != (hh, hw, 3):
            raise DetectionError(f"half-resolution image of shape {small.shape}, not {(hh, hw, 3)}")
        blob = np.empty((1, 3, hh, hw), np.float32)
        blob[0] = small.transpose(2, 0, 1)
        try:
            out = self._session.run(["proposals"], {"image": blob})[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectionError(f"the face-proposal network failed on {w}x{h}: {exc}") from exc
        prob = np.asarray(out[0, 0], np.float32)
        if prob.shape != ((h + ph) // CELL, (w + pw) // CELL) or not np.isfinite(prob).all():
            raise DetectionError("the face-proposal network returned a malformed map")
        return prob
