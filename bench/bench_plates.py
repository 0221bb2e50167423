"""Licence plates: recall, false positives and speed of the ``plates`` detector.

Runs :class:`pixveil.detect.plates.PlateDetector` on the annotated street photos of
``../shared/data/plates/{eu,us}`` (one ``.txt`` per photo: ``file x y w h TEXT``).  A
plate counts as found when a detection has IoU >= 0.5 with its box or covers at least
90 % of it; every detection that matches no annotated plate counts as a false positive
(some of them are real plates the data set does not annotate: ``--list-fps`` prints
them with their readings, to be checked by eye).

The detector runs once per image at the lowest threshold asked for; the figures for
higher thresholds come from the same run (a region's acceptance never depends on
lower-scored ones, so this equals separate runs).  Images are decoded outside the
timer; the time per image is wall clock and process CPU time of ``detect``.

Run from the repository root::

    python bench/bench_plates.py                                  # all 330 photos, 1 thread
    python bench/bench_plates.py --thresholds 0.5,0.35,0.25 --out /tmp/plates.md
    python bench/bench_plates.py --limit 40 --list-misses --list-fps
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _common import PLATES, load_plate_samples, plate_found, table_head
from pixveil.errors import InputError
from pixveil.io import read_image


@dataclass
class Tally:
    found: dict[str, list[bool]] = field(default_factory=lambda: {"eu": [], "us": []})
    fps: list[int] = field(default_factory=list)
    area_ratio: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    fp_list: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=PLATES, help="folder with eu/ and us/")
    ap.add_argument("--thresholds", default="0.5", help="comma-separated plate thresholds")
    ap.add_argument("--max-side", type=int, default=1280, help="text detector input size")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (0: default)")
    ap.add_argument("--limit", type=int, default=0, help="use every k-th photo to get about N")
    ap.add_argument("--list-misses", action="store_true", help="print the plates not found")
    ap.add_argument("--list-fps", action="store_true", help="print unmatched detections")
    ap.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = ap.parse_args(argv)

    try:
        thresholds = sorted({float(t) for t in args.thresholds.split(",")}, reverse=True)
    except ValueError:
        ap.error(f"--thresholds must be numbers, got {args.thresholds!r}")
    if not args.data.is_dir():
        print(f"no plate data at {args.data}", file=sys.stderr)
        return 2

    from pixveil.detect.plates import PlateDetector

    samples = load_plate_samples(args.data)
    if args.limit and args.limit < len(samples):
        step = len(samples) / args.limit
        samples = [samples[int(i * step)] for i in range(args.limit)]
    det = PlateDetector(
        threshold=min(thresholds),
        max_side=args.max_side,
        threads=args.threads or None,
    )
    det.detect(np.zeros((64, 64, 3), np.uint8))  # warm-up, outside the timers

    tallies = {t: Tally() for t in thresholds}
    wall: list[float] = []
    cpu: list[float] = []
    sizes: dict[tuple[int, int], int] = {}
    for k, s in enumerate(samples):
        try:
            rgb = read_image(s.path).pixels
        except InputError as exc:
            print(exc, file=sys.stderr)
            return 2
        sizes[rgb.shape[1], rgb.shape[0]] = sizes.get((rgb.shape[1], rgb.shape[0]), 0) + 1
        t0, c0 = time.perf_counter(), time.process_time()
        regions = det.detect(rgb)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        for t, tally in tallies.items():
            kept = [r for r in regions if r.score >= t]
            hit = [plate_found(r.box, s.box) for r in kept]
            tally.found[s.region].append(any(hit))
            tally.fps.append(len(hit) - sum(hit))
            for r, h in zip(kept, hit, strict=True):
                if h:
                    gt_area = (s.box[2] - s.box[0]) * (s.box[3] - s.box[1])
                    tally.area_ratio.append(r.area / gt_area)
                else:
                    tally.fp_list.append(
                        f"{s.region}/{s.path.name}: {r.label!r} score {r.score:.2f} "
                        f"box {[round(v) for v in r.box]}"
                    )
            if not any(hit):
                tally.misses.append(
                    f"{s.region}/{s.path.name}: {s.text} "
                    f"(read: {[r.label for r in kept] or 'nothing'})"
                )
        if (k + 1) % 50 == 0:
            print(f"  {k + 1}/{len(samples)} images", file=sys.stderr)

    n = len(samples)
    n_eu = sum(s.region == "eu" for s in samples)
    lines = table_head(
        [
            "threshold", "images", "recall EU", "recall US", "recall all", "FP / image",
            "box area / plate (median)", "ms / image (wall)", "ms / image (CPU)",
        ]
    )  # fmt: skip
    for t, tally in tallies.items():
        eu, us = tally.found["eu"], tally.found["us"]
        everything = eu + us

        def pct(v: list[bool]) -> str:
            return f"{100 * np.mean(v):.1f} % ({sum(v)}/{len(v)})" if v else "-"

        ratio = f"{np.median(tally.area_ratio):.2f}" if tally.area_ratio else "-"
        lines.append(
            f"| {t:g} | {n} ({n_eu} EU, {n - n_eu} US) | {pct(eu)} | {pct(us)} | "
            f"{pct(everything)} | {np.mean(tally.fps):.3f} | {ratio} | "
            f"{1000 * np.mean(wall):.0f} | {1000 * np.mean(cpu):.0f} |"
        )
    common = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    notes = [
        "",
        f"max_side={args.max_side}, threads={args.threads or 'default'}; "
        f"median wall time {1000 * np.median(wall):.0f} ms; "
        f"most common sizes: {', '.join(f'{w}x{h} ({c})' for (w, h), c in common)}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
    ]
    table = "\n".join(lines + notes)
    print(table)
    for t, tally in tallies.items():
        if args.list_misses:
            print(f"\nmissed at threshold {t:g} ({len(tally.misses)}):")
            print("\n".join("  " + m for m in tally.misses))
        if args.list_fps:
            print(f"\nunmatched detections at threshold {t:g} ({len(tally.fp_list)}):")
            print("\n".join("  " + m for m in tally.fp_list))
    if args.out:
        cmd = "python bench/bench_plates.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.write_text(f"# Licence plates\n\n`{cmd.strip()}`\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
