"""Training samples of the face-proposal network, labelled by CenterFace itself.

A sample is a square crop (``size`` px, a multiple of 32) of a street photo of the
training split, scaled by a random factor (0.6-1.4: photos at their own
resolution; 1.5-5.5: soft, zoomed-in backgrounds like those of the generated
large photos), sometimes replaced by a mosaic of CIFAR-10 *training* images,
with 0-7 LFW heads pasted at 10-110 px wide.  Its label is CenterFace's own
heatmap over the crop at full resolution (the exhaustive mode's network pass),
max-pooled to the network's cells: the network learns where the detector fires,
including on things that are not faces (tail lights, dark windows) that the
detector's threshold lets through.  Nothing here is a benchmark image: the
photos come from one region (``eu`` by default; the benches report on ``us``),
the LFW photos are never an identity's first (``*_0001.jpg``, which the LFW
samples of the benches and tests use), and the scene seeds are drawn from
their own stream.
"""

from __future__ import annotations

import math
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pixveil.io import read_image

__all__ = ["SampleConfig", "SampleMaker", "centerface_heat"]


@dataclass(frozen=True, kw_only=True)
class SampleConfig:
    """Where samples come from and how they look."""

    plates_root: str = "../shared/data/plates"
    regions: tuple[str, ...] = ("eu",)
    lfw_root: str = "../shared/data/lfw"
    cifar: str = "../shared/data/cifar10.tar.gz"
    size: int = 320
    p_native: float = 0.35
    p_cifar: float = 0.1
    max_heads: int = 7
    min_head: float = 10.0
    max_head: float = 110.0


class SampleMaker:
    """Deterministic crops: ``maker.sample(k)`` is always the same image."""

    def __init__(self, cfg: SampleConfig, *, seed: int = 0) -> None:
        self.cfg = cfg
        self.seed = seed
        root = Path(cfg.plates_root)
        self.photos = sorted(p for r in cfg.regions for p in (root / r).glob("*.jpg"))
        lfw = Path(cfg.lfw_root)
        self.faces = sorted(p for p in lfw.glob("*/*.jpg") if not p.name.endswith("_0001.jpg"))
        if not self.photos or not self.faces:
            raise FileNotFoundError(f"no training photos under {root} or faces under {lfw}")
        self._bg: dict[Path, np.ndarray] = {}
        self._tiles: list[np.ndarray] | None = None

    def _photo(self, p: Path) -> np.ndarray:
        if p not in self._bg:
            self._bg[p] = read_image(p).pixels
        return self._bg[p]

    def _cifar(self) -> list[np.ndarray]:
        if self._tiles is None:
            tiles = []
            with tarfile.open(self.cfg.cifar) as tar:
                for m in tar:
                    if m.isfile() and "/train/" in m.name and m.name.endswith(".jpg"):
                        f = tar.extractfile(m)
                        assert f is not None
                        bgr = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
                        if bgr is not None:
                            tiles.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                        if len(tiles) >= 2000:
                            break
            self._tiles = tiles
        return self._tiles

    def sample(self, k: int) -> np.ndarray:
        """Sample ``k``: ``(size, size, 3)`` uint8 RGB."""
        rng = random.Random(self.seed * 1_000_003 + k)
        s = self.cfg.size
        if rng.random() < self.cfg.p_cifar:
            cell = rng.choice([32, 48, 64, 96])
            tiles = self._cifar()
            canvas = np.zeros((s + cell, s + cell, 3), np.uint8)
            for y in range(0, s, cell):
                for x in range(0, s, cell):
                    t = cv2.resize(rng.choice(tiles), (cell, cell), interpolation=cv2.INTER_CUBIC)
                    canvas[y : y + cell, x : x + cell] = t
            img = np.ascontiguousarray(canvas[:s, :s])
        else:
            bg = self._photo(rng.choice(self.photos))
            native = rng.random() < self.cfg.p_native
            f = rng.uniform(0.6, 1.4) if native else rng.uniform(1.5, 5.5)
            f = max(f, s / min(bg.shape[:2]) + 1e-3)
            w, h = round(bg.shape[1] * f), round(bg.shape[0] * f)
            x0, y0 = rng.randint(0, w - s), rng.randint(0, h - s)
            # scale only the part that is cropped (cheap), as scaling the whole would
            sx0, sy0 = int(x0 / f), int(y0 / f)
            sx1 = min(bg.shape[1], int((x0 + s) / f) + 3)
            sy1 = min(bg.shape[0], int((y0 + s) / f) + 3)
            part = bg[sy0:sy1, sx0:sx1]
            m = np.array([[f, 0, sx0 * f - x0], [0, f, sy0 * f - y0]], np.float32)
            interp = cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA
            img = np.asarray(
                cv2.warpAffine(part, m, (s, s), flags=interp, borderMode=cv2.BORDER_REFLECT),
                np.uint8,
            )
        for _ in range(rng.randint(0, self.cfg.max_heads)):
            w = round(
                math.exp(rng.uniform(math.log(self.cfg.min_head), math.log(self.cfg.max_head)))
            )
            head = read_image(rng.choice(self.faces)).pixels[50:210, 55:195]
            h = round(w * 160 / 140)
            x, y = rng.randint(-w // 3, s - 2 * w // 3), rng.randint(-h // 3, s - 2 * h // 3)
            small = cv2.resize(head, (w, h), interpolation=cv2.INTER_AREA)
            ax, ay = max(0, x), max(0, y)
            bx, by = min(s, x + w), min(s, y + h)
            img[ay:by, ax:bx] = small[ay - y : by - y, ax - x : bx - x]
        if rng.random() < 0.3:  # exposure
            img = np.asarray(
                cv2.convertScaleAbs(img, alpha=rng.uniform(0.6, 1.3), beta=rng.uniform(-20, 20)),
                np.uint8,
            )
        return img


def centerface_heat(image: np.ndarray, session: object) -> np.ndarray:
    """CenterFace's heatmap ``(H/4, W/4)`` float32 of ``image`` (sides multiples of 32)."""
    blob = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    out = session.run(["537"], {"input.1": blob})  # type: ignore[attr-defined]
    return np.asarray(out[0][0, 0], np.float32)
