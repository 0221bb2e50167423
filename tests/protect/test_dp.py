"""dp-pix and dp-blur: noise scale, parameters, randomness, and a statistical DP test."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import pixveil.protect.dp as dp
from pixveil.errors import PrivacyLeakWarning, PrivacyParameterError
from pixveil.protect import get_method
from pixveil.protect.classic import gaussian_blur
from pixveil.types import Region


def full_box(image: np.ndarray) -> list[Region]:
    h, w = image.shape[:2]
    return [Region((0, 0, w, h), "plate")]


class TestNoiseScale:
    def test_formula(self) -> None:
        # Fan 2018: 255·m / (b²·ε) per grey value; ×3 for the three colour channels.
        assert dp.cell_noise_scale(256, epsilon=0.5, m=16) == pytest.approx(
            3 * 255 * 16 / (256 * 0.5)
        )
        assert dp.sum_sensitivity(16) == 3 * 255 * 16
        np.testing.assert_allclose(
            dp.cell_noise_scale(np.array([64, 16]), epsilon=1.0, m=4), [47.8125, 191.25]
        )
        assert dp.cell_noise_scale(64, epsilon=math.inf, m=4) == 0.0
        with pytest.raises(ValueError):
            dp.cell_noise_scale(0, epsilon=1.0, m=1)

    def test_worst_case_privacy_loss_is_epsilon_with_uneven_cells(self) -> None:
        """Per-cell scales 3·255·m/(n·ε) bound the loss by ε however m pixels are spread.

        One changed pixel in a cell of n pixels moves its three channel means by
        up to 255/n each, costing 3·255/(n·λ) of privacy loss; the adversary puts
        the m pixels where that is largest.  The per-cell alternative
        3·255·min(m, n)/(n·ε) would let small edge cells cost more than ε.
        """

        def worst_loss(scales: np.ndarray, counts: np.ndarray, m: int) -> float:
            per_pixel = 3 * 255 / (counts * scales)
            loss, left = 0.0, m
            for j in np.argsort(-per_pixel):
                k = min(left, int(counts[j]))
                loss, left = loss + k * per_pixel[j], left - k
            return loss

        counts = np.array([64, 64, 48, 16, 4])
        eps, m = 1.0, 16
        ours = dp.cell_noise_scale(counts, epsilon=eps, m=m)
        assert worst_loss(ours, counts, m) == pytest.approx(eps)
        naive = 3 * 255 * np.minimum(m, counts) / (counts * eps)
        assert worst_loss(naive, counts, m) == pytest.approx(1.75 * eps)

    def test_empirical_std_on_constant_image(self) -> None:
        """Noise on each released cell value has std √2·scale (and mean |noise| = scale)."""
        eps, m, b = 2.0, 1, 8
        scale = dp.cell_noise_scale(b * b, epsilon=eps, m=m)  # ≈ 5.98
        image = np.full((512, 512, 3), 128, np.uint8)
        method = get_method("dp-pix", epsilon=eps, m=m, block_size=b, shape="box", margin=1.0)
        out = method.apply(image, full_box(image), rng=np.random.default_rng(3))
        noise = out[::b, ::b].astype(np.float64).ravel() - 128  # one pixel per cell
        assert noise.size == 64 * 64 * 3
        # Rounding to integers adds variance 1/12.
        expected = math.sqrt(2 * scale**2 + 1 / 12)
        assert noise.std() == pytest.approx(expected, rel=0.04)
        assert np.abs(noise).mean() == pytest.approx(scale, rel=0.04)
        assert abs(noise.mean()) < 0.3

    def test_small_cells_get_more_noise(self) -> None:
        """Scale 3·255·m/(n·ε) uses each cell's own pixel count n (not b²)."""
        patch = np.full((10, 8, 3), 100, np.uint8)
        rows, cols = np.array([0, 8, 10]), np.array([0, 8])  # cells of 64 and 16 pixels
        gen = np.random.default_rng(11)
        draws = np.stack(
            [
                dp.noisy_cell_means(patch, rows, cols, epsilon=50.0, m=1, random_state=gen)[0]
                for _ in range(3000)
            ]
        )
        std = draws.std(axis=(0, 3))[:, 0]
        want = math.sqrt(2) * dp.cell_noise_scale(np.array([64, 16]), epsilon=50.0, m=1)
        np.testing.assert_allclose(std, want, rtol=0.06)

    def test_dp_blur_is_dp_pix_then_blur(self, astronaut: np.ndarray) -> None:
        """DP-Blur only post-processes DP-Pix's noisy cells (same noise, same grid)."""
        patch = astronaut[40:190, 170:290].copy()
        region = Region((0, 0, 120, 150), "face")
        pix = get_method("dp-pix", blocks=6)
        blur = get_method("dp-blur", blocks=6, sigma=0.7)
        cells = pix.replace(patch, region, rng=np.random.default_rng(5))
        blurred = blur.replace(patch, region, rng=np.random.default_rng(5))
        cell_side = 0.5 * (150 / 6 + 120 / 5)  # grid: 6 rows (25 px) x 5 columns (24 px)
        np.testing.assert_array_equal(blurred, gaussian_blur(cells, 0.7 * cell_side))

    def test_output_cells_are_constant(self, astronaut: np.ndarray) -> None:
        out = get_method("dp-pix", block_size=16, shape="box", margin=1.0).apply(
            astronaut, [Region((0, 0, 128, 64), "plate")], rng=np.random.default_rng(0)
        )
        blocks = out[:64, :128].reshape(4, 16, 8, 16, 3)
        assert (blocks == blocks[:, :1, :, :1]).all()


