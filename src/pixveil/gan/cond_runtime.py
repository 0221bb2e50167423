"""Torch-free inference for the conditional face generator (ONNX Runtime).

An export (:mod:`pixveil.gan.cond_export`) is a folder holding
``gan_face_cond.json`` and two graphs, the generator and the encoder, each
checked against the SHA-256 in the card before it is loaded.  The shipped model
lives in ``pixveil/models`` next to the 64-px DCGAN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixveil._onnx import LoadedSession, check_device
from pixveil.errors import ModelError
from pixveil.gan.cond_prior import ContextPrior
from pixveil.gan.runtime import verified_file, verified_session

__all__ = ["CARD_NAME", "CondFaceGAN", "is_conditional"]

CARD_NAME = "gan_face_cond.json"


def is_conditional(folder: Path) -> bool:
    """Whether ``folder`` holds a conditional generator's card."""
    return (folder / CARD_NAME).is_file()


@dataclass(frozen=True)
class _Card:
    res: int
    context: float
    sigma: float
    nz: int
    clip: float
    files: dict[str, dict[str, str]]
    raw: dict[str, Any]


class CondFaceGAN:
    """Generator and encoder of an exported conditional face generator (one per folder).

    Parameters
    ----------
    folder : path
        The export (``gan_face_cond.json`` and its ONNX files).
    threads : int, optional
        ONNX Runtime intra-op threads (default: all cores).
    device : str, default "cpu"
        One of :data:`pixveil._onnx.DEVICES`; an accelerator this ONNX Runtime
        lacks falls back to the CPU.
    """

    kind = "conditional"

    def __init__(
        self, folder: Path | str, *, threads: int | None = None, device: str = "cpu"
    ) -> None:
        check_device(device)
        folder = Path(folder)
        card = folder / CARD_NAME
        if not card.is_file():
            raise ModelError(f"no conditional face generator in {folder} (expected {CARD_NAME})")
        try:
            raw = json.loads(card.read_text())
            self.card = _Card(
                res=int(raw["res"]),
                context=float(raw["context"]),
                sigma=float(raw["sigma"]),
                nz=int(raw["nz"]),
                clip=float(raw.get("clip", 3.0)),
                files=raw["files"],
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{card}: not a conditional generator card ({exc})") from exc
        self.folder = folder
        self.device = device
        self._threads = threads
        self._sessions: dict[str, LoadedSession] = {}
        self._load("generator")
        self._load("encoder")
        self.prior = self._load_prior()

    has_encoder = True

    def _load_prior(self) -> ContextPrior:
        path, data = verified_file(self.folder, self.card.files, "prior")
        try:
            prior = ContextPrior.from_bytes(data)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{path}: not a context prior ({exc})") from exc
        if prior.nz != self.card.nz:
            raise ModelError(f"{path}: prior of {prior.nz} dimensions, model has {self.card.nz}")
        return prior

    @property
    def truncation(self) -> float:
        return float(self.card.raw.get("truncation", 1.0))

    @property
    def min_context_std(self) -> float:
        """Grey-level spread of the flattest training contexts (2nd percentile)."""
        return float(self.card.raw.get("min_context_std", 23.6))

    def _load(self, part: str) -> LoadedSession:
        if part not in self._sessions:
            self._sessions[part] = verified_session(
                self.folder, self.card.files, part, threads=self._threads, device=self.device
            )
        return self._sessions[part]

    @property
    def runtime(self) -> LoadedSession:
        return self._load("generator")

    @property
    def nz(self) -> int:
        return self.card.nz

    @property
    def res(self) -> int:
        return self.card.res

    @staticmethod
    def _inputs(crop: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(crop, np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        m = np.asarray(mask, np.float32)[None, None]
        # the face never reaches the generator: zeroed here and again in the graph
        return np.ascontiguousarray(x * (1.0 - m)), np.ascontiguousarray(m)

    def encode(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Latent mean (1, nz) of the face under ``mask`` in the (R, R, 3) uint8 ``crop``."""
        x = np.asarray(crop, np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        m = np.asarray(mask, np.float32)[None, None]
        sess = self._load("encoder").session
        out = sess.run(None, {"image": np.ascontiguousarray(x), "mask": np.ascontiguousarray(m)})
        return np.asarray(out[0], np.float32)

    def generate(
        self, crop: np.ndarray, mask: np.ndarray, heat: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """The (R, R, 3) uint8 crop redrawn under ``mask`` (outside it: whatever the net made)."""
        x, m = self._inputs(crop, mask)
        sess = self._load("generator").session
        out = sess.run(
            None,
            {
                "image": x,
                "mask": m,
                "heat": np.ascontiguousarray(np.asarray(heat, np.float32)[None]),
                "z": np.asarray(z, np.float32).reshape(1, self.nz),
            },
        )[0][0]
        img = (np.clip(out, -1.0, 1.0) + 1.0) * 127.5
        return np.ascontiguousarray(np.rint(img).astype(np.uint8).transpose(1, 2, 0))
