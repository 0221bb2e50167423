"""Tests of the text detectors (``text`` and ``text-pii``) on documents rendered here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pixveil.detect import available_targets, get_detector
from pixveil.detect.ocr import TextLine
from pixveil.detect.text import TextDetector, TextPiiDetector, _rows, rectify_line
from pixveil.errors import DetectionError
from pixveil.types import Region

Box = tuple[float, float, float, float]


def render(
    lines: list[tuple[float, float, str]], *, size: tuple[int, int] = (960, 360), px: int = 22
) -> tuple[np.ndarray, dict[str, Box]]:
    """Black text on white with Pillow's built-in font; returns the image and each text's box."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(px)
    boxes = {}
    for x, y, text in lines:
        draw.text((x, y), text, fill="black", font=font)
        boxes[text] = tuple(float(v) for v in draw.textbbox((x, y), text, font=font))
    return np.asarray(img).copy(), boxes


def covered(regions: list[Region], box: Box) -> float:
    """Share of ``box``'s pixels inside the union of the regions' boxes."""
    x0, y0, x1, y1 = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
    mask = np.zeros((y1, x1), bool)
    for r in regions:
        a, b, c, d = r.pixel_box(x1, y1)
        mask[b:d, a:c] = True
    return float(mask[y0:y1, x0:x1].mean())


EMAIL = "Contact: anna.smith@example.com"
PHONE = "Phone: +49 30 1234 5678"
THANKS = "Thank you for your business"
TOTAL = "Total: 1,234.56 EUR"


@pytest.fixture(scope="module")
def document() -> tuple[np.ndarray, dict[str, Box]]:
    return render([(40, 30, EMAIL), (40, 100, THANKS), (40, 170, PHONE), (40, 240, TOTAL)])


@pytest.fixture(scope="module")
def pii_detector() -> TextPiiDetector:
    return TextPiiDetector(threads=1)


@pytest.fixture(scope="module")
def text_detector() -> TextDetector:
    return TextDetector(threads=1, read=True)


class TestOptions:
    @pytest.mark.parametrize("bad", [0, 1, -0.1, math.nan, "0.5", None, True])
    def test_threshold_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="threshold"):
            TextDetector(threshold=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="threshold"):
            TextPiiDetector(threshold=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [100, 1920.0, False])
    def test_max_side_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="max_side"):
            TextPiiDetector(max_side=bad)  # type: ignore[arg-type]

    def test_patterns_validated(self) -> None:
        with pytest.raises(ValueError, match="invalid regular expression"):
            TextPiiDetector(patterns=["x=("])
        with pytest.raises(ValueError, match="sequence"):
            TextPiiDetector(patterns="x=1")  # type: ignore[arg-type]

    def test_read_validated(self) -> None:
        with pytest.raises(ValueError, match="read"):
            TextDetector(read="yes")  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", ["gpu", "CUDA", None])
    def test_device_validated(self, bad: object) -> None:
        with pytest.raises(ValueError, match="device must be one of auto, cpu"):
            TextDetector(device=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="device must be one of auto, cpu"):
            TextPiiDetector(device=bad)  # type: ignore[arg-type]

    def test_registered(self) -> None:
        assert {"text", "text-pii"} <= set(available_targets())
        det = get_detector("text-pii", patterns=("staff=EMP\\d{4}",))
        assert isinstance(det, TextPiiDetector)
        assert det.patterns[-1].name == "staff"
        assert isinstance(get_detector("text"), TextDetector)


class TestRectify:
    def test_long_lines_keep_their_length(self) -> None:
        img = np.zeros((40, 1200, 3), np.uint8)
        quad = np.array([[0, 10], [1200, 10], [1200, 30], [0, 30]], np.float32)
        crop = rectify_line(img, quad)
        assert crop.shape == (48, 2880, 3)  # 48 * 1200 / 20, not capped

    def test_vertical_lines_are_turned(self) -> None:
        img = np.zeros((400, 60, 3), np.uint8)
        quad = np.array([[20, 0], [40, 0], [40, 400], [20, 400]], np.float32)
        assert rectify_line(img, quad, rotate=1).shape == (48, 960, 3)
        assert rectify_line(img, quad, rotate=-1).shape == (48, 960, 3)


class TestRows:
    @staticmethod
    def line(pts: list[tuple[float, float]]) -> TextLine:
        return TextLine(np.array(pts, np.float32), 0.9)

    def test_label_and_value_on_one_baseline(self) -> None:
        tilted_label = self.line([(78, 244), (121, 248), (120, 269), (76, 266)])  # 5 degrees
        value = self.line([(300, 247), (385, 247), (385, 264), (300, 264)])
        below = self.line([(300, 300), (385, 300), (385, 317), (300, 317)])
        assert _rows([value, below, tilted_label]) == [[2, 0]]

    def test_far_or_taller_lines_are_not_joined(self) -> None:
        a = self.line([(0, 0), (100, 0), (100, 20), (0, 20)])
        far = self.line([(800, 0), (900, 0), (900, 20), (800, 20)])  # 35 heights away
        tall = self.line([(120, -20), (300, -20), (300, 40), (120, 40)])
        assert _rows([a, far, tall]) == []


