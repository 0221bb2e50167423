"""Methods that read the surroundings of a region (ProtectionMethod.context)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pixveil.protect.base import ProtectionMethod, box_mask
from pixveil.types import Region


class _Probe(ProtectionMethod):
    """Fills the grown region with the mean colour of the whole patch it was given."""

    name: ClassVar[str] = "probe"
    seen: ClassVar[list[tuple[tuple[int, ...], tuple[float, ...]]]] = []

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        type(self).seen.append((patch.shape, region.box))
        out = np.empty_like(patch)
        out[...] = patch.reshape(-1, 3).mean(0).astype(np.uint8)
        return out


def test_context_widens_the_patch_but_only_the_region_changes() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    lm = np.array([[180, 140], [220, 140], [200, 160], [185, 180], [215, 180]], np.float32)
    region = Region((170.0, 120.0, 230.0, 200.0), "face", 0.9, landmarks=lm)
    plain, wide = _Probe(margin=1.0), _Probe(margin=1.0)
    wide.context = 2.0
    _Probe.seen.clear()
    out_plain = plain.apply(img, [region])
    out_wide = wide.apply(img, [region])
    (shape_p, box_p), (shape_w, box_w) = _Probe.seen
    assert box_p == (0.0, 0.0, 60.0, 80.0)
    assert shape_p[:2] == (80, 60)
    assert shape_w[:2] == (160, 120)  # twice the region, centred on it
    # the local region sits in the middle of the wider patch, its landmarks moved with it
    assert box_w == (30.0, 40.0, 90.0, 120.0)
    # outside the region's ellipse nothing changed, inside everything did
    mask = box_mask(region.box, img.shape[:2], "ellipse")
    for out in (out_plain, out_wide):
        assert (out[~mask] == img[~mask]).all()
    assert not (out_wide[mask] == img[mask]).all(axis=1).any()


def test_context_is_clipped_at_the_image_border() -> None:
    img = np.full((100, 100, 3), 128, np.uint8)
    region = Region((0.0, 0.0, 40.0, 40.0), "face", 0.9)
    m = _Probe(margin=1.0)
    m.context = 3.0
    _Probe.seen.clear()
    out = m.apply(img, [region])
    ((shape, box),) = _Probe.seen
    assert shape[:2] == (80, 80)  # (-40..80) clipped to 0..80
    assert box == (0.0, 0.0, 40.0, 40.0)
    assert out.shape == img.shape
