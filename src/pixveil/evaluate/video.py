"""Temporal metrics of protected video clips, for ``pixveil evaluate --data clips/``.

For each clip of a folder and each setting (method and parameter value, the same
settings as the photo harness), the clip is protected with
:func:`pixveil.video.anonymize_video` and measured against its own original:

``coverage``
    Share of the *reference* faces — every-frame face detection at full
    resolution on the original frames — whose box lies at least 90 % inside the
    protected pixels of its frame (:func:`pixveil.video.metrics.coverage`).
``flicker``
    Temporal warping error inside the protected regions, 0..255
    (:func:`pixveil.video.metrics.flicker`); the same figure on the original
    frames is reported as ``flicker_floor`` (the optical flow's own error).
``same_track`` (identity stability)
    Share of consecutive protected face-frames of one track whose dlib
    embeddings are closer than the same-person threshold (0.6).  High for a
    method that keeps one synthetic person per track (gan-face), meaningless for
    methods that leave no face (blur, mask: dlib encodes noise).
``matches_original`` (re-identification across the clip)
    Share of protected face-frames whose dlib embedding is within the threshold
    of the *original* face in the same frame.
``reanonymized_matches`` (gan-face only)
    The same, after running the setting a second time on its own output: an
    anonymised clip anonymised again must not bring the original back.
``fps``
    Frames per second of the protection run (detection included).

Everything runs in this process, one clip at a time; clips are read up to
``max_frames`` frames (frames are held in memory for the flicker metric).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ClipResult",
    "VideoEvaluation",
    "evaluate_clips",
    "find_clips",
    "video_rows",
    "video_section_html",
]


def find_clips(data: str | Path) -> list[Path]:
    """Video files under ``data`` (a folder, walked recursively, or one file), sorted."""
    from pixveil.io.video import is_video_path

    root = Path(data)
    if root.is_file():
        return [root] if is_video_path(root) else []
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and is_video_path(p))


@dataclass(frozen=True)
class ClipResult:
    """The temporal figures of one clip under one setting (None where not measurable)."""

    clip: str
    setting: str
    method: str
    frames: int
    width: int
    height: int
    tracks: int
    reference_faces: int
    coverage: float
    flicker: float
    flicker_floor: float
    fps: float
    face_frames: int
    same_track: float | None
    matches_original: float | None
    reanonymized_matches: float | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VideoEvaluation:
    """All clips × settings, with what was measured how."""

    clips: list[str]
    detect_every: int
    video_max_size: int | None
    results: list[ClipResult] = field(default_factory=list)
    track_every: int = 0
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        return {
            "clips": list(self.clips),
            "detect_every": self.detect_every,
            "track_every": self.track_every,
            "video_max_size": self.video_max_size,
            "notes": list(self.notes),
            "rows": self.rows(),
        }


def _read(path: Path, max_frames: int) -> tuple[list[np.ndarray], float]:
    from pixveil.io.video import open_video

    frames: list[np.ndarray] = []
    with open_video(path) as reader:
        rate = float(reader.info.frame_rate or 30)
        for f in reader:
            frames.append(f.pixels)
            if len(frames) >= max_frames:
                break
    return frames, rate


def evaluate_clips(
    clips: Sequence[str | Path],
    settings: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    detect_every: int | None = None,
    video_max_size: int | str | None = "default",
    seed: int | None = 0,
    max_frames: int = 150,
    face_threshold: float | None = None,
    reid: bool = True,
    progress: Callable[[str], None] | None = None,
) -> VideoEvaluation:
    """Protect every clip with every setting and measure it (see the module notes).

    Parameters
    ----------
    clips : paths of video files
    settings : sequence of (label, method, params)
        E.g. ``("dp-pix eps=0.5", "dp-pix", {"epsilon": 0.5})``.
    detect_every, video_max_size
        The video options (default: those of :class:`~pixveil.config.AnonymizeConfig`).
    seed : int or None
        Seed of the privacy noise (None: cryptographic noise).
    max_frames : int
        Frames read from each clip.
    reid : bool
        Measure identity stability and re-identification with dlib (the ``[eval]`` extra).
    """
    from pixveil.config import AnonymizeConfig
    from pixveil.pipeline import Anonymizer
    from pixveil.video import anonymize_video
    from pixveil.video.metrics import coverage, flicker, protected_mask

    video: dict[str, Any] = {}
    if detect_every is not None:
        video["detect_every"] = detect_every
    if video_max_size != "default":
        video["video_max_size"] = video_max_size
    base = AnonymizeConfig(targets=("faces",), device="cpu", face_threshold=face_threshold, **video)
    encoder = None
    if reid:
        from pixveil.evaluate.reid import get_face_encoder

        encoder = get_face_encoder()
    reference_detector = Anonymizer(base)
    result = VideoEvaluation(
        clips=[str(c) for c in clips],
        detect_every=base.detect_every,
        video_max_size=base.video_max_size,
        track_every=base.track_every,
    )
    result.notes.append(
        "coverage: share of every-frame full-resolution face detections (on the originals) "
        "at least 90 % inside the protected pixels"
    )
    # one Anonymizer (models loaded once) per setting, shared by every clip
    anonymizers = [
        Anonymizer(dataclasses.replace(base, method=m, method_params=p, seed=seed))
        for _, m, p in settings
    ]
    for clip in clips:
        path = Path(clip)
        frames, rate = _read(path, max_frames)
        if not frames:
            continue
        h, w = frames[0].shape[:2]
        reference = [[r.box for r in reference_detector.detect(f, max_size=None)] for f in frames]
        floor = flicker(frames, frames, [np.ones((h, w), bool)] * len(frames))
        originals_enc: dict[tuple[int, tuple[float, ...]], np.ndarray] = {}
        for (label, method, params), an in zip(settings, anonymizers, strict=True):
            start = time.perf_counter()
            results = list(
                anonymize_video(iter(frames), anonymizer=an, frame_rate=rate, rng=an.rng())
            )
            seconds = time.perf_counter() - start
            protected = [r.pixels for r in results]
            regions = [[t.region for t in r.regions] for r in results]
            shape, margin = _geometry(params)
            masks = [protected_mask(rs, (w, h), shape=shape, margin=margin) for rs in regions]
            cov = coverage(reference, regions, (w, h), shape=shape, margin=margin)
            same = matches = re_matches = None
            face_frames = sum(len(r.regions) for r in results)
            if encoder is not None and method != "none":
                same, matches = _identity(encoder, frames, results, originals_enc)
                if method == "gan-face":
                    again = list(
                        anonymize_video(
                            iter(protected), anonymizer=an, frame_rate=rate, rng=an.rng()
                        )
                    )
                    _, re_matches = _identity(encoder, frames, again, originals_enc)
            result.results.append(
                ClipResult(
                    clip=path.name,
                    setting=label,
                    method=method,
                    frames=len(frames),
                    width=w,
                    height=h,
                    tracks=len({t.track for r in results for t in r.regions}),
                    reference_faces=cov.total,
                    coverage=cov.rate,
                    flicker=flicker(frames, protected, masks),
                    flicker_floor=floor,
                    fps=len(frames) / seconds if seconds > 0 else math.inf,
                    face_frames=face_frames,
                    same_track=same,
                    matches_original=matches,
                    reanonymized_matches=re_matches,
                )
            )
            if progress is not None:
                progress(f"{path.name}: {label}")
    return result


def _geometry(params: dict[str, Any]) -> tuple[str, float]:
    return str(params.get("shape", "auto")), float(params.get("margin", 1.3))


def _identity(
    encoder: Any,
    originals: Sequence[np.ndarray],
    results: Sequence[Any],
    cache: dict[tuple[int, tuple[float, ...]], np.ndarray],
) -> tuple[float | None, float | None]:
    """(consecutive same-person rate along tracks, protected-vs-original match rate)."""
    from pixveil.evaluate.reid import DEFAULT_THRESHOLD

    last: dict[int, np.ndarray] = {}
    same: list[bool] = []
    match: list[bool] = []
    for r in results:
        for t in r.regions:
            box = tuple(round(v, 1) for v in t.region.box)
            e = encoder.encode(r.pixels, t.region.box)
            key = (r.index, box)
            if key not in cache:
                cache[key] = encoder.encode(originals[r.index], t.region.box)
            match.append(float(np.linalg.norm(e - cache[key])) < DEFAULT_THRESHOLD)
            if t.track in last:
                same.append(float(np.linalg.norm(e - last[t.track])) < DEFAULT_THRESHOLD)
            last[t.track] = e
    return (
        float(np.mean(same)) if same else None,
        float(np.mean(match)) if match else None,
    )


_COLUMNS = (
    ("clip", "clip", None),
    ("setting", "setting", None),
    ("frames", "frames", None),
    ("tracks", "tracks", None),
    ("coverage", "coverage", "pct"),
    ("flicker (floor)", "flicker", "flicker"),
    ("same person along a track", "same_track", "pct"),
    ("matches the original", "matches_original", "pct"),
    ("re-anonymised matches", "reanonymized_matches", "pct"),
    ("frames/s", "fps", "num"),
)


def video_rows(result: VideoEvaluation) -> list[list[str]]:
    """The table of the report and the terminal, as strings."""
    rows = []
    for r in result.results:
        d = r.row()
        cells = []
        for _, key, kind in _COLUMNS:
            v = d[key]
            if v is None:
                cells.append("—")
            elif kind == "pct":
                cells.append(f"{100 * v:.1f} %")
            elif kind == "flicker":
                cells.append(f"{v:.1f} ({r.flicker_floor:.1f})")
            elif kind == "num":
                cells.append(f"{v:.1f}")
            else:
                cells.append(str(v))
        rows.append(cells)
    return rows


def video_section_html(result: VideoEvaluation) -> str:
    """An HTML section with the temporal table (for the report's index.html)."""
    from html import escape

    head = "".join(f"<th>{escape(c)}</th>" for c, _, _ in _COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
        for row in video_rows(result)
    )
    size = "full resolution" if result.video_max_size is None else f"{result.video_max_size} px"
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    return (
        '<section id="video"><h2>Video: temporal metrics</h2>'
        f"<p>{len(result.clips)} clip(s); detection on one frame in {result.detect_every} "
        f"at {escape(size)}"
        + (
            f", the tracked faces searched again in windows on one frame in {result.track_every}"
            if result.track_every and result.detect_every > 1
            else ""
        )
        + ". Flicker: temporal warping error inside the protected regions "
        "(0..255; in brackets the optical flow's own error on the originals). Same person / "
        "matches: dlib distance below 0.6.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<ul>{notes}</ul></section>"
    )
