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
from collections.abc import Iterable, Iterator, Sequence
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
    load_array,
    output_format_for,
    read_image,
    write_image,
)
from pixveil.protect.base import RegionOutcome
from pixveil.types import Detections, Region
from pixveil.validate import check_pixel_limit

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


def _accepts(target: str, option: str) -> bool:
    """Whether the detector class of ``target`` takes ``option`` (plug-ins may not)."""
    import inspect

    from pixveil.detect import DETECTORS

    try:
        params = inspect.signature(DETECTORS.get(target)).parameters
    except (TypeError, ValueError):
        return False
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Anonymizer:
    """Detectors and a protection method built once from a config, reused for every image.

    Per-image results are returned (never stored on the instance), so one
    instance may serve several threads.
    """

    def __init__(
        self, config: AnonymizeConfig | None = None, *, threads: int | None = None
    ) -> None:
        """``threads``: ONNX Runtime intra-op threads of each detector (default: theirs,
        one per core); one per image suits several images protected at once."""
        from pixveil._onnx import resolve_providers
        from pixveil.detect import available_targets, get_detector
        from pixveil.protect import get_method

        self.config = config or AnonymizeConfig()
        self.threads = threads
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
        if self.threads is not None and _accepts(target, "threads"):
            options["threads"] = self.threads
        if self.device != "cpu":
            options["device"] = self.device
        return options

    def rng(self) -> np.random.Generator | None:
        """A generator seeded with ``config.seed``, or None (cryptographic noise) without one."""
        return None if self.config.seed is None else np.random.default_rng(self.config.seed)

    @property
    def max_pixels(self) -> int:
        return self.config.max_pixels or DEFAULT_MAX_PIXELS

    def detect(self, pixels: np.ndarray, *, max_size: int | str | None = "config") -> Detections:
        """Run every detector; any failure raises :class:`DetectionError`.

        With ``config.max_size`` (or ``max_size``, when given: None = full
        resolution) the detectors see a copy whose longer side is at most that
        many pixels; the regions are mapped back to ``pixels``.
        """
        height, width = pixels.shape[:2]
        size = self.config.max_size if max_size == "config" else max_size
        if isinstance(size, str):
            raise ValueError(f"max_size must be an int, None or 'config', got {size!r}")
        small, scale = _downscaled(pixels, size)
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

    @property
    def can_detect_near(self) -> bool:
        """Whether a face detector that can search windows (:meth:`detect_near`) is loaded."""
        return any(callable(getattr(d, "detect_near", None)) for d in self.detectors)

    def detect_near(self, pixels: np.ndarray, boxes: Sequence[Sequence[float]]) -> Detections:
        """Faces found in windows around ``boxes`` (where tracked faces are expected).

        Only the face detectors run (:meth:`pixveil.detect.faces.FaceDetector.detect_near`),
        at full resolution whatever ``max_size`` says (the windows are small);
        other targets are not looked for.  Failures raise :class:`DetectionError`.
        """
        height, width = pixels.shape[:2]
        regions: list[Region] = []
        for det in self.detectors:
            near = getattr(det, "detect_near", None)
            if not callable(near):
                continue
            try:
                regions.extend(near(pixels, boxes))
            except PixveilError:
                raise
            except Exception as exc:
                raise DetectionError(f"{type(det).__name__} failed: {exc}") from exc
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
        check_pixel_limit(pixels, self.max_pixels)
        detections = self.detect(pixels)
        if self.config.dry_run:
            return ProtectedImage(pixels, detections, {})
        if rng is None:
            rng = self.rng()
        from pixveil.protect import protect_regions as protect_all

        regions: Sequence[Region] = detections
        if self.config.region != "face":
            from pixveil.regions import expand_regions

            regions = expand_regions(detections, self.config.region, image=pixels)
        done = protect_all(self.method, pixels, regions, rng=rng, companion=self.companion)
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


def anonymize(
    image: np.ndarray | str | os.PathLike[str],
    *,
    method: str = DEFAULT_METHOD,
    targets: Sequence[str] | str = DEFAULT_TARGETS,
    threshold: float | None = None,
    seed: int | None = None,
    max_pixels: int | None = None,
    region: str = "face",
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
    region : {"face", "head", "person"}
        What of each person is protected: the face (default), the head (hair,
        ears, neck) or the whole person (see :mod:`pixveil.regions`).
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
        region=region,
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


# The batch (run_batch and its report) lives in pixveil.batch; its names stay
# importable from here.
from pixveil.batch import (  # noqa: E402
    RUN_FILE,
    BatchReport,
    ImageOutcome,
    collect_inputs,
    run_batch,
    write_run_file,
)
