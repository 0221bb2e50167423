"""Realism of gan-face on held-out LFW photos, against the references that bound it.

For photos of LFW identities that no face GAN of pixveil was trained on
(``pixveil.gan.data.is_held_out``), the main face is detected and replaced by:

* ``cond`` — gan-face with the conditional 128-px generator (the default), at
  its default ε and at ε = 0;
* ``dcgan64`` — gan-face with the unconditional 64-px DCGAN (the previous default);
* ``real paste`` — the face of *another* held-out photo, cut with the same
  context crop and pasted under the same mask (the realism ceiling of the
  pipeline: a real face, aligned and masked exactly as the generator's), as it
  is, with the DCGAN's blending (colour transfer from the region + Poisson) and
  with Poisson cloning whose boundary is the surroundings only (what
  ``-p blend=seamless`` does with the conditional generator);
* ``blur`` — the default method.

Columns (one run, same photos, side by side):

* FID-like (MobileNetV2 features, **not** Inception FID): face crops after
  the swap (the detected box) against the same crops of the
  *original* photos of a disjoint set of held-out people;
* face detected: share of swapped faces that CenterFace still finds (IoU > 0.5
  with the original box), and their mean score (original photos: reference);
* skin ΔE: the Lab distance between the mean colour of the new face (the
  inner half of the region) and of the neck below the chin in the same photo
  (original photos: reference);
* SSIM of the whole photo against the original;
* ms per face of the method alone (CenterFace excluded), on this machine.

Example::

    python bench/bench_gan_face_realism.py --photos 300 --out /tmp/realism

Needs ``pip install 'pixveil[eval]'`` and LFW at ``../shared/data/lfw``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from _common import table_head
from pixveil.detect import get_detector
from pixveil.evaluate.features import extract_features, frechet_distance
from pixveil.gan.cond_geometry import crop_transform, warp_crop
from pixveil.gan.data import is_held_out
from pixveil.protect import get_method
from pixveil.protect.base import ProtectionMethod, box_mask
from pixveil.protect.gan import DEFAULT_EPSILON, context_poisson, swap_face
from pixveil.types import Region


def _photos(lfw: Path, n: int, skip: int) -> list[Path]:
    """One photo per held-out identity, every other identity from ``skip``."""
    idents = [p for p in sorted(lfw.iterdir()) if p.is_dir() and is_held_out(p.name)]
    return [sorted(p.glob("*.jpg"))[0] for p in idents[skip::2][:n]]


def _main_face(det: object, img: np.ndarray) -> Region | None:
    found = det.detect(img)  # type: ignore[attr-defined]
    if not found:
        return None
    h, w = img.shape[:2]
    return min(
        found,
        key=lambda r: math.hypot(r.center[0] - w / 2, r.center[1] - h / 2),
    )


def _face_crop(img: np.ndarray, r: Region) -> np.ndarray:
    g = r.clipped(img.shape[1], img.shape[0])
    assert g is not None
    x0, y0, x1, y1 = g.pixel_box(img.shape[1], img.shape[0])
    return np.ascontiguousarray(img[y0:y1, x0:x1])


def _neck_and_face(img: np.ndarray, r: Region) -> tuple[np.ndarray, np.ndarray]:
    """Mean Lab of the neck (below the chin) and of the inner half of the face region."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float64)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    x0, y0, x1, y1 = r.box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    ny0, ny1 = int(y1 + 0.05 * h), int(min(img.shape[0], y1 + 0.25 * h))
    nx0, nx1 = int(cx - 0.15 * w), int(cx + 0.15 * w)
    neck = lab[ny0:ny1, nx0:nx1].reshape(-1, 3)
    inner = r.scaled(0.5)
    mask = box_mask(inner.box, img.shape[:2], "ellipse")
    return neck.mean(0), lab[mask].mean(0)


