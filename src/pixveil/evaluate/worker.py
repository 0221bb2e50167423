"""The per-image work of an evaluation and the pool of processes that runs it.

:func:`pixveil.evaluate.run_evaluation` works in two passes over the images,
each a list of jobs given to a :class:`WorkerPool` together with the
:class:`Worker` method that does one job:

1. :meth:`Worker.analyse` (an :class:`AnalyseJob` per image): pixveil's face
   detector (``faces``) finds the regions to protect; dlib's HOG detector finds
   the face used for re-identification and the original is encoded by dlib's
   recogniser.  The detections are reused by every setting.
2. :meth:`Worker.protect` (a :class:`ProtectJob` per image): the image is
   protected with every setting (:func:`pixveil.protect.protect_regions` with
   the stored regions; the noise of randomised methods is seeded per setting and
   image, so runs are reproducible and do not depend on the number of
   processes); utility metrics on the whole image and on the protected region
   only; the protected probe is encoded by dlib at the original face location;
   both detectors run again to see whether the face is still found; optional
   MobileNetV2 features and face crops for the attacks.

With one process the jobs run here; with more, in worker processes started
with the ``spawn`` method, each loading the models once.  These are the
evaluation's internals: the names are public so that the runner can use them,
not a stable interface.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pixveil.errors import InputError
from pixveil.evaluate.privacy import HogFaceCheck, matches_reference
from pixveil.evaluate.spec import Setting
from pixveil.io import read_image
from pixveil.protect import protect_regions
from pixveil.types import Box, Region

__all__ = [
    "CROP_SCALE",
    "AnalyseJob",
    "Original",
    "Outcome",
    "Plan",
    "ProtectJob",
    "Worker",
    "WorkerPool",
    "present",
    "protected_mask",
    "resize_square",
]

#: Half of scikit-image's 7x7 SSIM window: the context a region-only SSIM needs.
_SSIM_PAD = 3
#: Face crops for the attacks: the face box grown by this factor, made square.
CROP_SCALE = 1.2
#: Example views: the face box grown by this factor, made square.
_VIEW_SCALE = 2.2
#: Side (pixels) of the example views kept for the report.
_VIEW_SIZE = 160

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class Plan:
    """What a worker needs (picklable): the protected settings and what to measure."""

    settings: tuple[Setting, ...]  # without the baseline
    seed: int
    face_threshold: float | None
    utility: bool
    ms_ssim: bool
    region_ms_ssim: bool
    reid: bool
    detection: bool
    fid: bool
    crop_size: int | None
    max_pixels: int
    #: What the attackers see (:func:`~pixveil.evaluate.spec.parse_contexts`).
    contexts: tuple[str, ...] = ("1.2",)
    #: What of each person the settings protect (:mod:`pixveil.regions`).
    region: str = "face"


@dataclass
class Original:
    """What :meth:`Worker.analyse` learns about one original image."""

    index: int
    error: str | None = None
    shape: tuple[int, int] = (0, 0)
    regions: tuple[Region, ...] = ()
    dlib_box: Box | None = None
    found_dlib: bool | None = None
    embedding: np.ndarray | None = None
    features: np.ndarray | None = None
    probs: np.ndarray | None = None
    crop_box: tuple[int, int, int, int] = (0, 0, 0, 0)
    view_box: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop: np.ndarray | None = None
    #: The attacker's view of the original per context (with ``crop_size``).
    context_crops: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def reference(self) -> Box | None:
        """The main face found by pixveil's detector (the largest), if any."""
        if not self.regions:
            return None
        return max(self.regions, key=lambda r: r.area).box


@dataclass
class Outcome:
    """What :meth:`Worker.protect` measures for one image under one setting."""

    whole: dict[str, float] | None = None
    region: dict[str, float] | None = None
    notes: tuple[str, ...] = ()
    n_regions: int = 0
    covered: bool | None = None
    embedding: np.ndarray | None = None
    found_pixveil: bool | None = None
    found_dlib: bool | None = None
    features: np.ndarray | None = None
    probs: np.ndarray | None = None
    crop: np.ndarray | None = None
    #: The attacker's view of the protected image per context (with ``crop_size``).
    context_crops: dict[str, np.ndarray] = field(default_factory=dict)
    view: np.ndarray | None = None
    original_view: np.ndarray | None = None  # set on the first setting's outcome only


