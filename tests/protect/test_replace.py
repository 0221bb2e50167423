"""``image``: a replacement picture scaled over each region."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import InputError
from pixveil.protect import get_method
from pixveil.protect.replace import MAX_SIDE, ReplaceImage
from pixveil.types import Region

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def save(tmp_path: Path, pixels: np.ndarray, name: str = "logo.png") -> Path:
    """Write an (h, w, 3) RGB or (h, w, 4) RGBA uint8 array as PNG."""
    path = tmp_path / name
    Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB").save(path)
    return path


def stripes(width: int = 20, height: int = 10) -> np.ndarray:
    """Four vertical stripes, red | green | blue | white, opaque RGB."""
    img = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate((RED, GREEN, BLUE, WHITE)):
        img[:, i * width // 4 : (i + 1) * width // 4] = colour
    return img


def method(path: Path, **params: object) -> ReplaceImage:
    out = get_method("image", image=str(path), shape="box", margin=1.0, **params)
    assert isinstance(out, ReplaceImage)
    return out


def noise(h: int = 60, w: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class TestFit:
    def test_stretch_fills_the_box(self, tmp_path: Path) -> None:
        out = method(save(tmp_path, stripes()), fit="stretch").apply(
            noise(), [Region((10, 10, 50, 50), "plate")]
        )
        patch = out[10:50, 10:50]
        for i, colour in enumerate((RED, GREEN, BLUE, WHITE)):  # 4 stripes of 10 px
            block = patch[:, i * 10 + 1 : i * 10 + 9]
            assert (block == colour).all(), i

    def test_contain_keeps_the_aspect_and_pads_with_color(self, tmp_path: Path) -> None:
        out = method(save(tmp_path, stripes()), fit="contain", color="#102030").apply(
            noise(), [Region((10, 10, 50, 50), "plate")]
        )
        patch = out[10:50, 10:50]  # the 20 x 10 picture becomes 40 x 20, rows 10..30
        assert (patch[:9] == (16, 32, 48)).all() and (patch[31:] == (16, 32, 48)).all()
        for i, colour in enumerate((RED, GREEN, BLUE, WHITE)):
            assert (patch[11:29, i * 10 + 1 : i * 10 + 9] == colour).all(), i

    def test_cover_is_the_default_and_crops_the_overflow(self, tmp_path: Path) -> None:
        m = method(save(tmp_path, stripes()))
        assert m.params.fit == "cover"
        out = m.apply(noise(), [Region((10, 10, 50, 50), "plate")])
        # 80 x 40, 20 px stripes: only the two middle ones are seen (bilinear
        # enlargement mixes neighbours within 2 px of a stripe edge)
        patch = out[10:50, 10:50]
        assert (patch[:, 3:17] == GREEN).all() and (patch[:, 23:37] == BLUE).all()

    def test_region_at_the_border_shows_its_part_of_the_picture(self, tmp_path: Path) -> None:
        out = method(save(tmp_path, stripes()), fit="stretch").apply(
            noise(), [Region((-20, 0, 20, 40), "plate")]
        )
        # the left half of the box is outside: blue and white are seen, not squeezed stripes
        assert (out[:40, 1:9] == BLUE).all() and (out[:40, 11:19] == WHITE).all()

    def test_downscaling_averages_fine_detail(self, tmp_path: Path) -> None:
        checker = (np.indices((256, 256)).sum(axis=0) % 2 * 255).astype(np.uint8)
        logo = np.repeat(checker[..., None], 3, axis=2)
        out = method(save(tmp_path, logo), fit="stretch").apply(
            noise(), [Region((10, 10, 26, 26), "plate")]
        )
        # area averaging: mid grey, no aliasing into black or white stripes
        assert np.abs(out[10:26, 10:26].astype(int) - 127.5).max() <= 2

    def test_tiny_picture_is_enlarged(self, tmp_path: Path) -> None:
        logo = np.array([[RED, GREEN], [BLUE, WHITE]], np.uint8)
        out = method(save(tmp_path, logo), fit="stretch").apply(
            noise(), [Region((0, 0, 40, 40), "plate")]
        )
        assert (out[2:10, 2:10] == RED).all() and (out[30:38, 30:38] == WHITE).all()

    def test_large_picture_is_kept_at_max_side(self, tmp_path: Path) -> None:
        logo = np.full((10, MAX_SIDE + 952, 3), 90, np.uint8)
        m = method(save(tmp_path, logo))
        assert m.picture_size == (MAX_SIDE, 7)
        out = m.apply(noise(), [Region((0, 0, 60, 30), "plate")])
        assert (out[:30] == 90).all()


class TestAlpha:
    @pytest.mark.parametrize("shape", ["box", "ellipse"])
    def test_transparent_picture_leaves_the_mask_fill(self, tmp_path: Path, shape: str) -> None:
        logo = np.zeros((16, 16, 4), np.uint8)
        logo[..., :3] = 200  # the colour of fully transparent pixels must not show
        path = save(tmp_path, logo)
        image = noise()
        region = [Region((10, 10, 50, 50), "face")]
        out = get_method("image", image=str(path), shape=shape, color="#0a0b0c").apply(
            image, region
        )
        masked = get_method("mask", color="#0a0b0c", shape=shape).apply(image, region)
        np.testing.assert_array_equal(out, masked)
        inside = (masked != image).any(axis=2)
        assert inside.sum() > 0.7 * 52 * 52 * (np.pi / 4 if shape == "ellipse" else 1)
        black = get_method("image", image=str(path), shape=shape).apply(image, region)
        assert (black[inside] == 0).all()  # default colour: black, like mask

    def test_partial_alpha_is_composited_over_the_colour(self, tmp_path: Path) -> None:
        logo = np.zeros((8, 8, 4), np.uint8)
        logo[..., :3] = 255
        logo[:, :4, 3] = 255
        logo[:, 4:, 3] = 128
        out = method(save(tmp_path, logo), fit="stretch", color=(0, 0, 100)).apply(
            noise(), [Region((0, 0, 40, 40), "plate")]
        )
        np.testing.assert_array_equal(out[20, 5], WHITE)
        a = 128 / 255
        expected = np.rint(np.array([255 * a, 255 * a, 255 * a + (1 - a) * 100]))
        np.testing.assert_allclose(out[20, 35], expected, atol=1)

    def test_grey_picture_without_alpha(self, tmp_path: Path) -> None:
        path = tmp_path / "grey.png"
        Image.fromarray(np.full((6, 6), 77, np.uint8), "L").save(path)
        out = method(path).apply(noise(), [Region((5, 5, 25, 25), "text")])
        assert (out[5:25, 5:25] == 77).all()


class TestPrivacy:
    def test_output_does_not_depend_on_the_original(self, tmp_path: Path) -> None:
        logo = np.zeros((10, 30, 4), np.uint8)
        logo[..., 0], logo[..., 3] = 255, np.linspace(0, 255, 30, dtype=np.uint8)
        m = get_method("image", image=str(save(tmp_path, logo)), fit="contain")
        region = [Region((7.3, 12.6, 48.2, 41.9), "face")]
        a, b = m.apply(noise(seed=1), region), m.apply(noise(seed=2), region)
        changed = (a != noise(seed=1)).any(axis=2)
        np.testing.assert_array_equal(a[changed], b[changed])
        assert changed.sum() > 0.7 * 41 * 29 * np.pi / 4  # the ellipse of a face region

    def test_no_per_call_state_and_thread_safe(self, tmp_path: Path) -> None:
        m = method(save(tmp_path, stripes(40, 20)), fit="contain")
        state = {k: (id(v), v) for k, v in vars(m).items()}
        jobs = [
            (noise(80, 90, seed=s), [Region((s, 2 * s, s + 20 + s, 2 * s + 30), "face")])
            for s in range(12)
        ]
        expected = [m.apply(image, regions) for image, regions in jobs]
        got: list[np.ndarray | None] = [None] * len(jobs)

        def work(i: int) -> None:
            for _ in range(5):
                got[i] = m.apply(*jobs[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(e, g)
        assert {k: (id(v), v) for k, v in vars(m).items()} == state


class TestParams:
    def test_validation_does_not_read_the_file(self) -> None:
        p = ReplaceImage.Params(image="no-such-logo.png", fit="stretch")
        assert p.image == "no-such-logo.png"

    def test_path_like_is_stored_as_str_and_saves_to_json(self, tmp_path: Path) -> None:
        path = save(tmp_path, stripes())
        m = get_method("image", image=path)
        assert m.params.image == str(path)  # type: ignore[attr-defined]
        described = json.loads(json.dumps(m.describe()))
        assert described == {
            "method": "image",
            "image": str(path),
            "fit": "cover",
            "color": [0, 0, 0],
            "shape": "auto",
            "margin": 1.3,
        }

    def test_image_is_required(self) -> None:
        with pytest.raises(TypeError, match="image"):
            get_method("image")

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"image": ""}, "image"),
            ({"image": "  "}, "image"),
            ({"image": None}, "image"),
            ({"image": 3}, "image"),
            ({"image": "a.png", "fit": "fill"}, "fit"),
            ({"image": "a.png", "fit": None}, "fit"),
            ({"image": "a.png", "color": "blue"}, "color"),
            ({"image": "a.png", "margin": 0.9}, "margin"),
        ],
    )
    def test_bad_parameters(self, params: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            ReplaceImage.Params(**params)  # type: ignore[arg-type]


class TestLoading:
    def test_missing_file_names_it(self, tmp_path: Path) -> None:
        path = tmp_path / "missing-logo.png"
        with pytest.raises(InputError, match=r"missing-logo\.png") as info:
            get_method("image", image=str(path))
        assert info.value.path == path
        assert "replacement picture" in str(info.value) and "no such file" in str(info.value)

    @pytest.mark.parametrize("content", [b"not a picture at all", b""])
    def test_unreadable_file_names_it(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "logo.png"
        path.write_bytes(content)
        with pytest.raises(InputError, match=r"logo\.png") as info:
            get_method("image", image=str(path))
        assert info.value.path == path

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="directory"):
            get_method("image", image=str(tmp_path))

    def test_picture_is_read_once(self, tmp_path: Path) -> None:
        path = save(tmp_path, stripes())
        m = method(path, fit="stretch")
        path.unlink()  # later calls do not go back to the file
        out = m.apply(noise(), [Region((10, 10, 50, 50), "plate")])
        assert (out[10:50, 12:18] == RED).all()
