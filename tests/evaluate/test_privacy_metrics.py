"""Privacy measurements: the re-identification protocol and detection checks."""

from __future__ import annotations

import numpy as np
import pytest

from pixveil.evaluate.privacy import (
    ReidProtocol,
    box_iou,
    detection_rate,
    matches_reference,
)


class TestDetection:
    def test_box_iou(self) -> None:
        assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
        assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
        assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0

    def test_matches_reference(self) -> None:
        ref = (0.0, 0.0, 10.0, 10.0)
        assert matches_reference([(5, 0, 15, 10)], ref)  # IoU 1/3 >= 0.3
        assert not matches_reference([(5, 0, 15, 10)], ref, min_iou=0.5)
        assert not matches_reference([], ref)
        with pytest.raises(ValueError, match="min_iou"):
            matches_reference([], ref, min_iou=0)

    def test_detection_rate(self) -> None:
        assert detection_rate([True, False, None, True]) == pytest.approx(2 / 3)
        assert detection_rate([None, None]) is None


def _emb(*values: float) -> np.ndarray:
    out = np.zeros(4)
    out[: len(values)] = values
    return out


# ann: images 0, 1, 2; bob: 3, 4.  Image 0 has no dlib face.
IDS = ("ann", "ann", "ann", "bob", "bob")
EMB = (None, _emb(1), _emb(1, 0.1), _emb(0, 1), _emb(0, 1, 0.2))


class TestReidProtocol:
    def test_gallery_and_probes(self) -> None:
        p = ReidProtocol.build(IDS, EMB)
        assert p.gallery == (1, 3)  # first image with a face, per identity
        assert p.probes == (2, 4)
        assert any("1 of 5 originals" in n for n in p.notes)

    def test_baseline(self) -> None:
        s = ReidProtocol.build(IDS, EMB).score()
        assert (s.rank1, s.verification, s.false_accept, s.same_photo) == (1.0, 1.0, 0.0, 1.0)
        assert s.chance_rank1 == 0.5 and s.n_probes == 2 and s.n_gallery == 2

    def test_protected_probes(self) -> None:
        p = ReidProtocol.build(IDS, EMB)
        # ann's probe moves onto bob (misidentified, a false accept, not verified);
        # bob's probe moves 0.5 away from bob's enrolment (identified, verified).
        s = p.score({2: _emb(0, 1), 4: _emb(0, 1, 0.5)})
        assert s.rank1 == 0.5
        assert s.verification == 0.5
        assert s.false_accept == 0.5  # 1 of the 2 impostor pairs
        # same photo: ann's probe is sqrt(1 + 0.81) from its original; bob's 0.3
        assert s.same_photo == 0.5

    def test_missing_probe_embedding(self) -> None:
        p = ReidProtocol.build(IDS, EMB)
        with pytest.raises(ValueError, match="no protected embedding"):
            p.score({2: _emb(1)})

    def test_flat_folder_measures_same_photo_only(self) -> None:
        p = ReidProtocol.build([None, None, None], [_emb(1), None, _emb(0, 1)])
        assert p.gallery == () and p.probes == (0, 2)
        s = p.score({0: _emb(1, 0.7), 2: _emb(0, 1)})
        assert s.rank1 is None and s.verification is None and s.chance_rank1 is None
        assert s.same_photo == 0.5
        assert any("flat folder" in n for n in p.notes)

    def test_single_photo_identities(self) -> None:
        p = ReidProtocol.build(["a", "b"], [_emb(1), _emb(0, 1)])
        assert p.probes == ()
        s = p.score()
        assert s.rank1 is None and s.n_gallery == 2
        assert any("second photo" in n for n in p.notes)

    def test_errors(self) -> None:
        with pytest.raises(ValueError, match="same length"):
            ReidProtocol.build(["a"], [])
        with pytest.raises(ValueError, match="every image has an identity"):
            ReidProtocol.build(["a", None], [_emb(1), _emb(1)])
        with pytest.raises(ValueError, match="threshold"):
            ReidProtocol.build(["a"], [_emb(1)], threshold=0)


class TestHogFaceCheck:
    def test_face_found_until_masked(self, astronaut: np.ndarray) -> None:
        pytest.importorskip("dlib")
        from pixveil.evaluate.privacy import HogFaceCheck
        from pixveil.evaluate.reid import get_face_encoder

        box = get_face_encoder().locate_central(astronaut)
        assert box is not None
        check = HogFaceCheck()
        assert check.found(astronaut, box)
        covered = astronaut.copy()
        x0, y0, x1, y1 = (round(v) for v in box)
        covered[y0:y1, x0:x1] = 0
        assert not check.found(covered, box)
        # a face elsewhere does not count for this reference
        assert not check.found(astronaut, (0.0, 0.0, 60.0, 60.0))

    def test_options_are_validated(self) -> None:
        pytest.importorskip("dlib")
        from pixveil.evaluate.privacy import HogFaceCheck

        with pytest.raises(ValueError, match="face_size"):
            HogFaceCheck(face_size=40)
        with pytest.raises(ValueError, match="context"):
            HogFaceCheck(context=1.0)