@dataclass(frozen=True)
class AnalyseJob:
    """One original image to analyse: its index in the data set and its path."""

    index: int
    path: Path


@dataclass(frozen=True)
class ProtectJob:
    """One image to protect with every setting and measure.

    ``encode``: encode the protected face with dlib (the image is a probe);
    ``keep_view``: keep the example views of the report.
    """

    index: int
    path: Path
    info: Original
    encode: bool
    keep_view: bool


def present(value: np.ndarray | None) -> np.ndarray:
    """``value``, a per-image array that the :class:`Plan` guarantees was computed."""
    if value is None:
        raise RuntimeError("internal error: a per-image array was not computed")
    return value


def _square(box: Box | None, width: int, height: int, scale: float) -> tuple[int, int, int, int]:
    """A square around ``box`` grown by ``scale``, shifted and shrunk to fit the image."""
    if box is None:
        cx, cy, side = width / 2, height / 2, float(min(width, height))
    else:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * scale
    side_px = max(1, min(round(side), width, height))
    x0 = min(max(0, round(cx - side_px / 2)), width - side_px)
    y0 = min(max(0, round(cy - side_px / 2)), height - side_px)
    return x0, y0, x0 + side_px, y0 + side_px


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interp)


def context_crops(
    image: np.ndarray, reference: Box | None, contexts: Sequence[str], size: int
) -> dict[str, np.ndarray]:
    """What an attacker sees of ``image`` in each context, ``size`` x ``size``.

    A number ``c`` is the square around ``reference`` (the face box) grown by
    ``c``, shifted and shrunk to fit the image; ``"full"`` is the whole image
    (resized, the aspect ratio not kept).
    """
    h, w = image.shape[:2]
    out: dict[str, np.ndarray] = {}
    for c in contexts:
        if c == "full":
            out[c] = resize_square(image, size)
        else:
            out[c] = resize_square(_cut(image, _square(reference, w, h, float(c))), size)
    return out


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def _padded_bbox(mask: np.ndarray, pad: int, min_side: int) -> tuple[slice, slice]:
    """Bounding box of ``mask`` grown by ``pad`` pixels and to at least ``min_side``."""
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))

    def span(lo: int, hi: int, size: int) -> slice:
        lo, hi = max(0, lo - pad), min(size, hi + 1 + pad)
        missing = min_side - (hi - lo)
        if missing > 0:
            lo = max(0, lo - (missing + 1) // 2)
            hi = min(size, max(hi, lo + min_side))
            lo = max(0, min(lo, hi - min_side))
        return slice(lo, hi)

    return span(int(rows[0]), int(rows[-1]), h), span(int(cols[0]), int(cols[-1]), w)


def protected_mask(
    regions: Sequence[Region], height: int, width: int, *, shape: str, margin: float
) -> np.ndarray:
    """The pixels a method may change: the union of the regions' shape masks.

    Parameters
    ----------
    regions : sequence of Region
    height, width : int
        Image size.
    shape, margin
        The method's :class:`~pixveil.protect.MethodParams` ``shape`` and ``margin``.

    Returns
    -------
    ndarray of shape (height, width), bool
    """
    from pixveil.protect.base import region_geometry

    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        geom = region_geometry(region, width, height, shape=shape, margin=margin)
        if geom is None:
            continue
        (x0, y0, x1, y1), local, _ = geom
        mask[y0:y1, x0:x1] |= local
    return mask


class Worker:
    """The models of one process and the per-image work."""

    def __init__(self, plan: Plan, *, single_thread: bool) -> None:
        from pixveil.detect import get_detector
        from pixveil.protect import get_method

        self.plan = plan
        options: dict[str, Any] = {}
        if plan.face_threshold is not None:
            options["threshold"] = float(plan.face_threshold)
        if single_thread:
            import cv2

            cv2.setNumThreads(1)
            options["threads"] = 1
            if plan.fid:
                import torch

                torch.set_num_threads(1)
        self.detector = get_detector("faces", **options)
        self.methods = [get_method(s.method, **s.params) for s in plan.settings]
        self.encoder: Any = None
        self.hog: HogFaceCheck | None = None
        if plan.reid or plan.detection:
            from pixveil.evaluate.reid import get_face_encoder

            self.encoder = get_face_encoder()
        if plan.detection:
            self.hog = HogFaceCheck()

    def _read(self, path: Path) -> np.ndarray:
        return read_image(path, max_pixels=self.plan.max_pixels).pixels

    def _features(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """MobileNetV2 features ``(n, 1280)`` and class probabilities ``(n, 1000)``."""
        from pixveil.evaluate.features import class_probabilities, extract_features

        return extract_features(images), class_probabilities(images)

    def analyse(self, job: AnalyseJob) -> Original:
        """Detect, locate and encode the face of one original image."""
        index = job.index
        try:
            image = self._read(job.path)
        except InputError as exc:
            return Original(index, error=str(exc))
        h, w = image.shape[:2]
        info = Original(index, shape=(h, w), regions=tuple(self.detector.detect(image)))
        if self.encoder is not None:
            info.dlib_box = self.encoder.locate_central(image)
            if self.plan.reid and info.dlib_box is not None:
                info.embedding = self.encoder.encode(image, info.dlib_box)
        if self.hog is not None and info.dlib_box is not None:
            info.found_dlib = self.hog.found(image, info.dlib_box)
        if self.plan.fid:
            features, probs = self._features([image])
            info.features, info.probs = features[0], probs[0]
        ref = info.reference or info.dlib_box
        info.crop_box = _square(ref, w, h, CROP_SCALE)
        info.view_box = _square(ref, w, h, _VIEW_SCALE)
        if self.plan.crop_size is not None:
            info.crop = resize_square(_cut(image, info.crop_box), self.plan.crop_size)
            info.context_crops = context_crops(image, ref, self.plan.contexts, self.plan.crop_size)
        return info

    def _utility(
        self, original: np.ndarray, protected: np.ndarray, mask: np.ndarray
    ) -> tuple[dict[str, float] | None, dict[str, float] | None, list[str]]:
        from pixveil.evaluate.metrics import SSIM_MIN_SIDE, utility_report

        notes: list[str] = []
        whole: dict[str, float] | None = None
        region: dict[str, float] | None = None
        try:
            report = utility_report(original, protected, include_ms_ssim=self.plan.ms_ssim)
            whole = dict(report)
            notes.extend(
                f"whole-image {k}: {v}" for k, v in report.notes.items() if self.plan.ms_ssim
            )
        except InputError as exc:
            notes.append(f"whole-image metrics: {exc}")
        if mask.any():
            # Only pixels under the mask changed (compositing guarantees it), and the
            # region metrics look only at the mask (with 3 px of context for SSIM's
            # window): computing them on this crop gives the full image's values.
            rows, cols = _padded_bbox(mask, _SSIM_PAD, SSIM_MIN_SIDE)
            try:
                report = utility_report(
                    original[rows, cols],
                    protected[rows, cols],
                    mask[rows, cols],
                    include_ms_ssim=self.plan.region_ms_ssim,
                )
                region = dict(report)
                notes.extend(
                    f"region-only {k}: {v}"
                    for k, v in report.notes.items()
                    if self.plan.region_ms_ssim
                )
            except InputError as exc:
                notes.append(f"region metrics: {exc}")
        return whole, region, notes

    def protect(self, job: ProtectJob) -> list[Outcome]:
        """Protect one image with every setting and measure each protected image."""
        index, info, encode, keep_view = job.index, job.info, job.encode, job.keep_view
        image = self._read(job.path)
        h, w = image.shape[:2]
        reference = info.reference
        masks: dict[tuple[str, float], np.ndarray] = {}
        outcomes = []
        regions: Sequence[Region] = info.regions
        if self.plan.region != "face":
            from pixveil.regions import expand_regions

            regions = expand_regions(info.regions, self.plan.region, image=image)
        kept: list[np.ndarray] = []  # protected images, for batched features
        for k, method in enumerate(self.methods):
            rng = (
                np.random.default_rng(np.random.SeedSequence([self.plan.seed, k, index]))
                if method.randomized
                else None
            )
            protected = protect_regions(method, image, regions, rng=rng).image
            key = (method.params.shape, float(method.params.margin))
            if key not in masks:
                masks[key] = protected_mask(
                    regions, h, w, shape=method.params.shape, margin=method.params.margin
                )
            mask = masks[key]
            out = Outcome(n_regions=len(regions))
            if self.plan.utility:
                out.whole, out.region, notes = self._utility(image, protected, mask)
                out.notes = tuple(notes)
            if info.dlib_box is not None:
                cx = int((info.dlib_box[0] + info.dlib_box[2]) / 2)
                cy = int((info.dlib_box[1] + info.dlib_box[3]) / 2)
                out.covered = bool(0 <= cy < h and 0 <= cx < w and mask[cy, cx])
                if encode:
                    out.embedding = self.encoder.encode(protected, info.dlib_box)
            if self.plan.detection:
                if reference is not None:
                    found = [r.box for r in self.detector.detect(protected)]
                    out.found_pixveil = matches_reference(found, reference)
                if self.hog is not None and info.dlib_box is not None:
                    out.found_dlib = self.hog.found(protected, info.dlib_box)
            if self.plan.fid:
                kept.append(protected)
            if self.plan.crop_size is not None:
                out.crop = resize_square(_cut(protected, info.crop_box), self.plan.crop_size)
                out.context_crops = context_crops(
                    protected,
                    info.reference or info.dlib_box,
                    self.plan.contexts,
                    self.plan.crop_size,
                )
            if keep_view:
                out.view = resize_square(_cut(protected, info.view_box), _VIEW_SIZE)
                if k == 0:  # once per image
                    out.original_view = resize_square(_cut(image, info.view_box), _VIEW_SIZE)
            outcomes.append(out)
        if kept:
            features, probs = self._features(kept)
            for out, f, pr in zip(outcomes, features, probs, strict=True):
                out.features, out.probs = f, pr
        return outcomes


_WORKER: Worker | None = None


def _limit_blas_threads() -> Any:
    """Limit BLAS to one thread (a context manager; a no-op without threadpoolctl).

    The metrics only make BLAS calls on single vectors; a multi-threaded BLAS
    then spends more time waking its threads than computing, and far more when
    the cores are busy (measured: a 187,500-element dot product took ~10 ms
    instead of 0.03 ms with the CPU loaded).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _init_worker(plan: Plan) -> None:
    global _WORKER
    # Kept for the life of the worker process.
    _limit_blas_threads()
    _WORKER = Worker(plan, single_thread=True)


def _timed(worker: Worker, task: Callable[[Worker, J], R], job: J) -> tuple[R, float]:
    """Run ``task(worker, job)``; return its result and the CPU seconds it took."""
    start = time.process_time()
    result = task(worker, job)
    return result, time.process_time() - start


def _in_worker_process(task: Callable[[Worker, J], R], job: J) -> tuple[R, float]:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker not initialised")
    return _timed(_WORKER, task, job)


class WorkerPool:
    """Runs per-image jobs in this process (``workers == 1``) or in worker processes."""

    def __init__(self, plan: Plan, workers: int) -> None:
        self.workers = workers
        self.cpu_seconds = 0.0  # spent in the jobs, all processes together
        self._executor: ProcessPoolExecutor | None = None
        self._local: Worker | None = None
        if workers == 1:
            self._local = Worker(plan, single_thread=False)
        else:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(plan,),
            )

    def run(
        self,
        task: Callable[[Worker, J], R],
        jobs: Sequence[J],
        on_done: Callable[[int], None],
    ) -> list[R]:
        """``task(worker, job)`` for every job; the results in job order.

        ``task`` is a :class:`Worker` method (``Worker.analyse`` or
        ``Worker.protect``): it is pickled by name for the worker processes.
        ``on_done(i)`` is called in this process as job ``i`` finishes.
        """
        results: list[Any] = [None] * len(jobs)
        if self._local is not None:
            with _limit_blas_threads():
                for i, job in enumerate(jobs):
                    results[i], cpu = _timed(self._local, task, job)
                    self.cpu_seconds += cpu
                    on_done(i)
            return results
        if self._executor is None:  # pragma: no cover - internal
            raise RuntimeError("pool is closed")
        futures: dict[Future[Any], int] = {
            self._executor.submit(_in_worker_process, task, job): i for i, job in enumerate(jobs)
        }
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                results[i], cpu = fut.result()
                self.cpu_seconds += cpu
                on_done(i)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return results

    def close(self) -> None:
        """Stop the worker processes (cancelling the jobs not started)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
