"""File names: which files are images, which format an output gets, where it goes.

Output formats
--------------
An output keeps the format of its input when pixveil can write that format
(JPEG, PNG, BMP, WebP).  Inputs in a format pixveil does not write (TIFF, GIF,
PGM/PPM/PBM/PNM) become PNG: it is lossless, keeps transparency and is read
everywhere.  The user may ask for any of :data:`OUTPUT_FORMATS` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixveil.errors import InputError, OutputError
from pixveil.io.files import as_path

__all__ = [
    "FORMAT_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "OUTPUT_FORMATS",
    "is_image_path",
    "normalize_format",
    "output_format_for",
    "output_path_for",
]

#: File extensions (lower case, with the dot) that are treated as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".gif",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
    }
)

#: Formats pixveil writes (the choices of ``--format``).
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpg", "bmp", "webp")

#: The extension given to a file of each output format; the first one is canonical.
FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "png": (".png",),
    "jpg": (".jpg", ".jpeg", ".jpe"),
    "bmp": (".bmp",),
    "webp": (".webp",),
}

# Output format of an input, by its extension; anything else becomes PNG.
_SAME_FORMAT: dict[str, str] = {ext: fmt for fmt, exts in FORMAT_EXTENSIONS.items() for ext in exts}
_FALLBACK_FORMAT = "png"

_ALIASES = {"jpeg": "jpg", "jpe": "jpg"}


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` has an image extension (case-insensitive).

    Only the name is looked at; the file is not opened.  Hidden files such as
    ``.jpg`` (a name without a stem) are not images.

    Raises
    ------
    InputError
        If ``path`` is not a str or os.PathLike.
    """
    return as_path(path).suffix.lower() in IMAGE_EXTENSIONS


def normalize_format(format: str) -> str:
    """Return the canonical name of an output format.

    Accepts any case, an optional leading dot and the aliases ``jpeg``/``jpe``.

    Raises
    ------
    InputError
        If ``format`` is not one of :data:`OUTPUT_FORMATS` (or an alias).
    """
    if not isinstance(format, str):
        raise InputError(f"output format must be a string, got {type(format).__name__}")
    name = format.strip().lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in OUTPUT_FORMATS:
        raise InputError(
            f"unknown output format {format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
        )
    return name


def output_format_for(input_path: str | os.PathLike[str], requested: str | None) -> str:
    """Choose the output format of one input.

    Parameters
    ----------
    input_path : path
        The input file (only its extension is used).
    requested : str or None
        A format asked for by the user (``"png"``, ``"jpg"``/``"jpeg"``, ``"bmp"``,
        ``"webp"``), or None to keep the input's format.

    Returns
    -------
    str
        One of :data:`OUTPUT_FORMATS`.  With ``requested=None``: the input's own
        format for ``.jpg/.jpeg/.jpe``, ``.png``, ``.bmp`` and ``.webp``; ``"png"``
        for every other input (TIFF, GIF, PGM/PPM/PBM/PNM, unknown extensions).

    Raises
    ------
    InputError
        If ``requested`` is not a known output format, or ``input_path`` not a path.
    """
    src = as_path(input_path)
    if requested is not None:
        return normalize_format(requested)
    return _SAME_FORMAT.get(src.suffix.lower(), _FALLBACK_FORMAT)


def output_path_for(
    input_path: str | os.PathLike[str],
    *,
    input_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    format: str,
) -> Path:
    """Return where the output of ``input_path`` goes.

    Parameters
    ----------
    input_path : path
        The input file.
    input_root : path or None
        The folder the user gave when ``input_path`` was found inside it; its
        tree is mirrored under ``out_dir``.  None for a file given directly: the
        output then sits directly in ``out_dir``.
    out_dir : path
        The output folder.
    format : str
        The output format (see :func:`output_format_for`).

    Returns
    -------
    Path
        ``out_dir / <path relative to input_root> `` with the extension of
        ``format``.  An extension that already belongs to ``format`` is kept as it
        is (``IMG_1.JPG`` stays ``IMG_1.JPG`` for JPEG output); any other is
        replaced by the format's canonical one (``scan.tif`` -> ``scan.png``).

    Raises
    ------
    InputError
        If ``format`` is unknown, or a path argument is not a str or os.PathLike.
    OutputError
        If ``input_path`` does not lie inside ``input_root``.

    Notes
    -----
    Two inputs may map to the same output (``a.png`` and ``a.tif`` both give
    ``a.png``); callers that process many files must check for such collisions.
    """
    fmt = normalize_format(format)
    src = as_path(input_path)
    out = as_path(out_dir, "a folder path")
    root = None if input_root is None else as_path(input_root, "a folder path")
    rel = Path(src.name) if root is None else _relative_to(src, root)
    if not rel.name or rel.name in (".", ".."):
        raise OutputError("input has no file name", path=src)
    suffix = rel.suffix
    if suffix.lower() not in FORMAT_EXTENSIONS[fmt]:
        suffix = FORMAT_EXTENSIONS[fmt][0]
    name = (rel.stem if rel.suffix else rel.name) + suffix
    return out / rel.with_name(name)


def _relative_to(path: Path, root: Path) -> Path:
    """``path`` relative to ``root``, trying the plain, absolute and resolved forms."""
    candidates = (
        (path, root),
        (Path(os.path.abspath(path)), Path(os.path.abspath(root))),
        (path.resolve(), root.resolve()),
    )
    for p, r in candidates:
        try:
            rel = p.relative_to(r)
        except ValueError:
            continue
        if ".." not in rel.parts and rel.parts:
            return rel
    raise OutputError(f"is not inside the input folder {root}", path=path)