class TestParameters:
    def test_defaults(self) -> None:
        for name in ("dp-pix", "dp-blur"):
            p = get_method(name).params
            assert p.epsilon == dp.DEFAULT_EPSILON  # type: ignore[attr-defined]
            assert p.m == dp.DEFAULT_M  # type: ignore[attr-defined]
            assert p.blocks is None and p.block_size is None  # type: ignore[attr-defined]

    @pytest.mark.parametrize("name", ["dp-pix", "dp-blur"])
    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"epsilon": 0}, "epsilon"),
            ({"epsilon": -1.0}, "epsilon"),
            ({"epsilon": math.nan}, "epsilon"),
            ({"epsilon": "1"}, "epsilon"),
            ({"epsilon": True}, "epsilon"),
            ({"epsilon": None}, "epsilon"),
            ({"m": 0}, "m must"),
            ({"m": 2.5}, "m must"),
            ({"m": True}, "m must"),
            ({"blocks": 4, "block_size": 8}, "not both"),
            ({"blocks": 0}, "blocks"),
            ({"block_size": 0}, "block_size"),
        ],
    )
    def test_privacy_parameters_raise(
        self, name: str, params: dict[str, object], match: str
    ) -> None:
        with pytest.raises(PrivacyParameterError, match=match):
            get_method(name, **params)

    @pytest.mark.parametrize("sigma", [0, -1.0, 5.0, "1"])
    def test_dp_blur_sigma(self, sigma: object) -> None:
        with pytest.raises(ValueError, match="sigma"):
            get_method("dp-blur", sigma=sigma)

    @pytest.mark.parametrize("name", ["dp-pix", "dp-blur"])
    def test_infinite_epsilon_warns_and_removes_noise(self, name: str) -> None:
        image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        with pytest.warns(PrivacyLeakWarning):
            method = get_method(name, epsilon=math.inf, block_size=8)
        with pytest.warns(PrivacyLeakWarning):
            a = method.apply(image, full_box(image))
        with pytest.warns(PrivacyLeakWarning):
            b = method.apply(image, full_box(image))
        np.testing.assert_array_equal(a, b)  # no noise at all
        if name == "dp-pix":
            plain = get_method("pixelate", block_size=8).apply(image, full_box(image))
            np.testing.assert_array_equal(a, plain)


