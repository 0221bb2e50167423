"""Orchestration: read -> detect -> protect -> write, for one array, one file or a batch.

The library never prints or exits: progress is reported through a callback and the
batch returns a :class:`BatchReport`.  Every image is processed *fail closed*: the
output file is written only after detection and protection both succeeded, so an
image whose detector or method raised gets no output at all.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.config import DEFAULT_METHOD, DEFAULT_TARGETS, AnonymizeConfig
from pixveil.errors import DetectionError, InputError, OutputError, PixveilError
from pixveil.io import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    ProtectedPaths,
    is_image_path,
    load_array,
    output_format_for,
    output_path_for,
    read_image,
    write_image,
)
from pixveil.protect.base import ProtectionMethod
from pixveil.types import Detections, Region

__all__ = [
    "AnonymizeResult",
    "Anonymizer",
    "BatchReport",
    "ImageOutcome",
    "anonymize",
    "collect_inputs",
    "run_batch",
]

#: How many images are decoded ahead of the one being detected.
PREFETCH = 2


@dataclass(frozen=True)
class AnonymizeResult:
    """The protected image and what was found in it.

    Unpacks as ``image, detections = pixveil.anonymize(...)``.
    """

    image: np.ndarray
    detections: Detections
    alpha: np.ndarray | None = None
    method: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        yield self.image
        yield self.detections


class Anonymizer:
    """Detectors and a protection method built once from a config, reused for every image."""

    def __init__(self, config: AnonymizeConfig | None = None) -> None:
        from pixveil.detect import available_targets, get_detector
        from pixveil.protect import get_method

        self.config = config or AnonymizeConfig()
        known = available_targets()
        for t in self.config.targets:
            if t not in known:
                raise ValueError(f"unknown target {t!r}; known: {', '.join(known)}")
        self.method = get_method(self.config.method, **self.config.method_params)
        # Methods specific to one kind of region (gan-face, plate-synth) leave
        # the other kinds to the default method: every region is protected.
        self.companion = None if self.method.kinds is None else get_method(DEFAULT_METHOD)
        self.last_events: dict[str, int] = {}
        self.detectors = [
            get_detector(t, **self.config.detector_options(t)) for t in self.config.targets
        ]

    def _rng(self) -> np.random.Generator | None:
        return None if self.config.seed is None else np.random.default_rng(self.config.seed)

    def detect(self, pixels: np.ndarray) -> Detections:
        """Run every detector; any failure raises :class:`DetectionError`."""
        regions: list[Region] = []
        for det in self.detectors:
            try:
                regions.extend(det.detect(pixels))
            except PixveilError:
                raise
            except Exception as exc:
                raise DetectionError(f"{type(det).__name__} failed: {exc}") from exc
        return Detections.of(regions, pixels.shape[1], pixels.shape[0])

    def protect_array(
        self, pixels: np.ndarray, *, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, Detections]:
        """Detect and protect one (H, W, 3) uint8 RGB image; returns a new array."""
        detections = self.detect(pixels)
        if rng is None:
            rng = self._rng()
        before = self.method.events.copy()
        protected = protect_regions(
            self.method, pixels, detections, rng=rng, companion=self.companion
        )
        self.last_events = dict(self.method.events - before)
        return protected, detections

    def process_file(
        self,
        src: Path | LoadedImage,
        dst: Path,
        *,
        protected_paths: Iterable[Path] | ProtectedPaths = (),
        rng: np.random.Generator | None = None,
    ) -> ImageOutcome:
        """Read, protect and write one file.  Raises on any failure; writes nothing then.

        ``protected_paths`` are files the output must never replace (the inputs of
        a batch); the source itself is always protected.
        """
        loaded = src if isinstance(src, LoadedImage) else self.read(src)
        path = loaded.path or Path("<array>")
        if not isinstance(protected_paths, ProtectedPaths):
            protected_paths = ProtectedPaths([path, *protected_paths])
        protected, detections = self.protect_array(loaded.pixels, rng=rng)
        fmt = output_format_for(path, self.config.output_format)
        written = write_image(
            dst,
            protected,
            alpha=loaded.alpha,
            format=fmt,
            quality=self.config.quality,
            icc_profile=loaded.icc_profile if self.config.keep_icc else None,
            protected_paths=protected_paths,
        )
        if self.config.sidecar:
            sidecar = written.with_name(written.name + ".json")
            payload = {"input": path.name, "output": written.name, **detections.to_dict()}
            _atomic_write_text(sidecar, json.dumps(payload, indent=1))
        return ImageOutcome(path, written, detections, None, dict(self.last_events))

    def read(self, path: Path) -> LoadedImage:
        return read_image(path, max_pixels=self.config.max_pixels or DEFAULT_MAX_PIXELS)


def protect_regions(
    method: ProtectionMethod,
    pixels: np.ndarray,
    regions: Iterable[Region],
    *,
    rng: np.random.Generator | None = None,
    companion: ProtectionMethod | None = None,
) -> np.ndarray:
    """Protect every region: with ``method`` where it handles the kind, else with ``companion``.

    ``companion`` defaults to the default method; kind-specific methods
    (``gan-face``, ``plate-synth``) thus never leave another kind unprotected.
    """
    regions = list(regions)
    mine = [r for r in regions if method.handles(r)]
    others = [r for r in regions if not method.handles(r)]
    out = method.apply(pixels, mine, rng=rng)
    if others:
        if companion is None:
            from pixveil.protect import get_method

            companion = get_method(DEFAULT_METHOD)
        out = companion.apply(out, others, rng=rng)
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def anonymize(
    image: np.ndarray | str | os.PathLike[str],
    *,
    method: str = DEFAULT_METHOD,
    targets: Sequence[str] | str = DEFAULT_TARGETS,
    threshold: float | None = None,
    seed: int | None = None,
    **method_params: Any,
) -> AnonymizeResult:
    """Detect faces/plates in one image and protect them.

    Parameters
    ----------
    image : ndarray or path
        An array of shape (H, W), (H, W, 3) or (H, W, 4) (uint8, uint16, bool or
        float in [0, 1]; RGB order), or the path of an image file (EXIF orientation
        is applied).
    method : str
        A registered protection method: ``blur`` (default), ``pixelate``, ``mask``,
        ``dp-pix``, ``dp-blur``...
    targets : sequence of str or comma-separated str
        What to detect (default faces and plates).
    threshold : float, optional
        Face detector threshold.
    seed : int, optional
        Makes privacy noise reproducible (tests only; the default is a secure RNG).
    **method_params
        Parameters of the method, e.g. ``epsilon=1.0`` for ``dp-pix``/``dp-blur``.

    Returns
    -------
    AnonymizeResult
        ``.image`` (H, W, 3) uint8 RGB protected copy, ``.detections``, ``.alpha``.
    """
    config = AnonymizeConfig(
        targets=tuple(targets.split(",")) if isinstance(targets, str) else tuple(targets),
        method=method,
        method_params=method_params,
        face_threshold=threshold,
        seed=seed,
    )
    anonymizer = Anonymizer(config)
    loaded = load_array(image) if isinstance(image, np.ndarray) else anonymizer.read(Path(image))
    protected, detections = anonymizer.protect_array(loaded.pixels)
    return AnonymizeResult(protected, detections, loaded.alpha, anonymizer.method.describe())


# ----------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one input file."""

    path: Path
    output: Path | None
    detections: Detections | None
    error: str | None
    #: Method events for this image (e.g. ``{"fallback": 1}``).
    events: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BatchReport:
    """Summary of a batch run."""

    outcomes: list[ImageOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.outcomes)

    @property
    def n_ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def failures(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, kind: str) -> int:
        return sum(o.detections.count(kind) for o in self.outcomes if o.detections is not None)

    def to_dict(self) -> dict[str, Any]:
        kinds = sorted({r.kind for o in self.outcomes if o.detections for r in o.detections})
        return {
            "images": self.n_images,
            "written": self.n_ok,
            "skipped_non_images": len(self.skipped),
            "regions": {k: self.count(k) for k in kinds},
            "method_events": dict(sum((Counter(o.events) for o in self.outcomes), Counter())),
            "failures": [{"file": str(o.path), "error": o.error} for o in self.failures],
        }


