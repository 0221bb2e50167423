"""The learned plate detector (``plates-net``) against the OCR path (``plates``), side by side.

Test sets, each scored with the rule of ``bench/bench_plates.py`` (a plate is found when
a detection's box has IoU >= 0.5 with it or covers >= 90 % of it; a detection that
finds no annotated plate is a false positive):

* **cross-splits** of ``../shared/data/plates``: the model trained on the EU photos is
  tested on the US photos (``--us-model``... see below) and the reverse.  A model is
  only ever scored on the folder it was *not* trained on.
* **synthetic held-out set**: 1280x720 scenes drawn by :mod:`pixveil.platedet.synth`
  with a seed never used in training, every format (including the ones held out of
  training, ``square`` by default), plates 30-400 px wide, on the test folder's photos
  with their own plates inpainted away and on face photos of identities never used in
  training (LFW names N-Z).
* the OCR path on the same images, and the fusion of both
  (:func:`pixveil.detect.plate_net.fuse_regions`: network plates plus the OCR plates
  that no network plate explains).

Time is the median wall clock of ``detect`` per image (images decoded outside the
timer), on the photos that are exactly 1280x720, one ONNX Runtime thread each.

Run from the repository root::

    python bench/bench_plate_detector.py --eu-model runs/export_eu/plate_det.onnx \\
        --us-model runs/export_us/plate_det.onnx --synthetic 100
    python bench/bench_plate_detector.py --limit 20 --no-ocr     # quick look

``--eu-model`` is the model trained on EU photos (scored on US), ``--us-model`` the one
trained on US photos (scored on EU).  Without them the shipped model is scored on both
folders: it was trained on the EU photos (see its card), so only its US figure is a
held-out figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()


class Union:
    """The fusion of :func:`pixveil.detect.plate_net.fuse_regions`: the network's plates
    plus the OCR plates no network plate explains."""

    def __init__(self, net: Any, ocr: Any) -> None:
        self.net, self.ocr = net, ocr

    def detect(self, image: np.ndarray) -> list[Any]:
        from pixveil.detect.plate_net import fuse_regions

        return fuse_regions(self.net.detect(image), self.ocr.detect(image))


def timed_1280(detector: Any, photos: list[Any], limit: int = 40) -> float:
    """Median ms of ``detect`` on up to ``limit`` photos of exactly 1280x720."""
    from pixveil.platedet.evaluate import read_rgb

    times = []
    for p in photos:
        img = read_rgb(p.path)
        if img.shape[:2] != (720, 1280):
            continue
        t = time.perf_counter()
        detector.detect(img)
        times.append(time.perf_counter() - t)
        if len(times) >= limit:
            break
    return 1000 * float(np.median(times)) if times else float("nan")


def held_out_synth(test_region: str, n: int) -> Any:
    from pixveil.platedet.data import load_photos
    from pixveil.platedet.synth import FORMATS, SceneSynth, SynthConfig

    photos = [p.as_photo() for p in load_photos(DATA / "plates", test_region)]
    lfw = DATA / "lfw"
    faces = []
    if lfw.is_dir():
        for d in sorted(lfw.iterdir()):
            if d.is_dir() and d.name[:1].upper() > "M":
                faces.extend(sorted(d.glob("*.jpg"))[:1])
    cfg = SynthConfig(
        size=(720, 1280),
        min_plate_width=30,
        max_plate_width=400,
        max_plates=4,
        formats=FORMATS,
        p_keep=0.0,
        p_cover=0.0,
        p_faces=0.15,
    )
    return SceneSynth(cfg, photos=photos, faces=faces, seed=20_240_917)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eu-model", type=Path, help="model trained on EU photos (scored on US)")
    ap.add_argument("--us-model", type=Path, help="model trained on US photos (scored on EU)")
    ap.add_argument("--threshold", type=float, default=None, help="plates-net threshold")
    ap.add_argument("--curve", default="0.1,0.2,0.3,0.4,0.5,0.6", help="thresholds for the curve")
    ap.add_argument("--synthetic", type=int, default=60, help="held-out synthetic images per model")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos per folder")
    ap.add_argument("--no-ocr", action="store_true", help="skip the OCR path")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--list-misses", action="store_true")
    args = ap.parse_args(argv)

    if not (DATA / "plates").is_dir():
        print(f"no plate data at {DATA / 'plates'}; nothing to measure", file=sys.stderr)
        return 2
    from pixveil.detect.plate_net import DEFAULT_THRESHOLD, PlateNetDetector
    from pixveil.platedet.data import load_photos
    from pixveil.platedet.evaluate import evaluate_photos, evaluate_synthetic

    th = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    curve = [float(v) for v in args.curve.split(",") if v.strip()]
    curve = [c for c in curve if c >= th] or [th]
    # (test folder, model path, what the model was trained on)
    plans: list[tuple[str, Path | None, str]] = []
    if args.eu_model or args.us_model:
        if args.eu_model:
            plans.append(("us", args.eu_model, "eu"))
        if args.us_model:
            plans.append(("eu", args.us_model, "us"))
    else:
        plans = [("us", None, "shipped"), ("eu", None, "shipped")]

    ocr = None
    if not args.no_ocr:
        from pixveil.detect.plates import PlateDetector

        ocr = PlateDetector(threads=1)
    rows: list[list[str]] = []
    results: dict[str, Any] = {}
    for test, model, trained in plans:
        photos = load_photos(DATA / "plates", test)
        if args.limit > 0:
            photos = photos[: args.limit]
        net = PlateNetDetector(
            threshold=min([*curve, th]), model=str(model) if model else None, threads=1
        )
        name = f"test {test} (trained on {trained})"
        r = evaluate_photos(net, photos, thresholds=curve)
        r_th = next(
            c for c in r["curve"] if c["threshold"] == min(curve, key=lambda c: abs(c - th))
        )
        ms = timed_1280(net, photos)
        results[f"{name} / plates-net"] = {**r, "ms_1280x720": ms}
        rows.append(
            [
                name,
                "plates-net",
                f"{len(photos)}",
                pct(r_th["recall"]),
                f"{r_th['fp_per_image']:.3f}",
                f"{ms:.0f}",
            ]
        )
        if args.list_misses:
            print(f"{name}: plates-net misses at {min(curve)}: {' '.join(r['misses'])}")
        if ocr is not None:
            ro = evaluate_photos(ocr, photos)
            mo = timed_1280(ocr, photos)
            results[f"{name} / plates (OCR)"] = {**ro, "ms_1280x720": mo}
            rows.append(
                [
                    name,
                    "plates (OCR)",
                    f"{len(photos)}",
                    pct(ro["recall"]),
                    f"{ro['fp_per_image']:.3f}",
                    f"{mo:.0f}",
                ]
            )
            net_th = PlateNetDetector(threshold=th, model=str(model) if model else None, threads=1)
            ru = evaluate_photos(Union(net_th, ocr), photos)
            results[f"{name} / union"] = ru
            rows.append(
                [
                    name,
                    "net + OCR (fused)",
                    f"{len(photos)}",
                    pct(ru["recall"]),
                    f"{ru['fp_per_image']:.3f}",
                    "sum",
                ]
            )
        results[f"{name} / curve"] = r["curve"]
        if args.synthetic > 0:
            synth = held_out_synth(test, args.synthetic)
            net_th = PlateNetDetector(threshold=th, model=str(model) if model else None, threads=1)
            rs = evaluate_synthetic(net_th, synth, args.synthetic)
            results[f"{name} / synthetic"] = rs
            rows.append(
                [
                    f"synthetic on {test} photos",
                    "plates-net",
                    f"{rs['images']} ({rs['plates']} plates)",
                    pct(rs["recall"]),
                    f"{rs['fp_per_image']:.3f}",
                    f"{rs['ms_per_image']:.0f}",
                ]
            )
            if ocr is not None:
                ro = evaluate_synthetic(ocr, synth, args.synthetic)
                results[f"{name} / synthetic / OCR"] = ro
                rows.append(
                    [
                        f"synthetic on {test} photos",
                        "plates (OCR)",
                        f"{ro['images']} ({ro['plates']} plates)",
                        pct(ro["recall"]),
                        f"{ro['fp_per_image']:.3f}",
                        f"{ro['ms_per_image']:.0f}",
                    ]
                )

    print(f"\nplates-net threshold {th}; {platform.processor() or platform.machine()}, 1 thread\n")
    header = ["test set", "detector", "images", "recall", "FP / image", "ms / image"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for key, val in results.items():
        if key.endswith("/ curve"):
            print(
                f"\n{key}: "
                + ", ".join(
                    f"{c['threshold']:.2f}: {pct(c['recall'])} / {c['fp_per_image']:.3f} FP"
                    for c in val
                )
            )
        if key.endswith("/ synthetic"):
            print(
                f"\n{key} per format: "
                + ", ".join(
                    f"{k} {pct(v['recall'])} of {v['plates']}" for k, v in val["per_format"].items()
                )
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


if __name__ == "__main__":
    sys.exit(main())
