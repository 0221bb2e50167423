"""``plate-synth`` against blur, pixelate and dp-pix on the shared licence plates.

For every annotated photo of ``../shared/data/plates/{eu,us}``:

1. the detector (``--detector``) runs on the original; the detection matching the annotated
   plate (IoU >= 0.5 or covering >= 90 % of it) is the region to protect (with its
   quadrilateral and reading).  When the detector misses the plate, the annotated box
   is protected instead (a plain box: no quadrilateral, no reading); such plates are
   counted apart (``det.`` column: detected / all);
2. every method protects that region (its default parameters and margin; a seeded
   generator, so the figures are reproducible: a real release uses the CSPRNG);
3. the PP-OCR recogniser reads the annotated box of the protected image (as in
   ``bench_plate_protection.py``) and the detector runs on the whole protected image.

Printed per method: share of plates whose reading is at edit distance >= 3 from the
true text; for ``plate-synth`` the same for the synthetic text itself, and the
character accuracy of the reading against the synthetic text (1 - Levenshtein /
length, floored at 0); share of protected images where a plate is still detected at
the annotated place (over all photos, and over those where the detector found the
original plate); whole-image SSIM (grey levels, 7x7 windows, computed on a crop
around the region: every other pixel is unchanged, where SSIM is exactly 1); median
milliseconds per plate spent in the method; fallbacks.

    python bench/bench_plate_synth.py [--limit N] [--methods plate-synth,blur,...]
        [--crops /tmp/plate_synth_crops.png] [--detector plates|plates-net|plates-fused]

``--detector`` names the target of step 1 and 3 (default ``plates``, the OCR path
whose text-line corners plate-synth was designed on).

A method may carry parameters: ``plate-synth:epsilon=1.0`` (several with ``:``).
Methods are run interleaved, image by image, so that timings are comparable.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from _common import (
    PlateReader,
    add_plate_method_options,
    char_accuracy,
    method_from_spec,
    plate_chars,
    plate_found,
    plate_samples,
    table_head,
)
from pixveil.detect import get_detector
from pixveil.evaluate import parse_list
from pixveil.io import read_image
from pixveil.privacy.plate_codes import levenshtein
from pixveil.protect.base import region_geometry
from pixveil.protect.plates import PlateSynth
from pixveil.types import Region


def crop_ssim(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Whole-image SSIM of two images that only differ inside ``box`` (x0, y0, x1, y1)."""
    from skimage.metrics import structural_similarity

    h, w = a.shape[:2]
    x0, y0, x1, y1 = box
    pad = 8
    x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    ga = cv2.cvtColor(np.ascontiguousarray(a[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(np.ascontiguousarray(b[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    local = float(structural_similarity(ga, gb, win_size=7, data_range=255))
    n_crop = (x1 - x0) * (y1 - y0)
    return 1.0 - n_crop / (h * w) * (1.0 - local)


def tile(images: list[np.ndarray], box: tuple[float, float, float, float], height: int = 96):
    """Side-by-side crops of ``box`` (grown 1.6x) from each image, ``height`` px high."""
    h, w = images[0].shape[:2]
    x0, y0, x1, y1 = box
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 1.6, (y1 - y0) * 1.9
    a0, b0 = int(max(0, cx - bw / 2)), int(max(0, cy - bh / 2))
    a1, b1 = int(min(w, cx + bw / 2)), int(min(h, cy + bh / 2))
    crops = [im[b0:b1, a0:a1] for im in images]
    scale = height / max(1, b1 - b0)
    crops = [cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for c in crops]
    sep = np.full((height, 4, 3), 255, np.uint8)
    row = [crops[0]]
    for c in crops[1:]:
        row += [sep, c]
    return np.concatenate(row, axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_plate_method_options(ap, methods="plate-synth,blur,pixelate,dp-pix")
    ap.add_argument("--crops", type=Path, help="write original/plate-synth/blur crops here")
    ap.add_argument("--n-crops", type=int, default=20)
    ap.add_argument(
        "--detector",
        default="plates",
        help="target that finds the plate (and re-detects it): plates (the OCR path, "
        "text-line corners), plates-net (the network, whole-plate corners) or plates-fused",
    )
    args = ap.parse_args(argv)
    samples = plate_samples(args.limit)
    specs = parse_list(args.methods)
    built = {m: method_from_spec(m) for m in specs}
    detector = get_detector(args.detector, threads=1)
    read = PlateReader()
    rng = np.random.default_rng(args.seed)
    keys = ("far", "synth_far", "acc", "redet", "redet_found", "ssim", "ms", "fallbacks")
    res: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in specs}
    reasons: dict[str, Counter[str]] = {m: Counter() for m in specs}
    detected: list[bool] = []
    crop_rows: list[np.ndarray] = []
    crop_every = max(1, len(samples) // max(1, args.n_crops))
    t0 = time.perf_counter()
    for i, s in enumerate(samples):
        pixels = read_image(s.path).pixels
        h, w = pixels.shape[:2]
        found = [r for r in detector.detect(pixels) if plate_found(r.box, s.box)]
        detected.append(bool(found))
        region = found[0] if found else Region(s.box, "plate")
        truth = plate_chars(s.text)
        outs: dict[str, np.ndarray] = {}
        for m in specs:
            method = built[m]
            t = time.perf_counter()
            done = method.protect(pixels, [region], rng=rng)
            out = done.image
            res[m]["ms"].append(1000 * (time.perf_counter() - t))
            outs[m] = out
            res[m]["fallbacks"].append(done.events.get("fallback", 0))
            for o in done.outcomes:
                if "fallback_reason" in o.details:
                    reasons[m][o.details["fallback_reason"]] += 1
            reading = read(out, s.box)
            res[m]["far"].append(levenshtein(reading, truth) >= 3)
            texts = done.outcomes[0].details.get("texts") if done.outcomes else None
            if texts is not None:
                synth = texts[1]
                res[m]["synth_far"].append(levenshtein(synth, truth) >= 3)
                res[m]["acc"].append(char_accuracy(reading, synth))
            again = detector.detect(out)
            res[m]["redet"].append(any(plate_found(r.box, s.box) for r in again))
            if found:
                res[m]["redet_found"].append(res[m]["redet"][-1])
            geom = region_geometry(region, w, h, shape="box", margin=method.params.margin)
            if geom is not None:
                res[m]["ssim"].append(crop_ssim(pixels, out, geom[0]))
        if args.crops and i % crop_every == 0 and len(crop_rows) < args.n_crops:
            synth_key = next((m for m in specs if m.startswith("plate-synth")), None)
            blur_key = next((m for m in specs if m.startswith("blur")), None)
            if synth_key and blur_key:
                crop_rows.append(tile([pixels, outs[synth_key], outs[blur_key]], s.box))
    dt = time.perf_counter() - t0
    n = len(samples)
    print(
        f"{n} plates ({sum(detected)} found by the detector on the original), {dt:.0f} s, "
        f"seed {args.seed}\n"
    )
    columns = [
        "method", "read ≥ 3 edits from true", "synthetic ≥ 3 edits",
        "read vs synthetic (char acc.)", "re-detected (all / of found)", "SSIM (image)",
        "ms/plate (median)", "fallbacks",
    ]  # fmt: skip
    print("\n".join(table_head(columns)))
    for m in specs:
        r = res[m]
        method = built[m]
        synth = f"{100 * np.mean(r['synth_far']):.1f} %" if r["synth_far"] else "–"
        acc = f"{100 * np.mean(r['acc']):.1f} %" if r["acc"] else "–"
        fb = str(sum(r["fallbacks"])) if isinstance(method, PlateSynth) else "–"
        print(
            f"| {m} | {100 * np.mean(r['far']):.1f} % | {synth} | {acc} "
            f"| {100 * np.mean(r['redet']):.1f} % / {100 * np.mean(r['redet_found']):.1f} % "
            f"| {np.mean(r['ssim']):.4f} "
            f"| {np.median(r['ms']):.0f} | {fb} |"
        )
    for m in specs:
        if reasons[m]:
            print(f"\n{m} fallbacks: {dict(reasons[m])}")
    if args.crops and crop_rows:
        width = max(r.shape[1] for r in crop_rows)
        rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in crop_rows]
        cv2.imwrite(str(args.crops), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
        print(f"\ncrops (original | plate-synth | blur): {args.crops}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
