"""JPEG specifics: the source's coding parameters, and spotting corrupt entropy-coded data.

Coding parameters
-----------------
Re-encoding a JPEG at a fixed quality (95) makes most files larger than their
source, with no gain: the source's own quantisation already threw that detail
away.  :class:`JpegTables` keeps what is needed to encode at the source's level
instead.  The source's quantisation tables are *not* kept as they are: a camera's
or an editor's own tables identify its make and often its model and firmware (a
known forensic fingerprint), and 64 arbitrary values per table could carry any
payload.  They are reduced to the nearest standard (IJG/libjpeg) table for luma
and for chroma, so that the output carries two quality numbers in 1..100 and a
chroma subsampling among three: exactly what any encoder's settings carry.

Corrupt data
------------
JPEG has no checksum.  A damaged scan (flipped bits, a spurious restart marker,
a lost chunk of data) decodes without an error: libjpeg only emits *warnings*
("Corrupt JPEG data: premature end of data segment", "... N extraneous bytes
before marker 0xd9", "... found marker 0xd3 instead of RST2") and fills what it
could not decode with flat grey.  Pillow silences those warnings.
:func:`jpeg_damage` decodes the data once more with OpenCV's libjpeg-turbo at
1/8 scale (every coefficient is still entropy-decoded, so every such warning is
still raised; only the inverse DCT and colour conversion are cheaper) and
observes what libjpeg writes to the standard error stream.  What it cannot see:
libjpeg reports only the first warning of a file, so a damage that follows a
harmless warning (an unknown JFIF version) goes unseen; and damage that still
decodes as valid codes is invisible to any decoder: JPEG's Huffman codes
resynchronise quickly, so a single flipped bit is caught only about one time in
five (a burst of flips, an injected marker or a lost chunk nearly always), and a
run of zero bytes often decodes as valid codes too (real files contain runs of
90 zero bytes, so such runs cannot be refused on their own).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import numpy as np

__all__ = ["JpegCheckUnavailable", "JpegTables", "jpeg_damage"]

_T = TypeVar("_T")

# The example tables of the JPEG standard (ITU-T T.81, Annex K), in natural
# (row-major) order: libjpeg scales these by its quality setting.
_STD_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int64,
)  # fmt: skip
_STD_CHROMA = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
    ]
    + [99] * 32,
    dtype=np.int64,
)  # fmt: skip

_QUALITIES = np.arange(1, 101)
_SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
# Pillow's JpegImagePlugin.get_sampling() codes
_PIL_SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def standard_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's ``jpeg_set_quality`` scaling of a base table (baseline: 1..255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


_LUMA_BY_QUALITY = np.stack([standard_table(_STD_LUMA, int(q)) for q in _QUALITIES])
_CHROMA_BY_QUALITY = np.stack([standard_table(_STD_CHROMA, int(q)) for q in _QUALITIES])


def _nearest_quality(table: Sequence[int], by_quality: np.ndarray) -> int:
    """The quality whose standard table is nearest ``table`` (mean absolute log ratio)."""
    t = np.clip(np.asarray(table, dtype=np.float64).reshape(-1)[:64], 1, 255)
    if t.size != 64:
        raise ValueError("a quantisation table has 64 values")
    err = np.abs(np.log(by_quality) - np.log(t)).mean(axis=1)
    best = np.flatnonzero(err <= err.min() + 1e-12)
    return int(_QUALITIES[best[-1]])  # ties: the finer table


@dataclass(frozen=True)
class JpegTables:
    """How a JPEG source was coded, reduced to encoder settings.

    Attributes
    ----------
    luma_quality : int
        1..100: the libjpeg quality whose standard luminance table is nearest the
        source's.
    chroma_quality : int
        1..100: likewise for the chrominance table (the luma table when the
        source has only one).
    subsampling : {"4:4:4", "4:2:2", "4:2:0"}
        Chroma subsampling of the source; other layouts (4:1:1, 4:4:0) and grey
        sources give ``"4:2:0"``, and so does 4:2:2 when :func:`read_image` turns
        the picture a quarter (EXIF orientations 5-8).

    Notes
    -----
    The source's own tables are never kept (see the module notes): these three
    values are all that can pass from a source to an output.
    """

    luma_quality: int
    chroma_quality: int
    subsampling: str

    def __post_init__(self) -> None:
        for name in ("luma_quality", "chroma_quality"):
            q = getattr(self, name)
            if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= 100:
                raise ValueError(f"{name} must be an integer in [1, 100], got {q!r}")
        if self.subsampling not in _SUBSAMPLINGS:
            raise ValueError(
                f"subsampling must be one of {', '.join(_SUBSAMPLINGS)}, got {self.subsampling!r}"
            )

    @property
    def qtables(self) -> list[list[int]]:
        """The luma and chroma tables (64 values each, natural order) for Pillow's ``qtables=``."""
        return [
            [int(v) for v in _LUMA_BY_QUALITY[self.luma_quality - 1]],
            [int(v) for v in _CHROMA_BY_QUALITY[self.chroma_quality - 1]],
        ]

    @classmethod
    def from_pillow(
        cls, quantization: Mapping[int, Sequence[int]] | None, sampling: int
    ) -> JpegTables | None:
        """From a Pillow JPEG's ``quantization`` and ``JpegImagePlugin.get_sampling()``.

        None when there is no usable table.
        """
        if not quantization:
            return None
        try:
            ids = sorted(quantization)
            luma = _nearest_quality(quantization[ids[0]], _LUMA_BY_QUALITY)
            chroma_table = quantization[ids[1]] if len(ids) > 1 else quantization[ids[0]]
            chroma = _nearest_quality(chroma_table, _CHROMA_BY_QUALITY)
        except (TypeError, ValueError, KeyError):
            return None
        return cls(luma, chroma, _PIL_SAMPLING.get(sampling, "4:2:0"))


