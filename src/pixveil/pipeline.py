"""Orchestration: read -> detect -> protect -> write, for one array, one file or a batch.

The library never prints or exits: progress is reported through a callback and the
batch returns a :class:`BatchReport`.  Every image is processed *fail closed*: the
output file is written only after detection and protection both succeeded, so an
image whose detector or method raised gets no output at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.config import DEFAULT_METHOD, DEFAULT_TARGETS, AnonymizeConfig
from pixveil.errors import DetectionError, InputError, OutputError, PixveilError
from pixveil.io import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    ProtectedPaths,
    atomic_write_text,
    clean_stale_temps,
    is_image_path,
    load_array,
    output_format_for,
    output_path_for,
    read_image,
    write_image,
)
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress, notify
from pixveil.protect.base import ProtectionMethod, RegionOutcome
from pixveil.types import Detections, Region
from pixveil.validate import check_image

__all__ = [
    "RUN_FILE",
    "AnonymizeResult",
    "Anonymizer",
    "BatchReport",
    "ImageOutcome",
    "ProtectedImage",
    "anonymize",
    "collect_inputs",
    "run_batch",
    "write_run_file",
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
    """Detectors and a protection method built once from a config, reused for every image.

    Per-image results are returned (never stored on the instance), so one
    instance may serve several threads.
    """

    def __init__(self, config: AnonymizeConfig | None = None) -> None:
        from pixveil._onnx import resolve_providers
        from pixveil.detect import available_targets, get_detector
        from pixveil.protect import get_method

        self.config = config or AnonymizeConfig()
        known = available_targets()
        for t in self.config.targets:
            if t not in known:
                raise ValueError(f"unknown target {t!r}; known: {', '.join(known)}")
        choice = resolve_providers(self.config.device)
        #: The device the models run on, and why it differs from the request (or None).
        self.device: str = choice.device
        self.device_note: str | None = choice.fallback
        self.method = get_method(self.config.method, **self._method_params())
        # Methods specific to one kind of region (gan-face, plate-synth) leave
        # the other kinds to the default method: every region is protected.
        self.companion = None if self.method.kinds is None else get_method(DEFAULT_METHOD)
        self.detectors = [get_detector(t, **self._detector_options(t)) for t in self.config.targets]
        #: The ``Region.kind`` each requested target produces, in target order.
        self.target_kinds: dict[str, str] = {
            t: d.kind for t, d in zip(self.config.targets, self.detectors, strict=True)
        }

    def _method_params(self) -> dict[str, Any]:
        from pixveil.protect import method_class

        params = dict(self.config.method_params)
        fields = {f.name for f in dataclasses.fields(method_class(self.config.method).Params)}
        if "device" in fields and "device" not in params and self.device != "cpu":
            params["device"] = self.device
        return params

    def _detector_options(self, target: str) -> dict[str, Any]:
        options = self.config.detector_options(target)
        if self.device != "cpu":
            options["device"] = self.device
        return options

    def _rng(self) -> np.random.Generator | None:
        return None if self.config.seed is None else np.random.default_rng(self.config.seed)

    @property
    def max_pixels(self) -> int:
        return self.config.max_pixels or DEFAULT_MAX_PIXELS

    def detect(self, pixels: np.ndarray) -> Detections:
        """Run every detector; any failure raises :class:`DetectionError`.

        With ``config.max_size`` the detectors see a copy whose longer side is at
        most that many pixels; the regions are mapped back to ``pixels``.
        """
        height, width = pixels.shape[:2]
        small, scale = _downscaled(pixels, self.config.max_size)
        regions: list[Region] = []
        for det in self.detectors:
            try:
                found = det.detect(small)
            except PixveilError:
                raise
            except Exception as exc:
                raise DetectionError(f"{type(det).__name__} failed: {exc}") from exc
            if scale == 1.0:
                regions.extend(found)
                continue
            for r in found:
                big = _rescaled(r, 1.0 / scale, width, height)
                if big is not None:
                    regions.append(big)
        return Detections.of(regions, width, height)

    def protect(
        self, pixels: np.ndarray, *, rng: np.random.Generator | None = None
    ) -> ProtectedImage:
        """Detect and protect one (H, W, 3) uint8 RGB image.

        Returns
        -------
        ProtectedImage
            ``pixels`` (a new array), ``detections`` and the method ``events`` of
            this image.  With ``config.dry_run`` the pixels are not protected
            (the caller must not publish them); with ``config.boxes`` the boxes
            and scores are drawn on the protected pixels.
        """
        _check_pixel_limit(pixels, self.max_pixels)
        detections = self.detect(pixels)
        if self.config.dry_run:
            return ProtectedImage(pixels, detections, {})
        if rng is None:
            rng = self._rng()
        from pixveil.protect import protect_regions as protect_all

        done = protect_all(self.method, pixels, detections, rng=rng, companion=self.companion)
        protected = done.image
        if self.config.boxes:
            from pixveil.overlay import draw_detections

            protected = draw_detections(protected, detections)
        return ProtectedImage(protected, detections, dict(done.events), done.outcomes)

    def protect_array(
        self, pixels: np.ndarray, *, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, Detections]:
        """Detect and protect one (H, W, 3) uint8 RGB image; returns a new array."""
        result = self.protect(pixels, rng=rng)
        return result.pixels, result.detections

    def missing_targets(self, detections: Detections) -> tuple[str, ...]:
        """The requested targets of which ``detections`` holds nothing."""
        return tuple(t for t, kind in self.target_kinds.items() if detections.count(kind) == 0)

    def process_file(
        self,
        src: Path | LoadedImage,
        dst: Path,
        *,
        protected_paths: Iterable[Path] | ProtectedPaths = (),
        rng: np.random.Generator | None = None,
        root: Path | None = None,
        format: str | None = None,
    ) -> ImageOutcome:
        """Read, protect and write one file.  Raises on any failure; writes nothing then.

        ``protected_paths`` are files the output must never replace (the inputs of
        a batch); the source itself is always protected.  ``root`` (the output
        folder) is the folder the output must stay inside: no symbolic link is
        followed below it.  With a sidecar, image and sidecar are one unit: when
        the sidecar cannot be written the image is removed again.
        """
        loaded = src if isinstance(src, LoadedImage) else self.read(src)
        path = loaded.path or Path("<array>")
        if not isinstance(protected_paths, ProtectedPaths):
            protected_paths = ProtectedPaths([path, *protected_paths])
        result = self.protect(loaded.pixels, rng=rng)
        missing = self.missing_targets(result.detections)
        if self.config.dry_run:
            return ImageOutcome(path, None, result.detections, None, result.events, missing)
        fmt = format or output_format_for(path, self.config.output_format)
        sidecar = dst.with_name(dst.name + ".json") if self.config.sidecar else None
        if sidecar is not None and (sidecar.is_dir() or sidecar.is_symlink()):
            raise OutputError(
                "cannot write the sidecar: a folder or link has its name", path=sidecar
            )
        keep = self.config.quality == "keep"
        written = write_image(
            dst,
            result.pixels,
            alpha=loaded.alpha,
            format=fmt,
            quality="keep" if keep else int(self.config.quality),
            jpeg_tables=loaded.jpeg_tables if keep else None,
            icc_profile=loaded.icc_profile if self.config.keep_icc else None,
            protected_paths=protected_paths,
            root=root,
        )
        if sidecar is not None:
            payload = {"input": path.name, "output": written.name, **result.detections.to_dict()}
            try:
                atomic_write_text(sidecar, json.dumps(payload, indent=1), root=root)
            except BaseException:
                # fail closed: no image without its sidecar
                with contextlib.suppress(OSError):
                    os.unlink(written)
                raise
        return ImageOutcome(path, written, result.detections, None, result.events, missing)

    def read(self, path: Path) -> LoadedImage:
        return read_image(path, max_pixels=self.max_pixels, allow_damaged=self.config.allow_damaged)


@dataclass(frozen=True)
class ProtectedImage:
    """What :meth:`Anonymizer.protect` returns for one image."""

    pixels: np.ndarray
    detections: Detections
    #: Method events for this image (e.g. ``{"fallback": 1}``).
    events: dict[str, int] = field(default_factory=dict)
    #: One outcome per protected region (method, events, details).
    outcomes: tuple[RegionOutcome, ...] = ()


def _check_pixel_limit(pixels: np.ndarray, max_pixels: int) -> None:
    check_image(pixels, name="pixels")
    n = int(pixels.shape[0]) * int(pixels.shape[1])
    if n > max_pixels:
        raise InputError(
            f"{n:,} pixels exceeds the limit of {max_pixels:,} (use --max-pixels to raise it)"
        )


def _downscaled(pixels: np.ndarray, max_size: int | None) -> tuple[np.ndarray, float]:
    """``pixels`` shrunk so that its longer side is at most ``max_size``, and the scale used."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if max_size is None or longest <= max_size:
        return pixels, 1.0
    import cv2

    scale = max_size / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), scale


