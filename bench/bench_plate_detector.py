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

Detections on the real plates that the data set does not annotate (other cars'
plates, reviewed by eye: ``bench/plate_unannotated.json``) are not counted as false
positives; ``--no-unannotated`` counts them as the data set's own boxes would.

Each detector runs once per image (images decoded outside the timer); the threshold
curve and the fusion are computed from those runs.  Time is the median wall clock of
``detect`` on the photos that are exactly 1280x720 (the synthetic scenes all are),
one ONNX Runtime thread each; the fused time is the sum of the two.

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

from _common import PLATE_UNANNOTATED

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()


def run_all(detectors: dict[str, Any], images: list[np.ndarray]) -> dict[str, list[Any]]:
    """Each detector once per image: its regions and its wall-clock seconds."""
    out: dict[str, list[Any]] = {name: [] for name in detectors}
    for img in images:
        for name, det in detectors.items():
            t = time.perf_counter()
            regions = det.detect(img)
            out[name].append((list(regions), time.perf_counter() - t, img.shape[:2]))
    return out


def median_ms(runs: list[Any], *, only_1280: bool) -> float:
    """Median ms per image; with ``only_1280``, over the 1280x720 images (nan if none)."""
    ts = [t for _, t, shape in runs if not only_1280 or tuple(shape) == (720, 1280)]
    return 1000 * float(np.median(ts)) if ts else float("nan")


