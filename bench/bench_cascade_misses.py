"""What the cascade misses and adds on generated photos, box by box.

On the same generated scenes as ``bench_cascade.py`` (same seeds, sizes and
faces), each face the exhaustive mode finds that the cascade does not (``MISS``)
and each cascade box that matches none of the exhaustive mode's (``EXTRA``) is
listed with its score, its width in px and whether it is one of the pasted LFW
faces (``bench_cascade.py``'s matching rule throughout).  Both detectors use one
ONNX Runtime thread; nothing is timed.  A summary per set ends the listing.

Run from the repository root::

    python bench/bench_cascade_misses.py --large 12 --crowd 6 --seed 300
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from _common import face_matched, make_scene
from bench_cascade import CROWD_BINS, LARGE_SIZES, parse_options
from pixveil.detect.faces import FaceDetector


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large", type=int, default=12)
    ap.add_argument("--crowd", type=int, default=6)
    ap.add_argument("--crowd-faces", type=int, default=60)
    ap.add_argument("--seed", type=int, default=300)
    ap.add_argument("--cascade", default="", help="cascade options, as in bench_cascade.py")
    args = ap.parse_args(argv)
    cascade = FaceDetector(threshold=0.2, mode="cascade", threads=1, **parse_options(args.cascade))
    exhaustive = FaceDetector(threshold=0.2, mode="exhaustive", threads=1)
    scenes: list[tuple[str, int, dict[str, Any]]] = []
    for k in range(args.large):
        w, h = LARGE_SIZES[k % len(LARGE_SIZES)]
        scenes.append(("large", args.seed + k, {"n_faces": 18, "width": w, "height": h}))
    for k in range(args.crowd):
        kw = {"n_faces": args.crowd_faces, "width": 4000, "height": 3000, "bins": CROWD_BINS}
        scenes.append(("crowd", args.seed + k, kw))
    counts: dict[str, dict[str, int]] = {}
    for name, seed, kw in scenes:
        scene, pasted_list, _ = make_scene(seed, **kw)
        pasted = np.asarray(pasted_list, np.float64).reshape(-1, 4)
        eb, es, _ = exhaustive.detect_arrays(scene)
        cb, cs, _ = cascade.detect_arrays(scene)
        c = counts.setdefault(name, dict.fromkeys(("ref", "miss", "miss_p", "extra", "extra_p"), 0))
        c["ref"] += len(eb)
        for kind, boxes, scores, other in (("MISS", eb, es, cb), ("EXTRA", cb, cs, eb)):
            for b, s in zip(boxes, scores, strict=True):
                if face_matched(b, other):
                    continue
                on_pasted = face_matched(b, pasted)
                key = kind.lower()
                c[key] += 1
                c[key + "_p"] += int(on_pasted)
                print(
                    f"{name} seed {seed}: {kind} score {s:.2f}, {b[2] - b[0]:.0f} px wide, "
                    f"{'on a pasted face' if on_pasted else 'not a pasted face'}",
                    flush=True,
                )
    for name, c in counts.items():
        print(
            f"{name}: {c['miss']} of the exhaustive mode's {c['ref']} boxes missed "
            f"({c['miss_p']} on pasted faces); {c['extra']} cascade boxes the exhaustive "
            f"mode does not have ({c['extra_p']} on pasted faces)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
