"""What an evaluation returns: per-setting results, the whole result, and pooling over seeds.

:class:`EvaluationResult` is what :func:`pixveil.evaluate.run_evaluation`
returns and what :func:`pixveil.evaluate.report.write_report` writes: one
:class:`SettingResult` per setting (the baseline first), the notes, timings and
example views.  :func:`pool_results` pools repeated runs of one evaluation
(other seeds: other photos, other noise) into one result.

These are plain data; nothing here loads a model or reads an image.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixveil.evaluate.datasets import FaceDataset
from pixveil.evaluate.privacy import ReidSummary
from pixveil.evaluate.spec import BASELINE, EvaluationConfig, Setting

__all__ = [
    "BASELINE",
    "UTILITY_KEYS",
    "EvaluationResult",
    "Example",
    "SettingResult",
    "pool_results",
]

#: Keys of :func:`pixveil.evaluate.metrics.utility_report`, in order.
UTILITY_KEYS: tuple[str, ...] = (
    "ssim",
    "ms_ssim",
    "psnr",
    "l0",
    "l0_fraction",
    "l2",
    "ald_0",
    "ald_2",
    "ald_inf",
    "dhash",
)


@dataclass
class SettingResult:
    """Everything measured for one setting.

    Attributes
    ----------
    setting : Setting
    n_images : int
        Images measured.
    n_with_faces : int
        Images in which pixveil's detector found at least one face (and so
        protected something).
    n_regions : int
        Face regions protected in all.
    utility, utility_region : dict of str to float
        Mean of each :data:`UTILITY_KEYS` metric over the images (whole image),
        and over the images with a protected region (region only).  NaN where
        not computed; PSNR is averaged over the images where it is finite.
    n_region_images : int
        Images that entered the region-only means.
    reid : ReidSummary or None
        Re-identification (None when not measured).
    face_covered : float or None
        Share of dlib-detected faces whose centre lies inside the protected area.
    detection : dict of str to float or None
        ``{"pixveil": rate, "dlib": rate}``: share of the faces found in the
        originals that the detector still finds after protection.
    fid_like, is_like, is_like_std : float or None
        FID-like distance to the originals and IS-like score (MobileNetV2;
        not Inception FID/IS).
    attacks : dict
        ``{"cnn": {...}, "reconstruction": {...}}`` for the attacks that ran.
    seconds : float
        Time spent protecting and measuring this setting (summed over workers).
    """

    setting: Setting
    n_images: int = 0
    n_with_faces: int = 0
    n_regions: int = 0
    utility: dict[str, float] = field(default_factory=dict)
    utility_region: dict[str, float] = field(default_factory=dict)
    n_region_images: int = 0
    reid: ReidSummary | None = None
    face_covered: float | None = None
    detection: dict[str, float | None] = field(default_factory=dict)
    fid_like: float | None = None
    is_like: float | None = None
    is_like_std: float | None = None
    attacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """One flat record (the CSV row)."""
        s = self.setting
        row: dict[str, Any] = {
            "label": s.label,
            "method": s.method,
            "parameter": s.parameter or "",
            "value": "" if s.value is None else s.value,
            "images": self.n_images,
            "images_with_faces": self.n_with_faces,
            "regions": self.n_regions,
        }
        for key in UTILITY_KEYS:
            row[f"whole_{key}"] = self.utility.get(key, math.nan)
        row["region_images"] = self.n_region_images
        for key in UTILITY_KEYS:
            row[f"region_{key}"] = self.utility_region.get(key, math.nan)
        reid = self.reid.to_dict() if self.reid is not None else {}
        for key in (
            "rank1",
            "verification",
            "false_accept",
            "same_photo",
            "chance_rank1",
            "n_probes",
            "n_gallery",
        ):
            row[f"reid_{key}"] = reid.get(key)
        row["face_covered"] = self.face_covered
        row["detected_pixveil"] = self.detection.get("pixveil")
        row["detected_dlib"] = self.detection.get("dlib")
        row["fid_like"] = self.fid_like
        row["is_like"] = self.is_like
        row["is_like_std"] = self.is_like_std
        cnn = self.attacks.get("cnn", {})
        for key in ("top1", "top5", "chance_top1", "chance_top5", "n_train", "n_test"):
            row[f"cnn_{key}"] = cnn.get(key)
        for context, figures in cnn.get("contexts", {}).items():
            row[f"cnn_top1_context_{context}"] = figures.get("top1")
        rec = self.attacks.get("reconstruction", {})
        for key in (
            "ssim_protected",
            "ssim_reconstructed",
            "psnr_protected",
            "psnr_reconstructed",
            "same_photo_protected",
            "same_photo_reconstructed",
            "n_train",
            "n_test",
        ):
            row[f"reconstruction_{key}"] = rec.get(key)
        for context, figures in rec.get("contexts", {}).items():
            row[f"reconstruction_ssim_reconstructed_context_{context}"] = figures.get(
                "ssim_reconstructed"
            )
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting.to_dict(),
            "images": self.n_images,
            "images_with_faces": self.n_with_faces,
            "regions": self.n_regions,
            "utility_whole": dict(self.utility),
            "utility_region": dict(self.utility_region),
            "region_images": self.n_region_images,
            "reid": None if self.reid is None else self.reid.to_dict(),
            "face_covered": self.face_covered,
            "detection": dict(self.detection),
            "fid_like": self.fid_like,
            "is_like": self.is_like,
            "is_like_std": self.is_like_std,
            "attacks": {k: dict(v) for k, v in self.attacks.items()},
        }


@dataclass
class Example:
    """Views of one image for the report's example grid.

    Attributes
    ----------
    name : str
        ``identity/file``.
    original : ndarray of shape (S, S, 3), uint8
        The original around the face.
    protected : dict of str to ndarray of shape (S, S, 3), uint8
        The same view of each setting's protected image, by setting label.
    """

    name: str
    original: np.ndarray
    protected: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    """The outcome of :func:`~pixveil.evaluate.run_evaluation`.

    Attributes
    ----------
    config : EvaluationConfig
    dataset : FaceDataset
    results : list of SettingResult
        The baseline first, then the settings of each method in order.
    notes : list of str
        What was skipped or could not be measured, and why.
    timings : dict of str to float
        Seconds per stage and in total.
    examples : list of Example
    reconstructions : dict of str to (ndarray, ndarray)
        When the reconstruction attack ran: for each setting label, a few
        protected test crops and their reconstructions, each of shape
        ``(K, S, S, 3)`` uint8; the originals of those crops under ``"original"``.
    environment : dict
        Versions, CPU count and load.
    """

    config: EvaluationConfig
    dataset: FaceDataset
    results: list[SettingResult]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    reconstructions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dict(),
            "config": self.config.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
            "timings": dict(self.timings),
            "environment": dict(self.environment),
        }


# --------------------------------------------------------------------------- #
# pooling repeated runs
# --------------------------------------------------------------------------- #
def _weighted(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    """Mean of the finite values weighted by their counts (None when there are none)."""
    num = den = 0.0
    for value, weight in pairs:
        if value is not None and weight > 0 and math.isfinite(float(value)):
            num += float(value) * weight
            den += weight
    return num / den if den > 0 else None


def _pool_metrics(parts: Sequence[tuple[dict[str, float], float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for metrics, _ in parts for k in metrics):
        values = [(m.get(key, math.nan), w) for m, w in parts]
        mean = _weighted(values)
        if mean is not None:
            out[key] = mean
        elif values and all(math.isinf(v) and v > 0 for v, _ in values):
            out[key] = math.inf
        else:
            out[key] = math.nan
    return out


def _pool_reid(parts: Sequence[ReidSummary]) -> ReidSummary:
    weights = [float(p.n_probes) for p in parts]

    def pooled(key: str) -> float | None:
        return _weighted((getattr(p, key), w) for p, w in zip(parts, weights, strict=True))

    galleries = {p.n_gallery for p in parts}
    return ReidSummary(
        rank1=pooled("rank1"),
        verification=pooled("verification"),
        false_accept=pooled("false_accept"),
        same_photo=pooled("same_photo"),
        chance_rank1=pooled("chance_rank1"),
        n_probes=sum(p.n_probes for p in parts),
        n_gallery=min(galleries),
        threshold=parts[0].threshold,
    )


def pool_results(runs: Sequence[EvaluationResult]) -> EvaluationResult:
    """Pool repeated runs of one evaluation (other seeds: other photos, other noise).

    A single run of 100 identities has about 300 probes, so one probe moves
    rank-1 by a third of a point; pooling several seeds is how a figure near a
    goal is read.  Rates are pooled exactly over the probes or images they
    count (rank-1 of the pool = all hits / all probes); utility means are
    weighted by the images they average; FID-like and IS-like scores, which do
    not add up, are the mean of the runs.  Counts are summed; ``n_gallery`` is
    the gallery of one run (chance rank-1 is the probe-weighted mean of
    ``1 / n_gallery``).  Attacks are not pooled (left out, with a note).
    Examples come from the first run.

    Parameters
    ----------
    runs : sequence of EvaluationResult
        At least one, with the same settings in the same order.

    Returns
    -------
    EvaluationResult
        The first run's config (its ``seed`` is the first run's), with the
        seeds of all runs in the notes.

    Raises
    ------
    ValueError
        When ``runs`` is empty or their settings differ.
    """
    if not runs:
        raise ValueError("pool_results needs at least one run")
    labels = [r.setting.label for r in runs[0].results]
    for run in runs[1:]:
        other = [r.setting.label for r in run.results]
        if other != labels:
            raise ValueError(f"runs have different settings: {labels} vs {other}")
    first = runs[0]
    seeds = [run.config.seed for run in runs]
    notes = [f"pooled over {len(runs)} runs (seeds {', '.join(map(str, seeds))})"]
    notes.extend(n for run in runs for n in run.notes if n not in notes)
    pooled: list[SettingResult] = []
    for k, label in enumerate(labels):
        parts = [run.results[k] for run in runs]
        reids = [p.reid for p in parts if p.reid is not None]
        fids = [p.fid_like for p in parts if p.fid_like is not None]
        iss = [p.is_like for p in parts if p.is_like is not None]
        if any(p.attacks for p in parts):
            notes.append(f"{label}: attacks are not pooled (see the single runs)")
        detection: dict[str, float | None] = {}
        for key in dict.fromkeys(k2 for p in parts for k2 in p.detection):
            detection[key] = _weighted((p.detection.get(key), float(p.n_images)) for p in parts)
        pooled.append(
            SettingResult(
                setting=parts[0].setting,
                n_images=sum(p.n_images for p in parts),
                n_with_faces=sum(p.n_with_faces for p in parts),
                n_regions=sum(p.n_regions for p in parts),
                utility=_pool_metrics([(p.utility, float(p.n_images)) for p in parts]),
                utility_region=_pool_metrics(
                    [(p.utility_region, float(p.n_region_images)) for p in parts]
                ),
                n_region_images=sum(p.n_region_images for p in parts),
                reid=_pool_reid(reids) if len(reids) == len(parts) else None,
                face_covered=_weighted((p.face_covered, float(p.n_images)) for p in parts),
                detection=detection,
                fid_like=float(np.mean(fids)) if len(fids) == len(parts) else None,
                is_like=float(np.mean(iss)) if len(iss) == len(parts) else None,
                is_like_std=None,
            )
        )
    timings: dict[str, float] = {}
    for run in runs:
        for key, value in run.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    return EvaluationResult(
        config=first.config,
        dataset=first.dataset,
        results=pooled,
        notes=notes,
        timings=timings,
        examples=list(first.examples),
        environment=dict(first.environment),
    )
