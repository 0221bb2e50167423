"""Tests of the face-proposal network and the cascade that uses it."""

from __future__ import annotations

import hashlib
import json
import random
import shutil

import cv2
import numpy as np
import pytest

from pixveil import _onnx
from pixveil.detect import face_proposals, faces
from pixveil.detect.face_proposals import CELL, MODEL_CARD, ProposalNet
from pixveil.detect.faces import FaceDetector
from pixveil.errors import DetectionError, ModelError

from .test_faces import background, counting, covers, face_crop, paste_face


@pytest.fixture(scope="module")
def net() -> ProposalNet:
    return ProposalNet()


class TestModel:
    def test_card_checksum_matches_the_shipped_file(self):
        card = json.loads(MODEL_CARD.read_text())
        onnx_file = MODEL_CARD.parent / card["files"]["onnx"]["name"]
        assert hashlib.sha256(onnx_file.read_bytes()).hexdigest() == card["files"]["onnx"]["sha256"]
        assert onnx_file.stat().st_size < 1_000_000
        assert card["format"]["cell"] == CELL

    def test_replaced_file_is_a_model_error(self, tmp_path, monkeypatch):
        monkeypatch.setattr(_onnx, "_cache", {})
        card = tmp_path / MODEL_CARD.name
        shutil.copy(MODEL_CARD, card)
        name = json.loads(card.read_text())["files"]["onnx"]["name"]
        data = bytearray((MODEL_CARD.parent / name).read_bytes())
        data[-1] ^= 1
        (tmp_path / name).write_bytes(bytes(data))
        with pytest.raises(ModelError, match="SHA-256"):
            ProposalNet(card=card)

    def test_missing_file_is_a_model_error(self, tmp_path):
        with pytest.raises(ModelError, match="face-proposal"):
            ProposalNet(card=tmp_path / "none.json")

    @pytest.mark.parametrize(("h", "w"), [(64, 96), (70, 100), (17, 33), (480, 640)])
    def test_one_probability_per_cell(self, net, h, w):
        prob = net(background(h, w))
        assert prob.shape == (-(-h // CELL), -(-w // CELL))
        assert prob.dtype == np.float32 and prob.min() >= 0 and prob.max() <= 1

    def test_given_half_is_what_it_would_compute(self, net):
        img = background(70, 100)
        half = net.halve(img)
        assert half.shape == (40, 56, 3)
        np.testing.assert_array_equal(net(img, half=half), net(img))
        with pytest.raises(DetectionError, match="half-resolution"):
            net(img, half=half[:-1])


class TestProposals:
    def test_fires_on_small_faces_not_on_background(self, net, astronaut):
        from skimage import data

        canvas = cv2.resize(data.rocket(), (1280, 960), interpolation=cv2.INTER_CUBIC)
        crop = face_crop(astronaut)
        centres = [
            paste_face(canvas, crop, w, x, y)
            for w, x, y in [(20, 100, 100), (28, 600, 200), (36, 1000, 700), (48, 300, 600)]
        ]
        prob = net(canvas)
        on = prob >= faces.NET_PROPOSAL_THRESHOLD
        for cx, cy in centres:
            i, j = int(cy // CELL), int(cx // CELL)
            assert on[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2].any(), (cx, cy)
        # a few cells around four faces and some of the photo (about 5 %), not the frame
        assert on.mean() < 0.1
        empty = net(cv2.resize(data.coffee(), (1280, 960), interpolation=cv2.INTER_CUBIC))
        assert (empty >= faces.NET_PROPOSAL_THRESHOLD).mean() < 0.1


class TestNetworkCascade:
    """mode="cascade", proposer="network"."""

    @staticmethod
    def scene(astronaut: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """A 3000 x 2000 photo (scikit-image's rocket, scaled up) with one large, two
        medium and five small faces."""
        from skimage import data

        canvas = cv2.resize(data.rocket(), (3000, 2000), interpolation=cv2.INTER_CUBIC)
        crop = face_crop(astronaut)
        centres = [
            paste_face(canvas, crop, 320, 100, 1300),
            paste_face(canvas, crop, 90, 1900, 300),
            paste_face(canvas, crop, 60, 900, 1700),
            *(paste_face(canvas, crop, w, x, y) for w, x, y in [
                (24, 2500, 1800), (28, 400, 200), (32, 1500, 1000), (26, 2900, 40),
                (40, 2200, 1200),
            ]),
        ]  # fmt: skip
        return canvas, centres

    def test_defaults(self):
        det = FaceDetector(mode="cascade", proposer="network")
        assert det.coarse == 1024 and det.proposal_threshold == faces.NET_PROPOSAL_THRESHOLD
        assert "proposer='network'" in repr(det)
        assert FaceDetector(mode="cascade").proposer == "network"
        assert FaceDetector(mode="cascade", proposer="heatmap").coarse == 2048

    def test_same_faces_as_exhaustive_for_less_work(self, astronaut, monkeypatch):
        canvas, centres = self.scene(astronaut)
        cascade = FaceDetector(mode="cascade", proposer="network")
        exhaustive = FaceDetector(mode="exhaustive")
        work_c = counting(cascade, monkeypatch)
        work_e = counting(exhaustive, monkeypatch)
        got_c = cascade.detect(canvas)
        got_e = exhaustive.detect(canvas)
        for c in centres:
            assert any(covers(r.box, c) for r in got_e), c
            assert any(covers(r.box, c) for r in got_c), c
        for e in got_e:  # the benches' rule: IoU >= 0.3 or the centre inside a box
            centre = ((e.box[0] + e.box[2]) / 2, (e.box[1] + e.box[3]) / 2)
            assert any(e.iou(r.box) >= 0.3 or covers(r.box, centre) for r in got_c), e.box
        assert work_c[0] <= 1024 * 704  # the coarse pass
        assert sum(work_c) < 0.35 * sum(work_e)  # about 0.3 (its windows: 3 % of the cells)

    def test_windows_run_concurrently_with_the_same_result(self, astronaut, monkeypatch):
        import threading

        canvas, _ = self.scene(astronaut)
        one = FaceDetector(mode="cascade", proposer="network", threads=1)
        two = FaceDetector(mode="cascade", proposer="network", threads=2)
        names: set[str] = set()
        run = two._run

        def recorded(blob: np.ndarray, session: object = None) -> list[np.ndarray]:
            names.add(threading.current_thread().name)
            return run(blob, session)

        monkeypatch.setattr(two, "_run", recorded)
        b1, s1, _ = one.detect_arrays(canvas)
        b2, s2, _ = two.detect_arrays(canvas)
        assert len(b1) >= 7
        np.testing.assert_allclose(b2, b1, atol=0.5)
        np.testing.assert_allclose(s2, s1, atol=1e-3)
        assert sum(n.startswith("pixveil-face") for n in names) >= 2  # windows: two workers

    def test_images_that_fit_one_pass_run_it(self, astronaut, monkeypatch):
        det = FaceDetector(mode="cascade", proposer="network")
        work = counting(det, monkeypatch)
        img = cv2.resize(astronaut, (1280, 1280))
        assert len(det.detect(img)) == 1
        assert work == [1280 * 1280]

    def test_failure_of_the_network_is_a_detection_error(self, astronaut, monkeypatch):
        canvas, _ = self.scene(astronaut)
        det = FaceDetector(mode="cascade", proposer="network")

        class Broken:
            def run(self, *args: object, **kwargs: object) -> object:
                raise RuntimeError("boom")

        monkeypatch.setattr(det._proposals, "_session", Broken())
        with pytest.raises(DetectionError, match="face-proposal"):
            det.detect(canvas)

    def test_malformed_output_is_a_detection_error(self, astronaut, monkeypatch):
        canvas, _ = self.scene(astronaut)
        det = FaceDetector(mode="cascade", proposer="network")

        class NaN:
            def run(self, outputs: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
                _, _, h, w = feed["image"].shape
                return [np.full((1, 1, h // 8, w // 8), np.nan, np.float32)]

        monkeypatch.setattr(det._proposals, "_session", NaN())
        with pytest.raises(DetectionError, match="malformed"):
            det.detect(canvas)

    def test_bad_proposer(self):
        with pytest.raises(ValueError, match="proposer"):
            FaceDetector(proposer="magic")

    def test_module_names_its_model(self):
        assert face_proposals.MODEL_CARD.name == "face_proposals.json"


@pytest.mark.shared
def test_finds_what_exhaustive_finds_on_a_street_scene(shared_data):
    """LFW faces of 14-45 px on a street photo scaled to 12 MP (not a bench seed)."""
    from pixveil.io import read_image

    rng = random.Random(12345)
    photos = sorted((shared_data / "plates" / "eu").glob("*.jpg"))
    people = sorted(p for p in (shared_data / "lfw").iterdir() if p.is_dir())
    scene = cv2.resize(read_image(rng.choice(photos)).pixels, (4000, 3000), cv2.INTER_CUBIC)
    for k, person in enumerate(rng.sample(people, 12)):
        head = read_image(sorted(person.glob("*.jpg"))[-1]).pixels[50:210, 55:195]
        w = 22 + 5 * k
        h = round(w * 160 / 140)
        x, y = 300 + (k % 4) * 900, 400 + (k // 4) * 900
        scene[y : y + h, x : x + w] = cv2.resize(head, (w, h), interpolation=cv2.INTER_AREA)
    ref = FaceDetector(mode="exhaustive").detect(scene)
    got = FaceDetector(mode="cascade", proposer="network").detect(scene)
    assert len(ref) >= 10
    for r in ref:
        cx, cy = (r.box[0] + r.box[2]) / 2, (r.box[1] + r.box[3]) / 2
        assert any(covers(g.box, (cx, cy)) for g in got), r.box


def test_parts_of_known_faces_are_dropped():
    known = np.array([[100, 100, 300, 320]], np.float32)  # a large face of the coarse pass
    boxes = np.array(
        [
            [120, 250, 170, 300],  # part of it (chin), inside: dropped
            [280, 150, 330, 200],  # half inside: kept
            [400, 100, 440, 150],  # another face: kept
            [110, 110, 290, 310],  # the same face, about as wide: kept (NMS decides)
        ],
        np.float32,
    )
    scores = np.array([0.3, 0.4, 0.9, 0.8], np.float32)
    lms = np.zeros((4, 5, 2), np.float32)
    kept, kept_scores, kept_lms = faces._drop_parts((boxes, scores, lms), known)
    np.testing.assert_array_equal(kept, boxes[1:])
    np.testing.assert_array_equal(kept_scores, scores[1:])
    assert kept_lms.shape == (3, 5, 2)
    same = faces._drop_parts((boxes, scores, lms), np.zeros((0, 4), np.float32))
    assert len(same[0]) == 4
