"""Evaluation data sets: folders of face photos, sampled deterministically.

Two layouts are understood:

* **identities** (the layout of LFW and AT&T): ``root/<identity>/<images>``, one
  sub-folder per person.  Identity-based measurements (re-identification, the
  CNN attack) use the folder names as labels.
* **flat**: ``root/<images>``, no identities.  Identity-based measurements are
  then skipped (and the report says so); the rest still runs.

Images are listed by extension (:data:`pixveil.io.IMAGE_EXTENSIONS`) and decoded
by :func:`pixveil.io.read_image`, so grey PGM files (AT&T) come out as RGB.

Sampling is deterministic: the same folder, options and ``seed`` always select
the same files, and an identity's choice of images does not depend on which
other identities are in the folder.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.errors import InputError
from pixveil.io import DEFAULT_MAX_PIXELS, is_image_path, read_image

__all__ = [
    "LAYOUTS",
    "DatasetItem",
    "FaceDataset",
    "load_dataset",
    "natural_key",
]

#: Accepted values of ``layout``.
LAYOUTS = ("auto", "identities", "flat")

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``2.pgm`` before ``10.pgm`` (digit runs compared as numbers)."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts)


@dataclass(frozen=True)
class DatasetItem:
    """One image of a data set.

    Attributes
    ----------
    path : Path
        The image file.
    identity : str or None
        The person (sub-folder name), or None in a flat folder.
    """

    path: Path
    identity: str | None

    @property
    def name(self) -> str:
        """``identity/file`` (or just ``file`` in a flat folder), for reports."""
        return self.path.name if self.identity is None else f"{self.identity}/{self.path.name}"


@dataclass(frozen=True)
class FaceDataset:
    """The selected images of a folder, in a fixed order.

    Attributes
    ----------
    root : Path
        The folder.
    layout : {"identities", "flat"}
        How the folder was read.
    items : tuple of DatasetItem
        The selection, grouped by identity (identities sorted by name, images
        in natural file order within each identity).
    identities_found : int
        Sub-folders holding at least one image (0 in a flat folder).
    identities_eligible : int
        Those with enough images for ``per_identity``.
    images_found : int
        Image files under the folder before sampling.
    notes : tuple of str
        What the selection left out and why.
    """

    root: Path
    layout: str
    items: tuple[DatasetItem, ...]
    identities_found: int = 0
    identities_eligible: int = 0
    images_found: int = 0
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> DatasetItem:
        return self.items[index]

    @property
    def has_identities(self) -> bool:
        """Whether identity labels exist (the identities layout)."""
        return self.layout == "identities"

    @property
    def identities(self) -> list[str]:
        """The selected identities, sorted (empty in a flat folder)."""
        return sorted({it.identity for it in self.items if it.identity is not None})

    @property
    def labels(self) -> list[str | None]:
        """The identity of every item, in order."""
        return [it.identity for it in self.items]

    def load(self, index: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Decode item ``index``.

        Returns
        -------
        ndarray of shape (H, W, 3), uint8
            RGB in [0, 255] (grey images repeated on the three channels, EXIF
            orientation applied, alpha dropped).

        Raises
        ------
        InputError
            If the file cannot be decoded (the message names it).
        """
        return read_image(self.items[index].path, max_pixels=max_pixels).pixels

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no pixels)."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "images": len(self.items),
            "identities": len(self.identities),
            "identities_found": self.identities_found,
            "identities_eligible": self.identities_eligible,
            "images_found": self.images_found,
            "notes": list(self.notes),
        }


def _check_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def _image_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and is_image_path(p) and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def _sample(paths: Sequence[Path], k: int | None, rng: np.random.Generator) -> list[Path]:
    """``k`` of ``paths`` chosen by ``rng`` (all when ``k`` is None), in natural order."""
    if k is None or k >= len(paths):
        return list(paths)
    chosen = sorted(int(i) for i in rng.choice(len(paths), size=k, replace=False))
    return [paths[i] for i in chosen]


