"""The protection-method interface, its parameters and the region compositing.

Every method is a small class registered under a name.  A method only computes a
*replacement patch* for the bounding box of one region (:meth:`ProtectionMethod.replace`);
this module crops, calls it and composites the result through the region's shape
mask.  Compositing here, in one place, is what guarantees that no pixel outside a
protected region ever changes, whatever the method does.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pixveil.errors import ProtectionError
from pixveil.registry import Registry
from pixveil.types import Region

__all__ = [
    "METHODS",
    "SHAPES",
    "MethodParams",
    "Protected",
    "ProtectionMethod",
    "RegionOutcome",
    "Replacement",
    "region_geometry",
    "register_method",
    "with_context",
]

SHAPES = ("auto", "ellipse", "box")


@dataclass(frozen=True, kw_only=True)
class MethodParams:
    """Parameters common to every method.

    Parameters
    ----------
    shape : {"auto", "ellipse", "box"}
        Shape of the protected area inside the (grown) box.  ``"auto"`` uses an
        ellipse for faces, the head silhouette for head regions
        (:func:`pixveil.regions.head_mask`) and a box for everything else
        (persons, plates, text).
    margin : float
        Factor by which the detected box is grown about its centre before
        protection (1.0 = exactly the detected box).  Range ``[1.0, 4.0]``.
        Head and person regions (:mod:`pixveil.regions`) are not grown: their
        growth is part of the region.
    """

    shape: str = "auto"
    margin: float = 1.3

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        if not (isinstance(self.margin, (int, float)) and 1.0 <= self.margin <= 4.0):
            raise ValueError(f"margin must be a number in [1.0, 4.0], got {self.margin!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def box_mask(
    box: tuple[float, float, float, float], size: tuple[int, int], shape: str
) -> np.ndarray:
    """Boolean (h, w) mask of ``box`` (in the crop's coordinates) drawn as ``shape``.

    ``"box"`` is all True; ``"ellipse"`` is the ellipse inscribed in ``box`` (a
    pixel belongs to it when its centre does), or all True when the ellipse is
    too small to cover any pixel centre; ``"head"`` is the head silhouette of
    :func:`pixveil.regions.head_mask`.
    """
    h, w = size
    if shape == "box":
        return np.ones((h, w), dtype=bool)
    if shape == "head":
        from pixveil.regions import head_mask

        return head_mask(box, size)
    bx0, by0, bx1, by1 = box
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    ax, ay = max((bx1 - bx0) / 2, 0.5), max((by1 - by0) / 2, 0.5)
    yy, xx = np.ogrid[0:h, 0:w]
    mask = np.asarray(((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2 <= 1.0)
    if not mask.any():  # degenerate tiny ellipse: protect the box instead
        return np.ones((h, w), dtype=bool)
    return mask


def region_geometry(
    region: Region, width: int, height: int, *, shape: str, margin: float
) -> tuple[tuple[int, int, int, int], np.ndarray, Region] | None:
    """Pixel box, boolean mask and local region of a region grown by ``margin``.

    Returns
    -------
    (x0, y0, x1, y1), mask, local
        ``mask`` has shape ``(y1 - y0, x1 - x0)``; ``local`` is the grown region
        expressed in the coordinates of the crop (it may extend past the crop
        when the region touches the image border).  None if the region lies
        entirely outside the image.
    """
    from pixveil.regions import DERIVED_KINDS

    # head and person regions carry their own growth (pixveil.regions)
    grown = region if region.kind in DERIVED_KINDS else region.scaled(margin)
    clipped = grown.clipped(width, height)
    if clipped is None:
        return None
    x0, y0, x1, y1 = clipped.pixel_box(width, height)
    if x1 <= x0 or y1 <= y0:
        return None
    if shape == "auto":
        shape = {"face": "ellipse", "head": "head"}.get(region.kind, "box")
    h, w = y1 - y0, x1 - x0
    gx0, gy0, gx1, gy1 = grown.box
    mask = box_mask((gx0 - x0, gy0 - y0, gx1 - x0, gy1 - y0), (h, w), shape)
    landmarks = grown.landmarks
    if landmarks is not None:  # landmarks move with the box into crop coordinates
        landmarks = landmarks - np.array([x0, y0], dtype=np.float32)
    local = dataclasses.replace(
        grown, box=(gx0 - x0, gy0 - y0, gx1 - x0, gy1 - y0), landmarks=landmarks
    )
    return (x0, y0, x1, y1), mask, local


def with_context(
    box: tuple[int, int, int, int],
    mask: np.ndarray,
    local: Region,
    context: float,
    width: int,
    height: int,
) -> tuple[tuple[int, int, int, int], np.ndarray, Region]:
    """:func:`region_geometry`'s result on a larger crop: the grown box scaled by ``context``."""
    x0, y0, x1, y1 = box
    gx0, gy0, gx1, gy1 = local.box
    cx, cy = x0 + (gx0 + gx1) / 2, y0 + (gy0 + gy1) / 2
    hw, hh = (gx1 - gx0) * context / 2, (gy1 - gy0) * context / 2
    cx0 = max(0, min(x0, int(np.floor(cx - hw))))
    cy0 = max(0, min(y0, int(np.floor(cy - hh))))
    cx1 = min(width, max(x1, int(np.ceil(cx + hw))))
    cy1 = min(height, max(y1, int(np.ceil(cy + hh))))
    dx, dy = x0 - cx0, y0 - cy0
    big = np.zeros((cy1 - cy0, cx1 - cx0), dtype=bool)
    big[dy : dy + mask.shape[0], dx : dx + mask.shape[1]] = mask
    landmarks = local.landmarks
    if landmarks is not None:
        landmarks = landmarks + np.array([dx, dy], dtype=np.float32)
    moved = dataclasses.replace(
        local, box=(gx0 + dx, gy0 + dy, gx1 + dx, gy1 + dy), landmarks=landmarks
    )
    return (cx0, cy0, cx1, cy1), big, moved


@dataclass(frozen=True)
class Replacement:
    """What :meth:`ProtectionMethod.replace` may return instead of a bare patch.

    Attributes
    ----------
    pixels : ndarray of shape (h, w, 3), uint8
        The replacement patch.
    events : mapping of str to int
        Notable events of this region, counted (e.g. ``{"fallback": 1}`` when a
        synthetic replacement failed and a classic method protected the region).
    details : mapping
        Method-specific facts about this region for evaluation (e.g. plate-synth's
        ``"texts"``: the text read and the text written).  Never pixels.
    """

    pixels: np.ndarray
    events: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionOutcome:
    """What happened to one region: which method protected it and its events."""

    region: Region
    method: str
    events: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protected:
    """A protected image and the outcome of every region, in the order given.

    Returned by :meth:`ProtectionMethod.protect` and
    :func:`pixveil.protect.protect_regions`: per-call results travel here, never
    on the method instance, so one instance can serve several threads.
    """

    image: np.ndarray
    outcomes: tuple[RegionOutcome, ...] = ()

    @property
    def events(self) -> Counter[str]:
        """The events of all regions, summed."""
        total: Counter[str] = Counter()
        for o in self.outcomes:
            total.update(o.events)
        return total


class ProtectionMethod(ABC):
    """A way to replace the pixels of a region.

    Subclasses set :attr:`name`, :attr:`Params` (a frozen dataclass deriving from
    :class:`MethodParams`), :attr:`summary` and :attr:`guarantee`, and implement
    :meth:`replace`.  Their docstring states the privacy guarantee in full: what
    counts as neighbouring inputs, the parameters it depends on and what it does
    not cover.
    """

    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]] = MethodParams
    #: What the method does, in one plain-text line without markup (e.g.
    #: ``"Gaussian blur, strength scaled to the region size"``), for listings
    #: such as ``pixveil methods``.
    summary: ClassVar[str] = ""
    #: The privacy guarantee in one plain-text line without markup, or the fact
    #: that there is none (e.g. ``"none formal (defeated by trained CNNs,
    #: McPherson et al. 2016)"``); the docstring gives the exact statement.
    #: Every registered method sets it; the README's methods table says the same.
    guarantee: ClassVar[str] = ""
    #: Whether the method adds privacy noise (and so uses ``rng``).
    randomized: ClassVar[bool] = False
    #: Region kinds the method can protect (None = any).  The pipeline gives
    #: regions of other kinds to the default method instead (e.g. plates found
    #: while running ``gan-face``), so every detected region is protected.
    kinds: ClassVar[frozenset[str] | None] = None
    #: How much of the surroundings :meth:`replace` sees: the patch is the box of
    #: the grown region scaled by this factor about its centre (clipped to the
    #: image).  Only pixels under the region's mask are ever written back, so a
    #: method that reads context (``gan-face``'s conditional generator fits the
    #: new face to the hair line, skin and light around it) still changes
    #: nothing outside the region.
    context: float = 1.0

    def __init__(self, params: MethodParams | None = None, **overrides: Any) -> None:
        if params is None:
            params = self.Params(**overrides)
        elif overrides:
            params = dataclasses.replace(params, **overrides)
        if not isinstance(params, self.Params):
            raise TypeError(
                f"{type(self).__name__} expects {self.Params.__name__}, got {type(params).__name__}"
            )
        self.params = params

    def handles(self, region: Region) -> bool:
        """Whether this method protects regions of ``region.kind``."""
        return self.kinds is None or region.kind in self.kinds

    @abstractmethod
    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray | Replacement:
        """Compute the replacement for one region.

        Must not change the instance: one instance may serve several threads, so
        anything learnt about this region is returned (as a :class:`Replacement`).

        Parameters
        ----------
        patch : ndarray of shape (h, w, 3), uint8
            The pixels of the grown region's box (read-only).
        region : Region
            The grown region in patch coordinates (may extend past the patch at image borders).
        rng : numpy Generator or None
            Source of privacy noise.  None means a cryptographically secure
            source; a seeded Generator is for tests only.

        Returns
        -------
        ndarray of shape (h, w, 3), uint8, or Replacement
            Replacement pixels; only those under the shape mask are used.  A
            :class:`Replacement` adds the region's events and details.
        """

    def apply(
        self,
        image: np.ndarray,
        regions: Iterable[Region],
        *,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Protect every region of ``image`` and return a new image (see :meth:`protect`)."""
        return self.protect(image, regions, rng=rng).image

    def protect(
        self,
        image: np.ndarray,
        regions: Iterable[Region],
        *,
        rng: np.random.Generator | None = None,
    ) -> Protected:
        """Protect every region of ``image``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
        regions : iterable of Region
            In pixel coordinates of ``image``.
        rng : numpy Generator or None
            See :meth:`replace`.

        Returns
        -------
        Protected
            ``image``: a copy of the input in which only pixels inside the regions'
            masks differ; ``outcomes``: one :class:`RegionOutcome` per region.

        Raises
        ------
        ProtectionError
            When the method fails or returns a patch of the wrong shape or type.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        out = image.copy()
        height, width = image.shape[:2]
        regions = list(regions)
        for region in regions:
            if not self.handles(region):
                # fail closed: never skip a region silently (see protect.protect_regions)
                raise ProtectionError(
                    f"{self.name} cannot protect this {region.kind!r} region "
                    f"(score {region.score:.2f}); see protect.protect_regions"
                )
        outcomes: list[RegionOutcome] = []
        for region in regions:
            geom = region_geometry(
                region, width, height, shape=self.params.shape, margin=self.params.margin
            )
            if geom is None:
                outcomes.append(RegionOutcome(region, self.name))
                continue
            (x0, y0, x1, y1), mask, local = geom
            if self.context > 1.0:
                (x0, y0, x1, y1), mask, local = with_context(
                    (x0, y0, x1, y1), mask, local, self.context, width, height
                )
            patch = out[y0:y1, x0:x1].copy()
            patch.setflags(write=False)
            try:
                result = self.replace(patch, local, rng=rng)
            except ProtectionError:
                raise
            except Exception as exc:  # re-raised with context: the caller must fail closed
                raise ProtectionError(f"{self.name} failed on region {region.box}: {exc}") from exc
            if isinstance(result, Replacement):
                new = result.pixels
                outcomes.append(
                    RegionOutcome(region, self.name, dict(result.events), dict(result.details))
                )
            else:
                new = result
                outcomes.append(RegionOutcome(region, self.name))
            if not isinstance(new, np.ndarray) or new.shape != patch.shape or new.dtype != np.uint8:
                got = (
                    f"{new.shape} {new.dtype}"
                    if isinstance(new, np.ndarray)
                    else type(new).__name__
                )
                raise ProtectionError(
                    f"{self.name} returned a patch of {got}, expected {patch.shape} uint8"
                )
            view = out[y0:y1, x0:x1]
            view[mask] = new[mask]
        return Protected(out, tuple(outcomes))

    def describe(self) -> dict[str, Any]:
        """Name and resolved parameters, for configs and reports."""
        return {"method": self.name, **self.params.to_dict()}


METHODS: Registry[type[ProtectionMethod]] = Registry(
    "protection method",
    builtin=(
        "pixveil.protect.classic",
        "pixveil.protect.replace",
        "pixveil.protect.dp",
        "pixveil.protect.metric",
        "pixveil.protect.gan",
        "pixveil.protect.plates",
    ),
)


def register_method(name: str, *, force: bool = False) -> Any:
    """Class decorator registering a method under ``name`` (and setting ``cls.name``)."""

    def deco(cls: type[ProtectionMethod]) -> type[ProtectionMethod]:
        cls.name = name
        METHODS.register(name, cls, force=force)
        return cls

    return deco
