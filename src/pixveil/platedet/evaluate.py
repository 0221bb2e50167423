"""Scoring plate detections against annotated plates (NumPy; no torch).

A plate counts as found when a detection's box has IoU >= 0.5 with the plate's box or
covers at least 90 % of it (the rule of ``bench/bench_plates.py``); a detection that
finds no annotated plate is a false positive, unless it would find, by the same rule,
one of the photo's real plates that the data set does not annotate (``ignore`` boxes,
``bench/plate_unannotated.json``): those are neither hits nor false positives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from pixveil.platedet.data import LabelledPhoto
from pixveil.platedet.decode import box_iou
from pixveil.platedet.synth import SceneSynth

__all__ = ["evaluate_photos", "evaluate_synthetic", "match", "read_rgb", "score"]


def match(
    det: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Which ground-truth boxes are found, and how many detections match none.

    Parameters
    ----------
    det, gt : ndarray of shape (N, 4) and (M, 4)
        Boxes ``(x0, y0, x1, y1)``.
    ignore : ndarray of shape (K, 4), optional
        Real plates that are not annotated: a detection that matches none of ``gt``
        but would find one of these is not a false positive.

    Returns
    -------
    found : ndarray of shape (M,), bool
    false_positives : int
    """
    det = np.asarray(det, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    if len(det) == 0:
        return np.zeros((len(gt),), bool), 0
    ok = _finds(det, gt)
    stray = ~ok.any(axis=1)
    if ignore is not None and len(ignore) and stray.any():
        stray &= ~_finds(det, np.asarray(ignore, np.float64).reshape(-1, 4)).any(axis=1)
    return np.asarray(ok.any(axis=0)), int(stray.sum())


def _finds(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, M)``: detection i finds plate j (IoU >= 0.5 or >= 90 % of j covered)."""
    if len(gt) == 0:
        return np.zeros((len(det), 0), bool)
    iou = box_iou(det, gt)
    ix = np.clip(
        np.minimum(det[:, None, 2], gt[None, :, 2]) - np.maximum(det[:, None, 0], gt[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(det[:, None, 3], gt[None, :, 3]) - np.maximum(det[:, None, 1], gt[None, :, 1]),
        0,
        None,
    )
    gt_area = np.maximum((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]), 1e-9)
    return np.asarray((iou >= 0.5) | (ix * iy / gt_area[None, :] >= 0.9))


def read_rgb(path: Any) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot read this image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _boxes(regions: Sequence[Any]) -> np.ndarray:
    return np.array([r.box for r in regions], np.float64).reshape(-1, 4)


def score(
    detections: Sequence[Sequence[Any]],
    truths: Sequence[np.ndarray],
    *,
    threshold: float = 0.0,
    megapixels: float | None = None,
    ignores: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Recall and false positives of regions already found, at a score threshold.

    Parameters
    ----------
    detections : sequence of lists of Region
        Per image, the regions found (any score).
    truths : sequence of ndarray of shape (M, 4)
        Per image, the annotated plate boxes.
    threshold : float
        Regions scoring below it are ignored.
    megapixels : float, optional
        Total image area, for ``fp_per_megapixel``.
    ignores : sequence of ndarray of shape (K, 4), optional
        Per image, real plates that are not annotated (see :func:`match`).

    Returns
    -------
    dict
        ``images``, ``plates``, ``found``, ``recall``, ``false_positives``,
        ``fp_per_image`` and (with ``megapixels``) ``fp_per_megapixel``; ``missed``
        lists the indices of images with a plate not found.
    """
    found = plates = fps = 0
    missed: list[int] = []
    if ignores is None:
        ignores = [np.zeros((0, 4))] * len(truths)
    for i, (regions, gt, ign) in enumerate(zip(detections, truths, ignores, strict=True)):
        keep = [r for r in regions if r.score >= threshold]
        hit, fp = match(_boxes(keep), gt, ign)
        found += int(hit.sum())
        plates += len(gt)
        fps += fp
        if not hit.all():
            missed.append(i)
    n = max(1, len(truths))
    out: dict[str, Any] = {
        "images": len(truths),
        "plates": plates,
        "found": found,
        "recall": found / max(1, plates),
        "false_positives": fps,
        "fp_per_image": fps / n,
        "missed": missed,
    }
    if megapixels:
        out["fp_per_megapixel"] = fps / megapixels
    return out


def evaluate_photos(
    detector: Any, photos: Sequence[LabelledPhoto], *, thresholds: Sequence[float] = ()
) -> dict[str, Any]:
    """Recall, false positives and time of ``detector`` on annotated photos.

    A detection on one of a photo's ``others`` (real plates the data set does not
    annotate) is not a false positive.

    Parameters
    ----------
    detector : Detector
        Anything with ``detect(image) -> list[Region]``.
    photos : sequence of LabelledPhoto
    thresholds : sequence of float
        Extra score thresholds (above the detector's own) to report from the same run.

    Returns
    -------
    dict
        ``photos``, ``recall``, ``fp_per_image``, ``fp_per_megapixel``, ``ms_per_image``
        (wall clock of ``detect``, decoding excluded), ``misses`` (file names), and
        ``curve``: one entry per threshold with ``threshold``, ``recall``, ``fp_per_image``.
    """
    found: list[bool] = []
    fps = 0
    pixels = 0.0
    times: list[float] = []
    scored: list[tuple[list[Any], np.ndarray, np.ndarray]] = []
    misses = []
    for p in photos:
        img = read_rgb(p.path)
        t = time.perf_counter()
        regions = detector.detect(img)
        times.append(time.perf_counter() - t)
        gt = np.array([p.box], np.float64)
        ign = np.array(p.others, np.float64).reshape(-1, 4)
        hit, fp = match(_boxes(regions), gt, ign)
        found.append(bool(hit[0]))
        if not hit[0]:
            misses.append(p.path.name)
        fps += fp
        pixels += img.shape[0] * img.shape[1] / 1e6
        scored.append((list(regions), gt, ign))
    n = max(1, len(photos))
    curve = []
    for th in sorted(thresholds):
        f = fp2 = 0
        for regions, gt, ign in scored:
            keep = [r for r in regions if r.score >= th]
            hit, fp = match(_boxes(keep), gt, ign)
            f += int(hit.sum())
            fp2 += fp
        curve.append({"threshold": th, "recall": f / n, "fp_per_image": fp2 / n})
    return {
        "photos": len(photos),
        "recall": sum(found) / n,
        "fp_per_image": fps / n,
        "fp_per_megapixel": fps / max(pixels, 1e-9),
        "ms_per_image": 1000 * float(np.median(times)) if times else 0.0,
        "misses": misses,
        "curve": curve,
    }


def evaluate_synthetic(detector: Any, synth: SceneSynth, n: int) -> dict[str, Any]:
    """Recall (overall and per format) and false positives per image on ``n`` samples of ``synth``."""
    per_format: dict[str, list[bool]] = {}
    fps = 0
    times = []
    for i in range(n):
        s = synth.sample(i)
        t = time.perf_counter()
        regions = detector.detect(s.image)
        times.append(time.perf_counter() - t)
        gt = (
            np.concatenate([s.quads.min(axis=1), s.quads.max(axis=1)], axis=1)
            if len(s.quads)
            else np.zeros((0, 4))
        )
        hit, fp = match(_boxes(regions), gt)
        fps += fp
        for fmt, h in zip(s.formats, hit, strict=True):
            per_format.setdefault(fmt, []).append(bool(h))
    allhits = [h for v in per_format.values() for h in v]
    return {
        "images": n,
        "plates": len(allhits),
        "recall": sum(allhits) / max(1, len(allhits)),
        "fp_per_image": fps / max(1, n),
        "ms_per_image": 1000 * float(np.median(times)) if times else 0.0,
        "per_format": {
            k: {"plates": len(v), "recall": sum(v) / len(v)} for k, v in sorted(per_format.items())
        },
    }
