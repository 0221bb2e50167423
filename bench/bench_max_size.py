"""What ``--max-size`` costs in face recall, and what it saves in time.

``--max-size N`` detects on a copy whose longer side is at most N pixels and maps
the boxes back onto the full-resolution image.  This bench measures both sides on
generated 12-megapixel scenes (4000x3000): a street photo from
``../shared/data/plates`` scaled up as the background, with LFW faces (centre crops)
pasted at known places and sizes from 24 to 320 px wide.  The faces are the ground
truth; a face counts as found when a detected box has IoU >= 0.3 with it.  The
scenes are generated here on each run from a seed; nothing is written into the
repository.

For every scene each setting runs once, in a rotating order, so that machine load
hits all settings alike.  Per setting: recall overall and by face width, false
boxes per image (boxes matching no pasted face and no face of the background photo
found at full resolution), and detection seconds per image.

Run from the repository root::

    python bench/bench_max_size.py                         # 12 scenes, 18 faces each
    python bench/bench_max_size.py --scenes 4 --sizes none,2048,1024
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import LFW, PLATES, SCENE_BINS, make_scene, rotated, table_head, table_row
from pixveil.config import AnonymizeConfig
from pixveil.pipeline import Anonymizer
from pixveil.types import Region

WIDTH, HEIGHT = 4000, 3000
BINS = SCENE_BINS  # the generator lives in _common.make_scene


def _matched(region: Region, boxes: list[tuple[float, float, float, float]]) -> int | None:
    best, best_iou = None, 0.3
    for i, b in enumerate(boxes):
        iou = region.iou(b)
        if iou >= best_iou:
            best, best_iou = i, iou
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--faces", type=int, default=18, help="faces pasted per scene")
    parser.add_argument("--sizes", default="none,3000,2048,1600,1280,1024")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not LFW.is_dir() or not PLATES.is_dir():
        raise SystemExit("needs ../shared/data/lfw and ../shared/data/plates")
    sizes = [None if s == "none" else int(s) for s in args.sizes.split(",")]
    names = ["full" if s is None else str(s) for s in sizes]
    detectors = {
        n: Anonymizer(AnonymizeConfig(targets=("faces",), max_size=s, device="cpu"))
        for n, s in zip(names, sizes, strict=True)
    }
    found = {n: np.zeros(len(BINS), int) for n in names}
    total = np.zeros(len(BINS), int)
    false = dict.fromkeys(names, 0)
    seconds = dict.fromkeys(names, 0.0)
    for k in range(args.scenes):
        scene, boxes, bins = make_scene(args.seed + k, args.faces, width=WIDTH, height=HEIGHT)
        for b in bins:
            total[b] += 1
        detections: dict[str, list[Region]] = {}
        for n in rotated(names, k):
            t0 = time.perf_counter()
            detections[n] = list(detectors[n].detect(scene))
            seconds[n] += time.perf_counter() - t0
        # faces of the background photo itself (found at full resolution) are not false boxes
        extra = [r.box for r in detections.get("full", []) if _matched(r, boxes) is None]
        for n in names:
            hit = set()
            for r in detections[n]:
                i = _matched(r, boxes)
                if i is not None:
                    hit.add(i)
                elif _matched(r, extra) is None:  # type: ignore[arg-type]
                    false[n] += 1
            for i in hit:
                found[n][bins[i]] += 1
        print(f"scene {k + 1}/{args.scenes} done", flush=True)
    header = [
        "max-size",
        "recall",
        *[f"crop {lo}-{hi - 1} px" for lo, hi in BINS],
        "false/img",
        "s/img",
    ]
    print("\n" + "\n".join(table_head(header)))
    for n in names:
        rec = found[n].sum() / total.sum()
        per = [f"{found[n][i] / total[i]:.1%}" if total[i] else "-" for i in range(len(BINS))]
        false_rate, secs = false[n] / args.scenes, seconds[n] / args.scenes
        print(table_row([n, f"{rec:.1%}", *per, f"{false_rate:.2f}", f"{secs:.2f}"]))
    print(
        f"\n{args.scenes} scenes of {WIDTH}x{HEIGHT}, {int(total.sum())} faces (seed {args.seed})"
    )


if __name__ == "__main__":
    main()
