"""The evaluation run: protect a face data set with every setting and measure it.

:func:`run_evaluation` takes one :class:`~pixveil.evaluate.spec.EvaluationConfig`
and returns an :class:`~pixveil.evaluate.results.EvaluationResult`, or, given
several ``seeds``, runs once per seed and pools the runs
(:func:`~pixveil.evaluate.results.pool_results`);
:mod:`pixveil.evaluate.report` writes the result to disk.

What happens
------------
1. The folder is listed and sampled (:func:`pixveil.evaluate.datasets.load_dataset`).
2. **Settings**: the unprotected baseline (``none``) plus one setting per method
   and value of its swept parameter (:meth:`EvaluationConfig.settings
   <pixveil.evaluate.spec.EvaluationConfig.settings>`).
3. **Per image** (:mod:`pixveil.evaluate.worker`, in ``workers`` processes):
   the originals are analysed once (faces to protect, the face dlib encodes),
   then protected with every setting and measured.
4. **Aggregation** per setting: means of the utility metrics, the
   re-identification figures of :class:`~pixveil.evaluate.privacy.ReidProtocol`,
   detection rates, FID-like and IS-like scores
   (:func:`~pixveil.evaluate.features.fid_is_like_scores`).
5. **Attacks** (optional, :mod:`pixveil.evaluate.attack_runs`): the CNN
   re-identification attack and the reconstruction attack, trained and tested
   on the face crops of each setting.

The library never prints: progress is reported through a callback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pixveil.errors import InputError
from pixveil.evaluate import attack_runs
from pixveil.evaluate.datasets import FaceDataset, load_dataset
from pixveil.evaluate.features import fid_is_like_scores
from pixveil.evaluate.privacy import DEFAULT_DETECTION_IOU, ReidProtocol, detection_rate
from pixveil.evaluate.results import (
    UTILITY_KEYS,
    EvaluationResult,
    Example,
    SettingResult,
    pool_results,
)
from pixveil.evaluate.spec import EvaluationConfig, Setting
from pixveil.evaluate.worker import (
    AnalyseJob,
    Original,
    Outcome,
    Plan,
    ProtectJob,
    Worker,
    WorkerPool,
    present,
)
from pixveil.progress import ProgressCallback, ProgressEvent, notify

__all__ = ["ProgressCallback", "ProgressEvent", "run_evaluation"]

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


def run_evaluation(
    config: EvaluationConfig,
    *,
    seeds: Iterable[int] | None = None,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Protect the data set with every setting and measure privacy and utility.

    Parameters
    ----------
    config : EvaluationConfig
    seeds : iterable of int, optional, keyword-only
        Run once per seed (``config`` with its ``seed`` replaced: other photos,
        other noise) and pool the runs with
        :func:`~pixveil.evaluate.results.pool_results`; a single seed gives that
        run as it is.  None (the default): one run with ``config.seed``.
    progress : callable taking a ProgressEvent, optional, keyword-only
        Called as the work advances (:mod:`pixveil.progress`; the library prints
        nothing).  Stages: ``"run"`` (a new seed starts; only with ``seeds``:
        ``done`` runs of ``total``, message ``"seed N"``), ``"load"``,
        ``"originals"`` and ``"protect"`` (images; ``item`` and ``message`` the
        image's name), ``"scores"``, and ``"attack"`` (attack runs; the message
        names the setting and the epoch).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ValueError
        If ``seeds`` is empty, repeats a seed, or holds a seed the
        configuration refuses.
    InputError
        If the data folder cannot be used, or no image in it can be decoded.
    MissingDependencyError
        If re-identification, detection or FID-like scores are asked for and
        their packages are missing (``pip install 'pixveil[eval]'``).
    PixveilError
        If a detector or a protection method fails (a bug: nothing is hidden).
    """

    emit = notify(progress)
    if seeds is None:
        return _run_once(config, emit)
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    if len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds are repeated: {seed_list}")
    configs = [dataclasses.replace(config, seed=seed) for seed in seed_list]  # validates
    runs: list[EvaluationResult] = []
    for k, run_config in enumerate(configs):
        emit(ProgressEvent("run", k, len(configs), f"seed {run_config.seed}"))
        runs.append(_run_once(run_config, emit))
    return runs[0] if len(runs) == 1 else pool_results(runs)


