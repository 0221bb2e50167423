"""Video input and output with PyAV: upright RGB frames in, H.264 out, audio kept, metadata gone.

Reading
-------
:func:`open_video` opens any file FFmpeg demuxes and decodes (MP4, MOV, MKV, WebM,
AVI...; H.264/H.265/VP9/AV1/MPEG-4/MJPEG..., 8 or 10 bits, 4:2:0/4:2:2/4:4:4) and
yields :class:`VideoFrame` objects: ``(H, W, 3)`` ``uint8`` RGB pixels in the
*displayed* orientation (the stream's display matrix, rotation and flips, is
applied to the pixels, as players do) with the frame's own timestamp, so a variable
frame rate is kept.  Damaged data is refused with an :class:`~pixveil.errors.InputError`
whose one-line message names the file: an empty or truncated file, no video stream
(an audio-only file), a still image under a video name, packets the decoder
cannot decode (the decoder runs with ``err_detect=explode``, so concealed errors
count), or fewer frames than the container's index lists.  ``allow_damaged=True``
decodes what it can instead.

Writing
-------
:func:`write_video` encodes frames with libx264 into ``yuv420p`` H.264 (the format
every player reads) in MP4, MOV or Matroska, chosen by the destination's
extension.  ``crf`` sets the quality (x264's constant rate factor: 0 lossless,
18 visually lossless, 23 the default, 51 worst).  Each frame keeps its input
timestamp.  The source's audio streams are *remuxed*: their packets are copied
byte for byte, never decoded or re-encoded; subtitle, data (GoPro GPMF, DJI
telemetry, Apple location tracks) and attachment streams are never copied.

Nothing of the source's metadata reaches the output: no container or stream
tags (creation time, make, model, location ``©xyz``, handler names, encoder
strings, language), no chapters, no display matrix (the pixels are already
upright), and the container is written with FFmpeg's ``bitexact`` flag (no
``encoder`` tag, zero creation times).  The x264 version-and-options SEI that
libx264 puts in the first frame is removed from the bitstream (``filter_units``).

The file is written atomically through pixveil's temporary-file writer
(:func:`pixveil.io.files.atomic_write`): a hidden ``.pixveil-<hex>.tmp`` in the
destination folder, renamed over the destination only once every frame is
encoded, with the ``root=`` rules of images (no symbolic link below the output
folder).  Any failure, of a frame's source or of the encoder, removes it: a
partial video is never left behind.

Why one module of ~950 lines: reading and writing share the container rules
(which streams pass, which metadata is dropped, timestamps and time bases) and
the error wording; about half of it is the refusals of damaged inputs with their
one-line reasons.  Splitting it into read and write would export those internals.

PyAV (``pip install 'pixveil[video]'``) is imported on first use, not by
:mod:`pixveil.io`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError, OutputError
from pixveil.io.files import _one_line, _os_reason, as_path, atomic_write

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "VIDEO_EXTENSIONS",
    "VIDEO_OUTPUT_FORMATS",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "is_video_path",
    "open_video",
    "probe_video",
    "video_output_suffix",
    "write_video",
]

#: File extensions (lower case, with the dot) treated as videos.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".qt",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".asf",
        ".flv",
        ".3gp",
        ".3g2",
        ".ogv",
        ".mxf",
    }
)

#: Output extensions and the FFmpeg muxer that writes them (H.264 + copied audio).
VIDEO_OUTPUT_FORMATS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
}

#: x264 constant rate factor used by default (its own default: good quality, small files).
DEFAULT_CRF = 23
#: x264 preset used by default: the fastest presets cost size, not quality at a given CRF.
DEFAULT_PRESET = "veryfast"
_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)

# Demuxers that read still images (a JPEG renamed clip.mp4 opens as a one-frame video).
_IMAGE_DEMUXERS = ("image2", "_pipe", "apng", "gif", "webp", "ico", "bmp", "tiff")

# Each audio packet is muxed once the video written has reached its time (seconds).
_AUDIO_LEAD = 0.5


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - the [video] extra is installed in CI
        raise MissingDependencyError("av (PyAV)", "video") from exc
    return av


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def video_output_suffix(path: str | os.PathLike[str]) -> str:
    """The extension of the protected copy of the video ``path``.

    MOV and Matroska inputs keep their container (both take H.264 and, in
    Matroska's case, nearly any audio codec untouched).  AVI becomes Matroska:
    AVI's audio (AC-3, MP3, PCM, DTS...) goes into Matroska packet for packet,
    while MP4 refuses PCM and drops AC-3 packets without a sync word (the first
    packet of the shared ``Megamind.avi``).  Everything else becomes MP4.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".avi":
        return ".mkv"
    return suffix if suffix in (".mov", ".mkv") else ".mp4"


# ----------------------------------------------------------------------------- types


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video file.

    Attributes
    ----------
    path : Path
    container : str
        FFmpeg's name of the demuxer (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"avi"``...).
    codec : str
        The video codec (``"h264"``, ``"hevc"``, ``"vp9"``...).
    width, height : int
        Size of the *displayed* frames (after the display matrix).
    coded_width, coded_height : int
        Size of the decoded frames before rotation.
    rotation : int
        Counter-clockwise rotation the display matrix asks for, in degrees
        (0, 90, 180 or 270; PyAV's ``VideoFrame.rotation`` convention).
    display_matrix : tuple of 9 ints or None
        The raw matrix (16.16 fixed point), when the stream has one.
    frame_rate : Fraction or None
        The average frame rate; None when the container does not say.
    n_frames : int or None
        Frames the container's index lists (exact for MP4/MOV/AVI); None when unknown.
    duration : float or None
        Seconds, when known.
    time_base : Fraction
        Unit of the frames' ``pts``.
    pix_fmt : str
        The decoder's pixel format (``"yuv420p"``, ``"yuv422p10le"``...).
    audio_codecs : tuple of str
        Codec of each audio stream, in order (copied untouched by :func:`write_video`).
    dropped : tuple of str
        Types of the streams a protected copy never carries (``"subtitle"``, ``"data"``,
        ``"attachment"``), one entry per stream.
    """

    path: Path
    container: str
    codec: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    display_matrix: tuple[int, ...] | None
    frame_rate: Fraction | None
    n_frames: int | None
    duration: float | None
    time_base: Fraction
    pix_fmt: str
    audio_codecs: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded frame.

    Attributes
    ----------
    index : int
        0-based position in decoding-output (display) order.
    pixels : ndarray of shape (H, W, 3), uint8
        RGB, upright.
    pts : int or None
        Presentation timestamp in units of ``time_base`` (None for frames made from
        bare arrays; :func:`write_video` then numbers them at its frame rate).
    time_base : Fraction or None
    duration : int or None
        Display duration in units of ``time_base``, when known.
    """

    index: int
    pixels: np.ndarray = field(repr=False)
    pts: int | None = None
    time_base: Fraction | None = None
    duration: int | None = None

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or None."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def with_pixels(self, pixels: np.ndarray) -> VideoFrame:
        """The same frame (index, timing) with other pixels."""
        return VideoFrame(self.index, pixels, self.pts, self.time_base, self.duration)


# ----------------------------------------------------------------------------- reading


def _input_error(p: Path, reason: str) -> InputError:
    return InputError(" ".join(reason.split()), path=p)


def _av_reason(exc: BaseException) -> str:
    """A short reason from a PyAV/FFmpeg error (without the file name it repeats)."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror[0].lower() + strerror[1:]
    return _one_line(exc)


def _check_regular_file(p: Path) -> None:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise _input_error(p, "no such file") from None
    except OSError as exc:
        raise _input_error(p, f"cannot be read ({_os_reason(exc)})") from exc
    import stat

    if stat.S_ISDIR(st.st_mode):
        raise _input_error(p, "is a folder, not a video")
    if not stat.S_ISREG(st.st_mode):
        raise _input_error(p, "is not a regular file")
    if st.st_size == 0:
        raise _input_error(p, "is empty (0 bytes)")


def _open_container(p: Path) -> Any:
    av = _av()
    _check_regular_file(p)
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise _input_error(p, f"is not a readable video ({_av_reason(exc)})") from exc
    except (OSError, UnicodeError) as exc:
        raise _input_error(p, f"cannot be read ({_one_line(exc)})") from exc


def _display_transform(matrix: tuple[int, ...] | None) -> tuple[int, str]:
    """(counter-clockwise rotation, numpy transform) for a display matrix.

    Mirrors what FFmpeg's command-line tool does with ``-autorotate`` (the
    rotation is rounded to a multiple of 90 degrees; flips are honoured).
    """
    if matrix is None:
        return 0, "none"
    m = [float(v) for v in matrix]
    s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if s0 == 0 or s1 == 0:
        return 0, "none"
    ccw = -math.degrees(math.atan2(m[1] / s1, m[0] / s0))  # av_display_rotation_get
    theta = (-round(ccw)) % 360  # FFmpeg's get_rotation(): clockwise, in [0, 360)
    snapped = round(theta / 90) % 4 * 90
    if snapped == 90:
        return 270, "transpose" if m[3] > 0 else "rot_cw"
    if snapped == 180:
        kind = ("hflip" if m[0] < 0 else "") + ("vflip" if m[4] < 0 else "")
        return 180, {"hflipvflip": "rot180", "hflip": "hflip", "vflip": "vflip"}.get(kind, "none")
    if snapped == 270:
        return 90, "antitranspose" if m[3] < 0 else "rot_ccw"
    return 0, "vflip" if m[4] < 0 else "none"


def _apply_transform(arr: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return arr
    out = {
        "rot_cw": lambda a: np.rot90(a, -1),
        "rot_ccw": lambda a: np.rot90(a, 1),
        "rot180": lambda a: a[::-1, ::-1],
        "hflip": lambda a: a[:, ::-1],
        "vflip": lambda a: a[::-1],
        "transpose": lambda a: a.transpose(1, 0, 2),
        "antitranspose": lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    }[how](arr)
    return np.ascontiguousarray(out)


def _frame_matrix(frame: Any) -> tuple[int, ...] | None:
    try:
        for sd in frame.side_data:
            if str(sd.type).endswith("DISPLAYMATRIX"):
                values = np.frombuffer(bytes(sd), dtype=np.int32)
                if values.size == 9:
                    return tuple(int(v) for v in values)
    except Exception:  # side data PyAV cannot expose: no matrix
        return None
    return None


class VideoReader:
    """An open video file: :attr:`info`, and iteration over its frames (once).

    Use :func:`open_video` to make one; close it (or use it as a context manager)
    when done.  Iterating yields :class:`VideoFrame` objects in display order and
    raises :class:`~pixveil.errors.InputError` naming the file for damaged data.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_pixels: int | None = None,
        allow_damaged: bool = False,
        threads: int | None = None,
    ) -> None:
        self.path = as_path(path)
        if not isinstance(allow_damaged, bool):
            raise ValueError(f"allow_damaged must be a bool, got {allow_damaged!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 0
        ):
            raise ValueError(f"threads must be an integer >= 0 or None, got {threads!r}")
        self.allow_damaged = allow_damaged
        self._threads = threads
        self._container = _open_container(self.path)
        self._used = False
        try:
            self.info = self._probe(max_pixels)
        except BaseException:
            self.close()
            raise

    # -- set-up

    def _stream(self) -> Any:
        streams = self._container.streams.video
        if not streams:
            kinds = sorted({s.type for s in self._container.streams})
            has = f" (it has {', '.join(kinds)} streams)" if kinds else ""
            raise _input_error(self.path, f"has no video stream{has}")
        # the first stream that is not an attached picture (cover art)
        for s in streams:
            if not (s.disposition & _attached_pic()):
                return s
        raise _input_error(self.path, "has no video stream (only a cover picture)")

    def _probe(self, max_pixels: int | None) -> VideoInfo:
        av = _av()
        c = self._container
        fmt = c.format.name
        if any(tag in fmt for tag in _IMAGE_DEMUXERS):
            raise _input_error(self.path, f"is a still image ({fmt}), not a video")
        stream = self._stream()
        self._stream_ = stream
        cc = stream.codec_context
        if not self.allow_damaged:
            cc.options = {"err_detect": "explode"}
        cc.thread_type = "AUTO"
        if self._threads is not None:
            cc.thread_count = self._threads
        coded_w, coded_h = int(cc.width or 0), int(cc.height or 0)
        if coded_w <= 0 or coded_h <= 0:
            raise _input_error(self.path, "has a video stream without a frame size")
        if max_pixels is not None and coded_w * coded_h > max_pixels:
            raise _input_error(
                self.path,
                f"{coded_w * coded_h:,} pixels per frame exceeds the limit of {max_pixels:,} "
                "(use --max-pixels to raise it)",
            )
        # The first frame: proves the stream decodes and carries the display matrix.
        self._decoder = self._decode_frames(stream)
        try:
            first = next(self._decoder, None)
        except av.error.FFmpegError as exc:
            raise _input_error(self.path, f"cannot be decoded ({_av_reason(exc)})") from exc
        if first is None:
            raise _input_error(self.path, "has a video stream without any decodable frame")
        self._first = first
        matrix = _frame_matrix(first)
        rotation, self._how = _display_transform(matrix)
        swap = self._how in ("rot_cw", "rot_ccw", "transpose", "antitranspose")
        fw, fh = int(first.width), int(first.height)
        width, height = (fh, fw) if swap else (fw, fh)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_rate = Fraction(rate) if rate else None
        n_frames = int(stream.frames) if stream.frames and stream.frames > 0 else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif c.duration is not None:
            duration = float(c.duration) / 1_000_000
        audio = tuple(s.codec_context.name for s in c.streams.audio)
        dropped = tuple(
            s.type
            for s in c.streams
            if s.type not in ("audio",) and s is not stream and s.type != "video"
        )
        return VideoInfo(
            path=self.path,
            container=fmt,
            codec=cc.name,
            width=width,
            height=height,
            coded_width=coded_w,
            coded_height=coded_h,
            rotation=rotation,
            display_matrix=matrix,
            frame_rate=frame_rate,
            n_frames=n_frames,
            duration=duration,
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
            pix_fmt=str(cc.format.name if cc.format is not None else first.format.name),
            audio_codecs=audio,
            dropped=dropped,
        )

    def _decode_frames(self, stream: Any) -> Iterator[Any]:
        for packet in self._container.demux(stream):
            yield from packet.decode()

    # -- iteration

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._used:
            raise RuntimeError("a VideoReader can be iterated only once; open the file again")
        self._used = True
        return self._frames()

    def _frames(self) -> Iterator[VideoFrame]:
        av = _av()
        info = self.info
        tb = info.time_base
        step = _frame_step(info)
        index = 0
        last_pts: int | None = None
        pending = self._first
        while pending is not None:
            raw = pending
            try:
                pending = next(self._decoder, None)
            except av.error.FFmpegError as exc:
                if not self.allow_damaged:
                    raise _input_error(
                        self.path,
                        f"damaged video data after frame {index} ({_av_reason(exc)}); "
                        "use --allow-damaged to decode it anyway",
                    ) from exc
                pending = None
            pixels = self._pixels(raw, index)
            pts = raw.pts if raw.pts is not None else getattr(raw, "dts", None)
            if pts is None:
                pts = 0 if last_pts is None else last_pts + step
            if last_pts is not None and pts <= last_pts:
                # broken timing (duplicated or decreasing stamps): keep every frame, in order
                pts = last_pts + max(1, step if pts < last_pts else 1)
            duration = None
            if pending is not None and pending.pts is not None and pending.pts > pts:
                duration = int(pending.pts - pts)
            elif raw.duration:
                duration = int(raw.duration)
            yield VideoFrame(index, pixels, int(pts), tb, duration)
            last_pts = int(pts)
            index += 1
        if (
            not self.allow_damaged
            and info.n_frames is not None
            and index < info.n_frames
            and info.container.startswith("mov")
        ):
            raise _input_error(
                self.path,
                f"is truncated: {index} of the {info.n_frames} frames its index lists "
                "could be decoded; use --allow-damaged to decode it anyway",
            )

    def _pixels(self, raw: Any, index: int) -> np.ndarray:
        av = _av()
        try:
            arr = raw.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, ValueError) as exc:
            raise _input_error(
                self.path, f"frame {index} cannot be converted to RGB ({_av_reason(exc)})"
            ) from exc
        arr = _apply_transform(arr, self._how)
        if arr.shape[:2] != (self.info.height, self.info.width):
            raise _input_error(
                self.path,
                f"frame {index} is {arr.shape[1]}x{arr.shape[0]}, the video "
                f"{self.info.width}x{self.info.height} (a size change mid-stream is not supported)",
            )
        return arr

    # -- closing

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attached_pic() -> int:
    av = _av()
    disp = getattr(av.stream, "Disposition", None)
    return int(getattr(disp, "attached_pic", 0x0400)) if disp is not None else 0x0400


