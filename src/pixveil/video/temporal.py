"""Temporal consistency: one private release per *track*, rendered in every frame.

Randomised methods applied frame by frame draw fresh noise each time: the
synthetic face changes identity from frame to frame, a synthetic plate its
text, and ``k`` frames of one region compose to ``k·ε``.  Here the *track*
(one face or plate followed through the clip) is the unit of privacy: the
mechanism runs once per track, on the track's best-scored detection, and its
single output is shown in every frame of the track.

* :class:`TrackFaces` (``gan-face``): one noisy latent code per track.  The
  face is encoded, privatised and generated once; each frame aligns that same
  synthetic face to the frame's (smoothed) landmarks or box, gives it the
  region's colour and swaps it in exactly as ``gan-face`` does for a photo.
  Guarantee: that of ``gan-face`` (ε·d metric privacy of the latent code) for
  the *track*: the code is released once, so the frames of one track do not
  compose; faces of other frames of the track are never encoded.

* :class:`TrackRelease` (any other randomised method, e.g. ``plate-synth``,
  ``dp-pix``/``dp-blur`` in per-track mode): the method protects the track's
  best-scored detection once; the pixels it changed are warped onto the
  region of every other frame (a perspective warp between the plate corners when
  both regions have four, else the box-to-box scaling) and composited there.
  Guarantee: the method's own, for the region of that one frame; the content of
  the track's other frames is never read by the mechanism (only their boxes),
  so it is not released.  Not covered, as for photos: position, size and motion
  of the region, missed detections.

Every per-video state lives in these objects, made per call of
:func:`pixveil.video.anonymize_video`; the wrapped method instances are only read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from pixveil.errors import PrivacyLeakWarning, ProtectionError
from pixveil.gan.cond_runtime import CondFaceGAN
from pixveil.protect.base import (
    Protected,
    ProtectionMethod,
    RegionOutcome,
    Replacement,
    box_mask,
    region_geometry,
    with_context,
)
from pixveil.protect.gan import work_transform
from pixveil.types import Region
from pixveil.video.tracking import TrackedRegion

__all__ = ["TrackFaces", "TrackRelease", "best_observation"]

#: ``(frame index, pixels, region)`` of a track's representative detection.
Representative = tuple[int, np.ndarray, Region]


def best_observation(
    candidates: Sequence[Representative],
) -> Representative:
    """The best-scored detection (the earliest one among equals)."""
    return max(candidates, key=lambda c: (c[2].score, -c[0]))


class _Fixed(ProtectionMethod):
    """A one-region method whose replacement is computed by a closure (not registered)."""

    name: ClassVar[str] = "track"

    def __init__(
        self,
        params: Any,
        fn: Callable[[np.ndarray, Region], np.ndarray],
        label: str,
        kinds: frozenset[str] | None,
        context: float = 1.0,
    ) -> None:
        # bypass ProtectionMethod.__init__'s type check: the params are the wrapped method's
        self.params = params
        self._fn = fn
        self.name = label  # type: ignore[misc]
        self.kinds = kinds  # type: ignore[misc]
        self.context = context

    def handles(self, region: Region) -> bool:
        return True

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        return self._fn(patch, region)


# ----------------------------------------------------------------------------- gan-face


class TrackFaces:
    """``gan-face`` with one synthetic person per track (see the module notes).

    Parameters
    ----------
    method : GanFace
        The configured ``gan-face`` instance (read only).
    """

    def __init__(self, method: ProtectionMethod) -> None:
        from pixveil.privacy.latent import LatentLaplace
        from pixveil.protect.gan import GanFaceParams

        if not isinstance(method.params, GanFaceParams):
            raise TypeError(f"TrackFaces needs a gan-face method, got {method.name!r}")
        self.method = method
        self.params: GanFaceParams = method.params
        self.gan = method.gan  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            # gan-face itself already warned about epsilon=inf when it was built
            warnings.simplefilter("ignore", PrivacyLeakWarning)
            self.mech = LatentLaplace(
                epsilon=self.params.epsilon, clip=self.params.clip, dim=self.gan.nz
            )
        #: track id -> the track's synthetic face, (S, S, 3) uint8 (the 64-px DCGAN),
        #: or its released residual code (1, nz) (the conditional generator)
        self.faces: dict[int, np.ndarray] = {}
        self.conditional = isinstance(self.gan, CondFaceGAN)

    def handles(self, region: Region) -> bool:
        return self.method.handles(region)

    def forget(self, keep: set[int]) -> None:
        """Drop the faces of tracks that have ended (not in ``keep``)."""
        for tid in [t for t in self.faces if t not in keep]:
            del self.faces[tid]

    def ensure(self, track: int, rep: Representative, rng: np.random.Generator | None) -> None:
        """Draw the track's face from its representative detection, once."""
        if track in self.faces:
            return
        _, pixels, region = rep
        self.faces[track] = self._draw(pixels, region, rng)

    def _draw(self, pixels: np.ndarray, region: Region, rng: np.random.Generator | None) -> Any:
        p = self.params
        gan = self.gan
        if self.conditional:
            # one residual code per track; every frame draws the face from it and
            # that frame's surroundings (so light and pose follow the frame)
            if p.epsilon == 0:
                return self.mech.privatize(np.zeros((1, gan.nz), np.float32), random_state=rng)
            height, width = pixels.shape[:2]
            geom = region_geometry(region, width, height, shape=p.shape, margin=p.margin)
            if geom is None:
                raise ProtectionError(
                    f"gan-face: the track's face {region.box} lies outside the frame"
                )
            (x0, y0, x1, y1), _, local = with_context(*geom, self.method.context, width, height)
            view = self.method.conditional_view(  # type: ignore[attr-defined]
                np.ascontiguousarray(pixels[y0:y1, x0:x1]), local
            )
            return self.method.conditional_code(view, rng)  # type: ignore[attr-defined]
        if p.epsilon == 0:
            z_priv = self.mech.privatize(np.zeros((1, gan.nz), np.float32), random_state=rng)
            return gan.generate(z_priv)[0]
        height, width = pixels.shape[:2]
        geom = region_geometry(region, width, height, shape=p.shape, margin=p.margin)
        if geom is None:
            raise ProtectionError(f"gan-face: the track's face {region.box} lies outside the frame")
        (x0, y0, x1, y1), _, local = geom
        patch = pixels[y0:y1, x0:x1]
        m, work, _ = work_transform(patch, local, gan, p.margin)
        aligned = cv2.warpAffine(
            work,
            m,
            (gan.size, gan.size),
            flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )[None]
        z = gan.encode(aligned)
        if p.refine_steps:
            z = gan.refine(z, aligned, steps=p.refine_steps)
        z_priv = self.mech.privatize(z, random_state=rng)
        return gan.generate(z_priv)[0]

    def render(self, pixels: np.ndarray, regions: Sequence[TrackedRegion]) -> Protected:
        """Swap each track's face into ``pixels`` (regions whose face was drawn)."""
        from pixveil.protect.gan import swap_face

        p = self.params
        out = pixels
        outcomes: list[RegionOutcome] = []
        for tr in regions:
            face = self.faces[tr.track]
            if self.conditional:

                def cond(
                    patch: np.ndarray,
                    local: Region,
                    u: np.ndarray = face,
                    method: Any = self.method,
                ) -> np.ndarray:
                    view = method.conditional_view(patch, local)
                    return method.conditional_render(patch, view, u)

                done = _Fixed(
                    p, cond, self.method.name, self.method.kinds, context=self.method.context
                ).protect(out, [tr.region])
                out = done.image
                outcomes.extend(done.outcomes)
                continue

            def fn(patch: np.ndarray, local: Region, face: np.ndarray = face) -> np.ndarray:
                h, w = patch.shape[:2]
                m, work, k = work_transform(patch, local, self.gan, p.margin)
                shape = p.shape if p.shape != "auto" else "ellipse"
                box = local.box if k == 1.0 else tuple(v * k for v in local.box)
                mask = box_mask(box, work.shape[:2], shape)  # type: ignore[arg-type]
                blend = "seamless" if p.blend == "auto" else p.blend
                swapped = swap_face(np.ascontiguousarray(work), face, m, mask, blend=blend)
                if swapped.shape[:2] != (h, w):
                    swapped = cv2.resize(swapped, (w, h), interpolation=cv2.INTER_CUBIC)
                return swapped

            done = _Fixed(p, fn, self.method.name, self.method.kinds).protect(out, [tr.region])
            out = done.image
            outcomes.extend(done.outcomes)
        return Protected(out if out is not pixels else pixels.copy(), tuple(outcomes))


