"""Torch-free inference for the face GAN: ONNX Runtime sessions, inversion, refinement.

The exported model (see :mod:`pixveil.gan.export`) is a folder with
``gan_face_<size>.json`` and three ONNX graphs whose weights are stored as
float16; they are converted back to float32 in memory when loaded.  The
shipped model lives in ``pixveil/models``; ``PIXVEIL_GAN_MODEL`` or the
``model`` parameter of ``gan-face`` point to another export.

Inversion (projecting a face into the latent space):

* fast path: the encoder, one forward pass, ``z = E(x)``;
* quality path: ``N`` steps of a gradient-free refinement of ``E(x)`` that
  lowers ``L(z) = ||C(G(z)) - C(x)||² / |C| + λ · ||G(z) - x||² / |x|``, where
  ``C`` is the discriminator's feature map (the perceptual loss of the
  framework's ω* = argmin L_percept(G(ω), I) + λ/N·||G(ω) − I||²).  Each step
  evaluates a batch of candidates around the current code (an elitist
  evolution strategy with a shrinking step), so it needs only forward passes
  and runs on ONNX Runtime.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixveil._onnx import LoadedSession, check_device, load_session
from pixveil.errors import ModelError

__all__ = ["FaceGAN", "default_model_dir", "load_face_gan", "verified_file", "verified_session"]

_ENV = "PIXVEIL_GAN_MODEL"


def default_model_dir() -> Path:
    env = os.environ.get(_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models"


def _float32_model(path: Path) -> bytes:
    """The ONNX file at ``path`` with its float16 weights turned back into float32."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's decode errors have no common base
        raise ModelError(f"{path}: not an ONNX model ({exc})") from exc
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT16:
            arr = numpy_helper.to_array(init).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    return bytes(model.SerializeToString())


def _session(path: Path, digest: str, threads: int | None, device: str) -> LoadedSession:
    """The process-wide session for the model file at ``path`` with this SHA-256."""
    return load_session(
        ("face-gan", str(path), digest),
        lambda: _float32_model(path),
        threads=threads,
        device=device,
        name=str(path),
    )


def verified_session(
    folder: Path,
    files: dict[str, dict[str, str]],
    part: str,
    *,
    threads: int | None,
    device: str,
) -> LoadedSession:
    """The session of the card's ``part`` in ``folder``, after checking the file's SHA-256."""
    path, data = verified_file(folder, files, part)
    return _session(path, hashlib.sha256(data).hexdigest(), threads, device)


def verified_file(folder: Path, files: dict[str, dict[str, str]], part: str) -> tuple[Path, bytes]:
    """Path and bytes of the card's ``part`` in ``folder``; ModelError unless its SHA-256 matches."""
    info = files.get(part)
    if info is None:
        raise ModelError(f"{folder}: the model card lists no {part}")
    path = folder / info["name"]
    if not path.is_file():
        raise ModelError(f"{path}: missing model file")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise ModelError(f"{path}: SHA-256 mismatch (corrupt or replaced model file)")
    return path, data


@dataclass(frozen=True)
class _Card:
    size: int
    nz: int
    clip: float
    landmarks: np.ndarray
    box: np.ndarray
    files: dict[str, dict[str, str]]
    raw: dict[str, Any]