class _RealPaste(ProtectionMethod):
    """Another real face, cut with gan-face's context crop and pasted under the same mask."""

    name = "real-paste"

    def __init__(
        self, donors: list[tuple[np.ndarray, Region]], cond: ProtectionMethod, blend: str
    ) -> None:
        super().__init__(cond.params)
        self.donors = donors
        self.blend = blend
        self.cond = cond
        self.context = cond.context
        self.i = 0

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        img, r = self.donors[self.i % len(self.donors)]
        self.i += 1
        view = self.cond.conditional_view(patch, region)  # type: ignore[attr-defined]
        m_donor = crop_transform(r.box, r.landmarks)
        donor_crop = warp_crop(img, m_donor)
        h, w = patch.shape[:2]
        if self.blend not in ("model", "context"):
            return swap_face(patch, donor_crop, view.m, view.region_mask, blend=self.blend)
        warped = cv2.warpAffine(
            donor_crop, view.m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        if self.blend == "model":
            return warped
        return context_poisson(patch, warped, view.region_mask)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None, help="folder for a few example strips")
    ap.add_argument("--only", default="", help="run only methods whose name contains this")
    a = ap.parse_args(argv)
    if not a.lfw.is_dir():
        print(f"skipped: {a.lfw} not found", file=sys.stderr)
        return 0
    det = get_detector("faces")
    test = _photos(a.lfw, a.photos, 0)
    refs = _photos(a.lfw, a.photos, 1)  # disjoint identities: the real-face reference set
    load = lambda p: np.asarray(Image.open(p).convert("RGB"))  # noqa: E731
    items = [(load(p), _main_face(det, load(p))) for p in test]
    items = [(img, r) for img, r in items if r is not None]
    ref_items = [(load(p), _main_face(det, load(p))) for p in refs]
    ref_items = [(img, r) for img, r in ref_items if r is not None]
    ref_feats = extract_features([_face_crop(img, r) for img, r in ref_items])
    cond = get_method("gan-face")
    methods: dict[str, ProtectionMethod] = {
        f"gan-face cond (ε={DEFAULT_EPSILON:g})": cond,
        "gan-face cond (ε=0)": get_method("gan-face", epsilon=0),
        "gan-face cond (ε=0, no landmarks)": get_method("gan-face", epsilon=0, pose="box"),
        f"gan-face cond (ε={DEFAULT_EPSILON:g}, truncation 1.3)": get_method(
            "gan-face", truncation=1.3
        ),
        f"gan-face cond + Poisson from the surroundings (ε={DEFAULT_EPSILON:g})": get_method(
            "gan-face", blend="seamless"
        ),
        f"gan-face dcgan64 (ε={DEFAULT_EPSILON:g})": get_method("gan-face", model="dcgan64"),
        "real paste (other held-out face)": _RealPaste(ref_items, cond, "model"),
        "real paste + colour transfer + Poisson": _RealPaste(ref_items, cond, "seamless"),
        "real paste + Poisson from the surroundings": _RealPaste(ref_items, cond, "context"),
        "blur": get_method("blur"),
    }
    print(
        f"{len(items)} held-out test photos, {len(ref_items)} reference photos of other "
        "held-out people\n"
    )
    print(
        "\n".join(
            table_head(
                [
                    "faces",
                    "FID-like (MobileNetV2) ↓",
                    "face detected",
                    "mean det. score",
                    "skin ΔE to neck",
                    "SSIM",
                    "ms/face",
                ]
            )
        )
    )

    def row(name: str, outs: list[np.ndarray], ms: float | None) -> None:
        crops = [_face_crop(o, r) for o, (_, r) in zip(outs, items, strict=True)]
        fid = frechet_distance(extract_features(crops), ref_feats)
        found, scores, de, ssim = 0, [], [], []
        for o, (img, r) in zip(outs, items, strict=True):
            hits = [d for d in det.detect(o) if d.iou(r) > 0.5]
            found += bool(hits)
            scores.append(max((d.score for d in hits), default=0.0))
            neck, face = _neck_and_face(o, r)
            de.append(float(np.linalg.norm(face - neck)))
            ssim.append(structural_similarity(img, o, channel_axis=2))
        n = len(outs)
        print(
            f"| {name} | {fid:.1f} | {found / n:.1%} | {np.mean(scores):.3f} | "
            f"{np.median(de):.1f} | {np.mean(ssim):.3f} | "
            f"{'' if ms is None else f'{ms:.0f}'} |",
            flush=True,
        )

    row("original photos (reference)", [img for img, _ in items], None)
    strips = []
    for name, m in methods.items():
        if a.only and a.only not in name:
            continue
        outs = []
        t = time.perf_counter()
        for i, (img, r) in enumerate(items):
            outs.append(m.apply(img, [r], rng=np.random.default_rng(i)))
        ms = (time.perf_counter() - t) / len(items) * 1000
        row(name, outs, ms)
        strips.append(np.concatenate(outs[:8], 1))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        grid = np.concatenate([np.concatenate([img for img, _ in items[:8]], 1), *strips], 0)
        Image.fromarray(grid).save(a.out / "realism_examples.jpg", quality=85)
        print(f"\nexamples: {a.out / 'realism_examples.jpg'} (rows: original, then each method)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
