"""Reading images into upright RGB arrays.

:func:`read_image` decodes JPEG, PNG, BMP, TIFF, WebP, GIF and PGM/PPM/PBM/PNM
files with Pillow and returns a :class:`LoadedImage`: an ``(H, W, 3)`` ``uint8``
RGB array in the *displayed* orientation (the EXIF orientation is applied first,
so a rotated phone photo comes out upright), plus an ``(H, W)`` alpha plane when
the source has transparency.  Only those Pillow plugins may decode an input (never
EPS, PSD and the like, whatever the file is called).  The image size is checked
against ``max_pixels`` from the header, before any pixel is decoded.

Damaged files
-------------
A file that does not decode to the picture it codes raises
:class:`~pixveil.errors.InputError` with a one-line message that names the file:
empty, truncated, not an image, too large, or corrupt.  Corrupt includes what
decoders let through silently: a PNG whose checksums do not match (a verify
pass reads every chunk's CRC before decoding), a JPEG whose scan libjpeg had to
patch up (see :func:`pixveil.io.jpeg.jpeg_damage`), a multi-frame file whose later
frames are broken.  ``allow_damaged=True`` decodes such files anyway, truncated
ones included (what is missing comes out grey), and says what was wrong in
:attr:`LoadedImage.damage`.

:func:`load_array` wraps an in-memory array the same way.

Why one module of ~630 lines: the size limit, the damage checks (PNG checksums,
JPEG scan repair, truncation, broken later frames) and the conversion to upright
RGB all act on one open file in one pass, and each must produce the same one-line
message naming that file; they are read together whenever a format's rule
changes.  The format-specific parts that stand alone already live elsewhere
(:mod:`pixveil.io.jpeg`, :mod:`pixveil.io.paths`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from pixveil.errors import InputError
from pixveil.io.files import _one_line, _os_reason, as_path
from pixveil.io.jpeg import JpegCheckUnavailable, JpegTables, jpeg_damage
from pixveil.validate import check_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "JpegTables",
    "LoadedImage",
    "load_array",
    "read_image",
]

#: Largest image (width x height) decoded by default: a guard against
#: decompression bombs (a small file that expands to gigabytes of pixels).
DEFAULT_MAX_PIXELS: int = 100_000_000

# Pillow plugins allowed to decode an input.  MPO (JPEG with extra frames, common
# on phones) is opened by the JPEG plugin; PGM/PBM/PNM by the PPM plugin.
_READ_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM")

# Pillow's own decompression-bomb limit is a module global; it is lifted (under
# this lock) only to read the header of an image that our own, larger limit allows.
_PILLOW_LIMIT_LOCK = threading.Lock()

_EXIF_ORIENTATION = 0x0112

# Said after every reason a damaged file is refused for.
_DAMAGED_HINT = "use --allow-damaged to decode it anyway"

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image, ready for detection and protection.

    Attributes
    ----------
    pixels : ndarray of shape (H, W, 3), uint8
        RGB values in [0, 255], in the displayed orientation (EXIF orientation applied).
    alpha : ndarray of shape (H, W), uint8, or None
        Opacity in [0, 255] (255 = opaque), same orientation; None when the source
        has no transparency.
    format : str
        Pillow's name of the source format (``"JPEG"``, ``"PNG"``, ``"MPO"``...),
        or ``"ARRAY"`` for :func:`load_array`.
    path : Path or None
        The source file, or None for an array.
    icc_profile : bytes or None
        The source's RGB ICC profile, kept only so that an explicit keep-ICC option
        can embed it again; None when absent or not an RGB profile (a CMYK or grey
        profile does not describe the converted RGB pixels).
    n_frames : int
        Number of frames of the source (> 1 for animated GIF/WebP and multi-page
        TIFF); only the first frame is in ``pixels``.
    jpeg_tables : JpegTables or None
        For a JPEG source, its coding parameters reduced to encoder settings
        (quality of the nearest standard tables, chroma subsampling), so that
        ``write_image(..., quality="keep", jpeg_tables=...)`` can encode at the
        source's level; None for any other source.  They carry nothing that an
        encoder setting would not (see :class:`JpegTables`).
    damage : str or None
        Why the source is damaged, when ``allow_damaged=True`` let a damaged file
        through (``"truncated image data (file ends early)"``, ``"Corrupt JPEG
        data: premature end of data segment"``...); None otherwise.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    format: str
    path: Path | None
    icc_profile: bytes | None
    n_frames: int = 1
    jpeg_tables: JpegTables | None = None
    damage: str | None = None

    def __post_init__(self) -> None:
        px = self.pixels
        try:
            check_image(px, name="pixels")
        except InputError as exc:
            raise InputError(exc.reason, path=self.path) from None
        if self.alpha is not None and not (
            isinstance(self.alpha, np.ndarray)
            and self.alpha.dtype == np.uint8
            and self.alpha.shape == px.shape[:2]
        ):
            raise InputError(f"alpha must be an {px.shape[:2]} uint8 array or None", path=self.path)
        if self.n_frames < 1:
            raise InputError(f"n_frames must be >= 1, got {self.n_frames}", path=self.path)
        if self.jpeg_tables is not None and not isinstance(self.jpeg_tables, JpegTables):
            raise InputError("jpeg_tables must be a JpegTables or None", path=self.path)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the displayed image."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


# ----------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allow_damaged: bool = False,
) -> LoadedImage:
    """Decode an image file into an upright RGB array.

    Parameters
    ----------
    path : path
        A JPEG, PNG, BMP, TIFF, WebP, GIF or PGM/PPM/PBM/PNM file.  The content
        decides the format, not the extension; other formats are refused.
    max_pixels : int
        Largest allowed ``width * height``, checked from the header before any
        pixel is decoded (default :data:`DEFAULT_MAX_PIXELS`).
    allow_damaged : bool
        Decode damaged files instead of refusing them: a JPEG with corrupt scan
        data, a PNG with bad checksums, a file whose later frames are broken, a
        truncated file (what is missing comes out grey).  What was wrong is in
        ``damage`` of the result.  Files that cannot be decoded at all (not an
        image, a broken header, too large) are still refused.

    Returns
    -------
    LoadedImage
        ``pixels`` of shape (H, W, 3), uint8 RGB in [0, 255], EXIF orientation
        applied; ``alpha`` (H, W) uint8 when the source has transparency (LA, RGBA,
        PA, or a palette/grey/RGB image with a transparent colour); ``jpeg_tables``
        for a JPEG.  Only the first frame of an animation or multi-page file is
        decoded.

    Raises
    ------
    InputError
        If the file is missing, a directory, empty, unreadable, not a supported
        image, larger than ``max_pixels``, or (unless ``allow_damaged``)
        truncated or corrupt.  The message is one line: ``<path>: <reason>``.
        ``path`` not being a str or os.PathLike is an InputError too.
    ValueError
        If ``max_pixels`` is not a positive integer or ``allow_damaged`` not a bool.

    Notes
    -----
    Conversions to 8-bit RGB: grey (L, 1) is repeated on the three channels;
    palette images use their palette; CMYK uses Pillow's conversion (Adobe's
    inverted CMYK JPEGs included), without colour management; 16-bit grey
    (I;16, I;16B...) maps the full range 0..65535 onto 0..255 (``round(v / 257)``);
    32-bit integer (I) images with values in 0..65535 are treated as 16-bit,
    others are stretched from their minimum to their maximum; float (F) images in
    [0, 1] are scaled by 255, in [0, 255] kept, otherwise stretched likewise (NaN
    becomes 0).  Colour values are not colour-managed: ``icc_profile`` says how to
    read them.

    The corruption checks cost a second, 1/8-scale decode of a JPEG (about a
    third of Pillow's decode time) and a CRC pass over a PNG (a few percent).
    """
    _check_max_pixels(max_pixels)
    if not isinstance(allow_damaged, bool):
        raise ValueError(f"allow_damaged must be True or False, got {allow_damaged!r}")
    p = as_path(path)
    with _open_input(p) as fh:
        return _decode(fh, p, max_pixels, allow_damaged)


def _check_max_pixels(max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def _check_pixel_count(width: int, height: int, max_pixels: int, p: Path | None) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(use --max-pixels to raise it)",
            path=p,
        )


def _open_input(p: Path) -> IO[bytes]:
    """Open ``p`` for reading after checking it is a non-empty regular file."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except PermissionError:
        raise InputError("cannot read file (permission denied)", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({_os_reason(exc)})", path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, not an image file", path=p)
    if not stat.S_ISREG(st.st_mode):
        # a FIFO or device would block or never end
        raise InputError("is not a regular file", path=p)
    if st.st_size == 0:
        raise InputError("file is empty (0 bytes)", path=p)
    try:
        return open(p, "rb")
    except PermissionError:
        raise InputError("cannot read file (permission denied)", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({_os_reason(exc)})", path=p) from None


class _Truncated(InputError):
    """A file that ends early (kept apart so that allow_damaged can decode it leniently)."""


class _Damaged(InputError):
    """Data that decodes, but not to what was coded."""


class _Unchecked(InputError):
    """Data that could not be checked for damage (refused unless damage is allowed)."""


def _decode(fh: IO[bytes], p: Path, max_pixels: int, allow_damaged: bool) -> LoadedImage:
    with warnings.catch_warnings():
        # Pillow's DecompressionBombWarning is replaced by our own limit, checked
        # below; its UserWarnings are about corrupt metadata, which is discarded.
        # Both filters name Pillow's modules, so that no other warning (a
        # PrivacyLeakWarning raised meanwhile in another thread) is ever hidden.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        damage: list[str] = []
        with contextlib.ExitStack() as images:
            # leaving an image's context leaves ``fh`` open (close() would close it)
            im = images.enter_context(_call_pillow(p, lambda: _open_pillow(fh)))
            width, height = im.size
            if width <= 0 or height <= 0:
                raise InputError(f"image has no pixels ({width}x{height})", path=p)
            _check_pixel_count(width, height, max_pixels, p)
            fmt = str(im.format or "UNKNOWN")
            if fmt == "PNG":
                # Pillow does not check the CRC of the pixel data (IDAT) when decoding.
                _tolerate(
                    damage,
                    allow_damaged,
                    lambda: _call_pillow(p, lambda: _verify_png(fh), tolerable=True),
                )
            im = _load(im, fh, p, allow_damaged, damage, images)
            if fmt in ("JPEG", "MPO") and not damage:  # a truncated one would only fail again
                _tolerate(damage, allow_damaged, lambda: _check_jpeg(fh, p))
            orientation = _orientation(im)
            pixels, alpha = _call_pillow(p, lambda: _to_rgb(im, p))
            icc = _rgb_icc_profile(im.info.get("icc_profile"))
            tables = _jpeg_tables(im, orientation) if fmt in ("JPEG", "MPO") else None
            n_frames = _n_frames(im, p, allow_damaged, damage)
    pixels = np.ascontiguousarray(_orient(pixels, orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    return LoadedImage(
        pixels, alpha, fmt, p, icc, n_frames, tables, "; ".join(damage) if damage else None
    )


def _tolerate(damage: list[str], allow_damaged: bool, check: Callable[[], object]) -> None:
    """Run ``check``; a damage it finds is raised, or noted when damage is allowed."""
    try:
        check()
    except (_Truncated, _Damaged) as exc:
        if not allow_damaged:
            raise
        _note(damage, exc.reason)
    except _Unchecked:
        if not allow_damaged:
            raise


def _note(damage: list[str], reason: str) -> None:
    reason = reason.removesuffix(f"; {_DAMAGED_HINT}")
    if reason not in damage:
        damage.append(reason)


def _load(
    im: Image.Image,
    fh: IO[bytes],
    p: Path,
    allow_damaged: bool,
    damage: list[str],
    images: contextlib.ExitStack,
) -> Image.Image:
    """Decode the pixels of ``im``; when that fails and damage is allowed, again leniently.

    Lenient is Pillow's ``LOAD_TRUNCATED_IMAGES``: what cannot be decoded (the
    missing end of a truncated file, what follows a decoder error) stays grey.
    """
    try:
        with _truncation(allowed=False):
            _call_pillow(p, im.load, tolerable=True)
        return im
    except (_Truncated, _Damaged) as exc:
        if not allow_damaged:
            raise
        reason = exc.reason
    fh.seek(0)
    lenient = images.enter_context(_call_pillow(p, lambda: _open_pillow(fh)))
    with _truncation(allowed=True):
        _call_pillow(p, lenient.load)
    _note(damage, reason)
    return lenient


def _verify_png(fh: IO[bytes]) -> None:
    """Read every chunk of the PNG on ``fh`` checking its CRC (Pillow's ``verify``)."""
    fh.seek(0)
    with _truncation(allowed=False), _open_pillow(fh) as check:
        check.verify()


def _check_jpeg(fh: IO[bytes], p: Path) -> None:
    fh.seek(0)
    try:
        data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read file ({_os_reason(exc)})", path=p) from exc
    try:
        problem = jpeg_damage(data)
    except JpegCheckUnavailable as exc:
        raise _Unchecked(
            f"cannot check the JPEG data for corruption ({_one_line(exc)}); "
            "use --allow-damaged to decode it unchecked",
            path=p,
        ) from None
    if problem is not None:
        raise _Damaged(f"corrupt image data ({problem}); {_DAMAGED_HINT}", path=p)


def _jpeg_tables(im: Image.Image, orientation: int) -> JpegTables | None:
    try:
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(im)
        tables = JpegTables.from_pillow(getattr(im, "quantization", None), sampling)
    except Exception:  # a table Pillow could not parse: no "keep" for this file
        return None
    if tables is not None and orientation >= 5 and tables.subsampling == "4:2:2":
        # turned a quarter, horizontal subsampling would be vertical (4:4:0), which
        # Pillow cannot write: 4:2:0 is the nearest that is not larger
        tables = dataclasses.replace(tables, subsampling="4:2:0")
    return tables


_TRUNCATION_LOCK = threading.Lock()


@contextlib.contextmanager
def _truncation(*, allowed: bool) -> Iterator[None]:
    """Decode with Pillow's ``LOAD_TRUNCATED_IMAGES`` set to ``allowed``, whatever it was.

    Some libraries switch it on globally at import (``face_recognition`` does);
    a truncated file would then decode silently with grey where data is missing.
    """
    with _TRUNCATION_LOCK:
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = allowed
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open_pillow(fh: IO[bytes]) -> Image.Image:
    try:
        return Image.open(fh, formats=_READ_FORMATS)
    except Image.DecompressionBombError:
        pass
    # Pillow's limit (Image.MAX_IMAGE_PIXELS) is lower than ours may be: read the
    # header again with it lifted; our own limit is checked before any decoding.
    fh.seek(0)
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(fh, formats=_READ_FORMATS)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _call_pillow(p: Path, fn: Callable[[], _T], *, tolerable: bool = False) -> _T:
    """Run one Pillow step, turning whatever a malformed file makes it raise into InputError.

    ``tolerable``: the step is one that ``allow_damaged`` skips or redoes leniently,
    so the message says so.
    """
    hint = f"; {_DAMAGED_HINT}" if tolerable else ""
    error = _Damaged if tolerable else InputError
    try:
        return fn()
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError("not a recognised image (cannot identify image file)", path=p) from None
    except EOFError as exc:
        raise _Truncated(f"truncated image data (file ends early){hint}", path=p) from exc
    except MemoryError as exc:
        raise InputError("not enough memory to decode the image", path=p) from exc
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise _Truncated(f"truncated image data (file ends early){hint}", path=p) from exc
        raise error(f"corrupt image data ({_one_line(exc)}){hint}", path=p) from exc
    except SyntaxError as exc:
        raise error(f"corrupt image data ({_one_line(exc)}){hint}", path=p) from exc
    except Exception as exc:  # a malformed file can make a plugin raise anything
        raise error(
            f"cannot decode image ({type(exc).__name__}: {_one_line(exc)}){hint}", path=p
        ) from exc


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of ``im``; 1 when absent, invalid or unreadable."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
        orientation = int(value) if value is not None else 1
    except Exception:  # corrupt EXIF: shown as stored by viewers too
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an (H, W[, C]) array (as ``ImageOps.exif_transpose``)."""
    if orientation == 2:  # mirrored left-right
        return arr[:, ::-1]
    if orientation == 3:  # rotated 180
        return arr[::-1, ::-1]
    if orientation == 4:  # mirrored top-bottom
        return arr[::-1]
    if orientation == 5:  # transposed (mirror along the main diagonal)
        return arr.swapaxes(0, 1)
    if orientation == 6:  # needs 90 degrees clockwise
        return np.rot90(arr, k=-1)
    if orientation == 7:  # transversed (mirror along the anti-diagonal)
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:  # needs 90 degrees counter-clockwise
        return np.rot90(arr, k=1)
    return arr


def _to_rgb(im: Image.Image, p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert a loaded Pillow image to (H, W, 3) uint8 RGB and optional (H, W) alpha."""
    mode = im.mode
    if mode.startswith("I;16"):
        return _gray_to_rgb(_scale_uint16(np.asarray(im))), None
    if mode == "I":
        return _gray_to_rgb(_scale_int(np.asarray(im))), None
    if mode == "F":
        return _gray_to_rgb(_scale_float(np.asarray(im))), None
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return rgba[..., :3], rgba[..., 3]
    if mode in ("1", "L"):
        return _gray_to_rgb(np.asarray(im.convert("L"))), None
    try:
        rgb = im if mode == "RGB" else im.convert("RGB")
    except ValueError:
        raise InputError(f"unsupported colour mode {mode}", path=p) from None
    return np.asarray(rgb), None


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., np.newaxis], 3, axis=2)


def _scale_uint16(values: np.ndarray) -> np.ndarray:
    """Map 0..65535 onto 0..255 (``round(v / 257)``): the full range, no clipping."""
    v = values.astype(np.uint32)
    return ((v + 128) // 257).astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Map the minimum..maximum of ``values`` onto 0..255."""
    v = values.astype(np.float64)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    return np.rint((v - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _scale_int(values: np.ndarray) -> np.ndarray:
    if values.size and values.min() >= 0 and values.max() <= 65535:
        return _scale_uint16(values)
    return _stretch(values)


def _scale_float(values: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(v * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.rint(v).astype(np.uint8)
    return _stretch(v)


def _rgb_icc_profile(icc: object) -> bytes | None:
    """``icc`` if it is an ICC profile for RGB data, else None."""
    if isinstance(icc, (bytes, bytearray)) and len(icc) >= 128 and bytes(icc[16:20]) == b"RGB ":
        return bytes(icc)
    return None


def _n_frames(im: Image.Image, p: Path, allow_damaged: bool, damage: list[str]) -> int:
    """The number of frames; broken later frames are damage (the first frame is decoded)."""
    try:
        n = int(getattr(im, "n_frames", 1))
    except Exception as exc:  # a plugin may raise anything (IndexError, TypeError, struct.error)
        reason = f"a later frame is broken ({type(exc).__name__}: {_one_line(exc)})"
        if not allow_damaged:
            raise InputError(f"corrupt image data ({reason}); {_DAMAGED_HINT}", path=p) from None
        _note(damage, reason)
        return 1
    return max(n, 1)


# ----------------------------------------------------------------------------- arrays


def load_array(array: np.ndarray, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Wrap an in-memory image as a :class:`LoadedImage` (a copy; the input is not kept).

    Parameters
    ----------
    array : ndarray
        Shape (H, W) or (H, W, 1) grey, (H, W, 3) RGB or (H, W, 4) RGBA, with
        dtype ``uint8`` (0..255), ``uint16`` (0..65535, mapped onto 0..255 as
        ``round(v / 257)``), ``bool`` (True = 255) or float (values in [0, 1],
        scaled by 255).  Channel order is RGB.
    max_pixels : int
        Largest allowed ``H * W`` (default :data:`DEFAULT_MAX_PIXELS`), as for files.

    Returns
    -------
    LoadedImage
        ``pixels`` (H, W, 3) uint8, ``alpha`` (H, W) uint8 for RGBA input else None,
        ``format="ARRAY"``, ``path=None``.

    Raises
    ------
    InputError
        For any other type, shape or dtype, an empty array, more pixels than
        ``max_pixels``, or floats outside [0, 1] (or NaN).
    ValueError
        If ``max_pixels`` is not a positive integer.
    """
    _check_max_pixels(max_pixels)
    if not isinstance(array, np.ndarray):
        raise InputError(f"expected a NumPy array, got {type(array).__name__}")
    a = array
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(
            f"expected an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got shape {array.shape}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"the image array is empty (shape {array.shape})")
    _check_pixel_count(int(a.shape[1]), int(a.shape[0]), max_pixels, None)
    a8 = _array_to_uint8(a)
    if a8.ndim == 2:
        return LoadedImage(_gray_to_rgb(a8), None, "ARRAY", None, None, 1)
    pixels = np.ascontiguousarray(a8[..., :3])
    alpha = np.ascontiguousarray(a8[..., 3]) if a8.shape[2] == 4 else None
    return LoadedImage(pixels, alpha, "ARRAY", None, None, 1)


def _array_to_uint8(a: np.ndarray) -> np.ndarray:
    """A new uint8 array with the values of ``a`` (see :func:`load_array`)."""
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype == np.uint16:
        return _scale_uint16(a)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise InputError("float image arrays must not contain NaN or infinity")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"float image arrays must have values in [0, 1], got [{lo:g}, {hi:g}]; "
                "divide by 255 or convert to uint8"
            )
        return np.rint(a.astype(np.float64) * 255.0).astype(np.uint8)
    raise InputError(
        f"unsupported array dtype {a.dtype}; use uint8, uint16, bool or float in [0, 1]"
    )