# ----------------------------------------------------------------------------- any method


@dataclass(frozen=True)
class _Release:
    """A method's output for a track's representative region, in that region's crop."""

    pixels: np.ndarray  # (h, w, 3) uint8, the protected crop
    changed: np.ndarray  # (h, w) float32 in [0, 1]: where the method changed pixels
    local: Region  # the grown region in crop coordinates
    outcome: RegionOutcome


class TrackRelease:
    """One protection of a track's representative region, warped onto every frame.

    Parameters
    ----------
    method : ProtectionMethod
        A randomised method (read only).
    """

    def __init__(self, method: ProtectionMethod) -> None:
        self.method = method
        self.params = method.params
        self.releases: dict[int, _Release] = {}
        self._reported: set[int] = set()

    def handles(self, region: Region) -> bool:
        return self.method.handles(region)

    def forget(self, keep: set[int]) -> None:
        """Drop the releases of tracks that have ended (not in ``keep``)."""
        for tid in [t for t in self.releases if t not in keep]:
            del self.releases[tid]
            self._reported.discard(tid)

    def ensure(self, track: int, rep: Representative, rng: np.random.Generator | None) -> None:
        if track in self.releases:
            return
        _, pixels, region = rep
        p = self.params
        height, width = pixels.shape[:2]
        geom = region_geometry(region, width, height, shape=p.shape, margin=p.margin)
        if geom is None:
            raise ProtectionError(
                f"{self.method.name}: the track's region {region.box} lies outside the frame"
            )
        (x0, y0, x1, y1), _, local = geom
        patch = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        ro = patch.copy()
        ro.setflags(write=False)
        try:
            result = self.method.replace(ro, local, rng=rng)
        except ProtectionError:
            raise
        except Exception as exc:
            raise ProtectionError(
                f"{self.method.name} failed on region {region.box}: {exc}"
            ) from exc
        events: dict[str, int] = {}
        details: dict[str, Any] = {}
        if isinstance(result, Replacement):
            events, details = dict(result.events), dict(result.details)
            result = result.pixels
        if not isinstance(result, np.ndarray) or result.shape != patch.shape:
            raise ProtectionError(f"{self.method.name} returned a patch of the wrong shape")
        changed = np.any(result != patch, axis=2).astype(np.float32)
        # a method that changes (nearly) everything owns the whole box; else only its pixels
        if changed.mean() > 0.5:
            changed[:] = 1.0
        else:
            changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))
        self.releases[track] = _Release(
            result, changed, local, RegionOutcome(region, self.method.name, events, details)
        )

    def render(self, pixels: np.ndarray, regions: Sequence[TrackedRegion]) -> Protected:
        out = pixels
        outcomes: list[RegionOutcome] = []
        interp = cv2.INTER_NEAREST if self.method.name == "dp-pix" else cv2.INTER_LINEAR
        for tr in regions:
            rel = self.releases[tr.track]

            def fn(patch: np.ndarray, local: Region, rel: _Release = rel) -> np.ndarray:
                h, w = patch.shape[:2]
                warp = _warp_between(rel.local, local)
                src = cv2.warpPerspective(
                    rel.pixels, warp, (w, h), flags=interp, borderMode=cv2.BORDER_REPLICATE
                )
                alpha = cv2.warpPerspective(
                    rel.changed, warp, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0
                )[..., None]
                mixed = alpha * src.astype(np.float32) + (1 - alpha) * patch.astype(np.float32)
                return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)

            done = _Fixed(self.params, fn, self.method.name, self.method.kinds).protect(
                out, [tr.region]
            )
            out = done.image
            first = rel.outcome
            # the release's events (a plate-synth fallback...) count once per track
            events = {} if tr.track in self._reported else dict(first.events)
            self._reported.add(tr.track)
            outcomes.append(RegionOutcome(tr.region, first.method, events, first.details))
        return Protected(out if out is not pixels else pixels.copy(), tuple(outcomes))

    def events(self) -> dict[str, int]:
        """The events of every release so far (one per track), summed."""
        total: dict[str, int] = {}
        for rel in self.releases.values():
            for k, v in rel.outcome.events.items():
                total[k] = total.get(k, 0) + int(v)
        return total


def _warp_between(src: Region, dst: Region) -> np.ndarray:
    """3x3 transform taking ``src`` (crop coordinates) onto ``dst`` (crop coordinates)."""
    a, b = src.landmarks, dst.landmarks
    if a is not None and b is not None and a.shape == (4, 2) and b.shape == (4, 2):
        h = cv2.getPerspectiveTransform(a.astype(np.float32), b.astype(np.float32))
        if np.all(np.isfinite(h)):
            return np.asarray(h, np.float64)
    sx0, sy0, sx1, sy1 = src.box
    dx0, dy0, dx1, dy1 = dst.box
    kx = (dx1 - dx0) / max(sx1 - sx0, 1e-6)
    ky = (dy1 - dy0) / max(sy1 - sy0, 1e-6)
    return np.array([[kx, 0, dx0 - kx * sx0], [0, ky, dy0 - ky * sy0], [0, 0, 1]], np.float64)
