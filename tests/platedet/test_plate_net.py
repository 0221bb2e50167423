"""The ONNX Runtime plate detector: options, the shipped model when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixveil.detect.plate_net import PlateNetDetector, default_model_path
from pixveil.errors import ModelError


class TestOptions:
    @pytest.mark.parametrize(
        ("kw", "name"),
        [
            ({"threshold": 0}, "threshold"),
            ({"threshold": 1.5}, "threshold"),
            ({"max_side": 64}, "max_side"),
            ({"scales": ()}, "scales"),
            ({"scales": (3.0,)}, "scales"),
            ({"nms_iou": 0}, "nms_iou"),
            ({"threads": 0}, "threads"),
        ],
    )
    def test_rejects(self, kw: dict, name: str) -> None:
        with pytest.raises(ValueError, match=name):
            PlateNetDetector(**kw)

    def test_missing_model(self, tmp_path: Path) -> None:
        with pytest.raises(ModelError, match="missing"):
            PlateNetDetector(model=str(tmp_path / "none.onnx"))


shipped = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped plate model")


@shipped
class TestShipped:
    def test_blank_image(self) -> None:
        det = PlateNetDetector(threads=1)
        img = np.full((720, 1280, 3), 127, np.uint8)
        assert det.detect(img) == []

    def test_finds_a_drawn_plate(self) -> None:
        from pixveil.platedet.synth import SceneSynth, SynthConfig

        det = PlateNetDetector(threads=1)
        cfg = SynthConfig(
            size=(360, 640), min_plate_width=80, max_plate_width=160, max_clutter=0, effects=False
        )
        synth = SceneSynth(cfg, seed=11)
        found = total = 0
        for i in range(6):
            s = synth.sample(i)
            regions = det.detect(s.image)
            from pixveil.platedet.evaluate import match
            from pixveil.platedet.synth import quad_boxes

            hit, _ = match(np.array([r.box for r in regions]).reshape(-1, 4), quad_boxes(s.quads))
            found += int(hit.sum())
            total += len(s.quads)
        assert total > 0 and found / total >= 0.8

    def test_card(self) -> None:
        card = PlateNetDetector.card()
        assert "training" in card and "files" in card

    def test_registered(self) -> None:
        from pixveil.detect import DETECTORS

        assert DETECTORS.get("plates-net") is PlateNetDetector


class TestFuse:
    def test_keeps_unexplained_ocr(self) -> None:
        from pixveil.detect.plate_net import fuse_regions
        from pixveil.types import Region

        net = [Region((10, 10, 110, 40), kind="plate", score=0.9)]
        same = Region((15, 5, 100, 45), kind="plate", score=0.8, label="AB123")
        other = Region((300, 10, 380, 40), kind="plate", score=0.6, label="XY987")
        fused = fuse_regions(net, [same, other], ocr_weight=0.5)
        assert [r.score for r in fused] == [0.9, 0.3]
        assert fused[1].label == "XY987"

    def test_rejects(self) -> None:
        from pixveil.detect.plate_net import fuse_regions

        with pytest.raises(ValueError, match="iou"):
            fuse_regions([], [], iou=0)
        with pytest.raises(ValueError, match="ocr_weight"):
            fuse_regions([], [], ocr_weight=2)
