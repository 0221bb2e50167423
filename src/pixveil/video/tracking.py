"""Tracks of detections across frames, and the look-ahead that turns them into regions.

Two layers:

* :class:`DetectionTracker` gives every detection a track id.  The association is
  done by a maintained tracker library (``trackers``, Roboflow's clean-room
  re-implementations; ByteTrack associating by DIoU by default, chosen by
  measurement in ``bench/bench_video.py --section trackers``), one tracker per region kind, fed with each detection
  frame's timestamp so that skipped frames (``detect_every``) and variable frame
  rates move its Kalman filter by the right amount.  A detection the library leaves
  without a track (ByteTrack reports the first detection of a track as untracked,
  and low-score detections that extend nothing) still gets an id: the first
  detection of a track is linked to the track it started, and any other one
  becomes a track of its own.  No detection is ever dropped.

* :class:`Lookahead` holds each track's observations and, because files are
  processed offline, answers for a frame only once the frames after it have been
  detected too.  The region of a track in frame ``t`` is

  - the observation of frame ``t``, smoothed over its neighbours (a centred
    moving average over ``smooth`` observations on each side, box and landmarks,
    each pair of neighbours taken as its linear interpolation at ``t`` so that
    unevenly spaced observations do not drag the box behind a moving face);
  - between two observations at most ``max_gap`` frames apart: the linear
    interpolation of the two (box and landmarks);
  - within ``pad`` frames (plus ``detect_every - 1``, the frames no detector
    looked at) before the track's first or after its last observation: the
    nearest observation continued at the track's velocity (its size never
    shrinking), grown by ``pad_growth`` per frame of extrapolation (a face
    entering the picture or turning away is still covered).

  A face that any frame detects is thus covered in its neighbours too.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixveil.errors import MissingDependencyError
from pixveil.types import Box, Region, box_iou

__all__ = [
    "TRACKERS",
    "DetectionTracker",
    "Lookahead",
    "TrackedRegion",
    "make_tracker",
]

#: Trackers that :func:`make_tracker` builds, by name: the library's tracker and,
#: after a dash, the box similarity it associates with (plain IoU when none).
#: GIoU and DIoU stay informative for boxes that no longer overlap (a fast face
#: seen one frame in ``detect_every``), where IoU is 0.
TRACKERS: tuple[str, ...] = (
    "bytetrack",
    "bytetrack-giou",
    "bytetrack-diou",
    "sort",
    "sort-diou",
    "ocsort",
)

# similarity -> (class name in trackers, smallest similarity that still associates)
_SIMILARITY = {"iou": (None, 0.05), "giou": ("GIoU", -0.4), "diou": ("DIoU", -0.4)}


@dataclass(frozen=True)
class TrackedRegion:
    """A region to protect in one frame, and the track it belongs to.

    Attributes
    ----------
    region : Region
        In pixels of the frame.
    track : int
        Track id, unique within one video (>= 1).
    source : str
        ``"detected"`` (this frame's detection, smoothed), ``"interpolated"``
        (between two detections of the track) or ``"extended"`` (before the first
        or after the last detection of the track).
    """

    region: Region
    track: int
    source: str


def make_tracker(name: str, *, frame_rate: float, max_gap_frames: int) -> Any:
    """A tracker from the ``trackers`` library, set up for pixveil's detections.

    Every detection may start a track (the detectors already applied their
    thresholds), tracks are reported from their first match, and a track survives
    ``max_gap_frames`` frames without a detection.
    """
    try:
        import trackers
    except ImportError as exc:  # pragma: no cover - installed with the [video] extra
        raise MissingDependencyError("trackers", "video") from exc
    if name not in TRACKERS:
        raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}, got {name!r}")
    kind, _, sim = name.partition("-")
    cls_name, threshold = _SIMILARITY[sim or "iou"]
    similarity = None if cls_name is None else getattr(trackers, cls_name)()
    # the libraries count the lost-track buffer in frames of a 30 fps video
    buffer = max(1, round(max_gap_frames * 30.0 / max(frame_rate, 1e-6)))
    common: dict[str, Any] = {
        "lost_track_buffer": buffer,
        "frame_rate": float(frame_rate),
        "minimum_consecutive_frames": 1,
        "minimum_iou_threshold": threshold,
        "iou": similarity,
    }
    if kind == "bytetrack":
        return trackers.ByteTrackTracker(
            **common, track_activation_threshold=0.0, high_conf_det_threshold=0.4
        )
    if kind == "sort":
        return trackers.SORTTracker(**common, track_activation_threshold=0.0)
    return trackers.OCSORTTracker(**common, high_conf_det_threshold=0.0)


class DetectionTracker:
    """Assigns a track id to every detection of a detection frame (see the module notes).

    Parameters
    ----------
    tracker : str
        One of :data:`TRACKERS`.
    frame_rate : float
        Nominal frame rate of the video.
    max_gap_frames : int
        Frames a track may go undetected and keep its id.
    """

    def __init__(self, tracker: str = "bytetrack-diou", *, frame_rate: float, max_gap_frames: int):
        make_tracker(tracker, frame_rate=frame_rate, max_gap_frames=max_gap_frames)  # validates
        self._name = tracker
        self._frame_rate = float(frame_rate)
        self._max_gap = int(max_gap_frames)
        self._trackers: dict[str, Any] = {}
        self._ids: dict[tuple[str, int], int] = {}
        self._next = itertools.count(1)
        # untracked detections of the previous detection frame, per kind: (track, box)
        self._orphans: dict[str, list[tuple[int, Box]]] = {}
        self._last_time: dict[str, float] = {}

    def reset(self) -> None:
        """End every track (a scene cut): later detections start new tracks, new ids."""
        self._trackers = {}
        self._ids = {}  # the new trackers number their tracks from the start again
        self._orphans = {}
        self._last_time = {}

    def update(
        self, regions: Iterable[Region], time: float, *, kinds: Iterable[str] | None = None
    ) -> list[tuple[int, Region]]:
        """(track id, region) for every region of one detection frame at ``time`` seconds.

        ``kinds``: the region kinds this frame was searched for (default: every
        kind); the trackers of other kinds are left as they are, not told that
        their objects vanished.
        """
        import supervision as sv

        by_kind: dict[str, list[Region]] = {}
        for r in regions:
            by_kind.setdefault(r.kind, []).append(r)
        out: list[tuple[int, Region]] = []
        searched = None if kinds is None else set(kinds)
        for kind in sorted(set(by_kind) | set(self._trackers)):
            if searched is not None and kind not in searched:
                if kind in by_kind:
                    raise ValueError(f"a {kind!r} region in a frame searched for {searched}")
                continue
            # frames since this kind's previous detection frame: how far an
            # untracked object may have moved
            step = 1.0
            last = self._last_time.get(kind)
            if last is not None:
                step = max(1.0, (float(time) - last) * self._frame_rate)
            self._last_time[kind] = float(time)
            found = by_kind.get(kind, [])
            tracker = self._trackers.get(kind)
            if tracker is None:
                tracker = make_tracker(
                    self._name, frame_rate=self._frame_rate, max_gap_frames=self._max_gap
                )
                self._trackers[kind] = tracker
            if found:
                dets = sv.Detections(
                    xyxy=np.array([r.box for r in found], dtype=np.float32),
                    confidence=np.array([r.score for r in found], dtype=np.float32),
                    data={"index": np.arange(len(found))},
                )
            else:
                dets = sv.Detections.empty()
                dets.data["index"] = np.zeros(0, dtype=int)
            result = tracker.update(dets, timestamp=float(time))
            indices = result.data.get("index", np.zeros(0, dtype=int))
            ids = result.tracker_id if result.tracker_id is not None else []
            assigned: dict[int, int] = {}
            for i, tid in zip(indices, ids, strict=True):
                assigned[int(i)] = int(tid)
            orphans = self._orphans.get(kind, [])
            new_orphans: list[tuple[int, Box]] = []
            for i, r in enumerate(found):
                tid = assigned.get(i, -1)
                if tid >= 0:
                    key = (kind, tid)
                    gid = self._ids.get(key)
                    if gid is None:
                        # a track's first report: it started from an untracked detection
                        gid = _best_orphan(orphans, r.box, step)
                        if gid is None:
                            gid = next(self._next)
                        else:
                            orphans = [o for o in orphans if o[0] != gid]
                        self._ids[key] = gid
                else:
                    gid = next(self._next)
                    new_orphans.append((gid, r.box))
                out.append((gid, r))
            self._orphans[kind] = new_orphans
        return out


def _best_orphan(orphans: list[tuple[int, Box]], box: Box, step: float = 1.0) -> int | None:
    """The untracked detection of the previous detection frame that ``box`` continues.

    The best-overlapping one; without overlap (a fast face between detection
    frames) the nearest centre within ``1 + step / 2`` box sizes (L1), where
    ``step`` is the number of frames since that detection frame (a face seen one
    frame in three may have moved further than one seen in every frame).
    """
    best, best_iou = None, 0.0
    for gid, obox in orphans:
        iou = box_iou(obox, box)
        if iou > best_iou:
            best, best_iou = gid, iou
    if best is None:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        size = max(box[2] - box[0], box[3] - box[1])
        limit = (1.0 + step / 2.0) * size
        for gid, obox in orphans:
            ox, oy = (obox[0] + obox[2]) / 2, (obox[1] + obox[3]) / 2
            d = abs(ox - cx) + abs(oy - cy)
            if d <= limit:
                best, limit = gid, d
    return best


# ----------------------------------------------------------------------------- look-ahead


@dataclass
class _Track:
    frames: list[int] = dataclasses.field(default_factory=list)
    regions: list[Region] = dataclasses.field(default_factory=list)

    def add(self, frame: int, region: Region) -> None:
        if self.frames and frame <= self.frames[-1]:
            # two detections of one track in a frame cannot happen with one
            # tracker per kind; keep the better-scored one if it ever does
            if frame == self.frames[-1] and region.score > self.regions[-1].score:
                self.regions[-1] = region
            return
        self.frames.append(frame)
        self.regions.append(region)


class Lookahead:
    """Per-frame regions of every track, from observations at detection frames.

    Parameters
    ----------
    detect_every : int
        Detection runs on one frame in this many.
    pad : int
        Frames covered before a track's first and after its last detection, on top
        of the ``detect_every - 1`` frames no detector looked at.
    max_gap : int
        Largest distance (frames) between two observations of a track that is
        interpolated; a longer gap is covered by ``pad`` on both sides only.
    smooth : int
        Observations on each side averaged into a detected frame's box (0 = none).
    pad_growth : float
        Relative growth of an extended box per frame of extrapolation (up to +50 %).
    """

    def __init__(
        self,
        *,
        detect_every: int = 1,
        pad: int = 3,
        max_gap: int = 15,
        smooth: int = 1,
        pad_growth: float = 0.04,
    ) -> None:
        for name, v, lo in (
            ("detect_every", detect_every, 1),
            ("pad", pad, 0),
            ("max_gap", max_gap, 1),
            ("smooth", smooth, 0),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not 0.0 <= float(pad_growth) <= 0.5:
            raise ValueError(f"pad_growth must be in [0, 0.5], got {pad_growth!r}")
        self.detect_every = detect_every
        self.reach = pad + detect_every - 1
        self.max_gap = max(max_gap, detect_every)
        self.smooth = smooth
        self.pad_growth = float(pad_growth)
        self._tracks: dict[int, _Track] = {}
        self._last_frame = -1

    @property
    def horizon(self) -> int:
        """Frames after ``t`` that must have been seen before frame ``t`` is final."""
        return max(self.reach, self.max_gap)

    def add(self, frame: int, observations: Iterable[tuple[int, Region]]) -> None:
        """Record a detection frame's (track id, region) pairs (frames in increasing order)."""
        if frame <= self._last_frame:
            raise ValueError(f"frames must be added in increasing order, got {frame}")
        self._last_frame = frame
        for tid, region in observations:
            self._tracks.setdefault(tid, _Track()).add(frame, region)

    def seen_until(self, frame: int) -> None:
        """Say that every frame up to ``frame`` has been looked at (detected or skipped)."""
        self._last_frame = max(self._last_frame, frame)

    def ready(self, frame: int, *, end: bool = False) -> bool:
        """Whether frame ``frame`` can be answered (its horizon has been seen, or the video ended)."""
        return end or self._last_frame >= frame + self.horizon

    def tracks(self) -> set[int]:
        """The ids of the tracks still held (not yet pruned)."""
        return set(self._tracks)

    def observation_frames(self, track: int) -> list[int]:
        """The frames in which ``track`` was detected so far."""
        t = self._tracks.get(track)
        return list(t.frames) if t is not None else []

    def observation(self, track: int, frame: int) -> Region | None:
        t = self._tracks.get(track)
        if t is None:
            return None
        i = bisect.bisect_left(t.frames, frame)
        if i < len(t.frames) and t.frames[i] == frame:
            return t.regions[i]
        return None

    def regions(self, frame: int) -> list[TrackedRegion]:
        """The regions of every track in ``frame`` (see the module notes)."""
        out: list[TrackedRegion] = []
        for tid, t in self._tracks.items():
            got = self._region_of(t, frame)
            if got is not None:
                region, source = got
                out.append(TrackedRegion(region, tid, source))
        out.sort(key=lambda r: r.track)
        return out

    def prune(self, before: int) -> None:
        """Forget observations no later frame than ``before`` can use."""
        keep_from = before - max(self.reach, self.max_gap, self.smooth * self.detect_every) - 1
        for tid in list(self._tracks):
            t = self._tracks[tid]
            if t.frames and t.frames[-1] < keep_from:
                del self._tracks[tid]
                continue
            # keep the last observation before keep_from too (interpolation, velocity)
            cut = max(0, bisect.bisect_left(t.frames, keep_from) - 2)
            if cut:
                del t.frames[:cut]
                del t.regions[:cut]

    # -- geometry

    def _smoothed(self, t: _Track, i: int) -> Region:
        if self.smooth == 0:
            return t.regions[i]
        lo, hi = max(0, i - self.smooth), min(len(t.frames), i + self.smooth + 1)
        # only observations close in time (not across a long gap)
        span = self.smooth * self.detect_every
        idx = [j for j in range(lo, hi) if abs(t.frames[j] - t.frames[i]) <= span]
        if len(idx) <= 1:
            return t.regions[i]
        # as many on each side; each pair (k-th before, k-th after) enters as its
        # linear interpolation at this frame, so a steady motion is not biased even
        # when the observations are unevenly spaced (an occluded or missed frame)
        left = [j for j in idx if j < i][::-1]
        right = [j for j in idx if j > i]
        n = min(len(left), len(right))
        if n == 0:
            return t.regions[i]
        f = t.frames[i]
        weights = [(i, 1.0)]
        for a, b in zip(left[:n], right[:n], strict=True):
            w = (f - t.frames[a]) / (t.frames[b] - t.frames[a])
            weights += [(a, 2.0 * (1 - w)), (b, 2.0 * w)]
        total = 1.0 + 2.0 * n
        boxes = np.array([t.regions[j].box for j, _ in weights], dtype=np.float64)
        ws = np.array([w for _, w in weights]) / total
        box = tuple(float(v) for v in (boxes * ws[:, None]).sum(axis=0))
        landmarks = t.regions[i].landmarks
        if landmarks is not None:
            lms = [t.regions[j].landmarks for j, _ in weights]
            same = [lm for lm in lms if lm is not None and lm.shape == landmarks.shape]
            if len(same) == len(lms):
                landmarks = (np.stack(same) * ws[:, None, None]).sum(axis=0).astype(np.float32)
        return dataclasses.replace(t.regions[i], box=box, landmarks=landmarks)  # type: ignore[arg-type]

    def _region_of(self, t: _Track, frame: int) -> tuple[Region, str] | None:
        frames = t.frames
        if not frames:
            return None
        i = bisect.bisect_left(frames, frame)
        if i < len(frames) and frames[i] == frame:
            return self._smoothed(t, i), "detected"
        prev_i, next_i = i - 1, i
        has_prev, has_next = prev_i >= 0, next_i < len(frames)
        if has_prev and has_next and frames[next_i] - frames[prev_i] <= self.max_gap:
            a, b = self._smoothed(t, prev_i), self._smoothed(t, next_i)
            w = (frame - frames[prev_i]) / (frames[next_i] - frames[prev_i])
            return _lerp(a, b, w), "interpolated"
        candidates: list[tuple[int, Region]] = []
        if has_prev and frame - frames[prev_i] <= self.reach:
            candidates.append((frame - frames[prev_i], self._extended(t, prev_i, frame)))
        if has_next and frames[next_i] - frame <= self.reach:
            candidates.append((frames[next_i] - frame, self._extended(t, next_i, frame)))
        if not candidates:
            return None
        if len(candidates) == 2:  # a long gap with both ends near: cover both guesses
            return _union(candidates[0][1], candidates[1][1]), "extended"
        return candidates[0][1], "extended"

    def _extended(self, t: _Track, i: int, frame: int) -> Region:
        base = self._smoothed(t, i)
        dist = abs(frame - t.frames[i])
        # velocity from the neighbouring observation on the same side of the track
        j = i - 1 if frame > t.frames[i] else i + 1
        vel = np.zeros(4)
        if 0 <= j < len(t.frames) and abs(t.frames[j] - t.frames[i]) <= self.max_gap:
            other = self._smoothed(t, j)
            vel = (np.array(base.box) - np.array(other.box)) / (t.frames[i] - t.frames[j])
        box = np.array(base.box) + vel * (frame - t.frames[i])
        # the centre follows the velocity; the size may grow with it, never shrink
        # (a face seen growing, extended backwards, would otherwise vanish)
        w0, h0 = base.box[2] - base.box[0], base.box[3] - base.box[1]
        w, h = max(w0, box[2] - box[0]), max(h0, box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        moved = _with_box(base, tuple(float(v) for v in box))  # type: ignore[arg-type]
        grow = min(1.5, 1.0 + self.pad_growth * dist)
        return moved.scaled(grow)


def _with_box(region: Region, box: Box) -> Region:
    """``region`` moved to ``box``; its landmarks follow the box's scale and shift."""
    if box[2] <= box[0] or box[3] <= box[1]:
        return region
    lm = region.landmarks
    if lm is not None:
        x0, y0, x1, y1 = region.box
        sx = (box[2] - box[0]) / max(x1 - x0, 1e-6)
        sy = (box[3] - box[1]) / max(y1 - y0, 1e-6)
        lm = (lm - np.array([x0, y0], np.float32)) * np.array([sx, sy], np.float32) + np.array(
            [box[0], box[1]], np.float32
        )
    return dataclasses.replace(region, box=box, landmarks=lm)


def _lerp(a: Region, b: Region, w: float) -> Region:
    box = tuple(float((1 - w) * u + w * v) for u, v in zip(a.box, b.box, strict=True))
    if (
        a.landmarks is not None
        and b.landmarks is not None
        and a.landmarks.shape == b.landmarks.shape
    ):
        lm = ((1 - w) * a.landmarks + w * b.landmarks).astype(np.float32)
        return dataclasses.replace(a, box=box, landmarks=lm, score=min(a.score, b.score))  # type: ignore[arg-type]
    moved = _with_box(a, box)  # type: ignore[arg-type]
    return dataclasses.replace(moved, score=min(a.score, b.score))


def _union(a: Region, b: Region) -> Region:
    box = (
        min(a.box[0], b.box[0]),
        min(a.box[1], b.box[1]),
        max(a.box[2], b.box[2]),
        max(a.box[3], b.box[3]),
    )
    return dataclasses.replace(a, box=box, landmarks=None)
