"""pixveil.video.metrics: coverage and flicker."""

from __future__ import annotations

import numpy as np
import pytest

from pixveil.types import Region
from pixveil.video.metrics import coverage, flicker, protected_mask


class TestCoverage:
    def test_box_inside_the_grown_ellipse_is_covered(self) -> None:
        r = Region((40, 40, 80, 90), "face")
        got = coverage([[r.box]], [[r]], (160, 120))
        assert (got.covered, got.total, got.rate) == (1, 1, 1.0)

    def test_shifted_region_misses(self) -> None:
        ref = (40.0, 40.0, 80.0, 90.0)
        got = coverage([[ref], [ref]], [[Region((70, 40, 110, 90), "face")], []], (160, 120))
        assert (got.covered, got.total, got.missed_frames) == (0, 2, (0, 1))

    def test_no_reference_counts_as_full(self) -> None:
        assert coverage([[]], [[]], (10, 10)).rate == 1.0

    def test_mask_is_the_methods_geometry(self) -> None:
        m = protected_mask([Region((10, 10, 30, 30), "plate")], (50, 40), margin=1.0)
        assert m.sum() == 400 and m[10:30, 10:30].all()

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="reference frames"):
            coverage([[]], [], (10, 10))


class TestFlicker:
    def test_static_output_does_not_flicker_noise_does(self) -> None:
        rng = np.random.default_rng(0)
        base = (rng.random((60, 80, 3)) * 60 + 90).astype(np.uint8)
        frames = [np.roll(base, i, axis=1) for i in range(4)]
        masks = [np.ones((60, 80), bool)] * 4
        moving = flicker(frames, frames, masks)
        noisy = [np.clip(f + rng.normal(0, 40, f.shape), 0, 255).astype(np.uint8) for f in frames]
        assert moving < 10
        assert flicker(frames, noisy, masks) > moving + 20
        assert flicker(frames, frames, [np.zeros((60, 80), bool)] * 4) == 0.0