class TestTextPii:
    def test_flags_pii_lines_only(
        self, pii_detector: TextPiiDetector, document: tuple[np.ndarray, dict[str, Box]]
    ) -> None:
        img, boxes = document
        regions = pii_detector.detect(img)
        assert all(r.kind == "text" for r in regions)
        assert covered(regions, boxes[EMAIL]) >= 0.95
        assert covered(regions, boxes[PHONE]) >= 0.95
        assert covered(regions, boxes[THANKS]) == 0.0
        assert covered(regions, boxes[TOTAL]) == 0.0
        labels = sorted(r.label or "" for r in regions)
        assert labels[0].startswith("email: ") and "anna.smith@example.com" in labels[0]
        assert labels[1].startswith("phone")
        for r in regions:
            assert r.landmarks is not None and r.landmarks.shape == (4, 2)
            assert 0.0 <= r.score <= 1.0

    def test_table_columns_make_up_no_number(self, pii_detector: TextPiiDetector) -> None:
        row = [
            (40, 30, "Coffee beans"),
            (400, 30, "12"),
            (520, 30, "531.33"),
            (680, 30, "5,844.63"),
        ]
        img, _ = render(row, size=(900, 90))
        assert pii_detector.detect(img) == []

    def test_long_line_and_split_label(self, pii_detector: TextPiiDetector) -> None:
        sentence = "Please transfer the amount this week and write to me at li.chen@web.fr"
        img, boxes = render(
            [(20, 40, sentence), (20, 140, "Date of birth:"), (330, 140, "12.03.1985")],
            size=(1100, 220),
            px=20,
        )
        regions = pii_detector.detect(img)
        assert covered(regions, boxes[sentence]) >= 0.95  # read at full length
        # The date alone is no PII; joined with its label across the gap it is.
        assert covered(regions, boxes["12.03.1985"]) >= 0.95
        assert any((r.label or "").startswith("birth-date") for r in regions)

    def test_rotated_page(
        self, pii_detector: TextPiiDetector, document: tuple[np.ndarray, dict[str, Box]]
    ) -> None:
        img, _ = document
        turned = np.ascontiguousarray(np.rot90(img))  # text now runs bottom to top
        labels = " ".join(r.label or "" for r in pii_detector.detect(turned))
        assert "email" in labels and "phone" in labels

    def test_user_pattern(self) -> None:
        badge = "Badge emp-48213 issued"
        img, boxes = render([(40, 30, badge), (40, 100, THANKS)], size=(700, 160))
        plain = TextPiiDetector(threads=1).detect(img)
        assert covered(plain, boxes[badge]) == 0.0
        custom = TextPiiDetector(threads=1, patterns=["staff=emp-\\d{5}"]).detect(img)
        assert covered(custom, boxes[badge]) >= 0.95
        assert covered(custom, boxes[THANKS]) == 0.0

    def test_blank_image(self, pii_detector: TextPiiDetector) -> None:
        assert pii_detector.detect(np.full((200, 300, 3), 255, np.uint8)) == []

    def test_failure_is_a_detection_error(
        self, pii_detector: TextPiiDetector, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def boom(*_a: object, **_k: object) -> np.ndarray:
            raise RuntimeError("broken")

        monkeypatch.setattr(pii_detector._detector, "probability_map", boom)
        with pytest.raises(DetectionError, match="text-pii detection failed"):
            pii_detector.detect(np.zeros((50, 50, 3), np.uint8))

    def test_bad_input(self, pii_detector: TextPiiDetector) -> None:
        with pytest.raises(ValueError, match="uint8"):
            pii_detector.detect(np.zeros((50, 50, 3), np.float32))


class TestText:
    def test_every_line(
        self, text_detector: TextDetector, document: tuple[np.ndarray, dict[str, Box]]
    ) -> None:
        img, boxes = document
        regions = text_detector.detect(img)
        for text, box in boxes.items():
            assert covered(regions, box) >= 0.95, text
        readings = {r.label for r in regions}
        assert THANKS in readings
        scores = [r.score for r in regions]
        assert scores == sorted(scores, reverse=True)

    def test_without_reading_by_default(self, document: tuple[np.ndarray, dict[str, Box]]) -> None:
        img, boxes = document
        regions = TextDetector(threads=1).detect(img)
        assert len(regions) == len(boxes)
        assert all(r.label is None for r in regions)


class TestDevice:
    def test_auto_reads_the_same_lines_as_cpu(
        self, pii_detector: TextPiiDetector, document: tuple[np.ndarray, dict[str, Box]]
    ) -> None:
        img, _ = document
        auto = TextPiiDetector(threads=1, device="auto")
        assert auto.device == "auto"
        assert auto.runtime.fallback is None
        assert auto._recognizer().runtime.requested == "auto"
        expected = pii_detector.detect(img)
        assert len(expected) == 2
        got = auto.detect(img)
        assert [r.label for r in got] == [r.label for r in expected]
        np.testing.assert_allclose([r.box for r in got], [r.box for r in expected], atol=1.0)

    def test_both_models_get_the_device(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import onnxruntime as ort

        monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
        det = TextDetector(threads=1, device="cuda", read=True)
        for runtime in (det.runtime, det._recognizer().runtime):
            assert runtime.requested == "cuda"
            assert runtime.device == "cpu"
            assert runtime.fallback is not None and "CUDAExecutionProvider" in runtime.fallback
