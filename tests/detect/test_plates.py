"""Tests of the licence-plate detector (``plates``)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixveil.detect import get_detector
from pixveil.detect.ocr import TextLine, order_quad
from pixveil.detect.plates import PlateDetector, _merge_pieces, plate_text_prior
from pixveil.errors import DetectionError, ModelError
from pixveil.types import Region

# --------------------------------------------------------------------------- helpers


def render_plate(text: str, *, width: int = 260, height: int = 56) -> np.ndarray:
    """A plate drawn by OpenCV: white, dark border, dark characters; (h, w, 3) uint8 RGB."""
    plate = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(plate, (1, 1), (width - 2, height - 2), (20, 20, 20), 2)
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 3
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thick)
    scale = min(width * 0.85 / tw, height * 0.7 / th)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    origin = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(plate, text, origin, font, scale, (15, 15, 15), thick, cv2.LINE_AA)
    return plate


def street(width: int = 1280, height: int = 720, *, seed: int = 0) -> np.ndarray:
    """A crude street scene (sky, road, the back of a red car), (H, W, 3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = np.linspace(90, 160, height)[:, None, None].astype(np.uint8)
    img[int(height * 0.62) :] = (70, 70, 75)
    sx, sy = width / 1280, height / 720
    cv2.rectangle(
        img, (int(380 * sx), int(250 * sy)), (int(900 * sx), int(560 * sy)), (150, 30, 35), -1
    )
    cv2.rectangle(
        img, (int(430 * sx), int(280 * sy)), (int(850 * sx), int(380 * sy)), (60, 70, 90), -1
    )
    noise = rng.integers(-8, 9, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def paste(
    img: np.ndarray, plate: np.ndarray, corners: list[tuple[float, float]]
) -> tuple[float, float, float, float]:
    """Warp ``plate`` onto ``img`` (in place) at ``corners`` (clockwise from top-left)."""
    h, w = plate.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32(corners)
    mat = cv2.getPerspectiveTransform(src, dst)
    size = (img.shape[1], img.shape[0])
    warped = cv2.warpPerspective(plate, mat, size)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), mat, size) > 0
    img[mask] = warped[mask]
    x0, y0 = dst.min(axis=0)
    x1, y1 = dst.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def plate_scene(text: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A street with one plate under a slight perspective; returns the image and its box."""
    img = street()
    box = paste(img, render_plate(text), [(520, 440), (780, 446), (776, 504), (522, 496)])
    return img, box


def _covered(r: Region, box: tuple[float, float, float, float]) -> float:
    """Share of ``box``'s area inside the region's box."""
    ix = max(0.0, min(r.box[2], box[2]) - max(r.box[0], box[0]))
    iy = max(0.0, min(r.box[3], box[3]) - max(r.box[1], box[1]))
    return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))


@pytest.fixture(scope="module")
def detector() -> PlateDetector:
    return PlateDetector(threads=1)


# ---------------------------------------------------------------------------- options


class TestOptions:
    @pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.5", None, True])
    def test_threshold_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="threshold"):
            PlateDetector(threshold=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [100, 0, 1280.0, "1280", False])
    def test_max_side_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="max_side"):
            PlateDetector(max_side=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [0, -3, 2.0])
    def test_max_candidates_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="max_candidates"):
            PlateDetector(max_candidates=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True])
    def test_threads_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="threads"):
            PlateDetector(threads=bad)  # type: ignore[arg-type]

    def test_options_are_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            PlateDetector(0.5)  # type: ignore[misc]

    def test_bounds_accepted(self) -> None:
        assert PlateDetector(threshold=0).threshold == 0.0
        assert PlateDetector(threshold=1, max_side=320).max_side == 320

    def test_registered(self) -> None:
        det = get_detector("plates", threshold=0.5)
        assert isinstance(det, PlateDetector)
        assert det.kind == "plate"
        assert get_detector("plates", threshold=0.5) is det

    @pytest.mark.parametrize(
        "image",
        [
            np.zeros((10, 10), np.uint8),
            np.zeros((10, 10, 4), np.uint8),
            np.zeros((10, 10, 3), np.float32),
            np.zeros((0, 10, 3), np.uint8),
        ],
    )
    def test_bad_images_rejected(self, detector: PlateDetector, image: np.ndarray) -> None:
        with pytest.raises(ValueError):
            detector.detect(image)


# ---------------------------------------------------------------------- text prior


class TestTextPrior:
    @pytest.mark.parametrize("text", ["AB12CDE", "7ABC123", "RK-763AS", "1B2:5790", "M5-XSX"])
    def test_mixed_plate_text_scores_high(self, text: str) -> None:
        assert plate_text_prior(text) >= 0.99

    @pytest.mark.parametrize(
        "text", ["2014-05-13", "2014-05-13 07:25:13", "07:25:13", "13/05/14", "20140513", ""]
    )
    def test_timestamps_and_nothing_score_zero(self, text: str) -> None:
        assert plate_text_prior(text) == 0.0

    def test_words_score_below_the_default_threshold(self) -> None:
        for word in ("TEXAS", "EXIT", "TOYOTA", "PARKING"):
            assert 0 < plate_text_prior(word) < 0.5

    def test_digits_only(self) -> None:
        assert 0.5 < plate_text_prior("1049338") < 1.0
        assert plate_text_prior("12345678") == 0.0  # too long for a digit-only plate

    def test_length(self) -> None:
        assert plate_text_prior("A1") == 0.0
        assert plate_text_prior("AB1") < plate_text_prior("AB12") < plate_text_prior("AB123")
        assert plate_text_prior("AB12345678901") == 0.0


def test_pieces_of_one_line_are_merged() -> None:
    def rect(x0: float, x1: float, y0: float, y1: float) -> TextLine:
        return TextLine(order_quad(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])), 0.8)

    left, right = rect(100, 160, 50, 70), rect(175, 240, 51, 71)
    far = rect(400, 450, 50, 70)  # too far away to belong to the same line
    merged = _merge_pieces([left, right, far])
    assert len(merged) == 1
    x0, y0 = merged[0].quad.min(axis=0)
    x1, y1 = merged[0].quad.max(axis=0)
    assert x0 == pytest.approx(100, abs=1) and x1 == pytest.approx(240, abs=1)
    assert y0 == pytest.approx(50, abs=1) and y1 == pytest.approx(71, abs=1)
    assert _merge_pieces([left, far]) == []


# ------------------------------------------------------------------------ detection


class TestSyntheticPlates:
    @pytest.mark.parametrize("text", ["AB12CDE", "7ABC123"])
    def test_rendered_plate_found(self, detector: PlateDetector, text: str) -> None:
        img, box = plate_scene(text)
        regions = detector.detect(img)
        assert len(regions) == 1
        r = regions[0]
        assert isinstance(r, Region)
        assert r.kind == "plate"
        assert r.iou(box) >= 0.5
        assert r.label == text
        assert 0.5 <= r.score <= 1.0
        # The box holds (nearly) the whole plate, with a modest margin only.
        assert _covered(r, box) >= 0.95
        assert r.area < 2.0 * (box[2] - box[0]) * (box[3] - box[1])

    def test_landmarks_are_the_plate_corners_clockwise(self, detector: PlateDetector) -> None:
        img, _ = plate_scene("AB12CDE")
        (r,) = detector.detect(img)
        lm = r.landmarks
        assert lm is not None and lm.shape == (4, 2)
        tl, tr, br, bl = lm
        assert tl[0] < tr[0] and bl[0] < br[0]  # left corners left of right ones
        assert tl[1] < bl[1] and tr[1] < br[1]  # top corners above bottom ones
        # The box is the quadrilateral's bounding box.
        np.testing.assert_allclose(lm.min(axis=0), r.box[:2], atol=1e-3)
        np.testing.assert_allclose(lm.max(axis=0), r.box[2:], atol=1e-3)

    def test_two_plates_and_clipping_at_the_border(self, detector: PlateDetector) -> None:
        img = street(960, 540, seed=1)
        a = paste(img, render_plate("KX51ABC"), [(120, 300), (380, 300), (380, 356), (120, 356)])
        # The second plate touches the right and bottom borders.
        b = paste(img, render_plate("9ZT4411"), [(700, 484), (960, 484), (960, 540), (700, 540)])
        regions = detector.detect(img)
        assert len(regions) == 2
        assert sorted(r.label or "" for r in regions) == ["9ZT4411", "KX51ABC"]
        assert max(r.iou(a) for r in regions) >= 0.5
        assert max(r.iou(b) for r in regions) >= 0.5
        for r in regions:
            assert 0 <= r.box[0] < r.box[2] <= 960 and 0 <= r.box[1] < r.box[3] <= 540
            assert r.landmarks is not None
            assert (r.landmarks >= 0).all() and (r.landmarks[:, 0] <= 960).all()
            assert (r.landmarks[:, 1] <= 540).all()
        assert regions[0].score >= regions[1].score

    def test_threshold_filters_by_score(self, detector: PlateDetector) -> None:
        img, _ = plate_scene("AB12CDE")
        default = detector.detect(img)
        everything = PlateDetector(threshold=0.0, threads=1).detect(img)
        strict = PlateDetector(threshold=1.0, threads=1).detect(img)
        assert len(everything) >= len(default) >= 1
        assert all(r.score >= 1.0 for r in strict)
        assert [r.label for r in default] == [r.label for r in everything if r.score >= 0.5]


class TestNoPlates:
    def test_astronaut(self, detector: PlateDetector, astronaut: np.ndarray) -> None:
        assert detector.detect(astronaut) == []

    def test_paragraph_of_prose(self, detector: PlateDetector) -> None:
        prose = [
            "The quick brown fox jumps over the lazy dog while the",
            "committee reviews the annual report on regional transport,",
            "noting that most of the buses arrived on time this spring",
            "and that the new timetable will be published next month.",
            "Residents are invited to send their comments by letter or",
            "to attend the public meeting in the town hall on Friday.",
        ]
        img = np.full((480, 900, 3), 250, np.uint8)
        for i, line in enumerate(prose):
            cv2.putText(
                img,
                line,
                (20, 50 + 60 * i),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.9,
                (20, 20, 20),
                2,
                cv2.LINE_AA,
            )
        assert detector.detect(img) == []

    def test_sign_words_need_a_low_threshold(self, detector: PlateDetector) -> None:
        # Short upper-case words on white panels look like plates to the text detector;
        # letters-only readings stay below the default threshold.
        img = np.full((420, 640, 3), (30, 110, 40), np.uint8)
        for i, word in enumerate(["EXIT", "PARKING", "NO ENTRY", "TAXI", "OPEN", "STATION"]):
            x, y = 40 + (i % 2) * 300, 80 + (i // 2) * 120
            cv2.rectangle(img, (x - 15, y - 50), (x + 260, y + 20), (245, 245, 245), -1)
            cv2.putText(
                img, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA
            )
        assert detector.detect(img) == []
        lenient = PlateDetector(threshold=0.3, threads=1).detect(img)
        assert {"PARKING", "STATION"} <= {r.label for r in lenient}

    def test_tiny_and_blank_images(self, detector: PlateDetector) -> None:
        assert detector.detect(np.zeros((5, 7, 3), np.uint8)) == []
        assert detector.detect(np.full((300, 400, 3), 255, np.uint8)) == []


class TestFailures:
    def test_unexpected_errors_become_detection_errors(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        det = PlateDetector(threads=1)

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("broken")

        monkeypatch.setattr(det._reader, "read", boom)
        img, _ = plate_scene("AB12CDE")
        with pytest.raises(DetectionError, match="plate detection failed"):
            det.detect(img)

    def test_model_errors_pass_through(self, monkeypatch: pytest.MonkeyPatch) -> None:
        det = PlateDetector(threads=1)

        def boom(*args: object, **kwargs: object) -> None:
            raise ModelError("model broken")

        monkeypatch.setattr(det._detector, "probability_map", boom)
        with pytest.raises(ModelError, match="model broken"):
            det.detect(np.zeros((64, 64, 3), np.uint8))


# ------------------------------------------------------------------------ real data


def _load(shared: Path) -> list[tuple[Path, tuple[float, float, float, float]]]:
    out = []
    for region in ("eu", "us"):
        for txt in sorted((shared / "plates" / region).glob("*.txt")):
            parts = txt.read_text().split()
            x, y, w, h = (float(v) for v in parts[1:5])
            out.append((txt.with_suffix(".jpg"), (x, y, x + w, y + h)))
    return out


def _found(r: Region, box: tuple[float, float, float, float]) -> bool:
    return r.iou(box) >= 0.5 or _covered(r, box) >= 0.9


@pytest.mark.shared
@pytest.mark.slow
def test_recall_on_real_plate_photos(detector: PlateDetector, shared_data: Path) -> None:
    """Every 11th of the 330 annotated photos (30 photos, EU and US)."""
    samples = _load(shared_data)
    if len(samples) < 300:
        pytest.skip("the plate photos are incomplete")
    subset = samples[::11]
    found = 0
    false_pos = 0
    for path, box in subset:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert bgr is not None, path
        regions = detector.detect(np.ascontiguousarray(bgr[:, :, ::-1]))
        hits = [_found(r, box) for r in regions]
        found += any(hits)
        false_pos += len(hits) - sum(hits)
    # Measured on this subset: 26 / 30 found (it happens to hold 4 of the 19 plates
    # missed on the whole set, where recall is 94 %), no unmatched detection.
    assert found / len(subset) >= 0.8
    assert false_pos / len(subset) <= 0.2
