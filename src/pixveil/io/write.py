"""Writing images with no metadata.

:func:`write_image` builds a new Pillow image from the pixel array alone, so
nothing of the source file (EXIF with GPS position, camera serial numbers and
thumbnail, XMP, IPTC, comments, PNG text chunks, ICC profile) can reach the
output.  An ICC profile is embedded only when passed explicitly.  JPEG and BMP
have no alpha channel: an image with alpha is composited onto white, as a viewer
shows it, so nothing hidden by transparency becomes visible.  PNG and WebP keep
alpha.

The file is written to a hidden temporary file in the destination folder, then
renamed over the destination (:mod:`pixveil.io.files`), so a failed write leaves
no partial file.  A destination that is one of the inputs, or a symbolic link,
is refused; with ``root=`` so is any symbolic link between the output folder and
the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from pixveil.errors import InputError, OutputError
from pixveil.io.files import as_path, atomic_write
from pixveil.io.jpeg import JpegTables
from pixveil.io.paths import FORMAT_EXTENSIONS, normalize_format
from pixveil.validate import check_image

__all__ = ["DEFAULT_QUALITY", "ProtectedPaths", "write_image"]

#: JPEG/WebP quality used when none is given, and by ``quality="keep"`` when
#: there are no source tables to keep.
DEFAULT_QUALITY: int = 95

_PIL_SAVE_FORMAT = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "webp": "WEBP"}
_ALPHA_FORMATS = frozenset({"png", "webp"})


class ProtectedPaths:
    """Files that an output must never replace (the inputs of a run), prepared once.

    Passing one object to every :func:`write_image` call of a batch avoids
    examining every input again for each output.  A destination counts as one of
    these files when its absolute path is the same, or when it exists and is the
    same file (through a symbolic link, a hard link or another spelling of the path).

    Parameters
    ----------
    paths : iterable of path
        The files to protect.  Those that do not exist are matched by path only.
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]] = ()) -> None:
        self._by_name: dict[str, Path] = {}
        self._by_id: dict[tuple[int, int], Path] = {}
        if isinstance(paths, (str, os.PathLike)):
            raise InputError("protected paths must be a collection of paths, not a single path")
        for raw in paths:
            as_path(raw)
            self._by_name.setdefault(_name_key(raw), Path(raw))
            try:
                st = os.stat(raw)
            except (OSError, ValueError):
                continue
            if st.st_ino:
                self._by_id.setdefault((st.st_dev, st.st_ino), Path(raw))

    def __len__(self) -> int:
        return len(self._by_name)

    def match(self, target: str | os.PathLike[str]) -> Path | None:
        """The protected file that ``target`` would replace, or None."""
        t = as_path(target)
        hit = self._by_name.get(_name_key(t)) or self._by_name.get(_name_key(os.path.realpath(t)))
        if hit is None:
            try:
                st = os.stat(t)  # follows symbolic links; a hard link has the same inode
            except (OSError, ValueError):
                return None
            if st.st_ino:
                hit = self._by_id.get((st.st_dev, st.st_ino))
        return hit


def _name_key(p: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(p))