# ----------------------------------------------------------------------------- damage


class JpegCheckUnavailable(RuntimeError):
    """The damage check cannot run here (OpenCV missing, or its warnings not observable)."""


# libjpeg(-turbo) warning texts (jerror.h, JWRN_*) that mean the pixels are not
# what was coded.  The others (an unknown JFIF version, an unknown Adobe
# transform, "Invalid SOS parameters for sequential JPEG", a bad ICC marker)
# leave the pixels intact.
# "Corrupt JPEG data: " is followed by "premature end of data segment", "bad
# Huffman code", "N extraneous bytes before marker 0x..", "found marker 0x..
# instead of RSTn"...
_DAMAGE_PREFIXES = (
    "Corrupt JPEG data:",
    "Premature end of JPEG file",
    "Inconsistent progression sequence",
)
_HARMLESS_PREFIXES = (
    "Corrupt JPEG data: bad ICC marker",
    "Warning: unknown JFIF revision",
    "Unknown Adobe color transform",
    "Invalid SOS parameters for sequential JPEG",
    "Application transferred too many scanlines",
)
# lines of OpenCV's own logger
_OPENCV_LOG_PREFIXES = ("[ WARN:", "[ERROR:", "[ INFO:", "[DEBUG:", "[FATAL:", "[VERBOSE:")

_STDERR_LOCK = threading.Lock()
_SELF_TEST_LOCK = threading.Lock()
_self_test_passed = False
_CAPTURE_LIMIT = 1 << 20


def jpeg_damage(data: bytes) -> str | None:
    """Why the JPEG ``data`` does not decode as coded, or None when it does.

    Returns
    -------
    str or None
        libjpeg's warning (one line, e.g. ``"Corrupt JPEG data: premature end of
        data segment"``), ``"the JPEG decoder rejects the data"`` when a strict
        decode fails outright, or None for a clean file.

    Raises
    ------
    JpegCheckUnavailable
        If OpenCV cannot be imported, or this process cannot observe libjpeg's
        warnings (checked once, on a damaged file made in memory).
    """
    _self_test()
    return _damage_unchecked(data)


