"""blur, pixelate and mask specifics, and the grid helpers."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixveil.protect import get_method
from pixveil.protect.classic import (
    DEFAULT_BLOCKS,
    Blur,
    cell_sums,
    fill_cells,
    gaussian_blur,
    grid_edges,
)
from pixveil.types import Region


def edge_image(size: int) -> np.ndarray:
    """A vertical black/white step in the middle of a square image."""
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[:, size // 2 :] = 255
    return img


def measured_sigma(row: np.ndarray) -> float:
    """Std of the derivative of a blurred step profile = the blur's sigma."""
    profile = row.astype(np.float64)
    d = np.diff(profile)
    d = np.clip(d, 0, None)
    x = np.arange(d.size) + 0.5
    mean = (x * d).sum() / d.sum()
    return float(np.sqrt(((x - mean) ** 2 * d).sum() / d.sum()))


class TestGaussianBlur:
    @pytest.mark.parametrize("sigma", [1.5, 4.0, 9.0, 20.0])
    def test_step_response_has_the_requested_sigma(self, sigma: float) -> None:
        img = edge_image(400)
        out = gaussian_blur(img, sigma)
        assert measured_sigma(out[200, :, 0]) == pytest.approx(sigma, rel=0.08)

    @pytest.mark.parametrize("sigma", [7.0, 15.0, 30.0])
    def test_fast_path_matches_exact_blur(self, sigma: float) -> None:
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        img = cv2.resize(small, (300, 300), interpolation=cv2.INTER_CUBIC)
        k = 2 * math.ceil(3 * sigma) + 1
        exact = cv2.GaussianBlur(img, (k, k), sigma, sigma, borderType=cv2.BORDER_REFLECT_101)
        diff = np.abs(gaussian_blur(img, sigma).astype(int) - exact)
        m = int(2 * sigma)  # the two differ most where the border is reflected
        assert diff[m:-m, m:-m].mean() < 0.5
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8

    def test_zero_sigma_copies(self) -> None:
        img = edge_image(10)
        out = gaussian_blur(img, 0.0)
        np.testing.assert_array_equal(out, img)
        assert out is not img

    def test_large_sigma_on_tiny_patch(self) -> None:
        img = np.random.default_rng(1).integers(0, 256, (3, 5, 3), dtype=np.uint8)
        out = gaussian_blur(img, 500.0)
        assert out.shape == img.shape
        assert np.ptp(out.astype(int), axis=(0, 1)).max() <= 1  # converges to the mean


