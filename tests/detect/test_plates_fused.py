"""The ``plates-fused`` target: the learned detector first, the OCR path as a second opinion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixveil.detect import get_detector
from pixveil.detect.plate_net import default_model_path, second_opinion
from pixveil.detect.plates import (
    FUSED_OCR_WEIGHT,
    FUSED_THRESHOLD,
    FusedPlateDetector,
    PlateDetector,
)
from pixveil.errors import DetectionError
from pixveil.platedet.evaluate import match, read_rgb
from pixveil.types import Region

shipped = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped plate model")


def _r(box: tuple[float, float, float, float], score: float, label: str | None = None) -> Region:
    return Region(box, kind="plate", score=score, label=label)


class TestSecondOpinion:
    def test_agreeing_ocr_raises_the_network_score(self) -> None:
        net = [_r((100, 100, 200, 140), 0.6)]
        ocr = [_r((95, 98, 205, 145), 0.5, "AB123")]
        (out,) = second_opinion(net, ocr, ocr_weight=0.5)
        assert out.score == pytest.approx(1 - 0.4 * 0.5)
        assert out.box == net[0].box and out.label is None  # the network's plate

    def test_unexplained_ocr_plate_is_weighted(self) -> None:
        net = [_r((100, 100, 200, 140), 0.7)]
        ocr = [_r((400, 300, 480, 330), 0.9, "XY789")]
        out = second_opinion(net, ocr, ocr_weight=0.5)
        assert [r.score for r in out] == pytest.approx([0.7, 0.45])
        assert out[1].label == "XY789"

    def test_best_agreeing_reading_counts_once(self) -> None:
        net = [_r((100, 100, 200, 140), 0.5)]
        ocr = [_r((110, 105, 190, 135), 0.2, "A"), _r((100, 100, 200, 140), 0.6, "AB12")]
        (out,) = second_opinion(net, ocr, ocr_weight=1.0)
        assert out.score == pytest.approx(1 - 0.5 * 0.4)

    def test_rejects_weight(self) -> None:
        with pytest.raises(ValueError, match="ocr_weight"):
            second_opinion([], [], ocr_weight=1.5)


@shipped
class TestTarget:
    def test_registry(self) -> None:
        det = get_detector("plates-fused", threads=1)
        assert isinstance(det, FusedPlateDetector)
        assert det.threshold == FUSED_THRESHOLD and det.ocr_weight == FUSED_OCR_WEIGHT
        assert type(get_detector("plates", threads=1)) is PlateDetector  # the default

    def test_rejects_weight(self) -> None:
        with pytest.raises(ValueError, match="ocr_weight"):
            FusedPlateDetector(ocr_weight=2.0, threads=1)

    def test_blank_image(self) -> None:
        det = FusedPlateDetector(threads=1)
        assert det.detect(np.full((720, 1280, 3), 127, np.uint8)) == []

    def test_fails_closed_when_the_network_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        det = FusedPlateDetector(threads=1)

        def broken(*a: object, **k: object) -> None:
            raise RuntimeError("broken session")

        monkeypatch.setattr(det._net, "_run", broken)
        with pytest.raises(DetectionError):
            det.detect(np.full((360, 640, 3), 90, np.uint8))


# US photos (never trained on by the shipped network, which saw the EU folder) whose
# plate the OCR path alone misses at its default threshold and the fusion finds.
OCR_MISSES = ["car1.jpg", "car3.jpg", "wts-lg-000047.jpg"]


@shipped
@pytest.mark.parametrize("name", OCR_MISSES)
def test_fusion_finds_plates_the_ocr_path_misses(shared_data: Path, name: str) -> None:
    txt = (shared_data / "plates" / "us" / name).with_suffix(".txt")
    x, y, w, h = (float(v) for v in txt.read_text().split()[1:5])
    gt = np.array([[x, y, x + w, y + h]])
    img = read_rgb(txt.with_suffix(".jpg"))

    def found(regions: list[Region]) -> bool:
        boxes = np.array([r.box for r in regions], np.float64).reshape(-1, 4)
        return bool(match(boxes, gt)[0].all())

    assert not found(PlateDetector(threads=1).detect(img))
    fused = FusedPlateDetector(threads=1).detect(img)
    assert found(fused)
    assert all(r.score >= FUSED_THRESHOLD for r in fused)
    hit = next(r for r in fused if found([r]))
    assert hit.landmarks is not None and hit.landmarks.shape == (4, 2)
