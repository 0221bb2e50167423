"""Geometry of the conditional generator's context crop (no torch, no model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixveil.gan.cond_geometry import (
    CONTEXT,
    MAX_ROLL,
    RES,
    crop_mask,
    crop_transform,
    heatmaps,
    roll_angle,
    to_crop,
    warp_crop,
)
from pixveil.protect.base import box_mask


def _landmarks(cx: float, cy: float, side: float, angle_deg: float) -> np.ndarray:
    base = np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.15, 0.2], [0.15, 0.2]]) * side
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (base @ rot.T + [cx, cy]).astype(np.float32)


def test_box_centre_maps_to_crop_centre_and_box_is_res_over_context_wide() -> None:
    box = (100.0, 50.0, 180.0, 150.0)  # 80 x 100, side 90
    m = crop_transform(box, None)
    centre = to_crop(m, np.array([[140.0, 100.0]]))[0]
    assert np.allclose(centre, RES / 2, atol=1e-6)
    left, right = to_crop(m, np.array([[95.0, 100.0], [185.0, 100.0]]))
    assert right[0] - left[0] == pytest.approx(RES / CONTEXT, rel=1e-6)


@pytest.mark.parametrize("angle", [-25.0, 0.0, 12.0])
def test_the_crop_levels_the_eyes(angle: float) -> None:
    lm = _landmarks(200, 200, 100, angle)
    assert math.degrees(roll_angle(lm)) == pytest.approx(angle, abs=1e-3)
    m = crop_transform((150, 150, 250, 250), lm)
    eyes = to_crop(m, lm[:2])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-3  # level in the crop
    assert eyes[1, 0] > eyes[0, 0]


def test_roll_is_clamped_and_odd_landmarks_are_ignored() -> None:
    assert math.degrees(roll_angle(_landmarks(0, 0, 100, 70))) == pytest.approx(MAX_ROLL)
    swapped = _landmarks(0, 0, 100, 0)[[1, 0, 2, 4, 3]]
    assert roll_angle(swapped) == 0.0
    assert roll_angle(None) == 0.0


def test_warp_crop_reads_the_right_pixels_and_handles_big_faces() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    img[250:350, 350:450] = (255, 0, 0)  # a red face box
    crop = warp_crop(img, crop_transform((350, 250, 450, 350), None))
    c = RES // 2
    assert crop.shape == (RES, RES, 3)
    assert (crop[c - 40 : c + 40, c - 40 : c + 40] == (255, 0, 0)).all()
    big = warp_crop(img, crop_transform((0, 0, 800, 600), None))  # 4x downscale: area path
    assert big.shape == (RES, RES, 3)


def test_crop_mask_covers_the_region_and_heatmaps_peak_at_the_points() -> None:
    box = (100.0, 100.0, 200.0, 200.0)
    m = crop_transform(box, None)
    region = box_mask((95, 95, 205, 205), (400, 400), "ellipse")
    cm = crop_mask(m, region)
    assert cm.shape == (RES, RES) and set(np.unique(cm)) <= {0.0, 1.0}
    c = RES // 2
    assert cm[c, c] == 1 and cm[0, 0] == 0 and cm[c, 2] == 0
    # every region pixel lands on a masked crop pixel
    ys, xs = np.nonzero(region)
    pts = to_crop(m, np.stack([xs, ys], 1).astype(np.float32))
    ij = np.clip(np.rint(pts).astype(int), 0, RES - 1)
    assert cm[ij[:, 1], ij[:, 0]].all()
    hm = heatmaps(np.array([[10.0, 20.0]] * 5))
    assert hm.shape == (5, RES, RES)
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (20, 10)
    assert not heatmaps(None).any()
