"""What the benches share: data paths, plate samples and matching, intervals, tables, order.

The benches run as scripts from the repository root (``python bench/bench_x.py``):
Python puts this folder on ``sys.path``, so ``import _common`` needs no set-up.
Only bench bookkeeping lives here; detection, protection and evaluation are the
library's public functions.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pixveil.types import Box

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data`` next to the repository (read in place, never copied into it).
SHARED_DATA = REPO.parent / "shared" / "data"
LFW = SHARED_DATA / "lfw"
ATT_FACES = SHARED_DATA / "att_faces"
#: Annotated street photos: ``plates/{eu,us}/*.jpg``, one ``.txt`` each (``file x y w h TEXT``).
PLATES = SHARED_DATA / "plates"
#: Reviewed real plates that the plate data set does not annotate: detections on them
#: are not false positives (see the file's ``review``).
PLATE_UNANNOTATED = REPO / "bench" / "plate_unannotated.json"

# --------------------------------------------------------------------------- plates

#: What the plate benches read and compare (the recogniser is restricted to it).
PLATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def load_plate_samples(root: Path = PLATES) -> list[Any]:
    """Every annotated photo of ``root/eu`` then ``root/us``, each sorted by name.

    Returns :class:`pixveil.platedet.data.LabelledPhoto` items (``region``, ``path``,
    ``box`` as ``(x0, y0, x1, y1)``, ``text``).
    """
    from pixveil.platedet.data import REGIONS, load_split

    return load_split(root, REGIONS)


def plate_samples(limit: int = 0) -> list[Any]:
    """The first ``limit`` annotated plate photos (all for 0); exits if the data is missing."""
    if not PLATES.is_dir():
        raise SystemExit(f"no data at {PLATES}")
    samples = load_plate_samples(PLATES)
    return samples[:limit] if limit else samples


def add_plate_method_options(ap: argparse.ArgumentParser, *, methods: str) -> None:
    """``--limit``, ``--methods`` and ``--seed`` of the benches that protect plates."""
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    ap.add_argument(
        "--methods",
        default=methods,
        help="comma-separated; a method may carry parameters: blur:text_strength=0.1",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise (benchmark only)")


def plate_found(det: Box, gt: Box) -> bool:
    """The plate rule: IoU >= 0.5, or ``det`` covers >= 90 % of the plate ``gt``."""
    from pixveil.platedet.evaluate import match

    found, _ = match(np.asarray([det], np.float64), np.asarray([gt], np.float64))
    return bool(found[0])


class PlateReader:
    """The plate detector's PP-OCR recogniser (A-Z, 0-9) reading a box of an image."""

    def __init__(self) -> None:
        from pixveil.detect.ocr import TextLineRecognizer

        self.recognizer = TextLineRecognizer(alphabet=PLATE_ALPHABET)

    def __call__(self, image: np.ndarray, box: Box) -> str:
        """What the recogniser reads in ``box`` (grown by 10 %), as :func:`plate_chars`."""
        x0, y0, x1, y1 = box
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        ((text, _conf),) = self.recognizer.read([self.recognizer.crop(image, quad, pad=0.1)])
        return plate_chars(text)


def plate_chars(text: str) -> str:
    """``text`` in upper case, keeping only :data:`PLATE_ALPHABET`."""
    return "".join(c for c in text.upper() if c in PLATE_ALPHABET)


def char_accuracy(read: str, truth: str) -> float:
    """1 - Levenshtein(read, truth) / len(truth), floored at 0."""
    from pixveil.privacy.plate_codes import levenshtein

    return max(0.0, 1.0 - levenshtein(read, truth) / max(1, len(truth)))


def method_from_spec(spec: str) -> Any:
    """``"blur:text_strength=0.1"`` (parameters after ``:``, several allowed) -> the method."""
    from pixveil.protect import get_method
    from pixveil.validate import parse_value

    name, *params = spec.split(":")
    kwargs = {}
    for p in params:
        key, value = p.split("=", 1)
        kwargs[key] = parse_value(value)
    return get_method(name, **kwargs)


# --------------------------------------------------------------------------- faces


def lfw_identities(root: Path, min_photos: int) -> list[str]:
    """Names of the LFW identities with at least ``min_photos`` photos, sorted."""
    from pixveil.evaluate.datasets import load_dataset

    return load_dataset(root, per_identity=min_photos, layout="identities").identities


def held_out_view(lfw: Path, dest: Path) -> Path:
    """A folder of symlinks to the LFW identities GAN training never sees (>= 2 photos)."""
    from pixveil.gan.data import is_held_out

    dest.mkdir(parents=True, exist_ok=True)
    for name in lfw_identities(lfw, 2):
        link = dest / name
        if is_held_out(name) and not link.exists():
            link.symlink_to((lfw / name).resolve(), target_is_directory=True)
    return dest


def held_out_parser(doc: str) -> argparse.ArgumentParser:
    """Options of the benches on held-out LFW people: ``--lfw``, ``--identities``, ``--per-identity``."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lfw", type=Path, default=LFW)
    ap.add_argument("--identities", type=int, default=100)
    ap.add_argument("--per-identity", type=int, default=4)
    return ap


def params_label(params: Mapping[str, Any]) -> str:
    """``"strength=0.1, passes=2"``, or ``"defaults"`` when empty."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