def ms_cell(runs: list[Any]) -> str:
    """Median ms on the 1280x720 images, else on all of them (marked)."""
    ms = median_ms(runs, only_1280=True)
    if np.isfinite(ms):
        return f"{ms:.0f}"
    return f"{median_ms(runs, only_1280=False):.0f} (all sizes)"


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
    ap.add_argument(
        "--curve", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8", help="thresholds for the curve"
    )
    ap.add_argument("--synthetic", type=int, default=60, help="held-out synthetic images per model")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos per folder")
    ap.add_argument("--no-ocr", action="store_true", help="skip the OCR path")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--list-misses", action="store_true")
    ap.add_argument(
        "--unannotated",
        type=Path,
        default=PLATE_UNANNOTATED,
        help="reviewed real plates the data set does not annotate (not false positives)",
    )
    ap.add_argument(
        "--no-unannotated",
        action="store_true",
        help="count detections on unannotated plates as false positives",
    )
    ap.add_argument(
        "--fp-budgets",
        default="0.1,0.2,0.4",
        help="report the best recall within these false positives per image (fine threshold sweep)",
    )
    args = ap.parse_args(argv)

    if not (DATA / "plates").is_dir():
        print(f"no plate data at {DATA / 'plates'}; nothing to measure", file=sys.stderr)
        return 2
    from pixveil.detect.plate_net import DEFAULT_THRESHOLD, PlateNetDetector, fuse_regions
    from pixveil.platedet.data import load_photos, load_unannotated
    from pixveil.platedet.evaluate import read_rgb, score
    from pixveil.platedet.synth import quad_boxes

    th = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    curve = sorted({float(v) for v in args.curve.split(",") if v.strip()} | {th})
    # (test folder, model path, what the model was trained on)
    plans: list[tuple[str, Path | None, str]] = []
    if args.eu_model:
        plans.append(("us", args.eu_model, "eu"))
    if args.us_model:
        plans.append(("eu", args.us_model, "us"))
    if not plans:
        plans = [("us", None, "shipped"), ("eu", None, "shipped")]

    unannotated = None if args.no_unannotated else load_unannotated(args.unannotated)
    ocr = None
    if not args.no_ocr:
        from pixveil.detect.plates import PlateDetector

        ocr = PlateDetector(threads=1)
    rows: list[list[str]] = []
    results: dict[str, Any] = {}
    ocr_cache: dict[str, Any] = {}
    for test, model, trained in plans:
        photos = load_photos(DATA / "plates", test, unannotated=unannotated)
        if args.limit > 0:
            photos = photos[: args.limit]
        net = PlateNetDetector(threshold=min(curve), model=str(model) if model else None, threads=1)
        images = [read_rgb(p.path) for p in photos]
        truths = [np.array([p.box], np.float64) for p in photos]
        ign = [np.array(p.others, np.float64).reshape(-1, 4) for p in photos]
        mpix = sum(i.shape[0] * i.shape[1] for i in images) / 1e6
        dets: dict[str, Any] = {"net": net}
        if ocr is not None and test not in ocr_cache:
            dets["ocr"] = ocr
        runs = run_all(dets, images)
        if ocr is not None:
            ocr_cache.setdefault(test, runs.get("ocr"))
            runs["ocr"] = ocr_cache[test]
        name = f"{test} photos (model trained on {trained})"
        net_regions = [r for r, _, _ in runs["net"]]
        res_curve = [
            {
                "threshold": c,
                **score(net_regions, truths, threshold=c, megapixels=mpix, ignores=ign),
            }
            for c in curve
        ]
        r_net = next(c for c in res_curve if c["threshold"] == th)
        fine = [round(min(curve) + 0.01 * k, 2) for k in range(int((0.99 - min(curve)) / 0.01) + 1)]
        fine_scores = [(c, score(net_regions, truths, threshold=c, ignores=ign)) for c in fine]
        budgets = {}
        for b in (float(v) for v in args.fp_budgets.split(",") if v.strip()):
            ok = [(r["recall"], -c, c) for c, r in fine_scores if r["fp_per_image"] <= b + 1e-12]
            if ok:
                rec, _, c = max(ok)
                fp = next(r["fp_per_image"] for cc, r in fine_scores if cc == c)
                budgets[b] = {"recall": rec, "threshold": c, "fp_per_image": fp}
        ms_net = median_ms(runs["net"], only_1280=True)
        results[name] = {
            "plates-net": r_net,
            "curve": res_curve,
            "ms_1280x720": ms_net,
            "at_fp_budget": budgets,
        }
        rows.append(row(name, "plates-net", r_net, ms_cell(runs["net"])))
        if args.list_misses:
            print(
                f"{name}: plates-net misses: "
                + " ".join(photos[i].path.name for i in r_net["missed"])
            )
        if ocr is not None:
            ocr_regions = [r for r, _, _ in runs["ocr"]]
            r_ocr = score(ocr_regions, truths, megapixels=mpix, ignores=ign)
            ms_ocr = median_ms(runs["ocr"], only_1280=True)
            fused = [
                fuse_regions([r for r in n if r.score >= th], o)
                for n, o in zip(net_regions, ocr_regions, strict=True)
            ]
            r_fused = score(fused, truths, megapixels=mpix, ignores=ign)
            results[name].update({"ocr": r_ocr, "fused": r_fused, "ocr_ms_1280x720": ms_ocr})
            results[name]["fused_curve"] = [
                {
                    "threshold": c,
                    **score(
                        [
                            fuse_regions([r for r in n if r.score >= c], o)
                            for n, o in zip(net_regions, ocr_regions, strict=True)
                        ],
                        truths,
                        megapixels=mpix,
                        ignores=ign,
                    ),
                }
                for c in curve
            ]
            rows.append(row(name, "plates (OCR)", r_ocr, ms_cell(runs["ocr"])))
            rows.append(row(name, "net + OCR (fused)", r_fused, "both"))
        if args.synthetic > 0:
            synth = held_out_synth(test, args.synthetic)
            samples = [synth.sample(i) for i in range(args.synthetic)]
            s_images = [s.image for s in samples]
            s_truths = [quad_boxes(s.quads) for s in samples]
            s_runs = run_all(dets if ocr is None else {"net": net, "ocr": ocr}, s_images)
            s_net = [[r for r in regs if r.score >= th] for regs, _, _ in s_runs["net"]]
            sname = f"synthetic held-out on {test} photos"
            r_s = score(s_net, s_truths)
            r_s["per_format"] = per_format(samples, s_net)
            results[name]["synthetic"] = r_s
            rows.append(row(sname, "plates-net", r_s, median_ms(s_runs["net"], only_1280=False)))
            if ocr is not None:
                s_ocr = [regs for regs, _, _ in s_runs["ocr"]]
                r_so = score(s_ocr, s_truths)
                r_so["per_format"] = per_format(samples, s_ocr)
                results[name]["synthetic_ocr"] = r_so
                rows.append(
                    row(sname, "plates (OCR)", r_so, median_ms(s_runs["ocr"], only_1280=False))
                )

    print(
        f"\nplates-net threshold {th}; {platform.processor() or platform.machine()}, 1 thread; "
        + (
            "detections on unannotated plates count as false positives\n"
            if unannotated is None
            else f"detections on the {sum(map(len, unannotated.values()))} reviewed "
            f"unannotated plates of {args.unannotated.name} are not false positives\n"
        )
    )
    header = ["test set", "detector", "images", "recall", "FP / image", "FP / MP", "ms / image"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for name, val in results.items():
        print(
            f"\n{name}, plates-net threshold curve (recall / FP per image): "
            + ", ".join(
                f"{c['threshold']:.2f}: {pct(c['recall'])} / {c['fp_per_image']:.3f}"
                for c in val["curve"]
            )
        )
        if val.get("at_fp_budget"):
            print(
                f"{name}, plates-net best recall within a false-positive budget: "
                + ", ".join(
                    f"<= {b} FP/image: {pct(v['recall'])} (threshold {v['threshold']:.2f}, "
                    f"{v['fp_per_image']:.3f})"
                    for b, v in val["at_fp_budget"].items()
                )
            )
        if "fused_curve" in val:
            print(
                f"{name}, fused (net + OCR) curve: "
                + ", ".join(
                    f"{c['threshold']:.2f}: {pct(c['recall'])} / {c['fp_per_image']:.3f}"
                    for c in val["fused_curve"]
                )
            )
        for key in ("synthetic", "synthetic_ocr"):
            if key in val:
                print(
                    f"{name}, {key} per format: "
                    + ", ".join(
                        f"{k} {pct(v['recall'])} of {v['plates']}"
                        for k, v in val[key]["per_format"].items()
                    )
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


def row(name: str, detector: str, r: dict[str, Any], ms: float | str) -> list[str]:
    return [
        name,
        detector,
        f"{r['images']} ({r['plates']} plates)",
        f"{pct(r['recall'])} ({r['found']}/{r['plates']})",
        f"{r['fp_per_image']:.3f}",
        f"{r['fp_per_megapixel']:.3f}" if "fp_per_megapixel" in r else "",
        ms if isinstance(ms, str) else f"{ms:.0f}",
    ]


def per_format(samples: list[Any], regions: list[list[Any]]) -> dict[str, Any]:
    from pixveil.platedet.evaluate import match
    from pixveil.platedet.synth import quad_boxes

    tally: dict[str, list[bool]] = {}
    for s, regs in zip(samples, regions, strict=True):
        boxes = np.array([r.box for r in regs], np.float64).reshape(-1, 4)
        hit, _ = match(boxes, quad_boxes(s.quads))
        for fmt, h in zip(s.formats, hit, strict=True):
            tally.setdefault(fmt, []).append(bool(h))
    return {k: {"plates": len(v), "recall": sum(v) / len(v)} for k, v in sorted(tally.items())}


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


if __name__ == "__main__":
    sys.exit(main())
