"""The evaluation runner: protect a face data set with every method and measure it.

:func:`run_evaluation` takes one :class:`~pixveil.evaluate.spec.EvaluationConfig`
and returns an :class:`~pixveil.evaluate.results.EvaluationResult`;
:mod:`pixveil.evaluate.report` writes it to disk.

What happens
------------
1. The folder is listed and sampled (:func:`pixveil.evaluate.datasets.load_dataset`).
2. **Originals** (once per image): pixveil's face detector (``faces``) finds the
   regions to protect; dlib's HOG detector finds the face used for
   re-identification and the original is encoded by dlib's recogniser.  The
   detections are reused by every method and parameter value.
3. **Settings**: an unprotected baseline (``none``) plus, for each method, one
   setting per value of its swept parameter: ``epsilon`` for methods that have
   one (``dp-pix``, ``dp-blur``; values from ``epsilons``), ``strength`` for
   ``blur`` and ``blocks`` for ``pixelate`` (:data:`DEFAULT_SWEEPS`), one
   setting for the others (``mask``).  ``sweeps`` overrides any of them.
4. **Per image and setting**: the image is protected
   (:meth:`~pixveil.protect.ProtectionMethod.apply` with the stored regions;
   the noise of randomised methods is seeded per setting and image, so runs are
   reproducible and do not depend on ``workers``); utility metrics
   (:func:`~pixveil.evaluate.metrics.utility_report`) on the whole image and on
   the protected region only; the protected probe is encoded by dlib at the
   original face location; pixveil's and dlib's detectors are run again to see
   whether the face is still found; optional MobileNetV2 features (FID-like /
   IS-like scores) and face crops for the attacks.
5. **Aggregation** per setting: means of the utility metrics, the
   re-identification figures of :class:`~pixveil.evaluate.privacy.ReidProtocol`,
   detection rates, FID-like and IS-like scores.
6. **Attacks** (optional): the CNN re-identification attack and the
   reconstruction attack of :mod:`pixveil.evaluate.attacks`, trained and tested
   on the face crops of each setting.

Images are processed in parallel by ``workers`` processes (image by image); the
models are loaded once per process.  The library never prints: progress is
reported through a callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError
from pixveil.evaluate.datasets import FaceDataset, load_dataset
from pixveil.evaluate.privacy import (
    DEFAULT_DETECTION_IOU,
    HogFaceCheck,
    ReidProtocol,
    detection_rate,
    matches_reference,
)
from pixveil.evaluate.results import (
    UTILITY_KEYS,
    EvaluationResult,
    Example,
    SettingResult,
    pool_results,
)
from pixveil.evaluate.spec import (
    ATTACKS,
    BASELINE,
    DEFAULT_EPSILONS,
    DEFAULT_METHODS,
    DEFAULT_SWEEPS,
    EvaluationConfig,
    Setting,
    parse_fixed,
    parse_list,
    parse_sweep,
    parse_value,
)
from pixveil.io import read_image
from pixveil.pipeline import protect_regions
from pixveil.types import Box, Region

__all__ = [
    "ATTACKS",
    "BASELINE",
    "DEFAULT_EPSILONS",
    "DEFAULT_METHODS",
    "DEFAULT_SWEEPS",
    "UTILITY_KEYS",
    "EvaluationConfig",
    "EvaluationResult",
    "Example",
    "ProgressEvent",
    "Setting",
    "SettingResult",
    "attacks_available",
    "frechet_distance_low_rank",
    "parse_fixed",
    "parse_list",
    "parse_sweep",
    "parse_value",
    "pool_results",
    "protected_mask",
    "run_evaluation",
]
#: Utility of an unprotected image against itself.
_IDENTICAL: dict[str, float] = {
    "ssim": 1.0,
    "ms_ssim": 1.0,
    "psnr": math.inf,
    "l0": 0.0,
    "l0_fraction": 0.0,
    "l2": 0.0,
    "ald_0": 0.0,
    "ald_2": 0.0,
    "ald_inf": 0.0,
    "dhash": 0.0,
}
#: Half of scikit-image's 7x7 SSIM window: the context a region-only SSIM needs.
_SSIM_PAD = 3
#: Face crops for the attacks: the face box grown by this factor, made square.
_CROP_SCALE = 1.2
#: Example views: the face box grown by this factor, made square.
_VIEW_SCALE = 2.2
#: Side (pixels) of the example views kept for the report.
_VIEW_SIZE = 160
#: Share of each identity's images held out to test the attacks.
_ATTACK_TEST_FRACTION = 0.2
#: Reconstructions kept per setting for the report.
_SHOWN_RECONSTRUCTIONS = 6


# --------------------------------------------------------------------------- #
# progress
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ProgressEvent:
    """A progress report.

    Attributes
    ----------
    stage : str
        ``"load"``, ``"originals"``, ``"protect"``, ``"scores"`` or ``"attack"``.
    done, total : int
        Units done and expected in this stage (images, or attack runs).
    message : str
        A one-line status (for attacks: the current setting and epoch).
    """

    stage: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


# --------------------------------------------------------------------------- #
# per-image work (runs in worker processes)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Plan:
    """What a worker needs (picklable)."""

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


@dataclass
class _Original:
    """What phase 1 learns about one original image."""

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

    @property
    def reference(self) -> Box | None:
        """The main face found by pixveil's detector (the largest), if any."""
        if not self.regions:
            return None
        return max(self.regions, key=lambda r: r.area).box


