"""Labelled image datasets: a ``<class>/<images>`` folder, or CIFAR-10 as a JPEG tarball.

Both loaders return a :class:`LabeledImages`: the decoded pixels, integer labels,
the class names (sorted folder names) and each image's id (its path below the
dataset root without extension, as in key files).  Unlike
:func:`pixveil.evaluate.datasets.load_dataset` (face evaluation sets: listed
lazily, sampled at random, identities with too few images left out), these keep
every class, so that labels mean the same in every split, and decode eagerly
into one array, as a classifier's training loop wants.

CIFAR-10 here is the copy re-encoded as JPEG files (``cifar10/{train,test}/<class>/
NNNN.jpg`` inside a ``.tar.gz``).  JPEG is lossy: the pixels are close to, not equal
to, the original CIFAR-10 arrays (the reference papers use the exact PNG/pickle
version), so accuracies and SSIM values measured on it are not strictly
comparable with published ones.  A scheme applied to these pixels and written
as PNG is still inverted exactly: losslessness is about our outputs, not the
source.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixveil.errors import InputError
from pixveil.io import is_image_path, read_image

__all__ = [
    "CIFAR10_CLASSES",
    "LabeledImages",
    "iter_image_folder",
    "load_cifar10",
    "load_image_folder",
]

#: CIFAR-10's classes in its own label order.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True, eq=False)
class LabeledImages:
    """A labelled set of same-size images.

    Attributes
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
        RGB pixels in [0, 255].
    labels : ndarray of shape (N,), int64
        Index into ``classes``.
    classes : tuple of str
        Class names.
    ids : tuple of str
        Each image's id (``"cat/0001"``).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


def _check_limit(limit_per_class: int | None) -> None:
    if limit_per_class is not None and (isinstance(limit_per_class, bool) or limit_per_class < 1):
        raise ValueError(f"limit_per_class must be >= 1 or None, got {limit_per_class!r}")


def iter_image_folder(root: str | os.PathLike[str]) -> Iterator[tuple[Path, str, str]]:
    """Yield ``(path, class name, image id)`` for every image of a ``<class>/<images>`` folder.

    Classes are the sub-folders of ``root`` (sorted); images are found
    recursively below each, sorted; files without an image extension and
    hidden entries are ignored.

    Raises
    ------
    InputError
        If ``root`` is not a folder or has no class folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError("not a folder", path=base)
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError("no class folders (expected <class>/<images>)", path=base)
    for name in classes:
        for dirpath, dirnames, filenames in os.walk(base / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                p = Path(dirpath) / f
                if not f.startswith(".") and is_image_path(p):
                    yield p, name, p.relative_to(base).with_suffix("").as_posix()


def load_image_folder(
    root: str | os.PathLike[str], *, limit_per_class: int | None = None
) -> LabeledImages:
    """Load a ``<class>/<images>`` folder (see :func:`iter_image_folder`).

    Parameters
    ----------
    root : path
        The dataset folder.
    limit_per_class : int, optional
        At most this many images per class (the first ones in sorted order).

    Raises
    ------
    InputError
        If the folder is not a dataset, an image cannot be read (the message
        names it), or the images differ in size.
    """
    _check_limit(limit_per_class)
    items = list(iter_image_folder(root))
    classes = tuple(sorted({c for _, c, _ in items}))
    counts: dict[str, int] = {}
    pixels, labels, ids = [], [], []
    for path, cls, ident in items:
        if limit_per_class is not None and counts.get(cls, 0) >= limit_per_class:
            continue
        counts[cls] = counts.get(cls, 0) + 1
        pixels.append(read_image(path).pixels)
        labels.append(classes.index(cls))
        ids.append(ident)
    return _stack(pixels, labels, classes, ids, Path(root))


def load_cifar10(
    archive: str | os.PathLike[str],
    *,
    split: str = "train",
    limit_per_class: int | None = None,
) -> LabeledImages:
    """Load CIFAR-10 from a tarball of JPEG files (``cifar10/{train,test}/<class>/NNNN.jpg``).

    Parameters
    ----------
    archive : path
        The ``.tar.gz`` (an already extracted folder also works: give the
        ``cifar10`` folder or its parent).
    split : {"train", "test"}
    limit_per_class : int, optional
        At most this many images per class: those with the smallest file names,
        so a subset is the same on every run.

    Returns
    -------
    LabeledImages
        ``classes`` is :data:`CIFAR10_CLASSES` (CIFAR-10's label order), ids are
        ``"<class>/NNNN"``; images sorted by id.

    Raises
    ------
    InputError
        If the archive is missing or unreadable, or a member is not a 32x32 image.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    _check_limit(limit_per_class)
    src = Path(archive)
    if src.is_dir():
        folder = src / "cifar10" / split if (src / "cifar10").is_dir() else src / split
        data = load_image_folder(folder, limit_per_class=limit_per_class)
        return _reorder(data)
    wanted: dict[str, bytes] = {}
    try:
        with tarfile.open(src, "r:*") as tar:
            for m in tar:
                parts = m.name.split("/")
                if (
                    m.isfile()
                    and len(parts) == 4
                    and parts[1] == split
                    and parts[2] in CIFAR10_CLASSES
                    and is_image_path(parts[3])
                ):
                    f = tar.extractfile(m)
                    if f is not None:
                        wanted[f"{parts[2]}/{Path(parts[3]).stem}"] = f.read()
    except FileNotFoundError:
        raise InputError("CIFAR-10 archive not found", path=src) from None
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"cannot read the CIFAR-10 archive ({exc})", path=src) from None
    counts: dict[str, int] = {}
    pixels, labels, ids = [], [], []
    for ident in sorted(wanted):
        cls = ident.split("/")[0]
        if limit_per_class is not None and counts.get(cls, 0) >= limit_per_class:
            continue
        counts[cls] = counts.get(cls, 0) + 1
        try:
            with Image.open(io.BytesIO(wanted[ident])) as im:
                pixels.append(np.asarray(im.convert("RGB")))
        except (OSError, ValueError) as exc:
            raise InputError(f"member {ident}: cannot decode ({exc})", path=src) from None
        labels.append(CIFAR10_CLASSES.index(cls))
        ids.append(ident)
    if not ids:
        raise InputError(f"no CIFAR-10 {split} images in the archive", path=src)
    return _stack(pixels, labels, CIFAR10_CLASSES, ids, src)


def _reorder(data: LabeledImages) -> LabeledImages:
    """Relabel a folder-loaded CIFAR-10 with CIFAR-10's own class order."""
    unknown = set(data.classes) - set(CIFAR10_CLASSES)
    if unknown:
        raise InputError(f"not CIFAR-10 classes: {', '.join(sorted(unknown))}")
    labels = np.array([CIFAR10_CLASSES.index(data.classes[i]) for i in data.labels], np.int64)
    return LabeledImages(data.images, labels, CIFAR10_CLASSES, data.ids)


def _stack(
    pixels: list[np.ndarray],
    labels: list[int],
    classes: tuple[str, ...],
    ids: list[str],
    where: Path,
) -> LabeledImages:
    if not pixels:
        raise InputError("no images found", path=where)
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise InputError(
            f"images differ in size ({', '.join(str(s[1]) + 'x' + str(s[0]) for s in sorted(shapes))}); "
            "resize them first",
            path=where,
        )
    return LabeledImages(np.stack(pixels), np.array(labels, np.int64), classes, tuple(ids))
