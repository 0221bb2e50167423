"""The video iterator API and the file-to-file run built on it."""

from __future__ import annotations

import dataclasses
import os
import time as _time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.config import AnonymizeConfig
from pixveil.errors import InputError
from pixveil.io.video import VideoFrame, VideoInfo, VideoReader, open_video, write_video
from pixveil.protect.base import Protected, RegionOutcome
from pixveil.types import Detections, Region
from pixveil.validate import check_pixel_limit
from pixveil.video.temporal import Representative, TrackFaces, TrackRelease, best_observation
from pixveil.video.tracking import DetectionTracker, Lookahead, TrackedRegion

__all__ = [
    "NOISE_MODES",
    "TRACKED_GROWTH",
    "FrameResult",
    "VideoOutcome",
    "anonymize_video",
    "process_video",
]

#: How randomised methods other than gan-face and plate-synth draw their noise.
NOISE_MODES = ("frame", "track")

#: Frames decoded ahead of the oldest one whose detection is still running.
_AHEAD = 8

#: Methods whose one release per track is always used (their per-frame draws
#: would change identity or text from frame to frame).
_PER_TRACK_METHODS = ("gan-face", "plate-synth")

#: Growth of the boxes found in tracked-face windows before they are protected.
#: The windows run at a reduced scale (a face about 48 network px wide), where
#: boxes are less precise than at full resolution: on held-out generated clips
#: (``bench/bench_video.py --section windows``) their width was 0.93-1.09x the
#: full-resolution box's (5th-95th percentile) and their centre off by up to
#: 4.8 % of the width (95th percentile).
TRACKED_GROWTH = 1.15