class TestBlur:
    def test_default_strength_and_passes(self) -> None:
        p = get_method("blur").params
        assert isinstance(p, Blur.Params)
        assert p.strength == pytest.approx(0.1) and p.passes == 1

    @pytest.mark.parametrize("side", [40, 80, 160])
    def test_strength_scales_with_region_size(self, side: int) -> None:
        """The measured sigma is strength × the region's smaller side."""
        size = 2 * side
        img = edge_image(size)
        q = side // 2
        region = Region((q, q, q + side, q + int(1.5 * side)), "face")  # smaller side = side
        method = get_method("blur", strength=0.1, shape="box", margin=1.0)
        assert isinstance(method, Blur)
        assert method.sigma_for(region) == pytest.approx(0.1 * side)
        out = method.apply(img, [region])
        got = measured_sigma(out[size // 2, q : q + side, 0])
        assert got == pytest.approx(0.1 * side, rel=0.12)

    def test_passes_increase_blur(self) -> None:
        img = edge_image(200)
        region = [Region((40, 40, 160, 160), "face")]
        one = get_method("blur", strength=0.05, shape="box", margin=1.0).apply(img, region)
        four = get_method("blur", strength=0.05, passes=4, shape="box", margin=1.0).apply(
            img, region
        )
        s1 = measured_sigma(one[100, 40:160, 0])
        s4 = measured_sigma(four[100, 40:160, 0])
        assert s4 == pytest.approx(2 * s1, rel=0.15)  # 4 passes of s = one pass of 2s

    def test_detail_is_removed(self, astronaut: np.ndarray) -> None:
        region = Region((170, 40, 290, 190), "face")
        out = get_method("blur", shape="box", margin=1.0).apply(astronaut, [region])
        patch_in = astronaut[40:190, 170:290].astype(np.float64)
        patch_out = out[40:190, 170:290].astype(np.float64)
        lap_in = np.abs(cv2.Laplacian(patch_in, cv2.CV_64F)).mean()
        lap_out = np.abs(cv2.Laplacian(patch_out, cv2.CV_64F)).mean()
        assert lap_out < 0.1 * lap_in

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"strength": 0}, "strength"),
            ({"strength": -0.1}, "strength"),
            ({"strength": 1.5}, "strength"),
            ({"strength": "0.1"}, "strength"),
            ({"strength": math.nan}, "strength"),
            ({"passes": 0}, "passes"),
            ({"passes": 9}, "passes"),
            ({"passes": 1.0}, "passes"),
            ({"passes": True}, "passes"),
        ],
    )
    def test_bad_parameters(self, params: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            get_method("blur", **params)


class TestPixelate:
    def test_cells_are_constant_means(self, astronaut: np.ndarray) -> None:
        region = Region((100, 50, 300, 250), "plate")  # 200 x 200 px
        out = get_method("pixelate", blocks=8, margin=1.0).apply(astronaut, [region])
        patch_in = astronaut[50:250, 100:300].astype(np.float64)
        patch_out = out[50:250, 100:300]
        edges = np.linspace(0, 200, 9).astype(int)  # 8 cells of 25 px
        for r0, r1 in itertools.pairwise(edges):
            for c0, c1 in itertools.pairwise(edges):
                cell = patch_out[r0:r1, c0:c1].reshape(-1, 3)
                assert (cell == cell[0]).all()
                mean = patch_in[r0:r1, c0:c1].reshape(-1, 3).mean(axis=0)
                np.testing.assert_allclose(cell[0], mean, atol=0.5 + 1e-9)

    def test_block_size_in_pixels(self) -> None:
        image = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
        out = get_method("pixelate", block_size=10, shape="box", margin=1.0).apply(
            image, [Region((0, 0, 120, 60), "plate")]
        )
        top = out[:60]
        # 12 x 6 cells of exactly 10 px: every 10x10 block constant, neighbours differ
        blocks = top.reshape(6, 10, 12, 10, 3)
        assert (blocks == blocks[:, :1, :, :1]).all()
        np.testing.assert_array_equal(out[60:], image[60:])

    def test_default_is_eight_blocks(self) -> None:
        image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
        out = get_method("pixelate", shape="box", margin=1.0).apply(
            image, [Region((0, 0, 96, 64), "plate")]
        )
        distinct_cols = np.unique(out[0].reshape(-1, 3), axis=0).shape[0]
        assert DEFAULT_BLOCKS == 8 and distinct_cols == 8

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"blocks": 4, "block_size": 8}, "not both"),
            ({"blocks": 0}, "blocks"),
            ({"blocks": 2.5}, "blocks"),
            ({"blocks": 1000}, "blocks"),
            ({"block_size": 0}, "block_size"),
            ({"block_size": -3}, "block_size"),
        ],
    )
    def test_bad_parameters(self, params: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            get_method("pixelate", **params)


class TestMask:
    def test_default_black(self, astronaut: np.ndarray) -> None:
        out = get_method("mask", shape="box", margin=1.0).apply(
            astronaut, [Region((10, 20, 50, 60), "plate")]
        )
        assert not out[20:60, 10:50].any()

    @pytest.mark.parametrize(
        ("color", "rgb"),
        [((255, 128, 0), (255, 128, 0)), ([1, 2, 3], (1, 2, 3)), ("#00ff7f", (0, 255, 127))],
    )
    def test_colour(self, astronaut: np.ndarray, color: object, rgb: tuple[int, int, int]) -> None:
        method = get_method("mask", color=color, shape="box", margin=1.0)
        assert method.params.color == rgb  # type: ignore[attr-defined]
        out = method.apply(astronaut, [Region((10, 20, 50, 60), "plate")])
        assert (out[20:60, 10:50] == np.array(rgb, np.uint8)).all()

    def test_output_does_not_depend_on_input(self) -> None:
        a = np.zeros((30, 30, 3), np.uint8)
        b = np.full((30, 30, 3), 200, np.uint8)
        region = [Region((5, 5, 25, 25), "face")]
        method = get_method("mask", shape="box", margin=1.0)
        out_a, out_b = method.apply(a, region), method.apply(b, region)
        np.testing.assert_array_equal(out_a[5:25, 5:25], out_b[5:25, 5:25])

    @pytest.mark.parametrize(
        "color", [(0, 0), (0, 0, 256), (-1, 0, 0), "red", "#12345", (0.5, 0, 0)]
    )
    def test_bad_colours(self, color: object) -> None:
        with pytest.raises(ValueError, match="color"):
            get_method("mask", color=color)


class TestGrid:
    @settings(max_examples=200, deadline=None)
    @given(
        h=st.integers(1, 400),
        w=st.integers(1, 400),
        blocks=st.one_of(st.none(), st.integers(1, 64)),
        block_size=st.integers(1, 64),
        use_size=st.booleans(),
    )
    def test_edges_cover_the_patch_without_slivers(
        self, h: int, w: int, blocks: int | None, block_size: int, use_size: bool
    ) -> None:
        region = Region((0, 0, w, h), "face")
        kw = {"blocks": None, "block_size": block_size} if use_size else {"blocks": blocks}
        rows, cols = grid_edges(h, w, region, block_size=kw.get("block_size"), blocks=kw["blocks"])
        nominal = block_size if use_size else max(h, w) / (blocks or DEFAULT_BLOCKS)
        nominal = max(nominal, 1.0)
        for edges, length in ((rows, h), (cols, w)):
            assert edges[0] == 0 and edges[-1] == length
            sizes = np.diff(edges)
            assert (sizes >= 1).all()
            assert sizes.max() - sizes.min() <= 1  # near-equal cells
            if length >= nominal:  # no sliver: every cell within [2/3, 3/2] x nominal, ±1 px
                assert sizes.min() >= math.floor(nominal * 2 / 3) - 1
                assert sizes.max() <= math.ceil(nominal * 3 / 2) + 1
            else:
                assert len(sizes) == 1

    def test_blocks_along_longer_side(self) -> None:
        rows, cols = grid_edges(
            50, 200, Region((0, 0, 200, 50), "plate"), blocks=8, block_size=None
        )
        assert len(cols) - 1 == 8 and len(rows) - 1 == 2

    def test_clipped_region_keeps_cell_size(self) -> None:
        # Region 200 px wide but only 100 px of it inside the patch: 4 cells, not 8.
        _rows, cols = grid_edges(
            100, 100, Region((-100, 0, 100, 100), "face"), blocks=8, block_size=None
        )
        assert len(cols) - 1 == 4

    def test_sums_and_fill(self) -> None:
        patch = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
        rows, cols = np.array([0, 1, 4]), np.array([0, 2, 6])
        sums, counts = cell_sums(patch, rows, cols)
        np.testing.assert_array_equal(counts, [[2, 4], [6, 12]])
        np.testing.assert_array_equal(sums[1, 1], patch[1:4, 2:6].reshape(-1, 3).sum(0))
        filled = fill_cells(sums / counts[..., None], rows, cols)
        assert filled.shape == (4, 6, 3)
        np.testing.assert_allclose(filled[3, 5], patch[1:4, 2:6].reshape(-1, 3).mean(0))
