"""Training targets and their decoding agree; detection scoring."""

from __future__ import annotations

import numpy as np
import pytest

from pixveil.platedet.decode import decode, nms
from pixveil.platedet.evaluate import match
from pixveil.platedet.targets import make_targets


def _quad(cx: float, cy: float, w: float, h: float, tilt: float = 0.0) -> np.ndarray:
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float32)
    c, s = np.cos(tilt), np.sin(tilt)
    return pts @ np.array([[c, s], [-s, c]], np.float32) + np.array([cx, cy], np.float32)


class TestTargets:
    def test_shapes_and_peak(self) -> None:
        q = _quad(60, 40, 80, 20)[None]
        heat, reg, w = make_targets(q, 96, 128)
        assert heat.shape == (24, 32) and reg.shape == (10, 24, 32) and w.shape == (24, 32)
        assert heat.max() == 1.0
        i, j = np.unravel_index(heat.argmax(), heat.shape)
        assert abs((j + 0.5) * 4 - 60) <= 2 and abs((i + 0.5) * 4 - 40) <= 2
        assert w[i, j] == 1.0

    def test_empty(self) -> None:
        heat, _, w = make_targets(np.zeros((0, 4, 2)), 64, 64)
        assert heat.max() == 0 and w.max() == 0

    def test_rejects_unaligned(self) -> None:
        with pytest.raises(ValueError, match="multiples"):
            make_targets(np.zeros((0, 4, 2)), 65, 64)

    @pytest.mark.parametrize("tilt", [0.0, 0.2, -0.3])
    def test_round_trip(self, tilt: float) -> None:
        quads = np.stack([_quad(70, 50, 90, 22, tilt), _quad(200, 130, 40, 20, -tilt)])
        heat, reg, _ = make_targets(quads, 192, 256)
        maps = np.concatenate([heat[None], reg])
        got, scores = decode(maps, threshold=0.9)
        assert len(got) == 2 and (scores == 1.0).all()
        order = np.argsort(got[:, 0, 0])
        np.testing.assert_allclose(got[order], quads, atol=1e-3)


class TestNms:
    def test_drops_duplicates(self) -> None:
        q = np.stack([_quad(50, 50, 60, 20), _quad(51, 50, 60, 20), _quad(150, 50, 60, 20)])
        keep = nms(q, np.array([0.9, 0.8, 0.7]))
        assert list(keep) == [0, 2]

    def test_drops_contained(self) -> None:
        q = np.stack([_quad(50, 50, 100, 40), _quad(50, 50, 30, 10)])
        assert list(nms(q, np.array([0.9, 0.8]))) == [0]


class TestMatch:
    def test_iou_and_cover(self) -> None:
        gt = np.array([[0, 0, 100, 20], [200, 0, 300, 20]], float)
        det = np.array([[5, 0, 100, 20], [190, -10, 330, 40], [500, 500, 510, 510]], float)
        found, fps = match(det, gt)
        assert found.tolist() == [True, True] and fps == 1

    def test_empty(self) -> None:
        found, fps = match(np.zeros((0, 4)), np.array([[0, 0, 1, 1]]))
        assert found.tolist() == [False] and fps == 0
        found, fps = match(np.array([[0, 0, 1, 1]]), np.zeros((0, 4)))
        assert found.size == 0 and fps == 1


class TestScore:
    def test_threshold_and_counts(self) -> None:
        from pixveil.platedet.evaluate import score
        from pixveil.types import Region

        gt = [np.array([[0, 0, 100, 20]], float), np.array([[0, 0, 50, 10]], float)]
        dets = [
            [
                Region((0, 0, 100, 20), kind="plate", score=0.9),
                Region((200, 0, 260, 20), kind="plate", score=0.2),
            ],
            [Region((0, 0, 50, 10), kind="plate", score=0.4)],
        ]
        low = score(dets, gt, threshold=0.1, megapixels=2.0)
        assert (
            low["recall"] == 1.0 and low["false_positives"] == 1 and low["fp_per_megapixel"] == 0.5
        )
        high = score(dets, gt, threshold=0.5)
        assert high["found"] == 1 and high["missed"] == [1] and high["fp_per_image"] == 0.0
