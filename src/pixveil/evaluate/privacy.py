"""Privacy measurements: face re-identification and detection after protection.

Face re-identification
----------------------
:class:`ReidProtocol` applies the protocol of :mod:`pixveil.evaluate.reid`
(dlib's ResNet recogniser, threshold 0.6) to a data set:

* **gallery**: one *original* photo per identity, the first of its photos in
  which dlib's HOG detector finds a face;
* **probes**: every *other* photo of an enrolled identity with a dlib face in
  its original, protected, and encoded at the location of the face in the
  original (see :mod:`pixveil.evaluate.reid` for why);
* **rank-1 identification**, **verification rate** and **false accept rate** of
  the protected probes against the gallery (chance rank-1 = 1 / gallery size);
* **same-photo verification**: each protected probe against its own original.

In a folder without identities only same-photo verification is measured (every
image with a dlib face is then a probe), and the protocol says so in
:attr:`ReidProtocol.notes`.

Detection after protection
--------------------------
:func:`matches_reference` tells whether a detector still finds the face that
was there before protection (a detection overlapping the original face with
IoU >= :data:`DEFAULT_DETECTION_IOU`); :func:`detection_rate` averages it.
A protected face that is still *detected* is not necessarily *recognised*, but
it matters for synthetic replacements (is there still a face?) and shows what
a downstream face detector sees.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pixveil.errors import InputError, MissingDependencyError
from pixveil.evaluate.reid import (
    DEFAULT_THRESHOLD,
    false_accept_rate,
    rank1_identification,
    same_photo_verification,
    verification_rate,
)
from pixveil.types import Box, box_iou

__all__ = [
    "DEFAULT_DETECTION_IOU",
    "HogFaceCheck",
    "ReidProtocol",
    "ReidSummary",
    "box_iou",
    "detection_rate",
    "matches_reference",
]

#: Smallest IoU with the original face for a detection to count as "the same face".
DEFAULT_DETECTION_IOU = 0.3


# --------------------------------------------------------------------------- #
# re-identification
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ReidSummary:
    """Re-identification figures for one protection setting.

    Attributes
    ----------
    rank1, verification, false_accept : float or None
        In ``[0, 1]``; None when identities are unknown or no probe exists.
    same_photo : float or None
        Share of protected probes within the threshold of their own original.
    chance_rank1 : float or None
        ``1 / n_gallery``: the rank-1 rate of a random guess.
    n_probes, n_gallery : int
        Probes scored and enrolled identities.
    threshold : float
        The distance threshold used.
    """

    rank1: float | None
    verification: float | None
    false_accept: float | None
    same_photo: float | None
    chance_rank1: float | None
    n_probes: int
    n_gallery: int
    threshold: float = DEFAULT_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a positive finite number, got {threshold!r}")
    return float(threshold)


@dataclass(frozen=True)
class ReidProtocol:
    """Which images are enrolled, which are probes, and the originals' embeddings.

    Build it with :meth:`build` from the embeddings of the *original* images;
    then :meth:`score` the embeddings of the protected probes.

    Attributes
    ----------
    gallery : tuple of int
        Image indices enrolled (one per identity; empty without identities).
    probes : tuple of int
        Image indices whose protected versions are scored.
    identities : tuple
        Identity of every image (None for all in a flat folder).
    embeddings : mapping of int to ndarray of shape (128,)
        Embeddings of the originals that have a dlib face.
    threshold : float
        Distance threshold (dlib: 0.6).
    notes : tuple of str
        What could not be measured and why.
    """

    gallery: tuple[int, ...]
    probes: tuple[int, ...]
    identities: tuple[str | None, ...]
    embeddings: Mapping[int, np.ndarray] = field(repr=False)
    threshold: float = DEFAULT_THRESHOLD
    notes: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        identities: Sequence[str | None],
        embeddings: Sequence[np.ndarray | None],
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> ReidProtocol:
        """Choose the gallery and the probes.

        Parameters
        ----------
        identities : sequence of str or None
            Identity of each image; all None for a folder without identities.
        embeddings : sequence of (ndarray of shape (128,)) or None
            The dlib embedding of each *original*, or None where dlib found no face.
        threshold : float, keyword-only
            Distance threshold for verification.

        Returns
        -------
        ReidProtocol
        """
        threshold = _check_threshold(threshold)
        if len(identities) != len(embeddings):
            raise ValueError(
                f"identities ({len(identities)}) and embeddings ({len(embeddings)}) "
                "must have the same length"
            )
        usable = {
            i: np.asarray(e, dtype=np.float64) for i, e in enumerate(embeddings) if e is not None
        }
        notes: list[str] = []
        missing = len(identities) - len(usable)
        if missing:
            notes.append(
                f"{missing} of {len(identities)} originals have no face dlib's detector finds; "
                "they are neither enrolled nor probes"
            )
        labelled = [x is not None for x in identities]
        if any(labelled) and not all(labelled):
            raise ValueError("either every image has an identity or none has")
        if not any(labelled):
            notes.append(
                "no identities (flat folder): rank-1 identification, verification and "
                "false accept rates skipped; same-photo verification only"
            )
            return cls(
                (), tuple(sorted(usable)), tuple(identities), usable, threshold, tuple(notes)
            )
        gallery: dict[str, int] = {}
        probes: list[int] = []
        for i in sorted(usable):
            ident = identities[i]
            if ident is None:  # excluded above; keeps the type checker informed
                raise ValueError(f"image {i} has no identity")
            if ident not in gallery:
                gallery[ident] = i
            else:
                probes.append(i)
        if not probes:
            notes.append("no identity has a second photo with a dlib face: identification skipped")
        if len(gallery) == 1:
            notes.append("a single identity is enrolled: rank-1 identification is trivially 1")
        return cls(
            tuple(gallery.values()),
            tuple(probes),
            tuple(identities),
            usable,
            threshold,
            tuple(notes),
        )

    @property
    def has_identities(self) -> bool:
        return bool(self.gallery)

    def _gallery_arrays(self) -> tuple[np.ndarray, list[str | None]]:
        return (
            np.stack([self.embeddings[i] for i in self.gallery]),
            [self.identities[i] for i in self.gallery],
        )

    def score(self, protected: Mapping[int, np.ndarray] | None = None) -> ReidSummary:
        """Re-identification of the protected probes.

        Parameters
        ----------
        protected : mapping of int to ndarray of shape (128,), optional
            Embedding of the protected version of every probe (keys: the image
            indices in :attr:`probes`).  None scores the unprotected originals
            (the baseline; same-photo verification is then 1).

        Returns
        -------
        ReidSummary

        Raises
        ------
        ValueError
            If a probe's protected embedding is missing.
        """
        if protected is None:
            protected = {i: self.embeddings[i] for i in self.probes}
        missing = [i for i in self.probes if i not in protected]
        if missing:
            raise ValueError(f"no protected embedding for probe images {missing[:5]}")
        if not self.probes:
            return ReidSummary(None, None, None, None, None, 0, len(self.gallery), self.threshold)
        probe_emb = np.stack([np.asarray(protected[i], dtype=np.float64) for i in self.probes])
        originals = np.stack([self.embeddings[i] for i in self.probes])
        same = same_photo_verification(originals, probe_emb, threshold=self.threshold)
        if not self.has_identities:
            return ReidSummary(None, None, None, same, None, len(self.probes), 0, self.threshold)
        gallery, gallery_ids = self._gallery_arrays()
        probe_ids = [self.identities[i] for i in self.probes]
        return ReidSummary(
            rank1=rank1_identification(gallery, gallery_ids, probe_emb, probe_ids),
            verification=verification_rate(
                gallery, gallery_ids, probe_emb, probe_ids, threshold=self.threshold
            ),
            false_accept=false_accept_rate(
                gallery, gallery_ids, probe_emb, probe_ids, threshold=self.threshold
            ),
            same_photo=same,
            chance_rank1=1.0 / len(self.gallery),
            n_probes=len(self.probes),
            n_gallery=len(self.gallery),
            threshold=self.threshold,
        )


# --------------------------------------------------------------------------- #
# detection after protection
# --------------------------------------------------------------------------- #
def matches_reference(
    boxes: Iterable[Box], reference: Box, *, min_iou: float = DEFAULT_DETECTION_IOU
) -> bool:
    """Whether one of ``boxes`` is the reference face (IoU at least ``min_iou``).

    Parameters
    ----------
    boxes : iterable of (x0, y0, x1, y1)
        Faces found in the protected image.
    reference : (x0, y0, x1, y1)
        The face found in the original.
    min_iou : float, keyword-only
        In ``(0, 1]``.

    Returns
    -------
    bool
    """
    if not (isinstance(min_iou, (int, float)) and 0 < min_iou <= 1):
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
    return any(box_iou(tuple(b), reference) >= min_iou for b in boxes)  # type: ignore[arg-type]


class HogFaceCheck:
    """Does dlib's HOG face detector still find a face where the original had one?

    The image is cut to a square around the reference face (grown by
    ``context``) and scaled so that the face is about ``face_size`` pixels
    wide, then searched without upsampling; a detection with IoU of at least
    ``min_iou`` with the reference counts.  Normalising the scale costs the
    same for every image size and avoids the 4x slower upsampled search over
    the whole image, while finding the same faces: dlib's detector window is
    80 pixels, so a face scaled to about 100 pixels is at its best scale.

    Parameters
    ----------
    face_size : int, keyword-only
        Side, in pixels, that the reference face is scaled to (at least 80).
    context : float, keyword-only
        Side of the searched square, as a multiple of the face's side (>= 1.5).
    min_iou : float, keyword-only
        See :func:`matches_reference`.

    Raises
    ------
    MissingDependencyError
        When ``dlib`` (``dlib-bin``) is missing.
    """

    def __init__(
        self,
        *,
        face_size: int = 100,
        context: float = 2.5,
        min_iou: float = DEFAULT_DETECTION_IOU,
    ) -> None:
        if isinstance(face_size, bool) or not isinstance(face_size, int) or face_size < 80:
            raise ValueError(f"face_size must be an integer >= 80, got {face_size!r}")
        if not (isinstance(context, (int, float)) and 1.5 <= context <= 10):
            raise ValueError(f"context must be a number in [1.5, 10], got {context!r}")
        if not (isinstance(min_iou, (int, float)) and 0 < min_iou <= 1):
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        try:
            import dlib
        except ImportError as exc:
            raise MissingDependencyError("dlib (pip package dlib-bin)", "eval") from exc
        self._detector = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()
        self.face_size = face_size
        self.context = float(context)
        self.min_iou = float(min_iou)

    def boxes(self, image: np.ndarray, reference: Box) -> list[Box]:
        """Faces found near ``reference``, in the image's pixel coordinates.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8, RGB
        reference : (x0, y0, x1, y1)
            Where the face was in the original.

        Returns
        -------
        list of (x0, y0, x1, y1)
        """
        import cv2

        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(
                f"image must be an (H, W, 3) array, got {getattr(image, 'shape', image)}"
            )
        if image.dtype != np.uint8:
            raise InputError(f"image must be uint8, got {image.dtype}")
        h, w = image.shape[:2]
        side = max(reference[2] - reference[0], reference[3] - reference[1])
        if not side > 0:
            raise ValueError(f"reference box is empty: {reference}")
        cx, cy = (reference[0] + reference[2]) / 2, (reference[1] + reference[3]) / 2
        half = side * self.context / 2
        x0, y0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
        x1, y1 = min(w, math.ceil(cx + half)), min(h, math.ceil(cy + half))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return []
        scale = self.face_size / side
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = cv2.resize(crop, size, interpolation=interp)
        with self._lock:
            rects = self._detector(scaled, 0)
        return [
            (
                x0 + r.left() / scale,
                y0 + r.top() / scale,
                x0 + (r.right() + 1) / scale,
                y0 + (r.bottom() + 1) / scale,
            )
            for r in rects
        ]

    def found(self, image: np.ndarray, reference: Box) -> bool:
        """Whether a face overlapping ``reference`` (IoU >= ``min_iou``) is found."""
        return matches_reference(self.boxes(image, reference), reference, min_iou=self.min_iou)


def detection_rate(found: Iterable[bool | None]) -> float | None:
    """Share of True among the non-None values (None when there is none)."""
    values = [bool(f) for f in found if f is not None]
    return float(np.mean(values)) if values else None
