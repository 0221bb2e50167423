"""The informed attacker: CNN re-identification by protected region kind and attacker context.

For each data set, protection method and region kind (``face``, ``head``,
``person``: :mod:`pixveil.regions`), every photo is protected as
``pixveil anonymize --region KIND`` would (pixveil's face detector on the whole
photo, every face found protected), then the CNN re-identification attack
(McPherson et al. 2016; :func:`pixveil.evaluate.attacks.cnn_reid_attack`) is
trained on the protected *training photos* of every identity and names the
identity of the protected *test photos* (split by photo).  The attacker sees:

* ``1.2``: the square around the detected face box grown by 1.2 (what the
  ``pixveil evaluate`` attack saw so far);
* ``2``: the same square grown by 2 (hair, ears, neck, some clothes);
* ``full``: the whole photo.

The window is the same for every region kind, so the columns compare regions
at an equal view.  Each figure is top-1 accuracy in % with its 95 % Wilson
interval (±, half-width); chance is 1 / identities.  SSIM is the mean
whole-photo SSIM (grey) of the protected photo against the original: the
utility left.

Data (``../shared/data``, read in place)
----------------------------------------
* ``att``: AT&T, 40 subjects x 10 photos (92x112 grey).
* ``lfw``: ``--identities`` LFW identities with at least 10 photos (the first
  ones in name order), their first ``--per-identity`` photos.

Per identity a seeded choice of ``--test-per-identity`` photos are the
targets, the rest train the attacker.  ``--seeds 0,1,2`` repeats the split and
the attacker's training with each seed and pools the test photos (the photos
are protected once, with the first seed's noise): a narrower interval.

Besides the shipped region kinds, ``--regions`` (and ``--rows``) take
experimental kinds (not pixveil options): ``x-head-shoulders``, the head box
(as a box) and a shoulders box below the chin (:data:`SHOULDERS_GROWTH`: the
face's centre +- 1.6 face widths, from the chin down two face heights).  What
stays visible beside the head above the chin is background: it tells whether
what an attacker still uses around a protected head is the clothes at the
shoulders or the background of the photo.  ``x-boxes-only`` draws the same two
boxes (protected by the method) on a uniform grey photo, and ``x-face-only`` the
face regions (as ``--region face`` protects them) on a uniform grey photo: what
the regions' position and size alone tell, with nothing else of the photo left.

Example
-------
    OMP_NUM_THREADS=1 python bench/bench_informed_attacker.py \\
        --datasets att,lfw --regions face,head,person \\
        --methods blur,pixelate,mask,dp-pix,gan-face

Needs ``pip install 'pixveil[eval]'`` (torch) and ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from _common import ATT_FACES, LFW, table_head, table_row, wilson_interval
from pixveil.evaluate.attacks import cnn_reid_attack
from pixveil.evaluate.datasets import load_dataset
from pixveil.evaluate.metrics import ssim
from pixveil.io import read_image
from pixveil.protect import get_method, protect_regions
from pixveil.regions import REGION_KINDS, expand_regions, inner_face, people_boxes
from pixveil.types import Box, Region
from pixveil.validate import parse_value

CONTEXTS: tuple[str, ...] = ("1.2", "2", "full")
#: ``x-head-shoulders``: shoulders box under a face box of width ``w``, height ``h``:
#: ``side`` x ``w`` from the face's centre to each side, from the chin down ``down`` x ``h``.
SHOULDERS_GROWTH: dict[str, float] = {"side": 1.6, "down": 2.0}


def head_shoulders_regions(faces: list[Region]) -> list[Region]:
    """The experimental ``x-head-shoulders`` regions of each face: its head box and a
    shoulders box below the chin (two boxes: what lies beside the head above the chin
    stays visible)."""
    out = []
    for head in expand_regions(faces, "head"):
        face = inner_face(head)
        if face is None:  # pragma: no cover - head regions always keep their face
            continue
        x0, _, x1, y1 = face.box
        w, h = x1 - x0, face.box[3] - face.box[1]
        cx = (x0 + x1) / 2
        side, down = SHOULDERS_GROWTH["side"] * w, SHOULDERS_GROWTH["down"] * h
        out.append(Region(head.box, kind="person", score=head.score, landmarks=head.landmarks))
        out.append(Region((cx - side, y1, cx + side, y1 + down), kind="person", score=head.score))
    return out


def snap_regions(regions: list[Region], width: int, height: int, cells: int) -> list[Region]:
    """Each region's box grown outward to a grid of ``cells`` cells along the photo's
    shorter side: the outline then tells little of the face box's size and place."""
    step = min(width, height) / cells
    out = []
    for r in regions:
        x0, y0, x1, y1 = r.box
        box = (
            math.floor(x0 / step) * step,
            math.floor(y0 / step) * step,
            math.ceil(x1 / step) * step,
            math.ceil(y1 / step) * step,
        )
        out.append(Region(box, kind=r.kind, score=r.score, landmarks=r.landmarks))
    return out


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``"dp-pix:epsilon=0.1"`` -> ``("dp-pix", {"epsilon": 0.1})``."""
    name, *params = spec.split(":")
    kwargs: dict[str, Any] = {}
    for p in params:
        key, value = p.split("=", 1)
        kwargs[key.replace("-", "_")] = parse_value(value)
    return name, kwargs


def load_people(name: str, args: argparse.Namespace) -> tuple[list[Path], list[str]]:
    """Paths and identity labels of the data set ``name``."""
    if name == "att":
        ds = load_dataset(args.att, layout="identities")
        return [item.path for item in ds], [str(label) for label in ds.labels]
    ds = load_dataset(args.lfw, per_identity=10, layout="identities")
    keep = set(ds.identities[: args.identities])
    paths: list[Path] = []
    labels: list[str] = []
    counts: dict[str, int] = {}
    for item, label in zip(ds, ds.labels, strict=True):
        if label in keep and counts.get(str(label), 0) < args.per_identity:
            counts[str(label)] = counts.get(str(label), 0) + 1
            paths.append(item.path)
            labels.append(str(label))
    return paths, labels


def split_by_photo(labels: list[str], n_test: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded choice of ``n_test`` test photos per identity; the rest train."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    train: list[int] = []
    test: list[int] = []
    for members in groups.values():
        chosen = set(rng.choice(len(members), size=n_test, replace=False).tolist())
        for j, i in enumerate(members):
            (test if j in chosen else train).append(i)
    return train, test


def reference_face(faces: list[Region], width: int, height: int) -> Box:
    """The face nearest the photo's centre (the data set's subject), or the centre box."""
    if not faces:
        s = min(width, height) / 2.2
        cx, cy = width / 2, height / 2
        return (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)
    best = min(faces, key=lambda r: math.hypot(r.center[0] - width / 2, r.center[1] - height / 2))
    return best.box


def context_view(image: np.ndarray, ref: Box, context: str, size: int) -> np.ndarray:
    """What the attacker sees, resized to ``size`` x ``size``."""
    if context == "full":
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    c = float(context)
    x0, y0, x1, y1 = ref
    side = max(x1 - x0, y1 - y0) * c
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape[:2]
    ix0, iy0 = round(cx - side / 2), round(cy - side / 2)
    ix1, iy1 = ix0 + max(1, round(side)), iy0 + max(1, round(side))
    pad = max(0, -ix0, -iy0, ix1 - w, iy1 - h)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    crop = padded[iy0 + pad : iy1 + pad, ix0 + pad : ix1 + pad]
    interp = cv2.INTER_AREA if crop.shape[0] >= size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def grey_ssim(a: np.ndarray, b: np.ndarray) -> float:
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    return float(ssim(np.repeat(ga[..., None], 3, 2), np.repeat(gb[..., None], 3, 2)))


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").split("\n\n")[0]
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--datasets", default="att,lfw")
    ap.add_argument("--att", type=Path, default=ATT_FACES)
    ap.add_argument("--lfw", type=Path, default=LFW)
    ap.add_argument("--identities", type=int, default=40, help="LFW identities (>= 10 photos)")
    ap.add_argument("--per-identity", type=int, default=10, help="LFW photos per identity")
    ap.add_argument("--test-per-identity", type=int, default=3)
    ap.add_argument("--methods", default="blur,pixelate,mask,dp-pix,gan-face")
    ap.add_argument("--regions", default=",".join(REGION_KINDS))
    ap.add_argument(
        "--rows",
        default="",
        help="instead of every region x method: REGION@METHOD,... "
        "(e.g. head@mask:shape=box,person@mask)",
    )
    ap.add_argument("--contexts", default=",".join(CONTEXTS))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument(
        "--snap",
        type=int,
        default=0,
        help="grow every protected box outward to a grid of N cells per side (0: off)",
    )
    ap.add_argument("--seeds", default="0", help="split/training seeds, pooled (e.g. 0,1,2)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/pixveil-informed-attacker.json"))
    args = ap.parse_args(argv)
    contexts = [c.strip() for c in args.contexts.split(",") if c.strip()]
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    first = seeds[0]
    for d in datasets:
        root = args.att if d == "att" else args.lfw
        if not root.is_dir():
            print(f"no data at {root}: skipped")
            return 0
    cache: dict[str, Any] = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    size = args.image_size

    def save() -> None:
        args.cache.write_text(json.dumps(cache, indent=0))

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        print("needs torch: pip install 'pixveil[eval]'")
        return 0
    from pixveil.detect import get_detector

    detector = get_detector("faces")
    lines = [
        "Command: `OMP_NUM_THREADS=1 python bench/"
        + Path(__file__).name
        + " "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        + "`",
        "",
    ]
    for ds in datasets:
        paths, labels = load_people(ds, args)
        splits = {s: split_by_photo(labels, args.test_per_identity, s) for s in seeds}
        train, test = splits[first]
        n_ids = len(set(labels))
        images = [read_image(p).pixels for p in paths]
        faces = [[r for r in detector.detect(im) if r.kind == "face"] for im in images]
        people = [people_boxes(im) for im in images]
        refs = [
            reference_face(f, im.shape[1], im.shape[0]) for f, im in zip(faces, images, strict=True)
        ]
        no_face = sum(1 for f in faces if not f)
        with_people = sum(1 for p in people if p)
        lines += [
            f"**{ds}**: {n_ids} identities, {len(train)} training and {len(test)} test photos "
            f"per seed, {len(seeds)} seed(s) pooled "
            f"(chance {100 / n_ids:.1f} %, 2x chance {200 / n_ids:.1f} %); no face found in "
            f"{no_face} photos (left unprotected, as in a real run); the HOG people detector "
            f"fired on {with_people} of {len(images)} photos.",
            "",
            *table_head(
                ["region", "method", "SSIM", *[f"top-1 % (context {c})" for c in contexts]],
                right=1 + len(contexts),
            ),
        ]
        combos: list[tuple[str, str]] = [("-", "none")]
        if args.rows:
            combos += [
                (r.split("@", 1)[0].strip(), r.split("@", 1)[1].strip())
                for r in args.rows.split(",")
                if "@" in r
            ]
        else:
            combos += [(r, m) for r in regions for m in methods]
        for region, spec in combos:
            tag = region if not args.snap or spec == "none" else f"{region}/snap{args.snap}"
            keys = {
                (c, s): f"{ds}|{args.identities}x{args.per_identity}|{spec}|{tag}|{c}|"
                f"{size}|{args.epochs}|{s}" + ("" if s == first else f"|noise{first}")
                for c in contexts
                for s in seeds
            }
            ssim_key = f"{ds}|{args.identities}x{args.per_identity}|{spec}|{tag}|ssim|{first}"
            if any(k not in cache for k in keys.values()) or ssim_key not in cache:
                t0 = time.perf_counter()
                if spec == "none":
                    protected = images
                else:
                    name, params = parse_method(spec)
                    method = get_method(name, **params)
                    companion = None if method.kinds is None else get_method("blur")
                    protected = []
                    for i, im in enumerate(images):
                        if region in ("x-boxes-only", "x-face-only"):
                            # only the regions' position and size: protected on grey
                            im = np.full_like(im, 128)
                        if region in ("x-head-shoulders", "x-boxes-only"):
                            todo = head_shoulders_regions(faces[i])
                        elif region == "x-face-only":
                            todo = expand_regions(faces[i], "face", people=people[i])
                        else:
                            todo = expand_regions(faces[i], region, people=people[i])
                        if args.snap:
                            todo = snap_regions(todo, im.shape[1], im.shape[0], args.snap)
                        rng = np.random.default_rng([first, i])
                        protected.append(
                            protect_regions(method, im, todo, rng=rng, companion=companion).image
                        )
                cache[ssim_key] = float(
                    np.mean([grey_ssim(a, b) for a, b in zip(images, protected, strict=True)])
                )
                for c in contexts:
                    if all(keys[c, s] in cache for s in seeds):
                        continue
                    views = np.stack(
                        [context_view(im, refs[i], c, size) for i, im in enumerate(protected)]
                    )
                    for s in seeds:
                        if keys[c, s] in cache:
                            continue
                        tr, te = splits[s]
                        res = cnn_reid_attack(
                            views[tr],
                            np.asarray([labels[i] for i in tr]),
                            views[te],
                            np.asarray([labels[i] for i in te]),
                            epochs=args.epochs,
                            image_size=size,
                            seed=s,
                        )
                        hits = round(res.top1 * res.n_test)
                        cache[keys[c, s]] = {
                            "hits": hits,
                            "n": res.n_test,
                            "chance": res.chance_top1,
                        }
                        save()
                print(f"[{ds} {region} {spec}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
                save()
            cells = []
            for c in contexts:
                hits = sum(cache[keys[c, s]]["hits"] for s in seeds)
                n = sum(cache[keys[c, s]]["n"] for s in seeds)
                lo, hi = wilson_interval(hits, n)
                half = 100 * ((hi or 0) - (lo or 0)) / 2
                cells.append(f"{100 * hits / n:.1f} ± {half:.1f}")
            lines.append(table_row([tag, spec, f"{cache[ssim_key]:.3f}", *cells]))
        lines.append("")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
