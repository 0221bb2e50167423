"""Hard negatives: what a plate detector takes for a plate on its own training data.

A further training phase (``pixveil plates train --hard-negatives FILE``) looks more
often at the false positives of the current model:

* on the **training photos** (:func:`mine_photos`): every detection at the mining
  threshold that finds no annotated plate is kept as a box; training then centres a
  share of the crops of that photo on one of them (``SynthConfig.p_hard``), where
  the target heatmap is zero;
* on the **training stream** (:func:`mine_synthetic`): the indices of synthetic
  samples (a stream seed of their own) where the model fires on clutter; training
  replays a share of them.

The photos' other cars carry real plates that the data set does not annotate; a
detection there is not a mistake and must not be taught as one.  Every candidate
that the OCR plate path (``plates``, run at a low threshold) also finds is dropped:
a box whose reading looks like a plate is left out of the negatives.  This costs
some true hard negatives (badges and signs that read like plates) and cannot catch
unannotated plates that neither detector reads.

Only the training split is ever mined; the held-out photos are never looked at.
The result is plain JSON (:func:`save`, :func:`load`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.platedet.data import LabelledPhoto
from pixveil.platedet.evaluate import match, read_rgb
from pixveil.platedet.synth import SceneSynth, quad_boxes
from pixveil.types import Region

__all__ = ["load", "mine_photos", "mine_synthetic", "save"]

DetectFn = Callable[[np.ndarray], list[Region]]


def _explained(box: np.ndarray, others: Sequence[Region]) -> bool:
    """Whether an OCR plate overlaps ``box`` (IoU >= 0.3 or half of either inside the other)."""
    b = np.asarray(box, np.float64).reshape(1, 4)
    for r in others:
        o = np.asarray(r.box, np.float64).reshape(1, 4)
        ix = max(0.0, min(b[0, 2], o[0, 2]) - max(b[0, 0], o[0, 0]))
        iy = max(0.0, min(b[0, 3], o[0, 3]) - max(b[0, 1], o[0, 1]))
        inter = ix * iy
        ab = (b[0, 2] - b[0, 0]) * (b[0, 3] - b[0, 1])
        ao = (o[0, 2] - o[0, 0]) * (o[0, 3] - o[0, 1])
        if ab <= 0 or ao <= 0:
            continue
        if inter / (ab + ao - inter) >= 0.3 or inter / ab >= 0.5 or inter / ao >= 0.5:
            return True
    return False


def _false_positives(
    regions: Sequence[Region], gt: np.ndarray, image: np.ndarray, second: DetectFn | None
) -> list[list[float]]:
    fps = []
    for r in regions:
        box = np.asarray(r.box, np.float64).reshape(1, 4)
        _, fp = match(box, gt)
        if fp:
            fps.append(box[0])
    if fps and second is not None:
        ocr = second(image)
        fps = [b for b in fps if not _explained(b, ocr)]
    return [[round(float(v), 1) for v in b] for b in fps]


def mine_photos(
    detect: DetectFn,
    photos: Sequence[LabelledPhoto],
    *,
    second_opinion: DetectFn | None = None,
    max_per_photo: int = 8,
) -> dict[str, list[list[float]]]:
    """False-positive boxes of ``detect`` on annotated photos, keyed by the photo's path.

    Parameters
    ----------
    detect : callable
        ``image -> list of Region`` (a detector's ``detect`` at the mining threshold).
    photos : sequence of LabelledPhoto
        The *training* photos (their one annotated plate is the only positive).
    second_opinion : callable, optional
        The OCR plate path: candidates it also finds are dropped (likely real plates).
    max_per_photo : int
        Keep at most this many boxes per photo (the highest-scored first).
    """
    out: dict[str, list[list[float]]] = {}
    for p in photos:
        img = read_rgb(p.path)
        regions = sorted(detect(img), key=lambda r: -r.score)
        gt = np.array([p.box], np.float64)
        fps = _false_positives(regions, gt, img, second_opinion)[:max_per_photo]
        if fps:
            out[str(p.path)] = fps
    return out


def mine_synthetic(
    detect: DetectFn,
    synth: SceneSynth,
    indices: Sequence[int],
    *,
    second_opinion: DetectFn | None = None,
) -> list[int]:
    """The sample indices of ``synth`` on which ``detect`` has a false positive."""
    hard = []
    for i in indices:
        s = synth.sample(int(i))
        regions = detect(s.image)
        if _false_positives(regions, quad_boxes(s.quads), s.image, second_opinion):
            hard.append(int(i))
    return hard


def save(path: Path | str, data: dict[str, Any]) -> None:
    """Write a hard-negative file (``{"photos": {...}, "synthetic": {...}}``) as JSON."""
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path | str) -> dict[str, Any]:
    """Read a hard-negative file written by :func:`save`.

    Raises
    ------
    ValueError
        When the file is not such a file.
    """
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a hard-negative file")
    photos = data.get("photos", {})
    syn = data.get("synthetic", {})
    if not isinstance(photos, dict) or not isinstance(syn, dict):
        raise ValueError(f"{path}: not a hard-negative file")
    for boxes in photos.values():
        if not isinstance(boxes, list) or any(len(b) != 4 for b in boxes):
            raise ValueError(f"{path}: each photo needs a list of [x0, y0, x1, y1] boxes")
    if syn and (not isinstance(syn.get("seed"), int) or not isinstance(syn.get("indices"), list)):
        raise ValueError(f"{path}: 'synthetic' needs an int 'seed' and a list 'indices'")
    return data
