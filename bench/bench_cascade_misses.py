"""What the cascade misses and adds on generated photos, box by box.

On the same generated scenes as ``bench_cascade.py`` (same seeds, sizes and
faces), each face the exhaustive mode finds that the cascade does not (``MISS``)
and each cascade box that matches none of the exhaustive mode's (``EXTRA``) is
listed with its score, its width in px and whether it is one of the pasted LFW
faces (``bench_cascade.py``'s matching rule throughout).  Both detectors use one
ONNX Runtime thread; nothing is timed.  A summary per set ends the listing.

The exhaustive mode's boxes include things that are not faces (tail lights, dark
windows, headrests of the street photos behind the pasted faces).  ``--review FILE``
writes every exhaustive box that is not on a pasted face to a JSON file (with a
contact sheet ``FILE.png`` to look at); once each entry's ``"face"`` has been set to
true or false by eye, ``--reviewed FILE`` reports recall over the exhaustive mode's
*faces*: its boxes on pasted faces plus those reviewed as faces.  A box the
review does not cover counts as a face.

Run from the repository root::

    python bench/bench_cascade_misses.py --large 12 --crowd 6 --seed 300
    python bench/bench_cascade_misses.py --large 12 --crowd 6 --seed 300 \
        --reviewed bench/cascade_faces_reviewed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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
    ap.add_argument(
        "--review", type=Path, help="write the boxes not on pasted faces here, to review by eye"
    )
    ap.add_argument(
        "--reviewed", type=Path, help="a reviewed file: report recall over the faces only"
    )
    args = ap.parse_args(argv)
    reviewed = json.loads(args.reviewed.read_text())["boxes"] if args.reviewed else []
    to_review: list[dict[str, Any]] = []
    sheet: list[np.ndarray] = []
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
        c = counts.setdefault(
            name,
            dict.fromkeys(("ref", "miss", "miss_p", "extra", "extra_p", "faces", "face_miss"), 0),
        )
        c["ref"] += len(eb)
        for b, s, face in zip(eb, es, faces_of(eb, pasted, reviewed, name, seed), strict=True):
            on_pasted = face_matched(b, pasted)
            found = face_matched(b, cb)
            c["faces"] += int(face)
            c["face_miss"] += int(face and not found)
            if not on_pasted and args.review:
                to_review.append(
                    {
                        "set": name,
                        "seed": seed,
                        "box": [round(float(v), 1) for v in b],
                        "score": round(float(s), 3),
                        "cascade_finds": bool(found),
                        "face": None,
                    }
                )
                sheet.append(crop(scene, b, len(to_review) - 1))
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
        if args.reviewed:
            found = c["faces"] - c["face_miss"]
            print(
                f"{name}: faces among the exhaustive mode's boxes (pasted, or reviewed as "
                f"faces): {c['faces']}; the cascade finds {found} "
                f"({100 * found / max(1, c['faces']):.1f} %)"
            )
    if args.review:
        args.review.write_text(
            json.dumps({"seeds": args.seed, "boxes": to_review}, indent=1) + "\n"
        )
        write_sheet(sheet, args.review.with_suffix(".png"))
        print(f"{len(to_review)} boxes to review: {args.review}")
    return 0


def is_face(reviewed: list[dict[str, Any]], name: str, seed: int, box: np.ndarray) -> bool:
    """The review's verdict on ``box`` (IoU >= 0.5 with a reviewed box); True when unreviewed."""
    from pixveil.types import box_iou

    ref = tuple(float(v) for v in box)
    for r in reviewed:
        if r["set"] == name and r["seed"] == seed and box_iou(ref, tuple(r["box"])) >= 0.5:
            return bool(r["face"])
    return True


def faces_of(
    boxes: np.ndarray, pasted: np.ndarray, reviewed: list[dict[str, Any]], name: str, seed: int
) -> list[bool]:
    """Per box: a face (on a pasted face, or reviewed as one, or not reviewed)."""
    return [bool(face_matched(b, pasted)) or is_face(reviewed, name, seed, b) for b in boxes]


def crop(scene: np.ndarray, box: np.ndarray, index: int, side: int = 160) -> np.ndarray:
    """The box with context (2x its size, at least 48 px), labelled with its index."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0, 24.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = scene.shape[:2]
    a0, b0 = int(max(0, cx - half)), int(max(0, cy - half))
    a1, b1 = int(min(w, cx + half)), int(min(h, cy + half))
    tile = np.full((side + 16, side, 3), 255, np.uint8)
    patch = cv2.resize(np.ascontiguousarray(scene[b0:b1, a0:a1]), (side, side))
    f = side / max(1, a1 - a0), side / max(1, b1 - b0)
    p0 = (int((x0 - a0) * f[0]), int((y0 - b0) * f[1]))
    p1 = (int((x1 - a0) * f[0]), int((y1 - b0) * f[1]))
    cv2.rectangle(patch, p0, p1, (255, 0, 0), 1)
    tile[:side] = patch
    cv2.putText(tile, str(index), (2, side + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return tile


def write_sheet(tiles: list[np.ndarray], path: Path, cols: int = 8) -> None:
    import cv2

    if not tiles:
        return
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    rows[-1] = rows[-1] + [np.full_like(tiles[0], 255)] * (cols - len(rows[-1]))
    img = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    sys.exit(main())
