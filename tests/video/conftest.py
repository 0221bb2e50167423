"""Generated clips for the video tests: moving, scaling faces, audio, rotation, metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("trackers")

#: The face part of scikit-image's astronaut (the face is found at about 70..160 x 40..160).
_CROP = (slice(20, 220), slice(110, 290))


@dataclass(frozen=True)
class Sprite:
    """A face moving linearly from ``start`` to ``end`` (top-left, px) and scaling ``scale``."""

    start: tuple[float, float]
    end: tuple[float, float]
    scale: tuple[float, float] = (0.5, 0.5)
    mirror: bool = False


def _face(astronaut: np.ndarray, scale: float, mirror: bool) -> np.ndarray:
    import cv2

    crop = astronaut[_CROP]
    if mirror:
        crop = crop[:, ::-1]
    h, w = crop.shape[:2]
    return cv2.resize(crop, (max(8, round(w * scale)), max(8, round(h * scale))))


def render_frames(
    astronaut: np.ndarray,
    sprites: Sequence[Sprite],
    *,
    n: int,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (w, h): a textured background with the sprites pasted on."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([60 + 80 * xx / w, 70 + 60 * yy / h, 110 - 40 * xx / w], axis=2)
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        img = bg.copy()
        for s in sprites:
            face = _face(astronaut, s.scale[0] + t * (s.scale[1] - s.scale[0]), s.mirror)
            x = round(s.start[0] + t * (s.end[0] - s.start[0]))
            y = round(s.start[1] + t * (s.end[1] - s.start[1]))
            fh, fw = face.shape[:2]
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + fw), min(h, y + fh)
            if x1 > x0 and y1 > y0:
                img[y0:y1, x0:x1] = face[y0 - y : y1 - y, x0 - x : x1 - x]
        frames.append(img)
    return frames


def encode_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 30,
    audio: bool = True,
    rotate: int | None = None,
    metadata: dict[str, str] | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    telemetry: bool = False,
) -> Path:
    """Write ``frames`` as H.264 (+ a 440 Hz AAC tone) with the given extras.

    ``rotate`` stores the frames turned the other way and a display matrix
    that turns them back (so a reader that applies it gets ``frames``).
    ``pts`` (in ``time_base``) makes a variable frame rate; ``telemetry`` adds a
    KLV data stream (needs ``fmt="mpegts"``).
    """
    c = av.open(str(path), "w", format=fmt, options=options or {})
    if metadata:
        c.metadata.update(metadata)
    h, w = frames[0].shape[:2]
    v = c.add_stream("libx264", rate=fps)
    if rotate in (90, 270):
        w, h = h, w
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"preset": "ultrafast", "crf": "18"}
    if time_base is not None:
        v.codec_context.time_base = time_base
        v.time_base = time_base
    if rotate is not None:
        v.set_display_rotation(rotate)
    if metadata:
        v.metadata.update({"handler_name": "Core Media Video", **metadata})
    a = None
    if audio:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        if metadata:
            a.metadata.update({"handler_name": "Core Media Audio"})
    data = c.add_data_stream("klv") if telemetry else None  # drone telemetry (MPEG-TS)
    tb = time_base or Fraction(1, fps)
    for i, img in enumerate(frames):
        if rotate:
            img = np.ascontiguousarray(np.rot90(img, -(rotate // 90)))
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = pts[i] if pts is not None else i
        f.time_base = tb
        if pts is None and time_base is not None:
            f.pts = round(i / fps / time_base)
        for p in v.encode(f):
            c.mux(p)
        if data is not None:
            pk = av.Packet(b"GPS +48.8577+002.2950")
            pk.stream, pk.pts, pk.dts, pk.time_base = data, i, i, Fraction(1, fps)
            c.mux(pk)
    for p in v.encode(None):
        c.mux(p)
    if a is not None:
        sr = 48000
        end = pts[-1] * tb + Fraction(1, fps) if pts is not None else Fraction(len(frames), fps)
        total = int(sr * end)
        for s0 in range(0, total, 1024):
            x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(s0, s0 + 1024) / sr)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(x[None], format="fltp", layout="mono")
            af.sample_rate = sr
            af.pts = s0
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return path


#: Two faces crossing a 360p frame, one growing, one shrinking.
TWO_FACES = (
    Sprite(start=(20, 40), end=(400, 120), scale=(0.45, 0.7)),
    Sprite(start=(520, 150), end=(200, 60), scale=(0.6, 0.4), mirror=True),
)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def coverage(
    reference: Sequence[Sequence[tuple[float, float, float, float]]],
    protected: Sequence[Sequence[tuple[float, float, float, float]]],
    size: tuple[int, int],
    *,
    need: float = 0.9,
) -> tuple[int, int]:
    """(covered, total) reference boxes: covered when ``need`` of its pixels lie in protected boxes."""
    w, h = size
    covered = total = 0
    for refs, prot in zip(reference, protected, strict=True):
        mask = np.zeros((h, w), bool)
        for x0, y0, x1, y1 in prot:
            mask[
                max(0, int(y0)) : max(0, int(np.ceil(y1))),
                max(0, int(x0)) : max(0, int(np.ceil(x1))),
            ] = True
        for x0, y0, x1, y1 in refs:
            total += 1
            sub = mask[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            if sub.size and sub.mean() >= need:
                covered += 1
    return covered, total


class Kit:
    """The helpers above, for the test modules (conftest is not importable as a module)."""

    Sprite = Sprite
    TWO_FACES = TWO_FACES
    encode_clip = staticmethod(encode_clip)
    audio_packets = staticmethod(audio_packets)
    coverage = staticmethod(coverage)

    def __init__(self, astronaut: np.ndarray) -> None:
        self.astronaut = astronaut

    def frames(self, sprites: Sequence[Sprite] = TWO_FACES, **kw: object) -> list[np.ndarray]:
        return render_frames(self.astronaut, sprites, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def kit(astronaut: np.ndarray) -> Kit:
    return Kit(astronaut)
