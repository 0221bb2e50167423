"""Training data for the face GAN: aligned LFW centre crops and the held-out split.

No torch here, so the evaluation code can ask which identities were held out
of training without the ``[gan]`` extra.

Held-out rule (fixed, documented in the model card): an LFW identity is held
out of GAN training when the first byte of ``sha256(identity name)`` is
divisible by 4 (about a quarter of the identities).  Every privacy figure for
``gan-face`` is measured on held-out identities only, so the generator has
never seen the people it is evaluated on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from pixveil.io import atomic_write

__all__ = ["CROP_BOX_LFW", "crop_face", "is_held_out", "load_crops", "training_files"]

# LFW (deep-funneled) faces sit at the centre of the 250x250 image.  This box
# (left, top, right, bottom) keeps the face from forehead to chin with a little
# hair and background, like the 108-px CelebA crop of the DCGAN literature.
CROP_BOX_LFW = (67, 72, 183, 188)


def is_held_out(identity: str) -> bool:
    """True for identities that GAN training never sees (≈ 25 % of LFW)."""
    return hashlib.sha256(identity.encode("utf-8")).digest()[0] % 4 == 0


def training_files(root: Path | str, *, held_out: bool = False) -> list[Path]:
    """Image files of ``root/<identity>/*.jpg`` on the training (or held-out) side."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of <identity>/<images>")
    files: list[Path] = []
    for ident in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_held_out(ident.name) == held_out:
            files.extend(
                sorted(f for f in ident.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
            )
    return files


def crop_face(
    img: Image.Image, size: int, box: tuple[int, int, int, int] = CROP_BOX_LFW
) -> np.ndarray:
    """Centre crop of an aligned 250x250 face photo, resized to ``size``² RGB uint8."""
    img = img.convert("RGB")
    if img.size != (250, 250):
        img = img.resize((250, 250), Image.Resampling.BICUBIC)
    return np.asarray(img.crop(box).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_crops(files: Iterable[Path], size: int, cache: Path | None = None) -> np.ndarray:
    """All crops as one (N, size, size, 3) uint8 array, cached in ``cache`` (.npy)."""
    files = list(files)
    if cache is not None and cache.exists():
        arr = np.load(cache)
        if arr.shape[0] == len(files) and arr.shape[1] == size:
            return arr
    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        with Image.open(f) as im:
            out[i] = crop_face(im, size)
    if cache is not None:
        atomic_write(cache, lambda fh: np.save(fh, out), what="crop cache")
    return out