# --------------------------------------------------------------------------- figures


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """95 % Wilson score interval of a rate ``hits / n`` (None, None when n = 0)."""
    if n <= 0:
        return None, None
    p = hits / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def table_row(cells: Iterable[object]) -> str:
    """One Markdown table row: ``| a | b |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table_head(columns: Sequence[str], *, right: int = 0) -> list[str]:
    """Header and rule of a Markdown table; the last ``right`` columns right-aligned."""
    return [table_row(columns), "|" + "---|" * (len(columns) - right) + "---:|" * right]


def rotated(items: Sequence[T], k: int) -> list[T]:
    """``items`` starting at ``k`` (modulo its length): A B C, B C A, C A B for k = 0, 1, 2.

    Benches time contenders in this rotating order, one rotation per image, so that
    changes in machine load hit all of them alike.
    """
    k %= len(items)
    return [*items[k:], *items[:k]]


# ------------------------------------------------------------------ generated scenes

#: Face-width bins (px, ``[lo, hi)``) of :func:`make_scene`'s default scenes.
SCENE_BINS = ((24, 48), (48, 96), (96, 192), (192, 321))


def lfw_head_crops(rng: Any, n: int) -> list[np.ndarray]:
    """``n`` LFW heads (140x160 centre crops, RGB uint8) of ``n`` different people."""
    from pixveil.io import read_image

    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    crops = []
    for person in rng.sample(people, n):
        files = sorted(person.glob("*.jpg"))
        im = read_image(rng.choice(files)).pixels
        crops.append(im[50:210, 55:195])  # head and some hair, 140x160
    return crops


def _street_background(rng: Any, width: int, height: int, background: str) -> np.ndarray:
    import cv2

    from pixveil.io import read_image

    photos = sorted(PLATES.glob("*/*.jpg"))
    if background == "upscaled":  # one street photo scaled up (soft, like a zoomed photo)
        bg = read_image(rng.choice(photos)).pixels
        return cv2.resize(bg, (width, height), interpolation=cv2.INTER_CUBIC)
    if background != "mosaic":
        raise ValueError(f"background must be 'upscaled' or 'mosaic', got {background!r}")
    # street photos side by side at about their own resolution (sharp, with their own
    # small faces), cropped to the size
    rows = []
    y = 0
    while y < height:
        row, x = [], 0
        while x < width:
            im = read_image(rng.choice(photos)).pixels
            f = 720 / im.shape[0]
            row.append(cv2.resize(im, (round(im.shape[1] * f), 720), interpolation=cv2.INTER_AREA))
            x += row[-1].shape[1]
        rows.append(np.concatenate(row, axis=1)[:, :width])
        y += 720
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:height])


def make_scene(
    seed: int,
    n_faces: int,
    *,
    width: int = 4000,
    height: int = 3000,
    bins: Sequence[tuple[int, int]] = SCENE_BINS,
    background: str = "upscaled",
) -> tuple[np.ndarray, list[Box], list[int]]:
    """A generated photo with LFW faces pasted at known places and widths.

    The background is a street photo from :data:`PLATES` scaled up to ``width`` x
    ``height`` (``background="upscaled"``) or street photos side by side at about
    their own resolution (``"mosaic"``).  Face ``i`` is pasted with a width drawn
    from ``bins[i % len(bins)]``, never overlapping another.

    Returns
    -------
    scene : ndarray of shape (height, width, 3), uint8
    boxes : list of (x0, y0, x1, y1)
        The face inside each pasted head (about 64 % of the pasted width).
    bins : list of int
        The width bin of each face.
    """
    import random

    import cv2

    rng = random.Random(seed)
    scene = _street_background(rng, width, height, background)
    boxes: list[Box] = []
    face_bins: list[int] = []
    taken: list[tuple[int, int, int, int]] = []
    for crop in lfw_head_crops(rng, n_faces):
        face_bins.append(len(boxes) % len(bins))
        lo, hi = bins[face_bins[-1]]
        w = rng.randint(lo, hi - 1)
        h = round(w * crop.shape[0] / crop.shape[1])
        for _ in range(200):
            x, y = rng.randint(0, width - w - 1), rng.randint(0, height - h - 1)
            if all(x + w < a or a + c < x or y + h < b or b + d < y for a, b, c, d in taken):
                break
        taken.append((x - 20, y - 20, w + 40, h + 40))
        scene[y : y + h, x : x + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        # the face inside the 140x160 crop spans about x 25..115, y 35..145
        sx, sy = w / crop.shape[1], h / crop.shape[0]
        boxes.append((x + 25 * sx, y + 35 * sy, x + 115 * sx, y + 145 * sy))
    return scene, boxes, face_bins


def face_matched(ref: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether one of ``boxes`` ((N, 4) x0 y0 x1 y1) is the face ``ref``.

    IoU >= 0.3, or the centre of either box inside the other: the face-recall rule of
    bench_faces and bench_cascade.
    """
    if len(boxes) == 0:
        return False
    ix = np.clip(np.minimum(ref[2], boxes[:, 2]) - np.maximum(ref[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(ref[3], boxes[:, 3]) - np.maximum(ref[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area_r = (ref[2] - ref[0]) * (ref[3] - ref[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / np.maximum(area_r + areas - inter, 1e-9)
    rcx, rcy = (ref[0] + ref[2]) / 2, (ref[1] + ref[3]) / 2
    bcx, bcy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    b_in_r = (ref[0] <= bcx) & (bcx <= ref[2]) & (ref[1] <= bcy) & (bcy <= ref[3])
    r_in_b = (
        (boxes[:, 0] <= rcx) & (rcx <= boxes[:, 2]) & (boxes[:, 1] <= rcy) & (rcy <= boxes[:, 3])
    )
    return bool(((iou >= 0.3) | b_in_r | r_in_b).any())