def _frame_step(info: VideoInfo) -> int:
    """One frame's duration in ``time_base`` units (for frames without a timestamp)."""
    rate = info.frame_rate or Fraction(30)
    return max(1, round(1 / (rate * info.time_base)))


def open_video(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = None,
    allow_damaged: bool = False,
    threads: int | None = None,
) -> VideoReader:
    """Open a video for reading (see :class:`VideoReader`).

    Parameters
    ----------
    path : path
    max_pixels : int, optional
        Refuse videos whose frames have more pixels than this.
    allow_damaged : bool
        Decode damaged streams as far as possible instead of refusing them.
    threads : int, optional
        Decoder threads (default: FFmpeg's choice; 0 = automatic).

    Raises
    ------
    InputError
        One line naming the file: missing, empty, not a video (an image, audio
        only), undecodable, too large.
    MissingDependencyError
        If PyAV is not installed.
    """
    return VideoReader(path, max_pixels=max_pixels, allow_damaged=allow_damaged, threads=threads)


def probe_video(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> VideoInfo:
    """The :class:`VideoInfo` of a video file (decodes its first frame only)."""
    with open_video(path, max_pixels=max_pixels) as reader:
        return reader.info


# ----------------------------------------------------------------------------- writing


class _SourceFailed(Exception):
    """Carries an exception of the frame source out of the encoder callback unchanged."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[VideoFrame | np.ndarray],
    *,
    frame_rate: Fraction | float | None = None,
    audio_from: str | os.PathLike[str] | None = None,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    protected_paths: Iterable[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Encode ``frames`` to an H.264 video at ``path`` atomically, with no metadata.

    Parameters
    ----------
    path : path
        Destination: ``.mp4``/``.m4v`` (MP4), ``.mov`` or ``.mkv``
        (:data:`VIDEO_OUTPUT_FORMATS`).
    frames : iterable of VideoFrame or ndarray of shape (H, W, 3), uint8
        Consumed lazily, one at a time (a generator that protects each frame as it
        goes is the intended use).  All frames must have the same size.  A
        :class:`VideoFrame` keeps its timestamp; bare arrays are numbered at
        ``frame_rate``.  An odd width or height is padded by one replicated
        column/row (yuv420p needs even sizes).
    frame_rate : Fraction or float, optional
        The nominal rate written to the stream (default: the first frames' time
        base and spacing, else 30).
    audio_from : path, optional
        A file whose audio streams are copied packet for packet (the source video).
        None writes no audio.
    crf : int
        x264 constant rate factor, 0 (lossless) to 51 (worst); default 23.
    preset : str
        x264 preset (``"ultrafast"`` ... ``"veryslow"``); default ``"veryfast"``.
    protected_paths : iterable of path
        Files the output must never replace (the inputs).
    root : path, optional
        The output folder (see :mod:`pixveil.io.files`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        The destination is refused (a link, a folder, outside ``root``, an input,
        an unknown extension), an audio codec cannot be stored in the container
        without re-encoding, or encoding fails.  Nothing is left behind.
    Exception
        Whatever the ``frames`` iterable raises (an :class:`InputError` of a
        damaged source, a detection failure...) propagates unchanged, after the
        temporary file is removed.
    """
    target = as_path(path)
    fmt = VIDEO_OUTPUT_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"unknown video extension {target.suffix!r}; use one of "
            f"{', '.join(sorted(VIDEO_OUTPUT_FORMATS))}",
            path=target,
        )
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {', '.join(_PRESETS)}, got {preset!r}")
    rate = None if frame_rate is None else Fraction(frame_rate).limit_denominator(100_000)
    if rate is not None and rate <= 0:
        raise ValueError(f"frame_rate must be > 0, got {frame_rate!r}")
    from pixveil.io.write import _protected_match

    if isinstance(protected_paths, (str, os.PathLike)):
        raise InputError("protected_paths must be a collection of paths, not a single path")
    hit = _protected_match(target, protected_paths)
    if hit is None and audio_from is not None:
        hit = _protected_match(target, [audio_from])
    if hit is not None:
        raise OutputError(
            f"refusing to overwrite the input file {hit}; choose another output folder",
            path=target,
        )
    source = None if audio_from is None else as_path(audio_from)
    _av()
    encoder = _Encoder(target, fmt, iter(frames), rate, source, crf, preset)
    try:
        atomic_write(target, encoder.run, root=root, what="video")
    except _SourceFailed as exc:
        raise exc.original from exc.original.__cause__
    return target