class TestRandomness:
    def test_unseeded_uses_the_os_csprng(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []
        real_urandom = os.urandom

        def counting_urandom(n: int) -> bytes:
            calls.append(n)
            return real_urandom(n)

        monkeypatch.setattr("pixveil.privacy.rng.os.urandom", counting_urandom)
        image = np.zeros((32, 32, 3), np.uint8)
        get_method("dp-pix", block_size=8).apply(image, full_box(image))
        assert calls and sum(calls) >= 8 * 16 * 3  # 8 bytes per noisy value

    def test_seeded_does_not_touch_the_csprng(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def forbidden(n: int) -> bytes:
            raise AssertionError("seeded runs must not read os.urandom")

        monkeypatch.setattr("pixveil.privacy.rng.os.urandom", forbidden)
        image = np.zeros((32, 32, 3), np.uint8)
        get_method("dp-pix").apply(image, full_box(image), rng=np.random.default_rng(1))

    def test_unseeded_runs_differ_seeded_equal(self) -> None:
        image = np.full((64, 64, 3), 90, np.uint8)
        method = get_method("dp-blur")
        assert not np.array_equal(
            method.apply(image, full_box(image)), method.apply(image, full_box(image))
        )
        np.testing.assert_array_equal(
            method.apply(image, full_box(image), rng=np.random.default_rng(4)),
            method.apply(image, full_box(image), rng=np.random.default_rng(4)),
        )

    def test_cells_are_released_independently(self) -> None:
        """Changing one cell changes only that cell's output (same seed).

        This locality is what lets the statistical test below pool cells: each
        cell (or pair of cells) of one run is an independent sample of the
        mechanism's output on that cell.
        """
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        y = x.copy()
        y[17:19, 20:22] = 255 - y[17:19, 20:22]  # inside cell (row 2, col 2) of 8 px
        method = get_method("dp-pix", block_size=8, shape="box", margin=1.0)
        ox = method.apply(x, full_box(x), rng=np.random.default_rng(7))
        oy = method.apply(y, full_box(y), rng=np.random.default_rng(7))
        differs = (ox != oy).any(axis=2)
        assert differs[16:24, 16:24].all()
        differs[16:24, 16:24] = False
        assert not differs.any()


# ---------------------------------------------------------------------------
# Statistical test of the DP bound
# ---------------------------------------------------------------------------

EPS, M, B = 1.0, 4, 8  # budget, neighbourhood size, cell side (64 pixels per cell)
SIDE = 256  # 32 x 32 cells per run
RUNS = 120


def released_cells(image: np.ndarray, *, seed: int) -> np.ndarray:
    """RUNS releases of dp-pix on ``image``; returns (RUNS, 32, 32, 3) cell values."""
    method = get_method("dp-pix", epsilon=EPS, m=M, block_size=B, shape="box", margin=1.0)
    rng = np.random.default_rng(seed)
    regions = full_box(image)
    return np.stack([method.apply(image, regions, rng=rng)[::B, ::B] for _ in range(RUNS)])


def neighbours(split: bool) -> tuple[np.ndarray, np.ndarray]:
    """x: all black.  y: in every cell (or every horizontal pair of cells), M pixels white.

    Restricted to one cell (or pair), y differs from x in exactly M pixels: the
    worst case of the m-neighbourhood, since 0 -> 255 is the largest change.
    """
    x = np.zeros((SIDE, SIDE, 3), np.uint8)
    y = x.copy()
    if split:  # M/2 pixels in each cell of a pair: the change is spread over two cells
        y[0::B, 0::B][:, :, :] = 255
        y[1::B, 0::B][:, :, :] = 255
    else:  # all M pixels in one cell
        for k in range(M):
            y[k::B, 0::B] = 255
    return x, y


def statistic(cells: np.ndarray, split: bool) -> np.ndarray:
    """One number per sample: the sum of the released values of a cell (or cell pair)."""
    per_cell = cells.astype(np.int64).sum(axis=3)  # (RUNS, 32, 32)
    if split:
        per_cell = per_cell[:, :, 0::2] + per_cell[:, :, 1::2]
    return per_cell.ravel()


def dp_violations(tx: np.ndarray, ty: np.ndarray, eps: float, *, z: float = 4.5) -> list[str]:
    """Bins S where P[M(x)∈S] > e^ε P[M(y)∈S] (or the reverse) beyond sampling error."""
    top = int(max(tx.max(), ty.max())) + 2
    edges = np.concatenate([[0, 1], np.arange(25, top + 24, 24)])  # the atom at 0, then bins
    n = tx.size
    px = np.histogram(tx, edges)[0] / n
    py = np.histogram(ty, edges)[0] / n
    bad = []
    k = math.exp(eps)
    for i, (a, b) in enumerate(zip(px, py, strict=True)):
        if min(a, b) * n < 100:
            continue  # too little mass to test
        for p, q, side in ((a, b, "x"), (b, a, "y")):
            se = math.sqrt(p * (1 - p) / n + k * k * q * (1 - q) / n)
            if p - k * q > z * se:
                bad.append(f"bin {edges[i]}-{edges[i + 1]} ({side}): {p:.4f} > e^eps * {q:.4f}")
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("split", [False, True], ids=["one-cell", "two-cells"])
def test_dp_bound_holds(split: bool) -> None:
    """P[M(x)∈S] ≤ e^ε P[M(y)∈S] + sampling tolerance, on neighbours x, y, in both directions."""
    x, y = neighbours(split)
    tx = statistic(released_cells(x, seed=1), split)
    ty = statistic(released_cells(y, seed=2), split)
    assert not dp_violations(tx, ty, EPS)
    # The test is sharp: at the all-black outcome the true ratio is within 0.1 % of e^ε
    # (about 1000 and 400 samples there in the two-cell case, hence the wide band).
    ratio = np.mean(tx == 0) / np.mean(ty == 0)
    assert 0.8 * math.exp(EPS) < ratio < 1.25 * math.exp(EPS)


@pytest.mark.slow
@pytest.mark.parametrize(
    "wrong_sensitivity",
    [lambda m: 255.0 * m, lambda m: 3 * 255.0 * m / 2],
    ids=["channels-forgotten", "half-scale"],
)
def test_dp_bound_fails_for_too_little_noise(
    monkeypatch: pytest.MonkeyPatch, wrong_sensitivity: object
) -> None:
    """The same test rejects a mechanism whose noise is too small (it can fail)."""
    monkeypatch.setattr(dp, "sum_sensitivity", wrong_sensitivity)
    x, y = neighbours(False)
    tx = statistic(released_cells(x, seed=1), False)
    ty = statistic(released_cells(y, seed=2), False)
    assert dp_violations(tx, ty, EPS)
