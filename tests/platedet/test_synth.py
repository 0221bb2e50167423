"""The synthetic plate generator: determinism, formats, geometry."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pixveil.platedet.synth import (
    FORMATS,
    Photo,
    SceneSynth,
    SynthConfig,
    plate_text,
    quad_boxes,
    render_plate,
)


def _grey_photo(tmp_path: Path, value: int = 128) -> Photo:
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), value, np.uint8))
    return Photo(path)


class TestPlateText:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_lines(self, fmt: str) -> None:
        rng = np.random.default_rng(0)
        for _ in range(20):
            lines = plate_text(fmt, rng=rng)
            assert len(lines) == (2 if fmt in ("eu_double", "square") else 1)
            assert all(line.strip() for line in lines)

    def test_vanity_is_letters_only(self) -> None:
        rng = np.random.default_rng(1)
        for _ in range(50):
            (text,) = plate_text("us_vanity", rng=rng)
            assert text.isalpha() and 3 <= len(text) <= 7

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="fmt"):
            plate_text("mars", rng=np.random.default_rng(0))


class TestRenderPlate:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_shape_and_range(self, fmt: str) -> None:
        rgb, alpha, text = render_plate(fmt, rng=np.random.default_rng(3))
        h, w = alpha.shape
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.float32
        assert rgb.min() >= 0 and rgb.max() <= 255
        assert alpha.min() >= 0 and alpha.max() <= 1 and alpha.mean() > 0.9
        assert w >= h
        assert text

    def test_deterministic(self) -> None:
        a = render_plate("us", rng=np.random.default_rng(5))
        b = render_plate("us", rng=np.random.default_rng(5))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == b[2]

    def test_characters_are_drawn(self) -> None:
        rgb, _, _ = render_plate("eu", rng=np.random.default_rng(2), text=("AB 123",))
        middle = rgb[30:80, 60:-20].mean(axis=2)
        assert middle.std() > 30  # ink on a plain background


class TestSynthConfig:
    @pytest.mark.parametrize(
        ("kw", "name"),
        [
            ({"size": (16, 320)}, "size"),
            ({"min_plate_width": 4}, "min_plate_width"),
            ({"min_plate_width": 50, "max_plate_width": 40}, "min_plate_width"),
            ({"max_plates": 17}, "max_plates"),
            ({"formats": ()}, "formats"),
            ({"formats": ("eu", "nope")}, "formats"),
            ({"tilt": 60}, "tilt"),
            ({"p_keep": 0.8, "p_cover": 0.5}, "p_keep"),
        ],
    )
    def test_rejects(self, kw: dict, name: str) -> None:
        with pytest.raises(ValueError, match=name):
            SynthConfig(**kw)

    def test_seed(self) -> None:
        with pytest.raises(ValueError, match="seed"):
            SceneSynth(seed=-1)


class TestSceneSynth:
    def test_deterministic_and_order_free(self) -> None:
        cfg = SynthConfig(size=(96, 128))
        a = SceneSynth(cfg, seed=7)
        b = SceneSynth(cfg, seed=7)
        s_late = b.sample(3)
        for i in range(4):
            x = a.sample(i)
            assert x.image.shape == (96, 128, 3) and x.image.dtype == np.uint8
        y = a.sample(3)
        np.testing.assert_array_equal(y.image, s_late.image)
        np.testing.assert_array_equal(y.quads, s_late.quads)
        assert not np.array_equal(a.sample(0).image, a.sample(1).image)
        assert not np.array_equal(SceneSynth(cfg, seed=8).sample(3).image, y.image)

    def test_quads_inside(self) -> None:
        synth = SceneSynth(SynthConfig(size=(128, 160), max_plates=4), seed=1)
        n = 0
        for i in range(30):
            s = synth.sample(i)
            assert s.quads.shape == (len(s.formats), 4, 2) and s.quads.dtype == np.float32
            assert len(s.texts) == len(s.formats)
            boxes = quad_boxes(s.quads)
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 160).all()
            assert (boxes[:, 3] <= 128).all()
            n += len(s.quads)
        assert n >= 20

    def test_widths_in_range(self) -> None:
        cfg = SynthConfig(size=(480, 640), min_plate_width=40, max_plate_width=120)
        synth = SceneSynth(cfg, seed=2)
        for i in range(15):
            for q in synth.sample(i).quads:
                w = float(np.linalg.norm(q[1] - q[0]))
                assert 40 * 0.7 <= w <= 120 * 1.05

    def test_plate_pixels_where_the_quad_says(self, tmp_path: Path) -> None:
        """On a flat grey photo without effects, only pixels inside a quad change."""
        cfg = SynthConfig(size=(160, 200), max_clutter=0, effects=False, min_plate_width=40)
        synth = SceneSynth(cfg, photos=[_grey_photo(tmp_path)], seed=3)
        checked = 0
        for i in range(12):
            s = synth.sample(i)
            inside = np.zeros(s.image.shape[:2], np.uint8)
            for q in s.quads:
                cv2.fillConvexPoly(inside, np.round(q).astype(np.int32), 1)
            near = cv2.dilate(inside, np.ones((5, 5), np.uint8)) > 0
            changed = np.abs(s.image.astype(int) - 128).max(axis=2) > 2
            assert not (changed & ~near).any()
            for q in s.quads:
                one = np.zeros(s.image.shape[:2], np.uint8)
                cv2.fillConvexPoly(one, np.round(q).astype(np.int32), 1)
                core = cv2.erode(one, np.ones((5, 5), np.uint8)) > 0
                if core.sum() > 20:
                    assert changed[core].mean() > 0.5
                    checked += 1
        assert checked >= 5

    def test_photo_plate_is_kept_as_positive(self, tmp_path: Path) -> None:
        img = np.full((240, 320, 3), 90, np.uint8)
        img[100:130, 100:220] = 240
        path = tmp_path / "car.png"
        cv2.imwrite(str(path), img)
        cfg = SynthConfig(
            size=(240, 320), max_plates=0, max_clutter=0, effects=False, p_keep=1.0, p_cover=0.0
        )
        synth = SceneSynth(cfg, photos=[Photo(path, (100.0, 100.0, 220.0, 130.0))], seed=0)
        seen = 0
        for i in range(10):
            s = synth.sample(i)
            for q, fmt in zip(s.quads, s.formats, strict=True):
                if fmt != "photo":
                    continue
                x0, y0, x1, y1 = (round(float(v)) for v in quad_boxes(q[None])[0])
                inner = s.image[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
                if inner.size:
                    assert inner.mean() > 200
                    seen += 1
        assert seen >= 3

    @pytest.mark.parametrize("p_keep", [1.0, 0.0])
    def test_unannotated_plates_stay_positives(self, tmp_path: Path, p_keep: float) -> None:
        """Another real plate in the photo is a positive, kept or inpainted main plate alike."""
        img = np.full((240, 320, 3), 90, np.uint8)
        img[100:130, 100:220] = 240  # the annotated plate
        img[30:50, 20:80] = 20  # an unannotated one, dark
        path = tmp_path / "car.png"
        cv2.imwrite(str(path), img)
        cfg = SynthConfig(
            size=(240, 320), max_plates=0, max_clutter=0, effects=False, p_keep=p_keep, p_cover=0.0
        )
        photo = Photo(path, (100.0, 100.0, 220.0, 130.0), others=((20.0, 30.0, 80.0, 50.0),))
        synth = SceneSynth(cfg, photos=[photo], seed=0)
        dark = 0
        for i in range(12):
            s = synth.sample(i)
            for q in s.quads:
                x0, y0, x1, y1 = (round(float(v)) for v in quad_boxes(q[None])[0])
                inner = s.image[max(0, y0 + 2) : y1 - 2, max(0, x0 + 2) : x1 - 2]
                if inner.size and inner.mean() < 40:
                    dark += 1
            # every dark plate pixel whose plate centre is in the crop lies in a quad
            inside = np.zeros(s.image.shape[:2], np.uint8)
            for q in s.quads:
                cv2.fillConvexPoly(inside, np.round(q).astype(np.int32), 1)
            blob = s.image.max(axis=2) < 40
            if blob.sum() > 50 and inside.sum():
                assert (inside[blob] > 0).mean() > 0.5
        assert dark >= 3


@pytest.mark.shared
def test_real_photos(shared_data: Path) -> None:
    from pixveil.platedet.data import load_photos

    photos = load_photos(shared_data / "plates", "eu")
    assert len(photos) > 50
    synth = SceneSynth(
        SynthConfig(size=(256, 256)), photos=[p.as_photo() for p in photos[:5]], seed=0
    )
    s = synth.sample(0)
    assert s.image.shape == (256, 256, 3)
    np.testing.assert_array_equal(synth.sample(0).image, s.image)