def _protected_match(
    target: Path, protected: Iterable[str | os.PathLike[str]] | ProtectedPaths
) -> Path | None:
    if isinstance(protected, ProtectedPaths):
        return protected.match(target)
    if not (os.path.lexists(target) or os.path.exists(target)):
        # Nothing exists at the destination, so writing it replaces no file: the
        # inputs need not be examined (this keeps a batch of N files linear).
        return None
    return ProtectedPaths(protected).match(target)


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    format: str | None = None,
    quality: int | Literal["keep"] = DEFAULT_QUALITY,
    jpeg_tables: JpegTables | None = None,
    icc_profile: bytes | None = None,
    protected_paths: Iterable[str | os.PathLike[str]] | ProtectedPaths = (),
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write pixels to an image file that carries no metadata.

    Parameters
    ----------
    path : path
        Destination.  Missing parent folders are created; an existing file that is
        not protected is replaced.  A symbolic link there is refused.
    pixels : ndarray of shape (H, W, 3), uint8
        RGB values in [0, 255].
    alpha : ndarray of shape (H, W), uint8, optional
        Opacity (255 = opaque).  Kept in PNG and WebP; for JPEG and BMP the image
        is composited onto white instead.
    format : {"png", "jpg", "bmp", "webp"}, optional
        Output format (``"jpeg"`` accepted); by default taken from the extension of
        ``path``.
    quality : int in [1, 100], or "keep"
        JPEG quality; WebP quality, where 100 means lossless WebP.  PNG and BMP are
        always lossless and ignore it.  ``"keep"`` encodes a JPEG with
        ``jpeg_tables`` (the source's quality and chroma subsampling, with
        optimised Huffman tables), so that the output is about the source's size;
        without ``jpeg_tables`` (a PNG source, an array), and for WebP, ``"keep"``
        means :data:`DEFAULT_QUALITY` (95).
    jpeg_tables : JpegTables, optional
        The source's coding parameters (``LoadedImage.jpeg_tables``); used only by
        ``quality="keep"`` with JPEG output.
    icc_profile : bytes, optional
        An ICC profile to embed (PNG, JPEG, WebP; BMP cannot carry one).  Off by
        default: a profile can itself identify a device.
    protected_paths : iterable of path, or ProtectedPaths
        Files that must not be replaced (the inputs).
    root : path, optional
        The output folder.  ``path`` must lie inside it, and no existing folder
        between ``root`` and ``path`` may be a symbolic link; missing ones are
        created without following links (see :mod:`pixveil.io.files`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If ``path`` is one of ``protected_paths`` (also through another spelling,
        a symbolic or a hard link), is a symbolic link or a directory, lies
        outside ``root`` or behind a symbolic link below it, has no known image
        extension and no ``format`` is given, or the write fails (nothing is left
        behind then; an existing file at ``path`` is untouched).
    InputError
        If ``path`` or ``root`` is not a path, or ``pixels``, ``alpha``,
        ``quality``, ``jpeg_tables``, ``icc_profile`` or ``format`` is invalid.
    """
    target = as_path(path)
    fmt = normalize_format(format) if format is not None else _format_from_suffix(target)
    rgb = check_image(pixels, name="pixels")
    a = _check_alpha(alpha, rgb.shape[:2])
    _check_quality(quality)
    if jpeg_tables is not None and not isinstance(jpeg_tables, JpegTables):
        raise InputError(
            f"jpeg_tables must be a JpegTables or None, got {type(jpeg_tables).__name__}"
        )
    if icc_profile is not None and not (
        isinstance(icc_profile, (bytes, bytearray)) and len(icc_profile) > 0
    ):
        raise InputError("icc_profile must be non-empty bytes or None")
    if isinstance(protected_paths, (str, os.PathLike)):
        raise InputError("protected_paths must be a collection of paths, not a single path")
    hit = _protected_match(target, protected_paths)
    if hit is not None:
        raise OutputError(
            f"refusing to overwrite the input file {hit}; choose another output folder",
            path=target,
        )
    image = _fresh_image(rgb, a, fmt)
    icc = None if icc_profile is None else bytes(icc_profile)
    options = _save_options(fmt, quality, icc, jpeg_tables)
    pil_format = _PIL_SAVE_FORMAT[fmt]
    atomic_write(
        target, lambda fh: image.save(fh, format=pil_format, **options), root=root, what="image"
    )
    return target


def _format_from_suffix(target: Path) -> str:
    suffix = target.suffix.lower()
    for fmt, exts in FORMAT_EXTENSIONS.items():
        if suffix in exts:
            return fmt
    raise OutputError(
        f"cannot tell the output format from the extension {suffix or '(none)'!r}; "
        "pass format= (png, jpg, bmp or webp)",
        path=target,
    )


def _check_alpha(alpha: object, shape: tuple[int, ...]) -> np.ndarray | None:
    if alpha is None:
        return None
    if not (isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.shape == shape):
        got = (
            f"{alpha.dtype} array of shape {alpha.shape}"
            if isinstance(alpha, np.ndarray)
            else type(alpha).__name__
        )
        raise InputError(f"alpha must be a uint8 array of shape {shape}, got {got}")
    return np.ascontiguousarray(alpha)


def _check_quality(quality: object) -> None:
    if quality == "keep" and isinstance(quality, str):
        return
    if (
        isinstance(quality, bool)
        or not isinstance(quality, (int, np.integer))
        or not 1 <= quality <= 100
    ):
        raise InputError(f"quality must be an integer in [1, 100] or 'keep', got {quality!r}")


def _fresh_image(rgb: np.ndarray, alpha: np.ndarray | None, fmt: str) -> Image.Image:
    """A new Pillow image holding only these pixels (no info, no EXIF, no profile)."""
    if alpha is None:
        return Image.fromarray(rgb)
    if fmt in _ALPHA_FORMATS:
        return Image.fromarray(np.dstack((rgb, alpha)))
    return Image.fromarray(_composite_on_white(rgb, alpha))


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.uint32)[..., np.newaxis]
    out = (rgb.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _save_options(
    fmt: str, quality: int | str, icc: bytes | None, tables: JpegTables | None
) -> dict[str, Any]:
    options: dict[str, Any]
    q = DEFAULT_QUALITY if quality == "keep" else int(quality)
    if fmt == "jpg":
        if quality == "keep" and tables is not None:
            options = {
                "qtables": tables.qtables,
                "subsampling": tables.subsampling,
                "optimize": True,
                "exif": b"",
            }
        else:
            options = {"quality": q, "exif": b""}
    elif fmt == "webp":
        options = {"quality": q, "lossless": q == 100, "exif": b"", "xmp": b""}
    elif fmt == "png":
        # level 3: on photos about as small as level 6, in about half the time
        options = {"compress_level": 3}
    else:  # bmp: no place for metadata
        options = {}
    if icc is not None and fmt != "bmp":
        options["icc_profile"] = icc
    return options