def _rescaled(region: Region, factor: float, width: int, height: int) -> Region | None:
    """``region`` of a resized copy mapped back onto the full image (clipped to it)."""
    x0, y0, x1, y1 = region.box
    landmarks = None if region.landmarks is None else region.landmarks * np.float32(factor)
    big = replace(
        region, box=(x0 * factor, y0 * factor, x1 * factor, y1 * factor), landmarks=landmarks
    )
    return big.clipped(width, height)


def protect_regions(
    method: ProtectionMethod,
    pixels: np.ndarray,
    regions: Iterable[Region],
    *,
    rng: np.random.Generator | None = None,
    companion: ProtectionMethod | None = None,
) -> np.ndarray:
    """The protected copy of :func:`pixveil.protect.protect_regions` (its image only)."""
    from pixveil.protect import protect_regions as protect_all

    return protect_all(method, pixels, regions, rng=rng, companion=companion).image


def anonymize(
    image: np.ndarray | str | os.PathLike[str],
    *,
    method: str = DEFAULT_METHOD,
    targets: Sequence[str] | str = DEFAULT_TARGETS,
    threshold: float | None = None,
    seed: int | None = None,
    max_pixels: int | None = None,
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
    max_pixels : int, optional
        Refuse larger images, files and arrays alike (default
        :data:`~pixveil.io.DEFAULT_MAX_PIXELS`).
    **method_params
        Parameters of the method, e.g. ``epsilon=1.0`` for ``dp-pix``/``dp-blur``.

    Returns
    -------
    AnonymizeResult
        ``.image`` (H, W, 3) uint8 RGB protected copy, ``.detections``, ``.alpha``.

    Raises
    ------
    InputError
        If ``image`` is neither an array nor a path, or cannot be used.
    """
    if not isinstance(image, (np.ndarray, str, os.PathLike)):
        raise InputError(
            f"expected a NumPy array or a file path, got {type(image).__name__}; "
            "to protect several files use pixveil.run_batch"
        )
    config = AnonymizeConfig(
        targets=tuple(targets.split(",")) if isinstance(targets, str) else tuple(targets),
        method=method,
        method_params=method_params,
        face_threshold=threshold,
        seed=seed,
        max_pixels=max_pixels,
    )
    anonymizer = Anonymizer(config)
    loaded = (
        load_array(image, max_pixels=anonymizer.max_pixels)
        if isinstance(image, np.ndarray)
        else anonymizer.read(Path(image))
    )
    result = anonymizer.protect(loaded.pixels)
    return AnonymizeResult(
        result.pixels, result.detections, loaded.alpha, anonymizer.method.describe()
    )


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
    #: Requested targets of which nothing was found in this image.
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BatchReport:
    """Summary of a batch run."""

    outcomes: list[ImageOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    #: The requested targets, in order.
    targets: tuple[str, ...] = ()
    #: Stale temporary files of an earlier, interrupted run that were removed.
    stale_removed: list[Path] = field(default_factory=list)
    dry_run: bool = False

    @property
    def n_images(self) -> int:
        return len(self.outcomes)

    @property
    def n_ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def n_written(self) -> int:
        return sum(1 for o in self.outcomes if o.output is not None)

    @property
    def failures(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, kind: str) -> int:
        return sum(o.detections.count(kind) for o in self.outcomes if o.detections is not None)

    def without(self) -> dict[str, int]:
        """Per requested target: processed images in which it found nothing."""
        return {t: sum(1 for o in self.outcomes if o.ok and t in o.missing) for t in self.targets}

    @property
    def n_incomplete(self) -> int:
        """Processed images in which at least one requested target found nothing."""
        return sum(1 for o in self.outcomes if o.ok and o.missing)

    def to_dict(self) -> dict[str, Any]:
        kinds = sorted({r.kind for o in self.outcomes if o.detections for r in o.detections})
        return {
            "images": self.n_images,
            "written": self.n_written,
            "dry_run": self.dry_run,
            "skipped_non_images": len(self.skipped),
            "regions": {k: self.count(k) for k in kinds},
            "images_without": self.without(),
            "method_events": dict(sum((Counter(o.events) for o in self.outcomes), Counter())),
            "stale_temp_files_removed": len(self.stale_removed),
            "failures": [{"file": str(o.path), "error": o.error} for o in self.failures],
        }


def collect_inputs(
    inputs: Sequence[Path], *, exclude: Path | None = None
) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """Expand files and folders (recursively, sorted) into image paths.

    Symbolic links to folders are not followed inside a folder input (a link
    loop would never end); linked files are read.

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
        else:
            # a missing or unreadable file is an error of that file, reported with the others
            images.append((p, None))
    return images, skipped


#: The run file a batch writes into its output folder.
RUN_FILE = "pixveil-run.json"


def run_batch(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    config: AnonymizeConfig | None = None,
    *,
    on_result: Callable[[ImageOutcome], None] | None = None,
    progress: ProgressCallback | None = None,
    output_file: Path | str | None = None,
) -> BatchReport:
    """Protect every image in ``inputs`` (files and folders) into ``out_dir``.

    Folder inputs are mirrored under ``out_dir``.  A file that cannot be read,
    detected, protected or written is recorded as a failure and gets no output;
    the batch goes on with the others.  Decoding of the next images overlaps
    with detection of the current one.  Stale temporary files that an
    interrupted earlier run left in ``out_dir`` are removed first (only pixveil's
    own temporary-file names).  Outputs are never written through a symbolic
    link below ``out_dir``.

    ``output_file`` names the output of a single input file instead (its
    extension gives the format unless ``config.output_format`` is set);
    ``out_dir`` is then ignored.

    ``on_result`` receives each :class:`ImageOutcome` as soon as it is known;
    ``progress`` receives :class:`~pixveil.progress.ProgressEvent` values of stage
    ``"images"`` (``done`` of ``total`` inputs, ``item`` the input just handled),
    the first one with ``done=0`` before any work.
    """
    config = config or AnonymizeConfig()
    anonymizer = Anonymizer(config)
    images, skipped = collect_inputs([Path(i) for i in inputs], exclude=Path(out_dir))
    if output_file is not None:
        if len(images) != 1 or skipped:
            raise ValueError("an output file name needs exactly one input image")
        target = Path(output_file)
        out = target.parent
        single_fmt = output_format_for(target, config.output_format)
    else:
        out = Path(out_dir)
        target = None
        single_fmt = None
    stale: list[Path] = []
    if not config.dry_run and output_file is None and out.is_dir() and not out.is_symlink():
        stale = clean_stale_temps(out)
    report = BatchReport(
        skipped=skipped, targets=tuple(config.targets), stale_removed=stale, dry_run=config.dry_run
    )
    report_progress = notify(check_progress(progress))
    report_progress(ProgressEvent("images", 0, len(images)))
    all_inputs = ProtectedPaths(p for p, _ in images)
    planned: dict[Path, Path] = {}
    rng = anonymizer._rng()  # one stream for the whole batch when seeded

    def plan(path: Path, root: Path | None) -> tuple[Path, Path, str]:
        if target is not None:
            assert single_fmt is not None
            return target, target.resolve(), single_fmt
        fmt = output_format_for(path, config.output_format)
        dst = output_path_for(path, input_root=root, out_dir=out, format=fmt)
        key = dst.resolve()
        if key in planned:
            raise OutputError(f"output would collide with that of {planned[key]}", path=dst)
        planned[key] = path
        return dst, key, fmt

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
            key: Path | None = None
            try:
                dst, key, fmt = plan(path, root)
                loaded = fut.result()
                outcome = anonymizer.process_file(
                    loaded,
                    dst,
                    protected_paths=all_inputs,
                    rng=rng,
                    root=None if target is not None else out,
                    format=fmt,
                )
            except (PixveilError, OSError) as exc:
                outcome = ImageOutcome(path, None, None, _one_line(exc, path))
            except Exception as exc:  # fail closed on anything unexpected, and say what it was
                outcome = ImageOutcome(
                    path, None, None, _one_line(exc, path, prefix=type(exc).__name__)
                )
            if not outcome.ok and key is not None and planned.get(key) == path:
                # a failed input writes nothing: its output name is free for the next one
                del planned[key]
            report.outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome)
            report_progress(ProgressEvent("images", i + 1, len(images), item=str(path)))
    return report


def write_run_file(out_dir: Path | str, config: AnonymizeConfig, report: BatchReport) -> Path:
    """Write ``pixveil-run.json`` (resolved config and summary) into ``out_dir``, atomically.

    Raises
    ------
    OutputError
        When it cannot be written (a folder of that name, a symbolic link, no permission).
    """
    path = Path(out_dir) / RUN_FILE
    if path.is_dir() or path.is_symlink():
        raise OutputError("cannot write the run file: a folder or link has its name", path=path)
    text = json.dumps({"config": config.to_dict(), "summary": report.to_dict()}, indent=2) + "\n"
    try:
        atomic_write_text(path, text, root=Path(out_dir))
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the run file ({exc.strerror or exc})", path=path) from exc
    return path


def _one_line(exc: BaseException, path: Path, *, prefix: str | None = None) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (InputError, OutputError)) and exc.path is not None:
        msg = " ".join(exc.reason.split())
        if exc.path != path:
            msg = f"{exc.path}: {msg}"
    elif isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror
    if prefix:
        msg = f"{prefix}: {msg}"
    return msg
