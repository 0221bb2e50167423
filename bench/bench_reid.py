"""Re-identification of protected LFW faces by dlib's face recogniser.

For each of N LFW identities with at least two photos (a deterministic, seeded
choice), the first photo is enrolled unprotected and the second one is
protected with pixveil (face detector ``faces``, the method's default shape and
margin) and used as a probe.  Prints, per parameter value: rank-1
identification, verification and false-accept rates at distance 0.6,
same-photo verification (protected probe vs its own original) and the
whole-image SSIM between the probe and its protected version.

Examples
--------
    python bench/bench_reid.py --identities 100 --method blur \\
        --param strength=0.05,0.08,0.1,0.12,0.15
    python bench/bench_reid.py --identities 100 --method dp-pix --param epsilon=0.5,1,2,8
    python bench/bench_reid.py --identities 100 --method pixelate  # defaults only

Needs ``pip install 'pixveil[eval]'`` and the LFW folder (``../shared/data/lfw``
from the repository root, or ``--lfw``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from _common import LFW, lfw_identities, params_label, table_head
from pixveil.detect import get_detector
from pixveil.evaluate.reid import get_face_encoder, reid_scores
from pixveil.io import read_image
from pixveil.protect import available_methods, get_method
from pixveil.types import Box, Region
from pixveil.validate import parse_value


@dataclass
class Pair:
    """One identity: an enrolment photo and a probe photo (originals), with face boxes."""

    name: str
    enrol: np.ndarray
    probe: np.ndarray
    enrol_box: Box  # dlib HOG location in the enrolment photo
    probe_box: Box  # dlib HOG location in the probe original
    regions: list[Region]  # what pixveil's detector found in the probe


def parse_grid(specs: list[str]) -> list[dict[str, Any]]:
    """``["strength=0.1,0.2", "passes=1,2"]`` -> the cartesian product of settings."""
    names, values = [], []
    for spec in specs:
        if "=" not in spec:
            raise SystemExit(f"--param expects name=v1,v2,..., got {spec!r}")
        name, _, rest = spec.partition("=")
        names.append(name.strip())
        values.append([parse_value(v) for v in rest.split(",") if v.strip()])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def choose_pairs(lfw: Path, n: int, seed: int, detector: Any) -> tuple[list[Pair], int]:
    """N identities (seeded order) whose two first photos both show a dlib-detectable face."""
    encoder = get_face_encoder()
    names = lfw_identities(lfw, 2)
    order = np.random.default_rng(seed).permutation(len(names))
    pairs: list[Pair] = []
    skipped = 0
    for idx in order:
        if len(pairs) == n:
            break
        name = names[idx]
        files = sorted((lfw / name).glob("*.jpg"))
        enrol, probe = read_image(files[0]).pixels, read_image(files[1]).pixels
        enrol_box = encoder.locate_central(enrol)
        probe_box = encoder.locate_central(probe)
        if enrol_box is None or probe_box is None:
            skipped += 1
            continue
        pairs.append(Pair(name, enrol, probe, enrol_box, probe_box, list(detector.detect(probe))))
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} usable identities in {lfw} (asked for {n})")
    return pairs, skipped


def covered(pair: Pair, method: Any) -> bool:
    """Whether a detected region (grown by the method's margin) contains the face centre."""
    cx = (pair.probe_box[0] + pair.probe_box[2]) / 2
    cy = (pair.probe_box[1] + pair.probe_box[3]) / 2
    for r in pair.regions:
        g = r.scaled(method.params.margin)
        if g.box[0] <= cx < g.box[2] and g.box[1] <= cy < g.box[3]:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--method", default="blur", choices=available_methods())
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        help="name=v1,v2,... (repeatable: the grid is the cartesian product); "
        "without it, the method's defaults",
    )
    parser.add_argument("--lfw", type=Path, default=LFW)
    parser.add_argument("--seed", type=int, default=0, help="identity choice and DP noise")
    parser.add_argument("--threshold", type=float, default=0.6)
    args = parser.parse_args(argv)

    if not args.lfw.is_dir():
        print(f"LFW not found at {args.lfw}", file=sys.stderr)
        return 2
    grid = parse_grid(args.param) or [{}]
    methods = [(p, get_method(args.method, **p)) for p in grid]  # validate before the long part

    t0 = time.perf_counter()
    detector = get_detector("faces")
    encoder = get_face_encoder()
    pairs, skipped = choose_pairs(args.lfw, args.identities, args.seed, detector)
    ids = [p.name for p in pairs]
    gallery = np.stack([encoder.encode(p.enrol, p.enrol_box) for p in pairs])
    originals = np.stack([encoder.encode(p.probe, p.probe_box) for p in pairs])

    print(
        f"# {len(pairs)} LFW identities (seed {args.seed}; {skipped} skipped: no dlib face "
        f"in an original); detector 'faces'; threshold {args.threshold}"
    )
    columns = [
        "method", "params", "rank-1", "verification", "false accept", "same photo", "SSIM",
        "face covered",
    ]  # fmt: skip
    print("\n".join(table_head(columns)))
    base = reid_scores(gallery, ids, originals, ids, threshold=args.threshold)
    print(
        f"| none | - | {base.rank1:.1%} | {base.verification:.1%} | {base.false_accept:.2%} "
        f"| 100.0% | 1.000 | - |"
    )
    for params, method in methods:
        rng = np.random.default_rng(args.seed) if method.randomized else None
        probes, ssims, n_cov = [], [], 0
        for p in pairs:
            out = method.apply(p.probe, p.regions, rng=rng)
            probes.append(encoder.encode(out, p.probe_box))
            ssims.append(structural_similarity(p.probe, out, channel_axis=2, data_range=255))
            n_cov += covered(p, method)
        s = reid_scores(
            gallery,
            ids,
            np.stack(probes),
            ids,
            probe_originals=originals,
            threshold=args.threshold,
        )
        shown = params_label(params)
        print(
            f"| {args.method} | {shown} | {s.rank1:.1%} | {s.verification:.1%} | "
            f"{s.false_accept:.2%} | {s.same_photo:.1%} | {np.mean(ssims):.3f} | "
            f"{n_cov}/{len(pairs)} |",
            flush=True,
        )
    print(f"# {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
