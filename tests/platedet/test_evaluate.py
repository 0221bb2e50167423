"""Scoring plate detections: the matching rule and the reviewed unannotated plates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixveil.platedet.data import load_photos, load_unannotated
from pixveil.platedet.decode import box_iou
from pixveil.platedet.evaluate import evaluate_photos, match, score
from pixveil.types import Region

REPO = Path(__file__).resolve().parents[2]
UNANNOTATED = REPO / "bench" / "plate_unannotated.json"
PLATES = (REPO / ".." / "shared" / "data" / "plates").resolve()
needs_plates = pytest.mark.skipif(not PLATES.is_dir(), reason="no ../shared/data/plates")

GT = np.array([[100.0, 100.0, 200.0, 130.0]])
OTHER = np.array([[400.0, 50.0, 460.0, 68.0]])


def _region(box: list[float], score_: float = 0.9) -> Region:
    return Region(box=tuple(box), kind="plate", score=score_)


class TestMatch:
    def test_found_and_false_positives(self) -> None:
        det = np.array([[102.0, 101.0, 198.0, 131.0], [10.0, 10.0, 60.0, 30.0]])
        found, fp = match(det, GT)
        assert found.tolist() == [True] and fp == 1

    def test_covering_box_finds(self) -> None:
        # IoU under 0.5 but the plate is wholly inside: found (the blur covers it)
        found, fp = match(np.array([[60.0, 60.0, 260.0, 180.0]]), GT)
        assert found.tolist() == [True] and fp == 0

    def test_part_of_plate_is_a_false_positive(self) -> None:
        found, fp = match(np.array([[100.0, 100.0, 140.0, 130.0]]), GT)
        assert found.tolist() == [False] and fp == 1

    def test_no_truth(self) -> None:
        found, fp = match(np.array([[0.0, 0.0, 5.0, 5.0]]), np.zeros((0, 4)))
        assert found.shape == (0,) and fp == 1

    def test_detection_on_an_unannotated_plate_is_not_a_false_positive(self) -> None:
        det = np.array([[401.0, 51.0, 459.0, 69.0]])
        assert match(det, GT)[1] == 1
        found, fp = match(det, GT, OTHER)
        assert found.tolist() == [False] and fp == 0

    def test_near_miss_of_an_unannotated_plate_still_counts(self) -> None:
        # a box over a third of the other plate finds nothing: still a false positive
        det = np.array([[400.0, 50.0, 420.0, 68.0]])
        assert match(det, GT, OTHER)[1] == 1

    def test_unannotated_plates_are_never_hits(self) -> None:
        found, fp = match(np.array([[401.0, 51.0, 459.0, 69.0]]), np.zeros((0, 4)), OTHER)
        assert found.shape == (0,) and fp == 0

    def test_score_takes_ignores(self) -> None:
        regions = [[_region([102, 101, 198, 131]), _region([401, 51, 459, 69], 0.7)]]
        plain = score(regions, [GT])
        fair = score(regions, [GT], ignores=[OTHER])
        assert plain["false_positives"] == 1 and fair["false_positives"] == 0
        assert plain["recall"] == fair["recall"] == 1.0
        assert score(regions, [GT], threshold=0.8, ignores=[OTHER])["false_positives"] == 0


class TestUnannotatedFile:
    def test_parses_only_the_counted_plates(self) -> None:
        table = load_unannotated(UNANNOTATED)
        raw = json.loads(UNANNOTATED.read_text())
        assert sum(map(len, table.values())) == len(raw["plates"]) > 0
        doubtful = {e["photo"] for e in raw["not_counted"]["doubtful"]}
        for entry in raw["not_counted"]["doubtful"]:
            boxes = table.get(entry["photo"], [])
            assert tuple(entry["box"]) not in boxes
        assert doubtful  # the file keeps its doubtful boxes apart

    @pytest.mark.parametrize("text", ["{", '{"plates": [{"photo": "a.jpg"}]}', "[]"])
    def test_rejects_other_files(self, tmp_path: Path, text: str) -> None:
        p = tmp_path / "x.json"
        p.write_text(text)
        with pytest.raises(ValueError, match="not a list of unannotated plates"):
            load_unannotated(p)

    @needs_plates
    def test_boxes_are_other_plates_inside_their_photos(self) -> None:
        import cv2

        table = load_unannotated(UNANNOTATED)
        photos = {
            f"{p.region}/{p.path.name}": p
            for r in ("eu", "us")
            for p in load_photos(PLATES, r, unannotated=table)
        }
        for key, boxes in table.items():
            p = photos[key]
            h, w = cv2.imread(str(p.path)).shape[:2]
            assert p.others == tuple(boxes)
            for b in boxes:
                assert 0 <= b[0] < b[2] <= w + 1 and 0 <= b[1] < b[3] <= h + 1
                # another car's plate: no overlap with the annotated one
                assert box_iou(np.array([b]), np.array([p.box]))[0, 0] == 0

    @needs_plates
    def test_evaluate_photos_does_not_count_them(self) -> None:
        from dataclasses import replace

        from pixveil.platedet.data import LabelledPhoto

        table = load_unannotated(UNANNOTATED)
        photos = [p for p in load_photos(PLATES, "us", unannotated=table) if p.others][:3]
        assert photos

        class Oracle:
            """Finds the annotated plate and every unannotated one of ``photo``."""

            def __init__(self, photo: LabelledPhoto) -> None:
                self.photo = photo

            def detect(self, image: np.ndarray) -> list[Region]:
                boxes = [self.photo.box, *self.photo.others]
                return [_region(list(b)) for b in boxes]

        for p in photos:
            r = evaluate_photos(Oracle(p), [p])
            assert r["recall"] == 1.0 and r["fp_per_image"] == 0
            bare = replace(p, others=())
            assert evaluate_photos(Oracle(p), [bare])["fp_per_image"] == len(p.others)
