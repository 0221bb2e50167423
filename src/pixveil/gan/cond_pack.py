"""Training pack for the conditional face generator: LFW context crops, detected as at run time.

Every photo of the *training* side of LFW (:func:`pixveil.gan.data.is_held_out`
is False) goes through pixveil's own face detector; the detection nearest the
centre gives the face box and five landmarks, exactly what the ``gan-face``
method gets at run time.  The photo is warped to the context crop of
:mod:`pixveil.gan.cond_geometry` and stored as JPEG with its landmarks and the
face ellipse in crop coordinates, all in one ``.npz`` (a few tens of MB for
several thousand faces), so training needs neither LFW nor the detector.

    python -m pixveil.gan.cond_pack ../shared/data/lfw -o runs/cond/pack.npz --per-identity 6
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pixveil.gan.cond_geometry import (
    CONTEXT,
    RES,
    crop_transform,
    roll_angle,
    to_crop,
    warp_crop,
)
from pixveil.gan.data import is_held_out

__all__ = ["build_pack", "main"]


def _files(root: Path, *, held_out: bool, per_identity: int) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for ident in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_held_out(ident.name) != held_out:
            continue
        imgs = sorted(f for f in ident.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        out.extend((ident.name, f) for f in imgs[:per_identity])
    return out


def build_pack(
    root: Path, out: Path, *, held_out: bool = False, per_identity: int = 6, quality: int = 88
) -> int:
    """Write the pack for ``root`` (LFW layout) to ``out``; returns the number of faces."""
    from pixveil.detect.faces import FaceDetector

    det = FaceDetector(threshold=0.5)
    files = _files(root, held_out=held_out, per_identity=per_identity)
    blobs: list[bytes] = []
    lms: list[np.ndarray] = []
    ells: list[tuple[float, float, float]] = []
    idents: list[str] = []
    names: list[str] = []
    t0 = time.time()
    for i, (ident, f) in enumerate(files):
        with Image.open(f) as im:
            img = np.asarray(im.convert("RGB"))
        h, w = img.shape[:2]
        found = det.detect(img)
        if not found:
            continue
        r = min(
            found,
            key=lambda r: math.hypot(
                (r.box[0] + r.box[2]) / 2 - w / 2, (r.box[1] + r.box[3]) / 2 - h / 2
            ),
        )
        m = crop_transform(r.box, r.landmarks)
        crop = warp_crop(img, m)
        buf = io.BytesIO()
        Image.fromarray(crop).save(buf, "JPEG", quality=quality)
        blobs.append(buf.getvalue())
        assert r.landmarks is not None
        lms.append(to_crop(m, r.landmarks))
        k = math.hypot(m[0, 0], m[1, 0])
        bw, bh = (r.box[2] - r.box[0]) / k, (r.box[3] - r.box[1]) / k
        ells.append((bw / 2, bh / 2, -roll_angle(r.landmarks)))
        idents.append(ident)
        names.append(f.name)
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{len(files)} photos, {time.time() - t0:.0f} s", file=sys.stderr)
    sizes = np.array([len(b) for b in blobs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        jpeg=np.frombuffer(b"".join(blobs), np.uint8),
        offsets=offsets,
        landmarks=np.stack(lms).astype(np.float32),
        ellipse=np.asarray(ells, np.float32),
        identity=np.asarray(idents),
        name=np.asarray(names),
        res=np.int32(RES),
        context=np.float32(CONTEXT),
    )
    return len(blobs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lfw", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--held-out", action="store_true", help="pack the held-out identities")
    ap.add_argument("--per-identity", type=int, default=6)
    ap.add_argument("--quality", type=int, default=88)
    a = ap.parse_args(argv)
    n = build_pack(
        a.lfw, a.out, held_out=a.held_out, per_identity=a.per_identity, quality=a.quality
    )
    print(f"{n} faces -> {a.out} ({a.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
