"""Utility metrics against hand-computed values."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from pixveil.errors import InputError
from pixveil.evaluate import metrics as m

REPO = Path(__file__).resolve().parents[2]
C1 = (0.01 * 255) ** 2  # SSIM's luminance constant for data_range=255


@pytest.fixture
def four_by_four() -> tuple[np.ndarray, np.ndarray]:
    """A flat 4x4 grey image (all values 100) and a copy with 3 pixels changed.

    pixel (0, 0): R + 3                 -> channel diffs (3, 0, 0)
    pixel (1, 2): R + 4, G - 4          -> channel diffs (4, -4, 0)
    pixel (3, 3): every channel - 10    -> channel diffs (-10, -10, -10)
    """
    original = np.full((4, 4, 3), 100, np.uint8)
    protected = original.copy()
    protected[0, 0] = (103, 100, 100)
    protected[1, 2] = (104, 96, 100)
    protected[3, 3] = (90, 90, 90)
    return original, protected


def _noisy(seed: int, shape: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    noise = rng.normal(0.0, sigma, original.shape)
    protected = np.clip(original + noise, 0, 255).astype(np.uint8)
    return original, protected


class TestPixelMetrics:
    def test_l0_counts_pixels_not_channels(self, four_by_four):
        original, protected = four_by_four
        assert m.l0(original, protected) == 3
        assert m.l0_fraction(original, protected) == pytest.approx(3 / 16)

    def test_l2_exact(self, four_by_four):
        original, protected = four_by_four
        # 3^2 + (4^2 + 4^2) + 3 * 10^2 = 9 + 32 + 300 = 341
        assert m.l2(original, protected) == pytest.approx(math.sqrt(341), rel=1e-12)

    def test_ald_exact(self, four_by_four):
        original, protected = four_by_four
        # ||x||_2 = sqrt(48 * 100^2) ; ||x||_inf = 100 ; ||x||_0 = 48 ; ||x||_1 = 4800
        assert m.ald(original, protected, p=2) == pytest.approx(
            math.sqrt(341) / (100 * math.sqrt(48)), rel=1e-12
        )
        assert m.ald(original, protected, p=math.inf) == pytest.approx(10 / 100)
        assert m.ald(original, protected, p="inf") == pytest.approx(10 / 100)
        assert m.ald(original, protected, p=0) == pytest.approx(6 / 48)
        assert m.ald(original, protected, p=1) == pytest.approx((3 + 8 + 30) / 4800)

    def test_psnr_exact(self, four_by_four):
        original, protected = four_by_four
        mse = 341 / 48
        assert m.psnr(original, protected) == pytest.approx(10 * math.log10(255**2 / mse))

    def test_identical(self, four_by_four):
        original, _ = four_by_four
        assert m.l0(original, original) == 0
        assert m.l2(original, original) == 0.0
        assert m.psnr(original, original) == math.inf
        for p in (0, 1, 2, math.inf):
            assert m.ald(original, original, p=p) == 0.0

    def test_mask_restricts(self, four_by_four):
        original, protected = four_by_four
        mask = np.zeros((4, 4), bool)
        mask[:2] = True  # rows 0-1: pixels (0, 0) and (1, 2) inside, (3, 3) outside
        assert m.l0(original, protected, mask) == 2
        assert m.l0_fraction(original, protected, mask) == pytest.approx(2 / 8)
        assert m.l2(original, protected, mask) == pytest.approx(math.sqrt(41))
        assert m.ald(original, protected, mask, p=2) == pytest.approx(
            math.sqrt(41) / (100 * math.sqrt(24))
        )
        assert m.ald(original, protected, mask, p=math.inf) == pytest.approx(4 / 100)
        assert m.psnr(original, protected, mask) == pytest.approx(
            10 * math.log10(255**2 / (41 / 24))
        )

    def test_change_outside_mask_does_not_count(self, four_by_four):
        original, protected = four_by_four
        mask = np.zeros((4, 4), bool)
        mask[2, :] = True  # none of the three changed pixels
        assert m.l0(original, protected, mask) == 0
        assert m.l2(original, protected, mask) == 0.0
        assert m.psnr(original, protected, mask) == math.inf
        assert m.ald(original, protected, mask, p=2) == 0.0

    def test_ald_black_original(self):
        black = np.zeros((4, 4, 3), np.uint8)
        changed = black.copy()
        changed[0, 0, 0] = 1
        assert m.ald(black, black, p=2) == 0.0
        assert m.ald(black, changed, p=2) == math.inf
        assert m.ald(black, changed, p=0) == math.inf

    def test_psnr_worst_case_is_zero(self):
        black = np.zeros((4, 4, 3), np.uint8)
        white = np.full((4, 4, 3), 255, np.uint8)
        assert m.psnr(black, white) == pytest.approx(0.0)

    def test_ald_rejects_other_orders(self, four_by_four):
        original, protected = four_by_four
        for p in (3, -1, 0.5, "two", None):
            with pytest.raises(ValueError, match="p must be"):
                m.ald(original, protected, p=p)


class TestSSIM:
    def test_identical_is_one(self):
        original, _ = _noisy(0, (16, 16), 10)
        assert m.ssim(original, original) == pytest.approx(1.0)

    def test_flat_images_exact(self):
        # Constant images: no variance, so SSIM is the luminance term only.
        a = np.full((8, 8, 3), 100, np.uint8)
        b = np.full((8, 8, 3), 120, np.uint8)
        expected = (2 * 100 * 120 + C1) / (100**2 + 120**2 + C1)
        assert m.ssim(a, b) == pytest.approx(expected, rel=1e-9)

    def test_full_mask_equals_whole_image(self):
        original, protected = _noisy(1, (20, 24), 25)
        whole = m.ssim(original, protected)
        assert whole < 0.95
        assert m.ssim(original, protected, np.ones((20, 24), bool)) == pytest.approx(whole)

    def test_mask_ignores_change_outside(self):
        original, _ = _noisy(2, (20, 20), 0)
        protected = original.copy()
        protected[:, :10] = 0  # left half destroyed
        mask = np.zeros((20, 20), bool)
        mask[:, 12:] = True  # right side only
        assert m.ssim(original, protected) < 0.9
        assert m.ssim(original, protected, mask) == pytest.approx(1.0)
        mask[:, 5:] = True  # now the mask covers part of the damage
        assert m.ssim(original, protected, mask) < 0.9

    def test_more_noise_lower_ssim(self):
        values = [m.ssim(*_noisy(3, (32, 32), sigma)) for sigma in (5, 20, 60)]
        assert values[0] > values[1] > values[2]

    def test_too_small(self):
        a = np.zeros((6, 10, 3), np.uint8)
        with pytest.raises(InputError, match="at least 7x7"):
            m.ssim(a, a)


class TestDhash:
    @staticmethod
    def _gray(values: np.ndarray) -> np.ndarray:
        # Equal R, G, B: Pillow's RGB -> L conversion returns the value itself.
        return np.repeat(values.astype(np.uint8)[:, :, None], 3, axis=2)

    def test_known_bits(self):
        # A 9x8 image is already dHash's working size: bit (r, c) = px[r, c+1] > px[r, c].
        ramp = np.tile(np.arange(9) * 20 + 10, (8, 1))  # every bit 1
        original = self._gray(ramp)
        changed = ramp.copy()
        changed[0, 4] = 0  # row 0: bit 3 (90 > 0?) flips to 0, bit 4 (0 < 110) stays 1
        changed[5] = changed[5][::-1]  # row 5 reversed: all 8 bits flip
        assert m.dhash_distance(original, self._gray(changed)) == 1 + 8
        assert m.dhash_distance(original, original) == 0

    def test_reversed_ramp_flips_every_bit(self):
        ramp = np.tile(np.linspace(0, 255, 64), (48, 1))
        original = self._gray(ramp)
        reversed_ = self._gray(ramp[:, ::-1])
        assert m.dhash_distance(original, reversed_) == 64
        assert m.dhash_distance(original, reversed_, hash_size=4) == 16

    def test_mask_region_only(self):
        ramp = np.tile(np.linspace(0, 255, 64), (48, 1))
        original = self._gray(ramp)
        protected = original.copy()
        protected[:, :32] = protected[:, :32][:, ::-1]  # left half reversed
        mask = np.zeros((48, 64), bool)
        mask[:, 32:] = True
        assert m.dhash_distance(original, protected) > 0
        assert m.dhash_distance(original, protected, mask) == 0
        mask[:] = False
        mask[:, :32] = True
        assert m.dhash_distance(original, protected, mask) == 64

    def test_hash_size_validation(self):
        a = np.zeros((8, 8, 3), np.uint8)
        for bad in (1, 0, 2.5, True):
            with pytest.raises(ValueError, match="hash_size"):
                m.dhash_distance(a, a, hash_size=bad)


class TestMSSSIM:
    @pytest.fixture(autouse=True)
    def _needs_torch(self):
        pytest.importorskip("torch")
        pytest.importorskip("pytorch_msssim")

    def test_identical_is_one(self):
        original, _ = _noisy(4, (192, 200), 0)
        assert m.ms_ssim(original, original) == pytest.approx(1.0)

    @pytest.mark.parametrize(("x", "y"), [(100, 120), (250, 255)])
    def test_flat_images_exact(self, x, y):
        # Constant images: every contrast-structure term is 1 and the luminance
        # term of the coarsest scale is raised to its weight 0.1333.
        a = np.full((192, 192, 3), x, np.uint8)
        b = np.full((192, 192, 3), y, np.uint8)
        luminance = (2 * x * y + C1) / (x**2 + y**2 + C1)
        # (pytorch-msssim builds its Gaussian window in float32: relative error ~1e-7)
        value = m.ms_ssim(a, b)
        assert value == pytest.approx(luminance**0.1333, rel=1e-6)
        assert value <= 1.0

    def test_more_noise_lower(self):
        values = [m.ms_ssim(*_noisy(5, (176, 176), sigma)) for sigma in (5, 40)]
        assert 1.0 > values[0] > values[1] > 0.0

    def test_too_small(self):
        a = np.zeros((160, 300, 3), np.uint8)
        with pytest.raises(InputError, match="161"):
            m.ms_ssim(a, a)

    def test_mask_uses_bounding_box_and_ignores_outside(self):
        original, noisy = _noisy(6, (200, 200), 30)
        protected = original.copy()
        protected[:20] = noisy[:20]  # damage outside the mask only
        mask = np.zeros((200, 200), bool)
        mask[25:195, 20:190] = True
        assert m.ms_ssim(original, protected) < 1.0
        assert m.ms_ssim(original, protected, mask) == pytest.approx(1.0)
        small = np.zeros((200, 200), bool)
        small[:100, :100] = True
        with pytest.raises(InputError, match="bounding box"):
            m.ms_ssim(original, protected, small)


class TestUtilityReport:
    KEYS = ("ssim", "ms_ssim", "psnr", "l0", "l0_fraction", "l2", "ald_0", "ald_2", "ald_inf")

    def test_small_image_without_ms_ssim(self, four_by_four):
        pad = ((0, 4), (0, 4), (0, 0))
        original = np.pad(four_by_four[0], pad, constant_values=100)
        protected = np.pad(four_by_four[1], pad, constant_values=100)
        report = m.utility_report(original, protected)
        assert isinstance(report, dict)
        assert tuple(report) == (*self.KEYS, "dhash")
        assert all(isinstance(v, float) for v in report.values())
        assert report["l0"] == 3.0
        assert report["l0_fraction"] == pytest.approx(3 / 64)
        assert report["l2"] == pytest.approx(math.sqrt(341))
        assert report["ald_inf"] == pytest.approx(0.1)
        assert report["ssim"] == pytest.approx(m.ssim(original, protected))
        assert math.isnan(report["ms_ssim"])
        assert "161" in report.notes["ms_ssim"]
        assert set(report.notes) == {"ms_ssim"}

    def test_identical(self):
        pytest.importorskip("torch")
        pytest.importorskip("pytorch_msssim")
        original, _ = _noisy(7, (170, 180), 0)
        report = m.utility_report(original, original)
        assert report == {
            "ssim": pytest.approx(1.0),
            "ms_ssim": pytest.approx(1.0),
            "psnr": math.inf,
            "l0": 0.0,
            "l0_fraction": 0.0,
            "l2": 0.0,
            "ald_0": 0.0,
            "ald_2": 0.0,
            "ald_inf": 0.0,
            "dhash": 0.0,
        }
        assert report.notes == {}

    def test_matches_the_functions_with_mask(self):
        original, protected = _noisy(8, (40, 50), 20)
        mask = np.zeros((40, 50), bool)
        mask[5:30, 10:45] = True
        report = m.utility_report(original, protected, mask, hash_size=4, include_ms_ssim=False)
        assert report["ssim"] == m.ssim(original, protected, mask)
        assert report["psnr"] == m.psnr(original, protected, mask)
        assert report["l0"] == m.l0(original, protected, mask)
        assert report["l2"] == m.l2(original, protected, mask)
        assert report["ald_2"] == m.ald(original, protected, mask, p=2)
        assert report["dhash"] == m.dhash_distance(original, protected, mask, hash_size=4)
        assert math.isnan(report["ms_ssim"])
        assert "include_ms_ssim" in report.notes["ms_ssim"]

    def test_small_mask_box_gives_nan_ms_ssim(self):
        pytest.importorskip("torch")
        pytest.importorskip("pytorch_msssim")
        original, protected = _noisy(9, (200, 200), 20)
        mask = np.zeros((200, 200), bool)
        mask[:50, :170] = True
        report = m.utility_report(original, protected, mask)
        assert math.isnan(report["ms_ssim"])
        assert "mask bounding box" in report.notes["ms_ssim"]
        assert 0.0 < report["ssim"] < 1.0


class TestValidation:
    def test_bad_inputs(self):
        good = np.zeros((8, 8, 3), np.uint8)
        bad_cases = [
            (good.astype(np.float32), good, r"uint8 array, got float32 array"),
            (
                good[:, :, 0],
                good[:, :, 0],
                r"\(H, W, 3\) uint8 array, got uint8 array of shape \(8, 8\)",
            ),
            (good, np.zeros((8, 9, 3), np.uint8), "same shape"),
            (good.tolist(), good, "uint8 array, got list"),
            (np.zeros((0, 8, 3), np.uint8), np.zeros((0, 8, 3), np.uint8), r"shape \(0, 8, 3\)"),
        ]
        for a, b, message in bad_cases:
            with pytest.raises(InputError, match=message):
                m.l0(a, b)
            with pytest.raises(ValueError, match=message):  # InputError is a ValueError
                m.utility_report(a, b)

    def test_bad_masks(self):
        good = np.zeros((8, 8, 3), np.uint8)
        for mask, message in [
            (np.ones((8, 8), np.uint8), "dtype bool"),
            (np.ones((8, 7), bool), "shape"),
            (np.zeros((8, 8), bool), "no pixel"),
            ([[True] * 8] * 8, "numpy array"),
        ]:
            with pytest.raises(InputError, match=message):
                m.l2(good, good, mask)


@settings(max_examples=30, deadline=None)
@given(
    original=arrays(np.uint8, (8, 9, 3)),
    protected=arrays(np.uint8, (8, 9, 3)),
    mask=arrays(np.bool_, (8, 9)),
)
def test_pixel_metric_invariants(original, protected, mask):
    changed = np.any(original != protected, axis=2)
    assert m.l0(original, protected) == changed.sum()
    assert m.l2(original, protected) == pytest.approx(m.l2(protected, original))
    full = np.ones((8, 9), bool)
    assert m.l2(original, protected, full) == pytest.approx(m.l2(original, protected))
    assert 0.0 <= m.l0_fraction(original, protected) <= 1.0
    if mask.any():
        assert m.l0(original, protected, mask) == (changed & mask).sum()
        assert m.l2(original, protected, mask) <= m.l2(original, protected) + 1e-9
        assert m.ald(original, protected, mask, p=math.inf) >= 0.0


def test_import_does_not_pull_torch():
    code = (
        "import sys\n"
        "import pixveil.evaluate.metrics, pixveil.evaluate.features\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
