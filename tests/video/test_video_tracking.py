"""pixveil.video.tracking: track ids for every detection, look-ahead regions for every frame."""

from __future__ import annotations

import numpy as np
import pytest

from pixveil.types import Region
from pixveil.video.tracking import TRACKERS, DetectionTracker, Lookahead, make_tracker


def _face(x: float, y: float, w: float = 40.0, score: float = 0.9) -> Region:
    lm = np.array(
        [[x + 12, y + 15], [x + 28, y + 15], [x + 20, y + 25], [x + 14, y + 32], [x + 26, y + 32]]
    )
    return Region((x, y, x + w, y + w * 1.2), "face", score, landmarks=lm)


class TestLookahead:
    def test_detected_frames_keep_their_box_on_steady_motion(self) -> None:
        look = Lookahead(smooth=2)
        for i in range(10):
            look.add(i, [(1, _face(10.0 + 5 * i, 20.0))])
        # a symmetric moving average does not lag behind a steady motion
        (got,) = look.regions(5)
        assert got.source == "detected" and got.track == 1
        assert got.region.box == pytest.approx(_face(35.0, 20.0).box)
        assert got.region.landmarks == pytest.approx(_face(35.0, 20.0).landmarks)

    def test_smoothing_damps_jitter(self) -> None:
        look = Lookahead(smooth=1)
        for i, dx in enumerate([0, 6, 0, 6, 0]):
            look.add(i, [(1, _face(100.0 + dx, 50.0))])
        assert look.regions(1)[0].region.box[0] == pytest.approx(102.0)

    def test_gaps_are_interpolated(self) -> None:
        look = Lookahead(detect_every=3, smooth=0)
        look.add(0, [(1, _face(0.0, 0.0))])
        look.add(3, [(1, _face(30.0, 0.0))])
        (r1,) = look.regions(1)
        (r2,) = look.regions(2)
        assert r1.source == r2.source == "interpolated"
        assert r1.region.box[0] == pytest.approx(10.0) and r2.region.box[0] == pytest.approx(20.0)
        assert r2.region.landmarks[0, 0] == pytest.approx(32.0)

    def test_tracks_are_padded_before_and_after(self) -> None:
        look = Lookahead(pad=3, detect_every=1, smooth=0)
        for i in range(10, 15):
            look.add(i, [(7, _face(100.0 + 2 * i, 50.0))])
        look.seen_until(40)
        covered = [f for f in range(40) if look.regions(f)]
        assert covered == list(range(7, 18))
        before, after = look.regions(7)[0], look.regions(17)[0]
        assert before.source == after.source == "extended"
        # continued at the track's velocity, and grown
        first, last = _face(120.0, 50.0), _face(128.0, 50.0)
        assert before.region.center[0] == pytest.approx(first.center[0] - 6)
        assert after.region.center[0] == pytest.approx(last.center[0] + 6)
        assert before.region.width > first.width

    def test_extension_never_shrinks_a_growing_face(self) -> None:
        # a face seen growing 10 px a frame (a zoom), extended 6 frames backwards:
        # extrapolating its size would make it vanish; the size holds and grows
        look = Lookahead(pad=6, detect_every=1, smooth=0)
        for i in (10, 11):
            look.add(i, [(3, _face(100.0, 50.0, w=40.0 + 10 * (i - 10)))])
        look.seen_until(30)
        (early,) = look.regions(4)
        assert early.source == "extended"
        assert early.region.width >= 40.0 and early.region.height >= 48.0
        assert early.region.center[0] == pytest.approx(_face(100.0, 50.0).center[0] - 30)

    def test_padding_grows_with_detect_every(self) -> None:
        look = Lookahead(pad=2, detect_every=4, smooth=0)
        look.add(8, [(1, _face(0.0, 0.0))])
        look.seen_until(30)
        assert [f for f in range(30) if look.regions(f)] == list(range(3, 14))

    def test_long_gap_is_not_interpolated(self) -> None:
        look = Lookahead(pad=1, max_gap=4, smooth=0)
        look.add(0, [(1, _face(0.0, 0.0))])
        look.seen_until(9)
        look.add(10, [(1, _face(200.0, 0.0))])
        covered = [f for f in range(11) if look.regions(f)]
        assert covered == [0, 1, 9, 10]

    def test_ready_waits_for_the_horizon(self) -> None:
        look = Lookahead(pad=2, detect_every=3, max_gap=6)
        assert look.horizon == 6
        look.add(0, [])
        look.seen_until(5)
        assert not look.ready(0)
        look.add(6, [])
        assert look.ready(0) and not look.ready(1)
        assert look.ready(5, end=True)

    def test_prune_forgets_old_tracks(self) -> None:
        look = Lookahead(max_gap=4, smooth=0)
        look.add(0, [(1, _face(0.0, 0.0))])
        look.seen_until(50)
        look.prune(50)
        assert look.observation_frames(1) == []

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="detect_every"):
            Lookahead(detect_every=0)
        with pytest.raises(ValueError, match="pad"):
            Lookahead(pad=-1)
        with pytest.raises(ValueError, match="increasing"):
            look = Lookahead()
            look.add(3, [])
            look.add(3, [])