def collect_inputs(
    inputs: Sequence[Path], *, exclude: Path | None = None
) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """Expand files and folders (recursively, sorted) into image paths.

    Returns
    -------
    images : list of (path, root)
        ``root`` is the folder the path was found under (None for a file given directly).
    skipped : list of Path
        Files without an image extension.
    """
    images: list[tuple[Path, Path | None]] = []
    skipped: list[Path] = []
    excl = exclude.resolve() if exclude is not None else None
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            root = p
            for dirpath, dirnames, filenames in os.walk(p):
                d = Path(dirpath)
                # never descend into the output folder (it may sit inside the input tree)
                dirnames[:] = sorted(
                    n for n in dirnames if excl is None or (d / n).resolve() != excl
                )
                for name in sorted(filenames):
                    f = d / name
                    (images.append((f, root)) if is_image_path(f) else skipped.append(f))
        elif p.exists():
            images.append((p, None))
        else:
            # a missing file is an error of that file, reported with the others
            images.append((p, None))
    return images, skipped


def run_batch(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    config: AnonymizeConfig | None = None,
    *,
    on_result: Callable[[ImageOutcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> BatchReport:
    """Protect every image in ``inputs`` (files and folders) into ``out_dir``.

    Folder inputs are mirrored under ``out_dir``.  A file that cannot be read,
    detected, protected or written is recorded as a failure and gets no output;
    the batch goes on with the others.  Decoding of the next images overlaps
    with detection of the current one.
    """
    config = config or AnonymizeConfig()
    out = Path(out_dir)
    anonymizer = Anonymizer(config)
    images, skipped = collect_inputs([Path(i) for i in inputs], exclude=out)
    report = BatchReport(skipped=skipped)
    if on_start is not None:
        on_start(len(images))
    all_inputs = ProtectedPaths(p for p, _ in images)
    planned: dict[Path, Path] = {}
    rng = anonymizer._rng()  # one stream for the whole batch when seeded

    def plan(path: Path, root: Path | None) -> Path:
        fmt = output_format_for(path, config.output_format)
        dst = output_path_for(path, input_root=root, out_dir=out, format=fmt)
        key = dst.resolve()
        if key in planned:
            raise OutputError(f"output would collide with that of {planned[key]}", path=dst)
        planned[key] = path
        return dst

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixveil-read") as pool:
        futures: dict[int, Future[LoadedImage]] = {}

        def submit(i: int) -> None:
            if i < len(images):
                futures[i] = pool.submit(anonymizer.read, images[i][0])

        for i in range(min(PREFETCH, len(images))):
            submit(i)
        for i, (path, root) in enumerate(images):
            fut = futures.pop(i)
            submit(i + PREFETCH)
            try:
                dst = plan(path, root)
                loaded = fut.result()
                outcome = anonymizer.process_file(loaded, dst, protected_paths=all_inputs, rng=rng)
            except (PixveilError, OSError) as exc:
                outcome = ImageOutcome(path, None, None, _one_line(exc, path))
            except Exception as exc:  # fail closed on anything unexpected, and say what it was
                outcome = ImageOutcome(
                    path, None, None, _one_line(exc, path, prefix=type(exc).__name__)
                )
            report.outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome)
    return report


def _one_line(exc: BaseException, path: Path, *, prefix: str | None = None) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (InputError, OutputError)) and exc.path is not None:
        msg = " ".join(exc.reason.split())
    elif isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror
    if prefix:
        msg = f"{prefix}: {msg}"
    return msg
