"""Video: anonymise clips frame by frame with tracked regions, audio kept, metadata gone.

:func:`anonymize_video` is the iterator API that the command line, the
evaluation harness and a service share: it yields one :class:`FrameResult` per
frame (the protected pixels, the regions with their track ids).
:func:`process_video` runs it from a file to a file, fail closed, and returns a
:class:`VideoOutcome`.  Needs the ``[video]`` extra (PyAV and ``trackers``).

See ``docs/video.md`` for the tracking, the temporal consistency of each
method and the guarantees per track.
"""

from __future__ import annotations

from pixveil.video.engine import (
    NOISE_MODES,
    FrameResult,
    VideoOutcome,
    anonymize_video,
    process_video,
)
from pixveil.video.tracking import TRACKERS, TrackedRegion

__all__ = [
    "NOISE_MODES",
    "TRACKERS",
    "FrameResult",
    "TrackedRegion",
    "VideoOutcome",
    "anonymize_video",
    "process_video",
]