@dataclass
class _Outcome:
    """What phase 2 measures for one image under one setting."""

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
    view: np.ndarray | None = None
    original_view: np.ndarray | None = None  # set on the first setting's outcome only


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


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interp)


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


class _Worker:
    """The models of one process and the per-image work."""

    def __init__(self, plan: _Plan, *, single_thread: bool) -> None:
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

    def analyse(self, index: int, path: Path) -> _Original:
        try:
            image = self._read(path)
        except InputError as exc:
            return _Original(index, error=str(exc))
        h, w = image.shape[:2]
        info = _Original(index, shape=(h, w), regions=tuple(self.detector.detect(image)))
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
        info.crop_box = _square(ref, w, h, _CROP_SCALE)
        info.view_box = _square(ref, w, h, _VIEW_SCALE)
        if self.plan.crop_size is not None:
            info.crop = _resize(_cut(image, info.crop_box), self.plan.crop_size)
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

    def protect(
        self,
        index: int,
        path: Path,
        info: _Original,
        *,
        encode: bool,
        keep_view: bool,
    ) -> list[_Outcome]:
        image = self._read(path)
        h, w = image.shape[:2]
        reference = info.reference
        masks: dict[tuple[str, float], np.ndarray] = {}
        outcomes = []
        kept: list[np.ndarray] = []  # protected images, for batched features
        for k, method in enumerate(self.methods):
            rng = (
                np.random.default_rng(np.random.SeedSequence([self.plan.seed, k, index]))
                if method.randomized
                else None
            )
            protected = protect_regions(method, image, info.regions, rng=rng)
            key = (method.params.shape, float(method.params.margin))
            if key not in masks:
                masks[key] = protected_mask(
                    info.regions, h, w, shape=method.params.shape, margin=method.params.margin
                )
            mask = masks[key]
            out = _Outcome(n_regions=len(info.regions))
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
                out.crop = _resize(_cut(protected, info.crop_box), self.plan.crop_size)
            if keep_view:
                out.view = _resize(_cut(protected, info.view_box), _VIEW_SIZE)
                if k == 0:  # once per image
                    out.original_view = _resize(_cut(image, info.view_box), _VIEW_SIZE)
            outcomes.append(out)
        if kept:
            features, probs = self._features(kept)
            for out, f, pr in zip(outcomes, features, probs, strict=True):
                out.features, out.probs = f, pr
        return outcomes


_WORKER: _Worker | None = None


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


def _init_worker(plan: _Plan) -> None:
    global _WORKER
    # Kept for the life of the worker process.
    _limit_blas_threads()
    _WORKER = _Worker(plan, single_thread=True)


def _call(worker: _Worker, task: str, args: tuple[Any, ...]) -> tuple[Any, float]:
    """Run one job on ``worker``; return its result and the CPU seconds it took."""
    start = time.process_time()
    if task == "analyse":
        result: Any = worker.analyse(*args)
    elif task == "protect":
        index, path, info, encode, keep_view = args
        result = worker.protect(index, path, info, encode=encode, keep_view=keep_view)
    else:  # pragma: no cover - internal
        raise ValueError(f"unknown task {task!r}")
    return result, time.process_time() - start