#: A frame's detections and what they looked at ("full" or "tracked").
_Found = tuple[Detections, str]


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What :func:`anonymize_video` yields for one frame.

    Attributes
    ----------
    frame : VideoFrame
        The source frame (index, timestamp; ``frame.pixels`` are the original pixels).
    pixels : ndarray of shape (H, W, 3), uint8
        The protected frame.  With ``config.dry_run`` the original pixels: do not publish.
    regions : tuple of TrackedRegion
        Every region protected in this frame, with its track id and whether it was
        detected here, interpolated or extended (see :mod:`pixveil.video.tracking`).
    detections : Detections or None
        The raw detections of this frame, or None when no detector ran on it
        (``detect_every > 1``).  In a ``"tracked"`` frame, the faces found in the
        windows, grown by :data:`TRACKED_GROWTH`.
    outcomes : tuple of RegionOutcome
        The method's outcome for each protected region.
    scope : {"full", "cut", "tracked"} or None
        What the detections of this frame looked at: the whole frame with every
        detector (``"full"``; ``"cut"`` when a scene cut called for it, and every
        track ended there), only windows around the faces already tracked
        (``"tracked"``, see ``track_every``), or nothing (None).
    """

    frame: VideoFrame
    pixels: np.ndarray = field(repr=False)
    regions: tuple[TrackedRegion, ...]
    detections: Detections | None
    outcomes: tuple[RegionOutcome, ...] = ()
    scope: str | None = None

    @property
    def index(self) -> int:
        return self.frame.index

    @property
    def tracks(self) -> tuple[int, ...]:
        return tuple(r.track for r in self.regions)

    @property
    def detected(self) -> bool:
        return self.detections is not None


def _validate(detect_every: int, noise: str, track_every: int = 0) -> None:
    if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
        raise ValueError(f"detect_every must be an integer >= 1, got {detect_every!r}")
    if isinstance(track_every, bool) or not isinstance(track_every, int) or track_every < 0:
        raise ValueError(f"track_every must be an integer >= 0, got {track_every!r}")
    if noise not in NOISE_MODES:
        raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}, got {noise!r}")


def anonymize_video(
    source: str | os.PathLike[str] | VideoReader | Iterable[np.ndarray | VideoFrame],
    *,
    config: AnonymizeConfig | None = None,
    anonymizer: Any = None,
    detect_every: int | None = None,
    track_every: int | None = None,
    noise: str | None = None,
    frame_rate: float | Fraction | None = None,
    pad: int = 3,
    max_gap: float = 0.5,
    smooth: int = 1,
    tracker: str = "bytetrack-diou",
    rng: np.random.Generator | None = None,
) -> Iterator[FrameResult]:
    """Detect, track and protect every frame of a video; yields one :class:`FrameResult` per frame.

    Frames come out in order, each once the frames up to ``max_gap`` seconds
    (or ``pad + detect_every - 1`` frames) after it have been detected: that
    many frames are held in memory.

    Parameters
    ----------
    source : path, VideoReader or iterable of arrays / VideoFrame
        A video file (opened with :func:`pixveil.io.video.open_video`), an open
        reader, or frames: ``(H, W, 3)`` uint8 RGB arrays (numbered at
        ``frame_rate``) or :class:`~pixveil.io.video.VideoFrame` objects.
    config : AnonymizeConfig, optional
        Targets, method and its parameters, thresholds, ``max_size``, seed...
        as for images.
    anonymizer : pixveil.pipeline.Anonymizer, optional
        A ready one (models loaded once for many videos); overrides ``config``.
    detect_every : int, optional
        Run the detectors on one frame in this many (1 = every frame); default
        ``config.detect_every`` (8).  The frames between are covered by
        interpolating each track between its detections (and, with
        ``track_every``, by re-detecting the tracked faces).  The detectors see a
        copy of at most ``config.max_size`` or else ``config.video_max_size``
        (default None: full resolution) pixels on its longer side.
    track_every : int, optional
        Between two full detections, look for the faces already found again,
        on one frame in this many, in windows around where they are expected
        (:meth:`pixveil.detect.faces.FaceDetector.detect_near`, a fraction of
        a full detection's cost); 0 = never.  Fast faces are then followed
        frame by frame while new faces (and plates, text) are found at the next
        full detection.  Default ``config.track_every``.
    noise : {"frame", "track"}, optional
        For ``dp-pix``/``dp-blur``: ``"frame"`` draws fresh noise in every frame
        (``k`` frames of one region compose to ``k·ε``); ``"track"`` protects each
        track once and shows that one release in all its frames (``ε`` per track;
        see :mod:`pixveil.video.temporal`); default ``config.video_noise``.
        ``gan-face`` (one latent per track)
        and ``plate-synth`` (one synthetic text per track) always work per track.
    frame_rate : float, optional
        Rate of bare-array sources (default 30).
    pad : int
        Frames covered before a track's first and after its last detection
        (on top of the ``detect_every - 1`` frames between detections).
    max_gap : float
        Seconds a track may go undetected and still be interpolated across.
    smooth : int
        Neighbouring detections on each side averaged into each detected box.
    tracker : str
        One of :data:`pixveil.video.tracking.TRACKERS`; default ByteTrack
        associating by DIoU, which held every face as one track on the
        generated clips where plain IoU split fast faces seen one frame in five
        (``bench/bench_video.py --section trackers``).
    rng : numpy Generator, optional
        Privacy noise (default: ``config.seed`` if set, else a secure source).

    Raises
    ------
    InputError
        Damaged or unreadable source (one line naming the file).
    DetectionError, ProtectionError
        A detector or the method failed on a frame: the caller must not publish
        any frame of this video (:func:`process_video` writes nothing then).
    """
    if anonymizer is None:
        from pixveil.pipeline import Anonymizer

        anonymizer = Anonymizer(config)
    cfg: AnonymizeConfig = anonymizer.config
    if cfg.region != "face":
        # fail closed rather than protect less than asked: tracks follow faces
        raise ValueError(
            f"region {cfg.region!r} is not supported for videos yet; "
            "videos protect the face region (use --region face and a larger --margin)"
        )
    detect_every = cfg.detect_every if detect_every is None else detect_every
    track_every = cfg.track_every if track_every is None else track_every
    noise = cfg.video_noise if noise is None else noise
    _validate(detect_every, noise, track_every)
    if rng is None:
        rng = None if cfg.seed is None else np.random.default_rng(cfg.seed)
    own_reader = None
    if isinstance(source, (str, os.PathLike)):
        own_reader = open_video(
            source, max_pixels=anonymizer.max_pixels, allow_damaged=cfg.allow_damaged
        )
        source = own_reader
    try:
        if isinstance(source, VideoReader):
            rate = float(source.info.frame_rate or 30)
            frames: Iterator[VideoFrame] = iter(source)
        else:
            rate = float(frame_rate or 30)
            frames = _frames_of(source, Fraction(rate).limit_denominator(100_000))
        yield from _run(
            frames,
            anonymizer,
            rate=rate,
            detect_every=detect_every,
            track_every=track_every,
            noise=noise,
            pad=pad,
            max_gap_frames=max(1, round(max_gap * rate)),
            smooth=smooth,
            tracker=tracker,
            rng=rng,
        )
    finally:
        if own_reader is not None:
            own_reader.close()


def _frames_of(items: Iterable[np.ndarray | VideoFrame], rate: Fraction) -> Iterator[VideoFrame]:
    tb = 1 / rate if (1 / rate).numerator == 1 else Fraction(1, 90_000)
    step = round(1 / (rate * tb))
    for i, item in enumerate(items):
        if isinstance(item, VideoFrame):
            yield item
        elif isinstance(item, np.ndarray):
            yield VideoFrame(i, item, i * step, tb, step)
        else:
            raise InputError(
                f"frame {i} must be an array or a VideoFrame, got {type(item).__name__}"
            )


def _run(
    frames: Iterator[VideoFrame],
    anonymizer: Any,
    *,
    rate: float,
    detect_every: int,
    track_every: int,
    noise: str,
    pad: int,
    max_gap_frames: int,
    smooth: int,
    tracker: str,
    rng: np.random.Generator | None,
) -> Iterator[FrameResult]:
    from pixveil.protect import protect_regions

    cfg: AnonymizeConfig = anonymizer.config
    method = anonymizer.method
    per_track: TrackFaces | TrackRelease | None = None
    if method.name == "gan-face":
        per_track = TrackFaces(method)
    elif method.randomized and (method.name in _PER_TRACK_METHODS or noise == "track"):
        per_track = TrackRelease(method)
    tracks = DetectionTracker(tracker, frame_rate=rate, max_gap_frames=max_gap_frames)
    look = Lookahead(detect_every=detect_every, pad=pad, max_gap=max_gap_frames, smooth=smooth)
    buffer: deque[tuple[VideoFrame, _Found | None]] = deque()
    # detections of frames still in the buffer: track -> [(frame, region)]
    seen: dict[int, list[tuple[int, Region]]] = {}
    # best detection score of each track: a kind-specific method (gan-face's
    # swap_threshold) takes or leaves a whole track, never alternate frames of it
    best: dict[int, float] = {}

    def per_track_handles(tr: TrackedRegion) -> bool:
        if per_track is None:
            return False
        score = max(best.get(tr.track, tr.region.score), tr.region.score)
        return per_track.handles(dataclasses.replace(tr.region, score=score))

    def finish(item: tuple[VideoFrame, _Found | None]) -> FrameResult:
        frame, found = item
        dets, scope = (None, None) if found is None else found
        regions = look.regions(frame.index)
        if cfg.dry_run:
            return FrameResult(frame, frame.pixels, tuple(regions), dets, (), scope)
        mine = [r for r in regions if per_track_handles(r)]
        others = [r.region for r in regions if r not in mine]
        pixels = frame.pixels
        outcomes: list[RegionOutcome] = []
        if mine:
            assert per_track is not None
            for tr in mine:
                per_track.ensure(tr.track, _representative(tr.track, buffer, seen, tr), rng)
            done: Protected = per_track.render(pixels, mine)
            pixels = done.image
            outcomes.extend(done.outcomes)
        if others:
            done = protect_regions(method, pixels, others, rng=rng, companion=anonymizer.companion)
            pixels = done.image
            outcomes.extend(done.outcomes)
        if cfg.boxes and dets is not None:
            from pixveil.overlay import draw_detections

            pixels = draw_detections(pixels, dets)
        if pixels is frame.pixels:
            pixels = pixels.copy()
        return FrameResult(frame, pixels, tuple(regions), dets, tuple(outcomes), scope)

    def observe(frame: VideoFrame, found: _Found | None) -> None:
        i = frame.index
        if found is not None:
            dets, scope = found
            t = frame.time if frame.time is not None else i / rate
            if scope == "cut":  # a new shot: no track continues across it
                tracks.reset()
            observed = tracks.update(dets, t, kinds=None if scope != "tracked" else ("face",))
            look.add(i, observed)
            for tid, region in observed:
                seen.setdefault(tid, []).append((i, region))
                best[tid] = max(best.get(tid, 0.0), region.score)
        else:
            look.seen_until(i)
        buffer.append((frame, found))

    # Detection runs in a worker thread (ONNX Runtime releases the GIL) while this
    # thread decodes ahead and protects, and the consumer encodes, earlier frames.
    # One worker: the jobs run in frame order, so the follower's state (where the
    # faces are expected) is only ever touched by that thread, in order.
    pending: deque[tuple[VideoFrame, Future[_Found | None] | None]] = deque()
    size = cfg.max_size if cfg.max_size is not None else cfg.video_max_size
    follower = _Follower(keep=max(detect_every, track_every))
    follow = track_every > 0 and detect_every > 1 and anonymizer.can_detect_near

    def detect_full(index: int, pixels: np.ndarray, scope: str = "full") -> _Found:
        dets = anonymizer.detect(pixels, max_size=size)
        if follow:
            follower.update(index, dets.of_kind("face"), reset=scope == "cut")
        return dets, scope

    def detect_tracked(index: int, pixels: np.ndarray) -> _Found | None:
        expected = follower.expected(index)
        if not expected:
            return None
        # a window re-finds the face it was opened for; anything else in it (part
        # of a face at an occlusion, a new face) waits for the next full detection
        found = _matching(anonymizer.detect_near(pixels, expected).of_kind("face"), expected)
        follower.update(index, found)
        h, w = pixels.shape[:2]
        grown = (r.scaled(TRACKED_GROWTH).clipped(w, h) for r in found)
        return Detections.of([r for r in grown if r is not None], w, h), "tracked"

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixveil-detect")
    try:
        cuts = _CutDetector()
        for frame in frames:
            check_pixel_limit(frame.pixels, anonymizer.max_pixels)
            i = frame.index
            job: Future[_Found | None] | None = None
            if cuts.is_cut(frame.pixels):
                job = pool.submit(detect_full, i, frame.pixels, "cut")
            elif i % detect_every == 0:
                job = pool.submit(detect_full, i, frame.pixels)
            elif follow and i % track_every == 0:
                job = pool.submit(detect_tracked, i, frame.pixels)
            pending.append((frame, job))
            while pending and (
                pending[0][1] is None or pending[0][1].done() or len(pending) > _AHEAD
            ):
                done, fut = pending.popleft()
                observe(done, None if fut is None else fut.result())
                while buffer and look.ready(buffer[0][0].index):
                    yield _next_result(buffer, seen, look, finish)
                    _forget(look, per_track, best)
        while pending:
            done, fut = pending.popleft()
            observe(done, None if fut is None else fut.result())
            while buffer and look.ready(buffer[0][0].index):
                yield _next_result(buffer, seen, look, finish)
                _forget(look, per_track, best)
        while buffer:
            yield _next_result(buffer, seen, look, finish)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


#: Mean absolute difference (0..255) between the 32x18 grey thumbnails of two
#: consecutive frames above which the second starts a new shot.  On the shared
#: film excerpt (Megamind.avi) its four cuts gave 34-43 and every other pair of
#: frames under 3.5; on the pedestrian clip (vtest.avi) no pair exceeded 2.1
#: (``bench/bench_video.py --section windows``).
CUT_THRESHOLD = 12.0


class _CutDetector:
    """Scene cuts: a new shot brings new faces that no window is looking for."""

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        self.threshold = float(threshold)
        self._prev: np.ndarray | None = None

    def is_cut(self, pixels: np.ndarray) -> bool:
        """Whether ``pixels`` (the next frame) starts a new shot (never the first frame)."""
        import cv2

        small = cv2.resize(pixels, (32, 18), interpolation=cv2.INTER_AREA)
        thumb = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
        prev, self._prev = self._prev, thumb
        return prev is not None and float(np.abs(thumb - prev).mean()) > self.threshold


class _Follower:
    """Where the faces found so far are expected in a later frame (detection thread only).

    Each face seen keeps its last box and a velocity (from its previous sighting);
    a face not seen again for ``keep`` frames is dropped, so a face that left the
    picture stops costing windows, and a face one search missed is still looked for.
    """

    def __init__(self, *, keep: int) -> None:
        self.keep = int(keep)
        # [box (4,), velocity (4,) per frame, last frame seen]
        self._faces: list[tuple[np.ndarray, np.ndarray, int]] = []

    def expected(self, index: int) -> list[tuple[float, ...]]:
        """The boxes where the faces are expected in frame ``index``."""
        out = []
        for box, vel, last in self._faces:
            b = box + vel * (index - last)
            if b[2] > b[0] and b[3] > b[1]:
                out.append(tuple(float(v) for v in b))
        return out

    def update(self, index: int, faces: Iterable[Region], *, reset: bool = False) -> None:
        """Record the faces found in frame ``index`` (a full or a windowed search).

        ``reset``: a new shot; the faces seen before it are no longer expected.
        """
        olds = [] if reset else list(self._faces)
        new: list[tuple[np.ndarray, np.ndarray, int]] = []
        for r in sorted(faces, key=lambda r: -r.score):
            box = np.asarray(r.box, dtype=np.float64)
            match = _nearest(box, [o[0] + o[1] * (index - o[2]) for o in olds])
            if match is None:
                new.append((box, np.zeros(4), index))
                continue
            obox, _, olast = olds.pop(match)
            vel = (box - obox) / max(1, index - olast)
            new.append((box, vel, index))
        new.extend(o for o in olds if index - o[2] < self.keep)
        self._faces = new


def _matching(found: list[Region], expected: list[tuple[float, ...]]) -> list[Region]:
    """The best-scored detection that continues each expected box (one each, at most)."""
    left = [np.asarray(b, dtype=np.float64) for b in expected]
    out = []
    for r in sorted(found, key=lambda r: -r.score):
        box = np.asarray(r.box, dtype=np.float64)
        j = _nearest(box, left)
        if j is None:
            continue
        size = max(box[2] - box[0], box[3] - box[1])
        other = left[j]
        if not 0.5 <= size / max(other[2] - other[0], other[3] - other[1], 1e-6) <= 2.0:
            continue  # a part of the face, or a different one
        del left[j]
        out.append(r)
    return out


def _nearest(box: np.ndarray, others: list[np.ndarray]) -> int | None:
    """The index of the box in ``others`` that ``box`` most likely continues, if any."""
    best, best_d = None, float("inf")
    size = max(box[2] - box[0], box[3] - box[1])
    c = (box[:2] + box[2:]) / 2
    for j, o in enumerate(others):
        d = float(np.abs((o[:2] + o[2:]) / 2 - c).sum())
        if d <= size and d < best_d:
            best, best_d = j, d
    return best


def _forget(
    look: Lookahead, per_track: TrackFaces | TrackRelease | None, best: dict[int, float]
) -> None:
    """Drop the per-track state of tracks that have ended (long videos, many tracks)."""
    keep = look.tracks()
    if per_track is not None:
        per_track.forget(keep)
    for tid in [t for t in best if t not in keep]:
        del best[tid]


def _next_result(
    buffer: deque[tuple[VideoFrame, _Found | None]],
    seen: dict[int, list[tuple[int, Region]]],
    look: Lookahead,
    finish: Callable[[tuple[VideoFrame, _Found | None]], FrameResult],
) -> FrameResult:
    """Finish the oldest held frame, then forget what no later frame needs."""
    result = finish(buffer[0])
    buffer.popleft()
    index = result.frame.index
    look.prune(index + 1)
    for tid in list(seen):
        kept = [(i, r) for i, r in seen[tid] if i > index]
        if kept:
            seen[tid] = kept
        else:
            del seen[tid]
    return result


def _representative(
    track: int,
    buffer: deque[tuple[VideoFrame, _Found | None]],
    seen: dict[int, list[tuple[int, Region]]],
    tr: TrackedRegion,
) -> Representative:
    """The track's best-scored detection among the frames still held (else this frame's region)."""
    held = {f.index: f for f, _ in buffer}
    cands = [(i, held[i].pixels, r) for i, r in seen.get(track, []) if i in held]
    if cands:
        return best_observation(cands)
    frame = buffer[0][0]
    return (frame.index, frame.pixels, tr.region)


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class VideoOutcome:
    """What :func:`process_video` did with one video.

    Attributes
    ----------
    path, output : Path
        The source, and the file written (None for a dry run).
    info : VideoInfo
        The source as probed.
    frames : int
        Frames read and written.
    detected_frames : int
        Frames the detectors ran on, over the whole frame.
    tracked_frames : int
        Frames searched only around the faces already tracked (``track_every``).
    tracks : dict of str to int
        Tracks per region kind (``{"face": 3}``).
    regions : dict of str to int
        Protected region-frames per kind (a face covered in 100 frames counts 100).
    detections : dict of str to int
        Raw detections per kind, over the detection frames.
    events : dict of str to int
        Method events (e.g. ``{"fallback": 1}``).
    audio_streams : int
        Audio streams copied.
    seconds : float
        Wall time of the whole run.
    """

    path: Path
    output: Path | None
    info: VideoInfo
    frames: int
    detected_frames: int
    tracks: dict[str, int]
    regions: dict[str, int]
    detections: dict[str, int]
    events: dict[str, int] = field(default_factory=dict)
    audio_streams: int = 0
    seconds: float = 0.0
    tracked_frames: int = 0

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": str(self.path),
            "output": None if self.output is None else str(self.output),
            "frames": self.frames,
            "detected_frames": self.detected_frames,
            "tracked_frames": self.tracked_frames,
            "tracks": dict(self.tracks),
            "regions": dict(self.regions),
            "detections": dict(self.detections),
            "events": dict(self.events),
            "audio_streams": self.audio_streams,
            "seconds": round(self.seconds, 3),
        }


def process_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None,
    config: AnonymizeConfig | None = None,
    *,
    anonymizer: Any = None,
    detect_every: int | None = None,
    track_every: int | None = None,
    audio: bool | None = None,
    noise: str | None = None,
    crf: int | None = None,
    root: str | os.PathLike[str] | None = None,
    protected_paths: Iterable[str | os.PathLike[str]] = (),
    progress: Callable[[int, int | None], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    **options: Any,
) -> VideoOutcome:
    """Protect the video ``src`` into ``dst`` (H.264, audio copied, no metadata), fail closed.

    ``dst``'s extension picks the container (``.mp4``, ``.mov``, ``.mkv``; see
    :func:`pixveil.io.video.video_output_suffix`).  The output is written through a
    temporary file and appears only once every frame has been detected,
    protected and encoded: any failure (a damaged frame, a detector or method
    error, a full disk) raises and leaves no output.  With ``config.dry_run`` (or
    ``dst=None``) nothing is written.

    Parameters
    ----------
    src, dst : path
    config : AnonymizeConfig, optional
    anonymizer : pixveil.pipeline.Anonymizer, optional
        Reuse loaded models across videos (overrides ``config``).
    detect_every, track_every, noise
        See :func:`anonymize_video`.
    audio : bool, optional
        Copy the audio streams untouched or write none; default ``config.audio``.
    crf : int, optional
        x264 quality, 0 (lossless) to 51; default
        :data:`pixveil.io.video.DEFAULT_CRF`.  ``config.quality`` as an int
        (1..100, higher is better) maps onto it when ``crf`` is None.
    root : path, optional
        Output folder that ``dst`` must stay inside, no symbolic link followed.
    protected_paths : iterable of path
        Files the output must never replace (the batch's inputs; ``src`` always).
    progress : callable, optional
        Called as ``progress(frames_done, total_or_None)`` after each frame.
    on_frame : callable, optional
        Called with each :class:`FrameResult` before its frame is encoded (for
        evaluation: regions, track ids, protected pixels).
    **options
        Passed to :func:`anonymize_video` (``pad``, ``max_gap``, ``smooth``, ``tracker``).

    Returns
    -------
    VideoOutcome
    """
    from pixveil.io.video import DEFAULT_CRF

    start = _time.perf_counter()
    if anonymizer is None:
        from pixveil.pipeline import Anonymizer

        anonymizer = Anonymizer(config)
    cfg: AnonymizeConfig = anonymizer.config
    detect_every = cfg.detect_every if detect_every is None else detect_every
    track_every = cfg.track_every if track_every is None else track_every
    noise = cfg.video_noise if noise is None else noise
    audio = cfg.audio if audio is None else audio
    _validate(detect_every, noise, track_every)
    if crf is None:
        crf = _crf_from_quality(cfg.quality, DEFAULT_CRF)
    reader = open_video(src, max_pixels=anonymizer.max_pixels, allow_damaged=cfg.allow_damaged)
    stats = _Stats()
    with reader:
        info = reader.info
        total = info.n_frames
        results = anonymize_video(
            reader,
            anonymizer=anonymizer,
            detect_every=detect_every,
            track_every=track_every,
            noise=noise,
            **options,
        )

        def protected() -> Iterator[VideoFrame]:
            for r in results:
                stats.add(r)
                if on_frame is not None:
                    on_frame(r)
                if progress is not None:
                    progress(stats.frames, total)
                yield r.frame.with_pixels(r.pixels)

        written: Path | None = None
        if cfg.dry_run or dst is None:
            for _ in protected():
                pass
        else:
            written = write_video(
                dst,
                protected(),
                frame_rate=info.frame_rate,
                audio_from=src if audio else None,
                crf=crf,
                protected_paths=[src, *protected_paths],
                root=root,
            )
    return VideoOutcome(
        path=Path(src),
        output=written,
        info=info,
        frames=stats.frames,
        detected_frames=stats.detected,
        tracked_frames=stats.tracked,
        tracks={k: len(v) for k, v in sorted(stats.tracks.items())},
        regions=dict(sorted(stats.regions.items())),
        detections=dict(sorted(stats.detections.items())),
        events=dict(sorted(stats.events.items())),
        audio_streams=len(info.audio_codecs) if (audio and written is not None) else 0,
        seconds=_time.perf_counter() - start,
    )


def _crf_from_quality(quality: int | str, default: int) -> int:
    """Map an image quality (1..100, higher better) onto x264's CRF (51..0); 'keep' = default."""
    if isinstance(quality, int) and not isinstance(quality, bool):
        return round(51 - (quality - 1) * 51 / 99)
    return default


class _Stats:
    def __init__(self) -> None:
        self.frames = 0
        self.detected = 0
        self.tracked = 0
        self.tracks: dict[str, set[int]] = {}
        self.regions: Counter[str] = Counter()
        self.detections: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def add(self, r: FrameResult) -> None:
        self.frames += 1
        if r.detections is not None:
            if r.scope == "tracked":
                self.tracked += 1
            else:
                self.detected += 1
            for region in r.detections:
                self.detections[region.kind] += 1
        for tr in r.regions:
            self.tracks.setdefault(tr.region.kind, set()).add(tr.track)
            self.regions[tr.region.kind] += 1
        for o in r.outcomes:
            self.events.update(o.events)
