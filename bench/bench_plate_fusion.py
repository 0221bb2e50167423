"""The default ``plates`` target's fusion (network first, OCR second opinion) against each path alone.

The fused score (:func:`pixveil.detect.plate_net.second_opinion`): a network plate that
the OCR path also reads scores ``1 - (1 - p_net)(1 - p_ocr)``, a network plate alone
``p_net``, an OCR plate that no network plate explains ``ocr_weight * p_ocr``; one
threshold keeps the regions.  Both detectors run once per photo at low floors (network
0.3, OCR 0.05) and every threshold is scored from those runs.

The choice of the fusion's two numbers is made on a *tuning* split and reported on a
*test* split that played no part in it:

* ``--tune eu:MODEL``: a model never trained on the EU photos (the cross-split twin,
  trained on the US photos) on the EU photos;  ``(threshold, ocr_weight)`` is the pair
  with the highest recall whose false positives per image are at most those of the
  OCR-only path at its default threshold (0.5) on the same photos (ties: fewer false
  positives, then the higher threshold);
* ``--test us:MODEL`` (repeatable): a model trained on the EU photos (the shipped one)
  on the US photos, at that pair, beside the OCR path alone at 0.5 and the network
  alone at 0.6, with the recall / false-positive curve of the fused score over the
  threshold at the chosen weight.

A plate is found when a detection's box has IoU >= 0.5 with it or covers >= 90 % of
it; every other detection is a false positive.  Run from the repository root::

    python bench/bench_plate_fusion.py --tune eu:runs/export_us2/plate_det.onnx \\
        --test us:src/pixveil/models/plate_det.onnx --cache runs/fusion_cache.pkl

``--fix T,W`` skips the choice and scores that pair (on every split given).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import PLATE_UNANNOTATED

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
NET_FLOOR = 0.3
OCR_FLOOR = 0.05
OCR_DEFAULT = 0.5
NET_DEFAULT = 0.6


def _key(region: str, model: str) -> str:
    p = Path(model)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else model
    return f"{region}:{digest}"


def raw_runs(region: str, model: str, cache: dict[str, Any]) -> dict[str, Any]:
    """Network and OCR candidates (at their floors) and times for every photo of ``region``."""
    from pixveil.detect.plate_net import PlateNetDetector
    from pixveil.detect.plates import PlateDetector
    from pixveil.platedet.data import load_photos, load_unannotated
    from pixveil.platedet.evaluate import read_rgb

    unannotated = load_unannotated(PLATE_UNANNOTATED) if PLATE_UNANNOTATED.is_file() else None
    photos = load_photos(DATA / "plates", region, unannotated=unannotated)
    key = _key(region, model)
    if f"net:{key}" not in cache:
        net = PlateNetDetector(threshold=NET_FLOOR, model=model, threads=1)
        runs = []
        for p in photos:
            img = read_rgb(p.path)
            t = time.perf_counter()
            regs = net.detect(img)
            runs.append((regs, time.perf_counter() - t, img.shape[:2]))
        cache[f"net:{key}"] = runs
    if f"ocr:{region}" not in cache:
        ocr = PlateDetector(threshold=OCR_FLOOR, threads=1)
        runs = []
        for p in photos:
            img = read_rgb(p.path)
            t = time.perf_counter()
            regs = ocr.detect(img)
            runs.append((regs, time.perf_counter() - t, img.shape[:2]))
        cache[f"ocr:{region}"] = runs
    truths = [np.array([p.box], np.float64) for p in photos]
    ignores = [np.array(p.others, np.float64).reshape(-1, 4) for p in photos]
    mpix = sum(h * w for _, _, (h, w) in cache[f"ocr:{region}"]) / 1e6
    return {
        "net": cache[f"net:{key}"],
        "ocr": cache[f"ocr:{region}"],
        "truths": truths,
        "ignores": ignores,
        "mpix": mpix,
        "names": [p.path.name for p in photos],
    }


def fused(runs: dict[str, Any], weight: float) -> list[list[Any]]:
    from pixveil.detect.plate_net import second_opinion

    return [
        second_opinion(n, o, ocr_weight=weight)
        for (n, _, _), (o, _, _) in zip(runs["net"], runs["ocr"], strict=True)
    ]


def score_at(regions: list[list[Any]], runs: dict[str, Any], threshold: float) -> dict[str, Any]:
    from pixveil.platedet.evaluate import score

    return score(
        regions,
        runs["truths"],
        threshold=threshold,
        megapixels=runs["mpix"],
        ignores=runs["ignores"],
    )


def baselines(runs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ocr = [r for r, _, _ in runs["ocr"]]
    net = [r for r, _, _ in runs["net"]]
    return {
        f"plates, OCR only (old default, {OCR_DEFAULT})": score_at(ocr, runs, OCR_DEFAULT),
        f"plates-net alone ({NET_DEFAULT})": score_at(net, runs, NET_DEFAULT),
    }


def ms(runs: list[Any]) -> float:
    ts = [t for _, t, shape in runs if tuple(shape) == (720, 1280)] or [t for _, t, _ in runs]
    return 1000 * float(np.median(ts))


THRESHOLDS = [round(0.5 + 0.025 * k, 3) for k in range(19)]  # 0.5 .. 0.95
WEIGHTS = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def choose(runs: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """The (threshold, weight) pair of the module notes, on the tuning split."""
    limit = score_at([r for r, _, _ in runs["ocr"]], runs, OCR_DEFAULT)["fp_per_image"]
    best: tuple[Any, ...] | None = None
    for w in WEIGHTS:
        regs = fused(runs, w)
        for t in THRESHOLDS:
            r = score_at(regs, runs, t)
            if r["fp_per_image"] > limit + 1e-12:
                continue
            key = (r["recall"], -r["fp_per_image"], t, -w)
            if best is None or key > best[0]:
                best = (key, t, w, r)
    if best is None:
        raise SystemExit("no fusion setting is within the OCR path's false positives")
    return best[1], best[2], best[3]


def line(name: str, r: dict[str, Any], cost: str) -> str:
    return (
        f"| {name} | {100 * r['recall']:.1f} % ({r['found']}/{r['plates']}) | "
        f"{r['fp_per_image']:.3f} | {r['fp_per_megapixel']:.3f} | {cost} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tune", help="REGION:MODEL the fusion's numbers are chosen on")
    ap.add_argument("--test", action="append", default=[], help="REGION:MODEL to report on")
    ap.add_argument("--fix", help="THRESHOLD,WEIGHT instead of choosing")
    ap.add_argument("--cache", type=Path, help="pickle of the raw runs (reused when present)")
    args = ap.parse_args(argv)
    if not (DATA / "plates").is_dir():
        print(f"no plate data at {DATA / 'plates'}; nothing to measure", file=sys.stderr)
        return 2
    cache: dict[str, Any] = {}
    if args.cache and args.cache.is_file():
        cache = pickle.loads(args.cache.read_bytes())

    def save() -> None:
        if args.cache:
            args.cache.write_bytes(pickle.dumps(cache))

    splits: list[tuple[str, str, str]] = []
    if args.tune:
        splits.append(("tune", *args.tune.split(":", 1)))
    splits += [("test", *s.split(":", 1)) for s in args.test]
    data = {}
    for role, region, model in splits:
        data[(role, region, model)] = raw_runs(region, model, cache)
        save()

    if args.fix:
        t, w = (float(v) for v in args.fix.split(","))
        how = "fixed by --fix"
    elif args.tune:
        region, model = args.tune.split(":", 1)
        t, w, _ = choose(data[("tune", region, model)])
        how = f"chosen on {region} photos with {model}"
    else:
        ap.error("give --tune or --fix")
    print(
        f"\nfusion threshold {t}, ocr_weight {w} ({how}); network floor {NET_FLOOR}, "
        f"OCR floor {OCR_FLOOR}; {platform.processor() or platform.machine()}, 1 thread each\n"
    )
    for (role, region, model), runs in data.items():
        print(f"### {region} photos, {role} split, model {model} ({len(runs['truths'])} photos)\n")
        print("| detector | recall | FP / image | FP / MP | ms / photo |")
        print("|---|---|---|---|---|")
        base = baselines(runs)
        ocr_ms, net_ms = ms(runs["ocr"]), ms(runs["net"])
        for name, r in base.items():
            print(line(name, r, f"{ocr_ms:.0f}" if "OCR" in name else f"{net_ms:.0f}"))
        regs = fused(runs, w)
        r = score_at(regs, runs, t)
        print(line(f"fused ({t}, weight {w})", r, f"{ocr_ms + net_ms:.0f} (both)"))
        missed = " ".join(runs["names"][i] for i in r["missed"]) or "none"
        print(f"\nfused misses: {missed}")
        print(
            f"fused curve at weight {w} (threshold: recall / FP per image): "
            + ", ".join(
                f"{c}: {100 * (s := score_at(regs, runs, c))['recall']:.1f} % / "
                f"{s['fp_per_image']:.3f}"
                for c in THRESHOLDS[::2]
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