class _Encoder:
    """The body of :func:`write_video`, run on the temporary file."""

    def __init__(
        self,
        target: Path,
        fmt: str,
        frames: Iterator[VideoFrame | np.ndarray],
        rate: Fraction | None,
        audio_from: Path | None,
        crf: int,
        preset: str,
    ) -> None:
        self.target = target
        self.fmt = fmt
        self.frames = frames
        self.rate = rate
        self.audio_from = audio_from
        self.crf = crf
        self.preset = preset

    def _next(self) -> VideoFrame | np.ndarray | None:
        try:
            return next(self.frames)
        except StopIteration:
            return None
        except BaseException as exc:
            raise _SourceFailed(exc) from exc

    def run(self, fh: IO[bytes]) -> None:
        av = _av()
        first = self._next()
        if first is None:
            raise OutputError("no frames to write", path=self.target)
        first_frame = _as_frame(first, 0)
        h, w = _check_pixels(first_frame.pixels, 0).shape[:2]
        tb, rate = _timing(first_frame, self.rate)
        out = av.open(
            fh, mode="w", format=self.fmt, options={"fflags": "+bitexact"}, metadata_errors="ignore"
        )
        audio_in = None
        try:
            video = out.add_stream("libx264", rate=rate)
            video.width, video.height = w + (w % 2), h + (h % 2)
            video.pix_fmt = "yuv420p"
            video.time_base = tb
            cc = video.codec_context
            cc.time_base = tb
            cc.options = {"crf": str(self.crf), "preset": self.preset}
            cc.flags |= getattr(av.codec.context.Flags, "bitexact", 0)
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1
            audio_in, audio_pairs = self._open_audio(out)
            sei = av.BitStreamFilterContext("filter_units=remove_types=6", "h264")
            audio = _AudioCopy(audio_in, audio_pairs)
            state = _Timing(tb, rate)
            item: VideoFrame | np.ndarray | None = first
            index = 0
            while item is not None:
                frame = first_frame if index == 0 else _as_frame(item, index)
                pixels = _check_pixels(frame.pixels, index)
                if pixels.shape[:2] != (h, w):
                    raise OutputError(
                        f"frame {index} is {pixels.shape[1]}x{pixels.shape[0]}, "
                        f"the first {w}x{h}; all frames must have one size",
                        path=self.target,
                    )
                vf = av.VideoFrame.from_ndarray(_even(pixels), format="rgb24")
                vf = vf.reformat(format="yuv420p", dst_colorspace="ITU709")
                vf.pts = state.pts(frame)
                vf.time_base = tb
                for packet in video.encode(vf):
                    self._mux_video(out, sei, packet, audio, tb)
                index += 1
                item = self._next()
            for packet in video.encode(None):
                self._mux_video(out, sei, packet, audio, tb)
            for packet in sei.filter(None):
                out.mux(packet)
            audio.flush(out, None)
        except _SourceFailed:
            raise
        except av.error.FFmpegError as exc:
            raise OutputError(
                f"cannot encode the video ({_av_reason(exc)})", path=self.target
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                out.close()
            if audio_in is not None:
                with contextlib.suppress(Exception):
                    audio_in.close()

    def _mux_video(self, out: Any, sei: Any, packet: Any, audio: _AudioCopy, tb: Fraction) -> None:
        if packet.pts is not None:
            audio.flush(out, float(packet.pts * tb) + _AUDIO_LEAD)
        for p in sei.filter(packet):
            p.stream = packet.stream
            out.mux(p)

    def _open_audio(self, out: Any) -> tuple[Any, dict[int, Any]]:
        if self.audio_from is None:
            return None, {}
        av = _av()
        try:
            src = av.open(str(self.audio_from), mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise _SourceFailed(
                _input_error(self.audio_from, f"cannot be read again ({_av_reason(exc)})")
            ) from exc
        pairs: dict[int, Any] = {}
        try:
            for s in src.streams.audio:
                dst = out.add_stream_from_template(s)
                # nothing of the source's tags (language, handler name...) is copied
                for key in list(dst.metadata):
                    del dst.metadata[key]
                pairs[s.index] = dst
            if pairs:
                supported = _codec_supported(out, [s.codec_context.name for s in src.streams.audio])
                if supported is not None:
                    raise OutputError(
                        f"the audio codec {supported} cannot be stored in "
                        f"{self.target.suffix} without re-encoding; write .mkv or drop the audio",
                        path=self.target,
                    )
        except BaseException:
            src.close()
            raise
        return src, pairs


def _codec_supported(out: Any, names: list[str]) -> str | None:
    """The first codec name the muxer cannot store, or None (when the muxer can tell)."""
    supported = getattr(out, "supported_codecs", None)
    if not supported:
        return None
    for name in names:
        if name not in supported:
            return name
    return None


class _AudioCopy:
    """Copies the source's audio packets, interleaved with the video written so far."""

    def __init__(self, src: Any, pairs: dict[int, Any]) -> None:
        self.pairs = pairs
        self.packets: Iterator[Any] | None = None
        self.pending: Any = None
        if src is not None and pairs:
            streams = [s for s in src.streams if s.index in pairs]
            self.packets = iter(src.demux(*streams))

    def flush(self, out: Any, until: float | None) -> None:
        """Mux audio packets up to time ``until`` (seconds; None = all)."""
        if self.packets is None:
            return
        while True:
            if self.pending is None:
                try:
                    self.pending = next(self.packets)
                except StopIteration:
                    self.packets = None
                    return
            p = self.pending
            if p.dts is None and p.pts is None:  # the demuxer's end-of-stream marker
                self.pending = None
                continue
            stamp = p.dts if p.dts is not None else p.pts
            if until is not None and float(stamp * p.time_base) > until:
                return
            p.stream = self.pairs[p.stream_index]
            out.mux(p)
            self.pending = None


class _Timing:
    """Output timestamps: the source's, made strictly increasing; or numbered at ``rate``."""

    def __init__(self, tb: Fraction, rate: Fraction) -> None:
        self.tb = tb
        self.step = max(1, round(1 / (rate * tb)))
        self.last: int | None = None

    def pts(self, frame: VideoFrame) -> int:
        if frame.pts is not None and frame.time_base is not None:
            pts = round(frame.pts * frame.time_base / self.tb)
        else:
            pts = 0 if self.last is None else self.last + self.step
        if self.last is not None and pts <= self.last:
            pts = self.last + 1
        self.last = pts
        return int(pts)


def _timing(first: VideoFrame, rate: Fraction | None) -> tuple[Fraction, Fraction]:
    """(time base, nominal rate) of the output stream."""
    if first.time_base is not None and first.pts is not None:
        tb = Fraction(first.time_base)
        if rate is None and first.duration:
            rate = (1 / (first.duration * tb)).limit_denominator(100_000)
    else:
        rate = rate or Fraction(30)
        tb = Fraction(1, 1) / rate
        tb = Fraction(1, 90_000) if tb.numerator != 1 else tb
    rate = rate or Fraction(30)
    # time bases too coarse for the rate (e.g. 1/10 at 30 fps) would merge frames
    if tb > 1 / (rate * 2) and first.time_base is None:
        tb = Fraction(1, 90_000)
    return tb, rate


def _as_frame(item: VideoFrame | np.ndarray, index: int) -> VideoFrame:
    if isinstance(item, VideoFrame):
        return item
    if isinstance(item, np.ndarray):
        return VideoFrame(index, item)
    raise _SourceFailed(
        InputError(f"frame {index} must be a VideoFrame or an array, got {type(item).__name__}")
    )


def _check_pixels(pixels: np.ndarray, index: int) -> np.ndarray:
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.ndim != 3
        or pixels.shape[2] != 3
        or pixels.dtype != np.uint8
        or pixels.shape[0] < 2
        or pixels.shape[1] < 2
    ):
        got = (
            f"{pixels.shape} {pixels.dtype}"
            if isinstance(pixels, np.ndarray)
            else type(pixels).__name__
        )
        raise _SourceFailed(InputError(f"frame {index} must be (H, W, 3) uint8, got {got}"))
    return pixels


def _even(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return np.ascontiguousarray(pixels)
    return np.pad(pixels, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
