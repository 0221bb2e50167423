"""The resolved configuration of a run: one frozen, validated, JSON-savable object.

The CLI turns its arguments into an :class:`AnonymizeConfig` and makes one
library call with it; a run can write it next to its outputs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_TARGETS",
    "VIDEO_DETECT_EVERY",
    "VIDEO_MAX_SIZE",
    "VIDEO_TRACK_EVERY",
    "AnonymizeConfig",
    "parse_targets",
]

DEFAULT_TARGETS: tuple[str, ...] = ("faces", "plates")
DEFAULT_METHOD = "blur"
#: Videos: the detectors run over the whole frame on one frame in this many by
#: default; between those, the faces already tracked are searched again in small
#: windows (:data:`VIDEO_TRACK_EVERY`), and tracking and interpolation cover the
#: rest.  Chosen by ``bench/bench_video.py --section coverage``: one full
#: detection in 8 with windows on the 7 frames between covers 99.65 % of the faces
#: that every-frame detection finds on the generated clips (99.70 % on held-out
#: clips, ``--clip-seed 100``) for less than half the CPU of one full detection
#: in 2 (99.72 % / 99.39 %); without the windows, one in 3 already drops to 99.29 %.
VIDEO_DETECT_EVERY = 8
#: Videos: the detectors see a copy at most this many pixels on its longer side
#: (None = full resolution).  640 is faster but keeps only 93 % of the faces on
#: clips with faces under 70 px (docs/video.md).
VIDEO_MAX_SIZE: int | None = None
#: Videos: between full detections, the tracked faces are searched again in
#: windows around them on one frame in this many (0 = never; see above).
VIDEO_TRACK_EVERY = 1


def parse_targets(value: str | Any) -> tuple[str, ...]:
    """``"faces,plates"`` or an iterable of names -> a tuple of unique target names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name and name not in out:
            out.append(name)
    if not out:
        raise ValueError("targets must name at least one detector, e.g. 'faces,plates'")
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class AnonymizeConfig:
    """Everything that decides what a run does.

    Parameters
    ----------
    targets : tuple of str
        Detectors to run (``"faces"``, ``"plates"``...).  Regions of all targets are protected.
    method : str
        Registered protection method (``pixveil methods`` lists them).
    method_params : mapping
        Parameters of the method (validated by the method's ``Params`` dataclass).
    face_threshold, plate_threshold : float or None
        Detector score thresholds; None keeps each detector's default.
    text_threshold : float or None
        Minimum mean text probability of a text line for the ``text`` and ``text-pii``
        targets, in (0, 1); None keeps the default (0.5).
    pii_patterns : tuple of str
        Patterns added to the built-in ones of the ``text-pii`` target: ``"NAME=REGEX"``
        defines one, a bare ``"NAME"`` turns on an optional built-in one (``"date"``).
        Validated here (the regular expression must compile).
    seed : int or None
        Seed for the privacy noise.  None (the default) uses a cryptographically
        secure source; a seed makes the noise reproducible and is for tests only.
    output_format : str or None
        ``png``, ``jpg``, ``bmp`` or ``webp``; None keeps the input's format.
    quality : int or "keep"
        JPEG/WebP quality, 1..100.  ``"keep"`` (default): a JPEG written from a
        JPEG input re-uses the input's quantisation tables and chroma subsampling
        (so the file does not grow); any other output uses quality 95.
    keep_icc : bool
        Re-embed the input's ICC colour profile (off by default: it can identify a device).
    max_pixels : int or None
        Refuse images with more pixels than this (decompression-bomb guard); None = default.
    sidecar : bool
        Write ``<output>.json`` with the detections (boxes, scores, landmarks; never pixels or text).
        The image and its sidecar are one unit: if the sidecar cannot be written the
        image is removed again.
    device : str
        Where the ONNX models run: ``"auto"`` (the best installed ONNX Runtime
        execution provider, else the CPU), ``"cpu"``, ``"cuda"``, ``"openvino"``...
        A provider that is not installed falls back to the CPU.
    max_size : int or None
        Detect on a copy whose longer side is at most this many pixels (faster on
        large photos; small faces and plates may be missed, see
        ``docs/BENCHMARKS.md``).  The output keeps the full resolution.  None
        (default) detects at full resolution.
    allow_damaged : bool
        Accept inputs whose compressed data is damaged (bad JPEG scan data, PNG
        CRC errors).  Off by default: a half-decoded picture is refused.
    dry_run : bool
        Detect and report only; write no image, sidecar or run file.
    boxes : bool
        Draw each detection's box and score on the output (for checking thresholds).
    detect_every : int
        Videos: run the detectors over the whole frame on one frame in this many
        (>= 1); the tracked-face windows (``track_every``), the tracker and the
        interpolation between detections cover the frames in between.  Default
        :data:`VIDEO_DETECT_EVERY` (8; coverage and speed of other values in
        docs/video.md).
    track_every : int
        Videos: between two full detections, look for the faces already found
        again, on one frame in this many, in small windows around where they are
        expected (0 = never).  Default :data:`VIDEO_TRACK_EVERY`.
    video_max_size : int or None
        Videos: detect on a copy whose longer side is at most this many pixels
        (default :data:`VIDEO_MAX_SIZE`: None, full resolution; 640 is faster
        but misses small faces).  ``max_size``,
        when set, applies to videos too and takes precedence.  The output keeps
        the full resolution.
    audio : bool
        Videos: copy the audio streams untouched (True) or drop them.
    video_noise : {"frame", "track"}
        Videos, dp-pix/dp-blur/metric-pix: fresh noise in every frame (``k`` frames of a
        region compose to ``k·ε``) or one noisy release per track, warped onto each
        frame (ε per track); see docs/video.md.
    region : {"face", "head", "person"}
        What of each person found by the face detector is protected: the face
        (default), the head (face, hair, ears and neck, grown from the face) or
        the whole person (a people detection holding the face, else a body box
        grown from it); see :mod:`pixveil.regions` and docs/methods.md for what
        each leaves visible.
    face_mode : {"exhaustive", "cascade", "fast"} or None
        How the face detector searches: ``"exhaustive"`` (full resolution
        everywhere, the default), ``"cascade"`` (on images larger than one 2048-px
        tile: a coarse pass for large faces, then full resolution only where
        pixveil's face-proposal network expects a face; about 10x less CPU on 12 MP
        photos, and it may miss a few faces the exhaustive mode finds) or ``"fast"``
        (the cascade with the int8 network at its own threshold: about half the
        CPU of the float network on CPUs with int8 dot-product instructions, a few
        faces found and missed differently, more false boxes; images up to one
        2048-px tile run in one int8 pass); see docs/BENCHMARKS.md §9.4.  CPUs
        without int8 dot products run its copy with 7-bit weights, whose sums
        cannot saturate there (:func:`pixveil.detect.face_int8.uses_7bit_weights`, §9.6).
    """

    targets: tuple[str, ...] = DEFAULT_TARGETS
    method: str = DEFAULT_METHOD
    method_params: Mapping[str, Any] = field(default_factory=dict)
    face_threshold: float | None = None
    plate_threshold: float | None = None
    text_threshold: float | None = None
    pii_patterns: tuple[str, ...] = ()
    seed: int | None = None
    output_format: str | None = None
    quality: int | str = "keep"
    keep_icc: bool = False
    max_pixels: int | None = None
    sidecar: bool = False
    device: str = "auto"
    max_size: int | None = None
    allow_damaged: bool = False
    dry_run: bool = False
    boxes: bool = False
    detect_every: int = VIDEO_DETECT_EVERY
    track_every: int = VIDEO_TRACK_EVERY
    video_max_size: int | None = VIDEO_MAX_SIZE
    audio: bool = True
    video_noise: str = "frame"
    face_mode: str | None = None
    region: str = "face"

    def __post_init__(self) -> None:
        from pixveil.regions import check_region_kind

        object.__setattr__(self, "targets", parse_targets(self.targets))
        object.__setattr__(self, "region", check_region_kind(self.region))
        object.__setattr__(self, "method_params", dict(self.method_params))
        if isinstance(self.pii_patterns, str):
            raise ValueError(
                f"pii_patterns must be a sequence of NAME=REGEX strings, got {self.pii_patterns!r}"
            )
        object.__setattr__(self, "pii_patterns", tuple(self.pii_patterns))
        from pixveil.detect.pii import resolve_patterns

        resolve_patterns(self.pii_patterns)  # raises ValueError naming the bad pattern
        for name in ("face_threshold", "plate_threshold", "text_threshold"):
            v = getattr(self, name)
            if v is not None and not (0.0 < float(v) < 1.0):
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")
        if self.quality != "keep" and (
            isinstance(self.quality, bool)
            or not isinstance(self.quality, int)
            or not 1 <= self.quality <= 100
        ):
            raise ValueError(
                f"quality must be 'keep' or an integer in [1, 100], got {self.quality!r}"
            )
        if self.max_pixels is not None and int(self.max_pixels) <= 0:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels!r}")
        if self.max_size is not None and (
            isinstance(self.max_size, bool)
            or not isinstance(self.max_size, int)
            or self.max_size < 64
        ):
            raise ValueError(f"max_size must be an integer >= 64 or None, got {self.max_size!r}")
        if self.video_max_size is not None and (
            isinstance(self.video_max_size, bool)
            or not isinstance(self.video_max_size, int)
            or self.video_max_size < 64
        ):
            raise ValueError(
                f"video_max_size must be an integer >= 64 or None, got {self.video_max_size!r}"
            )
        if self.video_noise not in ("frame", "track"):
            raise ValueError(f"video_noise must be frame or track, got {self.video_noise!r}")
        if self.face_mode not in (None, "exhaustive", "cascade", "fast"):
            raise ValueError(
                f"face_mode must be exhaustive, cascade or fast, got {self.face_mode!r}"
            )
        if (
            isinstance(self.detect_every, bool)
            or not isinstance(self.detect_every, int)
            or self.detect_every < 1
        ):
            raise ValueError(f"detect_every must be an integer >= 1, got {self.detect_every!r}")
        if (
            isinstance(self.track_every, bool)
            or not isinstance(self.track_every, int)
            or self.track_every < 0
        ):
            raise ValueError(f"track_every must be an integer >= 0, got {self.track_every!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(f"device must be a non-empty string, got {self.device!r}")
        object.__setattr__(self, "device", self.device.strip().lower())
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    def detector_options(self, target: str) -> dict[str, Any]:
        """Constructor options of the detector of ``target`` that differ from its defaults.

        The device is not among them: :class:`~pixveil.pipeline.Anonymizer` adds
        the device it resolved (``auto`` becomes a concrete one).
        """
        options: dict[str, Any] = {}
        if target == "faces" and self.face_threshold is not None:
            options["threshold"] = float(self.face_threshold)
        if target == "faces" and self.face_mode == "fast":
            options["precision"] = "int8"
            options["mode"] = "cascade"
        elif target == "faces" and self.face_mode is not None:
            options["mode"] = self.face_mode
        if target == "plates" and self.plate_threshold is not None:
            options["threshold"] = float(self.plate_threshold)
        if target in ("text", "text-pii") and self.text_threshold is not None:
            options["threshold"] = float(self.text_threshold)
        if target == "text-pii" and self.pii_patterns:
            options["patterns"] = self.pii_patterns
        return options

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets)
        d["pii_patterns"] = list(self.pii_patterns)
        d["method_params"] = dict(self.method_params)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)