def _damage_unchecked(data: bytes) -> str | None:
    cv2 = _cv2()
    buf = np.frombuffer(data, dtype=np.uint8)
    decoded, text = _capture_stderr(lambda: cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8))
    reason = _damage_line(text)
    if reason is not None:
        return reason
    if decoded is None:
        # Some codings cannot be scaled (lossless JPEG): decode at full size.
        decoded, text = _capture_stderr(lambda: cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
        reason = _damage_line(text)
        if reason is not None:
            return reason
        if decoded is None:
            return "the JPEG decoder rejects the data"
    return None


def _damage_line(text: str) -> str | None:
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line.startswith(_HARMLESS_PREFIXES):
            continue
        if line.startswith(_DAMAGE_PREFIXES):
            return line
    return None


def _is_decoder_line(line: str) -> bool:
    return line.startswith(_DAMAGE_PREFIXES + _HARMLESS_PREFIXES + _OPENCV_LOG_PREFIXES)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # opencv-python is a core dependency
        raise JpegCheckUnavailable(f"OpenCV cannot be imported: {exc}") from exc
    return cv2


def _capture_stderr(fn: Callable[[], _T]) -> tuple[_T, str]:
    """Run ``fn`` with file descriptor 2 sent to a temporary file; return its result and text.

    libjpeg prints its warnings with ``fprintf(stderr)``, below Python.  The
    descriptor is process-wide, so captures are serialised; whatever other
    threads write meanwhile is passed on to the real standard error afterwards.
    """
    with _STDERR_LOCK, _sink() as sink:
        with contextlib.suppress(Exception):
            if sys.stderr is not None:
                sys.stderr.flush()
        try:
            saved: int | None = os.dup(2)
        except OSError:
            saved = None  # no standard error at all
        try:
            os.dup2(sink.fileno(), 2)
        except OSError as exc:
            if saved is not None:
                os.close(saved)
            raise JpegCheckUnavailable(f"cannot redirect the standard error: {exc}") from exc
        try:
            result = fn()
        finally:
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
        sink.seek(0)
        text = sink.read(_CAPTURE_LIMIT).decode("utf-8", "replace")
    _pass_on(text)
    return result, text


@contextlib.contextmanager
def _sink() -> Iterator[IO[bytes]]:
    try:
        f = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise JpegCheckUnavailable(f"no temporary file for libjpeg's messages: {exc}") from exc
    with f:
        yield f


def _pass_on(text: str) -> None:
    """Write to the real standard error what other threads wrote during a capture."""
    others = [ln for ln in text.splitlines(keepends=True) if not _is_decoder_line(ln.strip())]
    if others:
        with contextlib.suppress(OSError):
            os.write(2, "".join(others).encode("utf-8", "replace"))


def _self_test() -> None:
    """Check (once, until it passes) that a damaged JPEG is seen as damaged; raise if not."""
    global _self_test_passed
    if _self_test_passed:
        return
    with _SELF_TEST_LOCK:
        if not _self_test_passed:
            failure = _run_self_test()
            if failure:
                raise JpegCheckUnavailable(failure)
            _self_test_passed = True


def _run_self_test() -> str:
    try:
        clean, damaged = _test_jpegs()
        if _damage_unchecked(clean) is not None:
            return "a clean JPEG made in memory is reported as damaged"
        if _damage_unchecked(damaged) is None:
            return "libjpeg's warnings cannot be observed in this process"
    except JpegCheckUnavailable as exc:
        return str(exc)
    return ""


def _test_jpegs() -> tuple[bytes, bytes]:
    """A small clean baseline JPEG, and the same with a restart marker put in its scan."""
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:64]
    rgb = np.dstack((xx * 4, yy * 4, (xx + yy) * 2)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    clean = buf.getvalue()
    sos = clean.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(clean[sos + 2 : sos + 4], "big")
    pos = start + (len(clean) - 2 - start) // 3
    while clean[pos - 1] == 0xFF:
        pos += 1
    return clean, clean[:pos] + b"\xff\xd3" + clean[pos:]