class FaceGAN:
    """Generator, encoder and critic of an exported face GAN (one instance per folder).

    Parameters
    ----------
    folder : path
        The exported model (``gan_face_<size>.json`` and its ONNX files).
    threads : int, optional
        ONNX Runtime intra-op threads (default: all cores).
    device : str, default "cpu"
        Where the networks run: one of :data:`pixveil._onnx.DEVICES`; an
        accelerator this ONNX Runtime lacks falls back to the CPU
        (:attr:`runtime` says what the generator's session got).
    """

    def __init__(
        self, folder: Path | str, *, threads: int | None = None, device: str = "cpu"
    ) -> None:
        check_device(device)
        folder = Path(folder)
        cards = sorted(folder.glob("gan_face_[0-9]*.json"))
        if not cards:
            raise ModelError(
                f"no face GAN in {folder} (expected gan_face_<size>.json and its ONNX files; "
                "create one with `pixveil gan export`)"
            )
        raw = json.loads(cards[0].read_text())
        self.card = _Card(
            size=int(raw["size"]),
            nz=int(raw["nz"]),
            clip=float(raw.get("clip", 3.0)),
            landmarks=np.asarray(raw["canonical_landmarks"], np.float32),
            box=np.asarray(raw["canonical_box"], np.float32),
            files=raw["files"],
            raw=raw,
        )
        self.folder = folder
        self._threads = threads
        self.device = device
        self._sessions: dict[str, LoadedSession] = {}
        # load (and verify) eagerly: fail at start, not mid-batch.  A model
        # without an encoder (e.g. a baseline generator) can only draw random faces.
        self._get("generator")
        if self.has_encoder:
            self._get("encoder")

    @property
    def has_encoder(self) -> bool:
        return "encoder" in self.card.files

    @property
    def runtime(self) -> LoadedSession:
        """The generator's session: the providers it got and the device it runs on."""
        return self._load("generator")

    def _get(self, part: str) -> Any:
        return self._load(part).session

    def _load(self, part: str) -> LoadedSession:
        if part not in self._sessions:
            self._sessions[part] = verified_session(
                self.folder, self.card.files, part, threads=self._threads, device=self.device
            )
        return self._sessions[part]

    @property
    def size(self) -> int:
        return self.card.size

    @property
    def nz(self) -> int:
        return self.card.nz

    # -- conversions -------------------------------------------------------
    @staticmethod
    def to_input(faces: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32 in [-1, 1]."""
        x = np.asarray(faces, np.float32).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x / 127.5 - 1.0)

    @staticmethod
    def to_uint8(images: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8 RGB."""
        x = (np.clip(images, -1.0, 1.0) + 1.0) * 127.5
        return np.ascontiguousarray(np.rint(x).astype(np.uint8).transpose(0, 2, 3, 1))

    # -- networks ------------------------------------------------------------
    def encode(self, faces: np.ndarray) -> np.ndarray:
        """Latent codes (N, nz) of aligned (N, S, S, 3) uint8 face crops (fast path)."""
        out = self._get("encoder").run(None, {"image": self.to_input(faces)})[0]
        return np.asarray(out, np.float32)

    def generate_raw(self, z: np.ndarray) -> np.ndarray:
        out = self._get("generator").run(
            None, {"z": np.asarray(z, np.float32).reshape(-1, self.nz)}
        )
        return np.asarray(out[0], np.float32)

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Faces (N, S, S, 3) uint8 for codes (N, nz)."""
        return self.to_uint8(self.generate_raw(z))

    def features(self, images: np.ndarray) -> np.ndarray:
        """Critic features of (N, 3, S, S) float images in [-1, 1], flattened (N, F)."""
        out = self._get("critic").run(None, {"image": np.asarray(images, np.float32)})[0]
        return np.asarray(out, np.float32).reshape(len(images), -1)

    def refine(
        self,
        z: np.ndarray,
        faces: np.ndarray,
        *,
        steps: int,
        lam: float = 1.0,
        population: int = 12,
        sigma: float = 0.35,
        seed: int = 0,
    ) -> np.ndarray:
        """Quality path: refine codes ``z`` (N, nz) towards ``faces`` (see the module docstring).

        The randomness here only searches for a better code of the *original*
        face (before any privacy noise), so it is an ordinary seeded generator.
        """
        if steps <= 0:
            return np.asarray(z, np.float32)
        rng = np.random.default_rng(seed)
        target = self.to_input(faces)
        tfeat = self.features(target)
        out = np.array(z, np.float32, copy=True)
        for i in range(len(out)):
            best = out[i].copy()

            def loss(cands: np.ndarray, i: int = i) -> np.ndarray:
                imgs = self.generate_raw(cands)
                f = self.features(imgs)
                lp = ((f - tfeat[i]) ** 2).mean(axis=1)
                lm = ((imgs - target[i]) ** 2).reshape(len(cands), -1).mean(axis=1)
                return np.asarray(lp + lam * lm)

            best_loss = float(loss(best[None])[0])
            s = sigma
            for _ in range(steps):
                cands = best[None] + s * rng.standard_normal((population, self.nz)).astype(
                    np.float32
                )
                losses = loss(cands)
                j = int(np.argmin(losses))
                if losses[j] < best_loss:
                    best, best_loss = cands[j], float(losses[j])
                else:
                    s *= 0.7
            out[i] = best
        return out


def load_face_gan(folder: str | None = None, *, device: str = "cpu") -> FaceGAN:
    """The face GAN in ``folder`` (default: the shipped model), loaded once and reused.

    ``device`` is one of :data:`pixveil._onnx.DEVICES` (``ValueError`` otherwise).
    """
    check_device(device)
    return _load_face_gan(folder, device)


@functools.lru_cache(maxsize=4)
def _load_face_gan(folder: str | None, device: str) -> FaceGAN:
    return FaceGAN(Path(folder) if folder else default_model_dir(), device=device)