class TestDetectionTracker:
    @pytest.mark.parametrize("name", TRACKERS)
    def test_every_detection_gets_an_id(self, name: str) -> None:
        tr = DetectionTracker(name, frame_rate=30, max_gap_frames=10)
        for i in range(6):
            got = tr.update([_face(10.0 + 3 * i, 10.0), _face(300.0, 200.0 - 2 * i)], i / 30)
            assert len(got) == 2 and all(tid >= 1 for tid, _ in got)
            assert len({tid for tid, _ in got}) == 2

    def test_first_detection_joins_its_track(self) -> None:
        tr = DetectionTracker(frame_rate=30, max_gap_frames=10)
        ids = [tr.update([_face(50.0 + 2 * i, 40.0)], i / 30)[0][0] for i in range(5)]
        assert len(set(ids)) == 1

    def test_fast_face_seen_every_fifth_frame_keeps_one_track(self) -> None:
        tr = DetectionTracker(frame_rate=30, max_gap_frames=15)
        # 12 px per frame: 60 px (1.5 widths) between detections, boxes never overlap
        ids = [tr.update([_face(12.0 * i, 40.0)], i / 30)[0][0] for i in range(0, 60, 5)]
        assert len(set(ids)) == 1

    def test_kinds_are_tracked_apart(self) -> None:
        tr = DetectionTracker(frame_rate=30, max_gap_frames=10)
        plate = Region((10, 10, 50, 48), "plate", 0.9)
        for i in range(3):
            got = tr.update([_face(10.0, 10.0), plate], i / 30)
        assert len({tid for tid, _ in got}) == 2

    def test_frames_searched_for_faces_only_leave_plate_tracks_alone(self) -> None:
        # plates found one frame in 20, faces searched in every frame between
        # (tracked windows): the plate keeps its track across the face-only frames
        def run(kinds: tuple[str, ...] | None) -> set[int]:
            tr = DetectionTracker(frame_rate=30, max_gap_frames=25)
            ids = set()
            for i in range(61):
                face = _face(10.0 + i, 10.0)
                if i % 20 == 0:
                    plate = Region((300 + i, 200, 380 + i, 230), "plate", 0.9)
                    ids |= {t for t, r in tr.update([face, plate], i / 30) if r.kind == "plate"}
                else:
                    tr.update([face], i / 30, kinds=kinds)
            return ids

        assert len(run(("face",))) == 1
        # told that no plate was there in 19 frames out of 20, the tracker drops it
        assert len(run(None)) > 1

    def test_reset_ends_every_track(self) -> None:
        tr = DetectionTracker(frame_rate=30, max_gap_frames=10)
        before = {tid for i in range(3) for tid, _ in tr.update([_face(50.0, 40.0)], i / 30)}
        tr.reset()
        after = {tid for i in range(3, 6) for tid, _ in tr.update([_face(50.0, 40.0)], i / 30)}
        assert len(before) == len(after) == 1 and not before & after

    def test_region_of_a_kind_not_searched_is_an_error(self) -> None:
        tr = DetectionTracker(frame_rate=30, max_gap_frames=10)
        plate = Region((10, 10, 50, 48), "plate", 0.9)
        with pytest.raises(ValueError, match="plate"):
            tr.update([plate], 0.0, kinds=("face",))

    def test_unknown_tracker(self) -> None:
        with pytest.raises(ValueError, match="tracker must be one of"):
            make_tracker("deepsort", frame_rate=30, max_gap_frames=5)