def _worker_call(task: str, args: tuple[Any, ...]) -> tuple[Any, float]:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker not initialised")
    return _call(_WORKER, task, args)


class _Pool:
    """Runs per-image jobs in this process (``workers == 1``) or in worker processes."""

    def __init__(self, plan: _Plan, workers: int) -> None:
        self.workers = workers
        self.cpu_seconds = 0.0  # spent in the jobs, all processes together
        self._executor: ProcessPoolExecutor | None = None
        self._local: _Worker | None = None
        if workers == 1:
            self._local = _Worker(plan, single_thread=False)
        else:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(plan,),
            )

    def run(
        self, task: str, jobs: Sequence[tuple[Any, ...]], on_done: Callable[[int], None]
    ) -> list[Any]:
        """``task`` (``"analyse"`` or ``"protect"``) on every job; results in job order."""
        results: list[Any] = [None] * len(jobs)
        if self._local is not None:
            with _limit_blas_threads():
                for i, job in enumerate(jobs):
                    results[i], cpu = _call(self._local, task, job)
                    self.cpu_seconds += cpu
                    on_done(i)
            return results
        if self._executor is None:  # pragma: no cover - internal
            raise RuntimeError("pool is closed")
        futures: dict[Future[Any], int] = {
            self._executor.submit(_worker_call, task, job): i for i, job in enumerate(jobs)
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
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- #
# aggregation
# --------------------------------------------------------------------------- #
def _mean_metrics(records: Iterable[dict[str, float] | None]) -> tuple[dict[str, float], int]:
    rows = [r for r in records if r is not None]
    out: dict[str, float] = {}
    for key in UTILITY_KEYS:
        values = np.asarray([r.get(key, math.nan) for r in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            out[key] = float(finite.mean())
        elif values.size and np.all(np.isposinf(values)):
            out[key] = math.inf
        else:
            out[key] = math.nan
    return out, len(rows)


def _present(value: np.ndarray | None) -> np.ndarray:
    """``value``, which the plan guarantees was computed."""
    if value is None:
        raise RuntimeError("internal error: a per-image array was not computed")
    return value


def _rate(values: Iterable[bool | None]) -> float | None:
    return detection_rate(values)


def frechet_distance_low_rank(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The squared Fréchet distance between Gaussians fitted to two feature sets, fast.

    Same value as :func:`pixveil.evaluate.features.frechet_distance` (sample
    means and unbiased covariances), computed without the ``D x D`` matrix
    square root: with ``X`` and ``Y`` the centred features divided by
    ``sqrt(n - 1)`` (so that ``S_a = X^T X`` and ``S_b = Y^T Y``), the
    eigenvalues of ``S_a S_b`` are the squared singular values of ``X Y^T``, so
    ``Tr((S_a S_b)^(1/2))`` is the nuclear norm of the ``n_a x n_b`` matrix
    ``X Y^T``.  For 1280-d features of a few hundred images this takes
    milliseconds instead of the tens of seconds of ``scipy.linalg.sqrtm``.

    Parameters
    ----------
    features_a, features_b : ndarray of shape (N_a, D) and (N_b, D)
        At least 2 rows each, finite.

    Returns
    -------
    float
        ``>= 0`` (round-off below 0 is clipped).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    for name, x in (("features_a", a), ("features_b", b)):
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, D) with N >= 2, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} must be finite")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    x = (a - mu_a) / math.sqrt(a.shape[0] - 1)
    y = (b - mu_b) / math.sqrt(b.shape[0] - 1)
    nuclear = float(np.linalg.svd(x @ y.T, compute_uv=False).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + (x * x).sum() + (y * y).sum() - 2.0 * nuclear)
    return max(value, 0.0)


def _fid_scores(
    originals: np.ndarray, features: np.ndarray, probs: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    from pixveil.evaluate.features import inception_score_like

    if features.shape[0] < 2:
        return None, None, None
    fid = frechet_distance_low_rank(originals, features)
    # At most 10 splits (the reference's) of at least 50 images each: the score
    # of a chunk is bounded by its size, so tiny chunks say nothing.
    splits = max(1, min(10, probs.shape[0] // 50))
    mean, std = inception_score_like(probs, splits=splits)
    return fid, mean, std


def _environment() -> dict[str, Any]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("pixveil", "numpy", "scikit-image", "torch", "dlib-bin", "onnxruntime"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_start": load,
        "versions": versions,
    }


def attacks_available() -> dict[str, str | None]:
    """For each attack, None when it can run, else why it cannot."""
    out: dict[str, str | None] = {}
    for name, module in (
        ("cnn", "pixveil.evaluate.attacks.cnn_reid"),
        ("reconstruction", "pixveil.evaluate.attacks.reconstruction"),
    ):
        try:
            __import__(module)
            import torch  # noqa: F401
        except MissingDependencyError as exc:
            out[name] = str(exc)
        except ImportError as exc:
            out[name] = f"{module} cannot be imported ({exc})"
        else:
            out[name] = None
    return out


def _attack_split(
    labels: Sequence[str | None], indices: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Hold out the last ~20 % of each identity's images (at least one, keeping one)."""
    if all(labels[i] is None for i in indices):
        n_test = max(1, round(len(indices) * _ATTACK_TEST_FRACTION))
        if len(indices) < 2:
            return [], []
        return list(indices[:-n_test]), list(indices[-n_test:])
    groups: dict[str, list[int]] = {}
    for i in indices:
        label = labels[i]
        if label is not None:
            groups.setdefault(label, []).append(i)
    train: list[int] = []
    test: list[int] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        n_test = max(1, round(len(members) * _ATTACK_TEST_FRACTION))
        train.extend(members[:-n_test])
        test.extend(members[-n_test:])
    return train, test


def _run_attacks(
    config: EvaluationConfig,
    dataset: FaceDataset,
    valid: Sequence[int],
    infos: Sequence[_Original],
    crops: Mapping[str, Mapping[int, np.ndarray]],
    results: Sequence[SettingResult],
    notes: list[str],
    reconstructions: dict[str, tuple[np.ndarray, np.ndarray]],
    emit: Callable[[ProgressEvent], None],
) -> None:
    available = attacks_available()
    labels = dataset.labels
    train, test = _attack_split(labels, valid)
    runs: list[tuple[str, SettingResult]] = []
    for attack in config.attacks:
        reason = available.get(attack)
        if reason is not None:
            notes.append(f"attack {attack!r} skipped: {reason}")
            continue
        if attack == "cnn" and not dataset.has_identities:
            notes.append("attack 'cnn' skipped: a flat folder has no identities to recognise")
            continue
        if not train or not test:
            notes.append(f"attack {attack!r} skipped: too few images to train and test")
            continue
        if attack == "cnn" and len({labels[i] for i in train}) < 2:
            notes.append("attack 'cnn' skipped: it needs at least two identities")
            continue
        for res in results:
            if attack == "reconstruction" and res.setting.is_baseline:
                continue  # nothing to undo
            runs.append((attack, res))
    if not runs:
        return
    originals = {i: _present(infos[i].crop) for i in valid}
    train_orig = np.stack([originals[i] for i in train])
    test_orig = np.stack([originals[i] for i in test])
    train_labels = np.asarray([labels[i] or "" for i in train])
    test_labels = np.asarray([labels[i] or "" for i in test])
    encoder: Any = None
    if config.reid:
        from pixveil.evaluate.reid import get_face_encoder

        encoder = get_face_encoder()
    size = config.attack_image_size
    for n_done, (attack, res) in enumerate(runs):
        label = res.setting.label
        source = crops.get(label, originals)
        train_prot = np.stack([source[i] for i in train])
        test_prot = np.stack([source[i] for i in test])

        def report(message: str, n_done: int = n_done, label: str = label) -> None:
            emit(ProgressEvent("attack", n_done, len(runs), f"{label}: {message}"))

        report(f"{attack} attack")
        if attack == "cnn":
            from pixveil.evaluate.attacks.cnn_reid import cnn_reid_attack

            kwargs: dict[str, Any] = {"image_size": size, "seed": config.seed}
            if config.cnn_epochs is not None:
                kwargs["epochs"] = config.cnn_epochs
            cnn = cnn_reid_attack(
                train_prot, train_labels, test_prot, test_labels, progress=report, **kwargs
            )
            res.attacks["cnn"] = {
                k: v for k, v in dataclasses.asdict(cnn).items() if not isinstance(v, np.ndarray)
            }
        else:
            from pixveil.evaluate.attacks.reconstruction import reconstruction_attack

            kwargs = {"image_size": size, "seed": config.seed}
            if config.reconstruction_epochs is not None:
                kwargs["epochs"] = config.reconstruction_epochs
            rec = reconstruction_attack(
                train_orig, train_prot, test_orig, test_prot, progress=report, **kwargs
            )
            entry: dict[str, Any] = {
                "ssim_protected": rec.ssim_protected,
                "ssim_reconstructed": rec.ssim_reconstructed,
                "psnr_protected": rec.psnr_protected,
                "psnr_reconstructed": rec.psnr_reconstructed,
                "epochs": rec.epochs,
                "train_seconds": rec.train_seconds,
                "n_train": len(train),
                "n_test": len(test),
            }
            if encoder is not None:
                entry.update(_crop_same_photo(encoder, test_orig, test_prot, rec.reconstructions))
            res.attacks["reconstruction"] = entry
            reconstructions[label] = (
                _resize_all(test_prot[:_SHOWN_RECONSTRUCTIONS], size),
                rec.reconstructions[:_SHOWN_RECONSTRUCTIONS],
            )
            reconstructions.setdefault(
                "original", (_resize_all(test_orig[:_SHOWN_RECONSTRUCTIONS], size),) * 2
            )
    emit(ProgressEvent("attack", len(runs), len(runs), "attacks done"))


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([_resize(im, size) for im in images])


def _crop_same_photo(
    encoder: Any, originals: np.ndarray, protected: np.ndarray, reconstructed: np.ndarray
) -> dict[str, Any]:
    """dlib same-photo verification of protected and reconstructed face crops.

    Each crop is enlarged to 150 px and encoded with the face assumed to fill
    the central 1/1.2 of it (the crops are the face box grown by 1.2).
    """
    size = 150
    inner = size / _CROP_SCALE
    lo = (size - inner) / 2
    box = (lo, lo, lo + inner, lo + inner)

    def encode(images: np.ndarray) -> np.ndarray:
        return np.stack([encoder.encode(_resize(im, size), box) for im in images])

    from pixveil.evaluate.reid import same_photo_verification

    orig = encode(originals)
    return {
        "same_photo_protected": same_photo_verification(orig, encode(protected)),
        "same_photo_reconstructed": same_photo_verification(orig, encode(reconstructed)),
    }


# --------------------------------------------------------------------------- #
# the run
# --------------------------------------------------------------------------- #
def _example_indices(
    dataset: FaceDataset, valid: Sequence[int], count: int, probes: Sequence[int]
) -> list[int]:
    if count == 0:
        return []
    probe_set = set(probes)
    chosen: list[int] = []
    seen: set[str | None] = set()
    labels = dataset.labels
    # Prefer probes (photos other than the enrolled one), one per identity.
    for pool in ([i for i in valid if i in probe_set], list(valid)):
        for i in pool:
            key = labels[i] if labels[i] is not None else f"#{i}"
            if key in seen:
                continue
            seen.add(key)
            chosen.append(i)
            if len(chosen) == count:
                return sorted(chosen)
    return sorted(chosen)


def run_evaluation(
    config: EvaluationConfig, *, progress: ProgressCallback | None = None
) -> EvaluationResult:
    """Protect the data set with every setting and measure privacy and utility.

    Parameters
    ----------
    config : EvaluationConfig
    progress : callable taking a ProgressEvent, optional, keyword-only
        Called as the work advances (never required; the library prints nothing).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError
        If the data folder cannot be used, or no image in it can be decoded.
    MissingDependencyError
        If re-identification, detection or FID-like scores are asked for and
        their packages are missing (``pip install 'pixveil[eval]'``).
    PixveilError
        If a detector or a protection method fails (a bug: nothing is hidden).
    """
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    timings: dict[str, float] = {}
    environment = _environment()

    def emit(event: ProgressEvent) -> None:
        if progress is not None:
            progress(event)

    settings = config.settings()
    protected_settings = tuple(s for s in settings if not s.is_baseline)
    emit(ProgressEvent("load", 0, 1, f"listing {config.data}"))
    dataset = load_dataset(
        config.data,
        identities=config.identities,
        per_identity=config.per_identity,
        max_images=config.max_images,
        seed=config.seed,
    )
    notes = [f"data: {n}" for n in dataset.notes]
    if not dataset.has_identities:
        notes.append(
            "flat folder (no identities): identity-based metrics (rank-1 identification, "
            "verification, false accepts, CNN re-identification attack) were skipped"
        )
    emit(ProgressEvent("load", 1, 1, f"{len(dataset)} images"))
    timings["load"] = time.perf_counter() - t_start

    plan = _Plan(
        settings=protected_settings,
        seed=config.seed,
        face_threshold=config.face_threshold,
        utility=config.utility,
        ms_ssim=config.ms_ssim,
        region_ms_ssim=config.region_ms_ssim,
        reid=config.reid,
        detection=config.detection,
        fid=config.fid,
        crop_size=config.attack_image_size if config.attacks else None,
        max_pixels=config.max_pixels,
    )
    workers = max(1, min(config.workers, len(dataset)))
    t0 = time.perf_counter()
    pool = _Pool(plan, workers)
    try:
        timings["start_workers"] = time.perf_counter() - t0
        # Phase 1: originals.
        t0 = time.perf_counter()
        n = len(dataset)
        done = [0]

        def tick(stage: str, total: int) -> Callable[[int], None]:
            done[0] = 0

            def on_done(i: int) -> None:
                done[0] += 1
                emit(ProgressEvent(stage, done[0], total, dataset[i].name))

            return on_done

        infos: list[_Original] = pool.run(
            "analyse", [(i, dataset[i].path) for i in range(n)], tick("originals", n)
        )
        timings["originals"] = time.perf_counter() - t0
        failed = [info for info in infos if info.error is not None]
        for info in failed[:10]:
            notes.append(f"unreadable image skipped: {info.error}")
        if len(failed) > 10:
            notes.append(f"... and {len(failed) - 10} more unreadable images")
        valid = [info.index for info in infos if info.error is None]
        if not valid:
            raise InputError("no image could be decoded", path=config.data)
        no_face = sum(1 for i in valid if not infos[i].regions)
        if no_face:
            notes.append(
                f"pixveil's face detector found no face in {no_face} of {len(valid)} images: "
                "they are left unprotected by every method (as in a real run) and count in "
                "every figure"
            )

        protocol: ReidProtocol | None = None
        if config.reid:
            identities = [dataset.labels[i] for i in valid]
            embeddings = [infos[i].embedding for i in valid]
            local = ReidProtocol.build(identities, embeddings, threshold=config.reid_threshold)
            # Map back to dataset indices.
            protocol = ReidProtocol(
                gallery=tuple(valid[i] for i in local.gallery),
                probes=tuple(valid[i] for i in local.probes),
                identities=tuple(dataset.labels),
                embeddings={valid[i]: e for i, e in local.embeddings.items()},
                threshold=local.threshold,
                notes=local.notes,
            )
            notes.extend(f"re-identification: {n}" for n in protocol.notes)
        probe_set = set(protocol.probes) if protocol is not None else set()
        example_ids = _example_indices(dataset, valid, config.examples, sorted(probe_set))

        # Phase 2: every setting, image by image.
        t0 = time.perf_counter()
        jobs = [(i, dataset[i].path, infos[i], i in probe_set, i in example_ids) for i in valid]
        per_image: list[list[_Outcome]] = (
            pool.run("protect", jobs, tick("protect", len(jobs)))
            if protected_settings
            else [[] for _ in jobs]
        )
        timings["protect_and_measure"] = time.perf_counter() - t0
        job_cpu = pool.cpu_seconds
    finally:
        pool.close()

    # Aggregation.
    t0 = time.perf_counter()
    emit(ProgressEvent("scores", 0, 1, "aggregating"))
    outcomes: dict[int, list[_Outcome]] = {i: per_image[j] for j, i in enumerate(valid)}
    results: list[SettingResult] = []
    crops: dict[str, dict[int, np.ndarray]] = {}
    orig_features = np.stack([_present(infos[i].features) for i in valid]) if config.fid else None
    n_with_faces = sum(1 for i in valid if infos[i].regions)
    n_regions = sum(len(infos[i].regions) for i in valid)
    metric_notes: dict[str, list[Any]] = {}
    for k, setting in enumerate(settings):
        res = SettingResult(
            setting, n_images=len(valid), n_with_faces=n_with_faces, n_regions=n_regions
        )
        if setting.is_baseline:
            if config.utility:
                identical = dict(_IDENTICAL)
                if not config.ms_ssim:
                    identical["ms_ssim"] = math.nan
                res.utility = identical
                region_identical = dict(_IDENTICAL)
                if not config.region_ms_ssim:
                    region_identical["ms_ssim"] = math.nan
                res.utility_region = region_identical
                res.n_region_images = n_with_faces
            if protocol is not None:
                res.reid = protocol.score()
            if config.detection:
                res.detection = {
                    "pixveil": _rate(
                        True if infos[i].reference is not None else None for i in valid
                    ),
                    "dlib": _rate(infos[i].found_dlib for i in valid),
                }
            if config.fid and orig_features is not None:
                probs = np.stack([_present(infos[i].probs) for i in valid])
                _, res.is_like, res.is_like_std = _fid_scores(orig_features, orig_features, probs)
                res.fid_like = 0.0
            results.append(res)
            continue
        j = k - 1  # index among the protected settings
        rows = [outcomes[i][j] for i in valid]
        if config.utility:
            res.utility, _ = _mean_metrics(o.whole for o in rows)
            res.utility_region, res.n_region_images = _mean_metrics(o.region for o in rows)
            for o in rows:
                for text in o.notes:
                    what, _, reason = text.partition(": ")
                    entry = metric_notes.setdefault(what, [0, reason])
                    entry[0] += 1
        if protocol is not None:
            res.reid = protocol.score(
                {i: _present(outcomes[i][j].embedding) for i in protocol.probes}
            )
        res.face_covered = _rate(o.covered for o in rows)
        if config.detection:
            res.detection = {
                "pixveil": _rate(o.found_pixveil for o in rows),
                "dlib": _rate(o.found_dlib for o in rows),
            }
        if config.fid and orig_features is not None:
            feats = np.stack([_present(o.features) for o in rows])
            probs = np.stack([_present(o.probs) for o in rows])
            res.fid_like, res.is_like, res.is_like_std = _fid_scores(orig_features, feats, probs)
        if plan.crop_size is not None:
            crops[setting.label] = {i: _present(outcomes[i][j].crop) for i in valid}
        results.append(res)
    total_pairs = len(valid) * len(protected_settings)
    for what, (count, reason) in sorted(metric_notes.items()):
        notes.append(
            f"{what}: not computed for {count} of {total_pairs} (image, setting) pairs, "
            f"e.g. {reason}"
        )
    if config.utility:
        notes.append(
            "PSNR is averaged over the images where it is finite (an unchanged image has "
            "infinite PSNR); region-only metrics are averaged over the images with a "
            "protected region"
        )
    if not config.ms_ssim:
        notes.append("whole-image MS-SSIM not computed (slow; enable it with ms_ssim / --ms-ssim)")
    if config.fid:
        notes.append(
            "FID-like and IS-like scores use ImageNet MobileNetV2 features, not Inception-v3: "
            "they are not comparable with published FID/IS values"
        )
    if config.detection:
        notes.append(
            "detection rates: share of the faces found in the originals that the same "
            f"detector still finds in the protected image (IoU >= {DEFAULT_DETECTION_IOU}); "
            "pixveil's detector searches the whole image, dlib's HOG detector a square around "
            "the original face scaled to about 100 pixels (baseline: the same search on the "
            "original)"
        )
    examples: list[Example] = []
    for i in example_ids:
        if not protected_settings:
            break
        ex = Example(dataset[i].name, _present(outcomes[i][0].original_view))
        for j, setting in enumerate(protected_settings):
            view = outcomes[i][j].view
            if view is not None:
                ex.protected[setting.label] = view
        examples.append(ex)
    timings["aggregate"] = time.perf_counter() - t0

    reconstructions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if config.attacks:
        t0 = time.perf_counter()
        _run_attacks(config, dataset, valid, infos, crops, results, notes, reconstructions, emit)
        timings["attacks"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    main_cpu = time.process_time() - cpu_start
    # CPU seconds of this process (all its threads) plus, with worker processes,
    # those of their jobs: a load-independent measure of the work.
    timings["cpu_seconds"] = main_cpu if workers == 1 else main_cpu + job_cpu
    try:
        environment["load_average_end"] = list(os.getloadavg())
    except (AttributeError, OSError):
        environment["load_average_end"] = None
    environment["workers"] = workers
    return EvaluationResult(
        config=config,
        dataset=dataset,
        results=results,
        notes=notes,
        timings=timings,
        examples=examples,
        reconstructions=reconstructions,
        environment=environment,
    )