def load_dataset(
    root: str | Path,
    *,
    identities: int | None = None,
    per_identity: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
    layout: str = "auto",
) -> FaceDataset:
    """List and sample the images of an evaluation folder (nothing is decoded here).

    Parameters
    ----------
    root : path
        ``root/<identity>/<images>`` or a flat folder of images.
    identities : int, optional, keyword-only
        Keep this many identities, chosen at random (seeded) among those with at
        least ``per_identity`` images (at least 1 when ``per_identity`` is None).
        All eligible identities by default.
    per_identity : int, optional, keyword-only
        Keep this many images of each identity, chosen at random (seeded) and
        listed in natural file order; identities with fewer images are left
        out.  All images by default.
    max_images : int, optional, keyword-only
        In a flat folder, keep this many images chosen at random (seeded).
        Ignored (with a note) in the identities layout.
    seed : int, keyword-only
        Seed of every random choice.
    layout : {"auto", "identities", "flat"}, keyword-only
        ``"auto"`` reads the identities layout when a sub-folder of ``root``
        holds images, and the flat layout otherwise.

    Returns
    -------
    FaceDataset

    Raises
    ------
    InputError
        If ``root`` is not a folder, holds no image, or no identity has enough
        images.
    ValueError
        For an invalid option.
    """
    identities = _check_count("identities", identities)
    per_identity = _check_count("per_identity", per_identity)
    max_images = _check_count("max_images", max_images)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    root = Path(root)
    if not root.is_dir():
        raise InputError("not a folder (expected <identity>/<images> or a flat folder)", path=root)

    top_images = _image_files(root)
    sub_images: dict[str, list[Path]] = {}
    for sub in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        if sub.is_dir() and not sub.name.startswith("."):
            files = _image_files(sub)
            if files:
                sub_images[sub.name] = files
    if layout == "auto":
        layout = "identities" if sub_images else "flat"
    notes: list[str] = []

    if layout == "flat":
        if not top_images:
            raise InputError("holds no image file directly inside it", path=root)
        if sub_images:
            notes.append(
                f"{len(sub_images)} sub-folders ignored (flat layout reads only the files "
                "directly inside the folder)"
            )
        if identities is not None or per_identity is not None:
            notes.append("--identities/--per-identity ignored: a flat folder has no identities")
        rng = np.random.default_rng([seed, 0])
        chosen = _sample(top_images, max_images, rng)
        if max_images is not None and len(chosen) < len(top_images):
            notes.append(f"{len(chosen)} of {len(top_images)} images sampled (seed {seed})")
        return FaceDataset(
            root=root,
            layout="flat",
            items=tuple(DatasetItem(p, None) for p in chosen),
            images_found=len(top_images),
            notes=tuple(notes),
        )

    if not sub_images:
        raise InputError("holds no <identity>/<image> sub-folder", path=root)
    if top_images:
        notes.append(f"{len(top_images)} images directly inside the folder ignored (no identity)")
    if max_images is not None:
        notes.append("--max-images ignored: use --identities and --per-identity")
    need = per_identity or 1
    eligible = sorted((n for n, files in sub_images.items() if len(files) >= need), key=natural_key)
    if not eligible:
        raise InputError(f"no identity has at least {need} images", path=root)
    if per_identity is not None and len(eligible) < len(sub_images):
        notes.append(
            f"{len(sub_images) - len(eligible)} of {len(sub_images)} identities have fewer "
            f"than {per_identity} images and were left out"
        )
    chosen_ids = eligible
    if identities is not None:
        if identities < len(eligible):
            order = np.random.default_rng([seed, 1]).permutation(len(eligible))
            chosen_ids = sorted((eligible[i] for i in order[:identities]), key=natural_key)
            notes.append(
                f"{identities} of {len(eligible)} eligible identities sampled (seed {seed})"
            )
        elif identities > len(eligible):
            notes.append(
                f"asked for {identities} identities, only {len(eligible)} have at least "
                f"{need} images"
            )
    items: list[DatasetItem] = []
    for name in chosen_ids:
        # Seeded by the name, so one identity's choice ignores the others.
        rng = np.random.default_rng([seed, 2, zlib.crc32(name.encode("utf-8"))])
        items.extend(DatasetItem(p, name) for p in _sample(sub_images[name], per_identity, rng))
    return FaceDataset(
        root=root,
        layout="identities",
        items=tuple(items),
        identities_found=len(sub_images),
        identities_eligible=len(eligible),
        images_found=sum(len(v) for v in sub_images.values()) + len(top_images),
        notes=tuple(notes),
    )