def _run_once(config: EvaluationConfig, emit: ProgressCallback) -> EvaluationResult:
    """One run with ``config.seed`` (see :func:`run_evaluation`)."""
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    timings: dict[str, float] = {}
    environment = _environment()

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

    plan = Plan(
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
        contexts=config.contexts if config.attacks else (),
        region=config.region,
    )
    workers = max(1, min(config.workers, len(dataset)))
    t0 = time.perf_counter()
    with WorkerPool(plan, workers) as pool:
        timings["start_workers"] = time.perf_counter() - t0
        # Pass 1: originals.
        t0 = time.perf_counter()
        n = len(dataset)
        done = [0]

        def tick(stage: str, total: int) -> Callable[[int], None]:
            done[0] = 0

            def on_done(i: int) -> None:
                done[0] += 1
                name = dataset[i].name
                emit(ProgressEvent(stage, done[0], total, name, item=name))

            return on_done

        infos = pool.run(
            Worker.analyse,
            [AnalyseJob(i, dataset[i].path) for i in range(n)],
            tick("originals", n),
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
        protocol = _reid_protocol(config, dataset, valid, infos) if config.reid else None
        if protocol is not None:
            notes.extend(f"re-identification: {n}" for n in protocol.notes)
        probe_set = set(protocol.probes) if protocol is not None else set()
        example_ids = _example_indices(dataset, valid, config.examples, sorted(probe_set))

        # Pass 2: every setting, image by image.
        t0 = time.perf_counter()
        jobs = [
            ProtectJob(i, dataset[i].path, infos[i], i in probe_set, i in example_ids)
            for i in valid
        ]
        per_image: list[list[Outcome]] = (
            pool.run(Worker.protect, jobs, tick("protect", len(jobs)))
            if protected_settings
            else [[] for _ in jobs]
        )
        timings["protect_and_measure"] = time.perf_counter() - t0
        job_cpu = pool.cpu_seconds

    # Aggregation.
    t0 = time.perf_counter()
    emit(ProgressEvent("scores", 0, 1, "aggregating"))
    outcomes: dict[int, list[Outcome]] = {i: per_image[j] for j, i in enumerate(valid)}
    results, crops, metric_notes = _setting_results(
        config, settings, valid, infos, outcomes, protocol, plan.crop_size
    )
    total_pairs = len(valid) * len(protected_settings)
    for what, (count, reason) in sorted(metric_notes.items()):
        notes.append(
            f"{what}: not computed for {count} of {total_pairs} (image, setting) pairs, "
            f"e.g. {reason}"
        )
    notes.extend(_measurement_notes(config))
    examples: list[Example] = []
    for i in example_ids:
        if not protected_settings:
            break
        ex = Example(dataset[i].name, present(outcomes[i][0].original_view))
        for j, setting in enumerate(protected_settings):
            view = outcomes[i][j].view
            if view is not None:
                ex.protected[setting.label] = view
        examples.append(ex)
    timings["aggregate"] = time.perf_counter() - t0

    reconstructions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if config.attacks:
        t0 = time.perf_counter()
        views = _context_views(settings, valid, infos, outcomes)
        attack_runs.run_attacks(
            config, dataset, valid, infos, crops, results, notes, reconstructions, emit, views=views
        )
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


def _reid_protocol(
    config: EvaluationConfig, dataset: FaceDataset, valid: Sequence[int], infos: Sequence[Original]
) -> ReidProtocol:
    """The re-identification protocol over the decoded images, by data-set index."""
    identities = [dataset.labels[i] for i in valid]
    embeddings = [infos[i].embedding for i in valid]
    local = ReidProtocol.build(identities, embeddings, threshold=config.reid_threshold)
    # Map back to dataset indices.
    return ReidProtocol(
        gallery=tuple(valid[i] for i in local.gallery),
        probes=tuple(valid[i] for i in local.probes),
        identities=tuple(dataset.labels),
        embeddings={valid[i]: e for i, e in local.embeddings.items()},
        threshold=local.threshold,
        notes=local.notes,
    )


def _setting_results(
    config: EvaluationConfig,
    settings: Sequence[Setting],
    valid: Sequence[int],
    infos: Sequence[Original],
    outcomes: dict[int, list[Outcome]],
    protocol: ReidProtocol | None,
    crop_size: int | None,
) -> tuple[list[SettingResult], dict[str, dict[int, np.ndarray]], dict[str, list[Any]]]:
    """Aggregate the per-image outcomes into one result per setting.

    Returns the results, the protected face crops of each setting (for the
    attacks) and, per metric that could not always be computed, how often and
    an example reason.
    """
    results: list[SettingResult] = []
    crops: dict[str, dict[int, np.ndarray]] = {}
    orig_features = np.stack([present(infos[i].features) for i in valid]) if config.fid else None
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
                    "pixveil": detection_rate(
                        True if infos[i].reference is not None else None for i in valid
                    ),
                    "dlib": detection_rate(infos[i].found_dlib for i in valid),
                }
            if config.fid and orig_features is not None:
                probs = np.stack([present(infos[i].probs) for i in valid])
                _, res.is_like, res.is_like_std = fid_is_like_scores(
                    orig_features, orig_features, probs
                )
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
                {i: present(outcomes[i][j].embedding) for i in protocol.probes}
            )
        res.face_covered = detection_rate(o.covered for o in rows)
        if config.detection:
            res.detection = {
                "pixveil": detection_rate(o.found_pixveil for o in rows),
                "dlib": detection_rate(o.found_dlib for o in rows),
            }
        if config.fid and orig_features is not None:
            feats = np.stack([present(o.features) for o in rows])
            probs = np.stack([present(o.probs) for o in rows])
            res.fid_like, res.is_like, res.is_like_std = fid_is_like_scores(
                orig_features, feats, probs
            )
        if crop_size is not None:
            crops[setting.label] = {i: present(outcomes[i][j].crop) for i in valid}
        results.append(res)
    return results, crops, metric_notes


def _context_views(
    settings: Sequence[Setting],
    valid: Sequence[int],
    infos: Sequence[Original],
    outcomes: dict[int, list[Outcome]],
) -> dict[str, dict[str, dict[int, np.ndarray]]]:
    """For each setting's label and each attacker context, the view of every image."""
    views: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    for k, setting in enumerate(settings):
        per: dict[str, dict[int, np.ndarray]] = {}
        for i in valid:
            crops = (
                infos[i].context_crops if setting.is_baseline else outcomes[i][k - 1].context_crops
            )
            for c, crop in crops.items():
                per.setdefault(c, {})[i] = crop
        views[setting.label] = per
    return views


def _measurement_notes(config: EvaluationConfig) -> list[str]:
    """What the figures mean, for the measurements this configuration makes."""
    notes: list[str] = []
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
    return notes


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
