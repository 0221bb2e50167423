"""pixveil.video: the iterator API and process_video on generated clips with real detections."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pixveil.config import AnonymizeConfig
from pixveil.errors import DetectionError, InputError
from pixveil.io.video import open_video, probe_video
from pixveil.pipeline import Anonymizer
from pixveil.video import FrameResult, anonymize_video, process_video
from pixveil.video.metrics import coverage, protected_mask

av = pytest.importorskip("av")

N = 30


@pytest.fixture(scope="module")
def anonymizer() -> Anonymizer:
    return Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu", seed=0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, kit) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "two_faces.mp4"
    return kit.encode_clip(
        path, kit.frames(n=N), metadata={"creation_time": "2022-01-01T00:00:00Z"}
    )


@pytest.fixture(scope="module")
def decoded(clip: Path) -> list[np.ndarray]:
    with open_video(clip) as reader:
        return [f.pixels for f in reader]


@pytest.fixture(scope="module")
def reference(anonymizer: Anonymizer, decoded: list[np.ndarray]) -> list[list]:
    """Every-frame detections at full resolution."""
    return [[r.box for r in anonymizer.detect(img)] for img in decoded]


@pytest.fixture(scope="module")
def runs(anonymizer: Anonymizer, clip: Path) -> dict[int, list[FrameResult]]:
    # full detections only: one frame in k, the others covered by tracking
    return {
        k: list(anonymize_video(clip, anonymizer=anonymizer, detect_every=k, track_every=0))
        for k in (1, 3)
    }


class TestAnonymizeVideo:
    @pytest.mark.parametrize("k", [1, 3])
    def test_every_face_frame_is_covered(self, runs, reference, k: int) -> None:
        assert sum(len(r) for r in reference) >= 2 * N - 4  # the clip shows two faces
        got = coverage(reference, [[t.region for t in r.regions] for r in runs[k]], (640, 360))
        assert got.rate >= 0.995, got

    @pytest.mark.parametrize("k", [1, 3])
    def test_two_faces_two_tracks(self, runs, k: int) -> None:
        tracks = {t for r in runs[k] for t in r.tracks}
        assert len(tracks) == 2

    def test_frames_in_order_with_their_detections(self, runs) -> None:
        res = runs[3]
        assert [r.index for r in res] == list(range(N))
        assert [r.detected for r in res] == [i % 3 == 0 for i in range(N)]
        assert all(r.frame.time == pytest.approx(r.index / 30) for r in res)

    def test_pixels_outside_the_regions_unchanged(self, runs, decoded) -> None:
        for r, orig in zip(runs[1], decoded, strict=True):
            mask = protected_mask([t.region for t in r.regions], (640, 360))
            assert np.array_equal(r.pixels[~mask], orig[~mask])
            assert not np.array_equal(r.pixels[mask], orig[mask])

    def test_regions_follow_the_track_without_jumps(self, runs) -> None:
        by_track: dict[int, list[tuple[float, float]]] = {}
        for r in runs[3]:
            for t in r.regions:
                by_track.setdefault(t.track, []).append(t.region.center)
        for centres in by_track.values():
            steps = [np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(centres)]
            assert max(steps) < 25  # the faces move about 13 px per frame

    def test_arrays_in(self, anonymizer, decoded) -> None:
        res = list(anonymize_video(iter(decoded[:6]), anonymizer=anonymizer, frame_rate=25))
        assert len(res) == 6 and res[5].frame.time == pytest.approx(0.2)
        assert all(r.regions for r in res)

    def test_validation(self, anonymizer) -> None:
        with pytest.raises(ValueError, match="detect_every"):
            next(anonymize_video([], anonymizer=anonymizer, detect_every=0))
        with pytest.raises(ValueError, match="noise"):
            next(anonymize_video([], anonymizer=anonymizer, noise="pixel"))


class TestProcessVideo:
    def test_writes_protected_copy(self, anonymizer, clip: Path, tmp_path: Path, kit) -> None:
        seen: list[int] = []
        out = process_video(
            clip,
            tmp_path / "o" / "clip.mp4",
            anonymizer=anonymizer,
            detect_every=3,
            root=tmp_path / "o",
            progress=lambda done, total: seen.append(done),
        )
        assert out.output == tmp_path / "o" / "clip.mp4"
        assert out.frames == N and out.detected_frames == 10 and seen == list(range(1, N + 1))
        assert out.tracks == {"face": 2} and out.regions["face"] >= 2 * N - 4
        assert out.audio_streams == 1 and out.fps > 0
        assert kit.audio_packets(out.output) == kit.audio_packets(clip)
        info = probe_video(out.output)
        assert info.n_frames == N and (info.width, info.height) == (640, 360)
        with av.open(str(out.output)) as c:
            assert "creation_time" not in c.metadata
        assert out.to_dict()["tracks"] == {"face": 2}

    def test_no_audio(self, anonymizer, clip: Path, tmp_path: Path) -> None:
        out = process_video(
            clip, tmp_path / "a.mkv", anonymizer=anonymizer, detect_every=5, audio=False
        )
        assert not probe_video(out.output).has_audio and out.audio_streams == 0

    def test_fails_closed_when_a_frame_fails(self, clip: Path, tmp_path: Path, monkeypatch) -> None:
        an = Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu"))
        calls = itertools.count()
        real = an.detect

        def detect(pixels, **kw):
            if next(calls) == 2:  # the third full detection (frame 16 of 30)
                raise DetectionError("the face detector failed")
            return real(pixels, **kw)

        monkeypatch.setattr(an, "detect", detect)
        with pytest.raises(DetectionError):
            process_video(clip, tmp_path / "x.mp4", anonymizer=an)
        assert list(tmp_path.iterdir()) == []

    def test_bad_input_writes_nothing(self, anonymizer, tmp_path: Path) -> None:
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(b"\x00" * 1000)
        with pytest.raises(InputError, match=str(bad)):
            process_video(bad, tmp_path / "out" / "bad.mp4", anonymizer=anonymizer)
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []

    def test_dry_run_writes_nothing(self, clip: Path, tmp_path: Path) -> None:
        cfg = AnonymizeConfig(targets=("faces",), device="cpu", dry_run=True)
        out = process_video(clip, tmp_path / "d.mp4", cfg, detect_every=3)
        assert out.output is None and out.frames == N and out.tracks == {"face": 2}
        assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tracked(anonymizer: Anonymizer, clip: Path) -> list[FrameResult]:
    """Full detection on one frame in 6, the tracked faces searched again in every other."""
    return list(anonymize_video(clip, anonymizer=anonymizer, detect_every=6, track_every=1))


class TestTrackedWindows:
    def test_every_face_frame_is_covered(self, tracked, reference) -> None:
        got = coverage(reference, [[t.region for t in r.regions] for r in tracked], (640, 360))
        assert got.rate >= 0.995, got
        assert len({t for r in tracked for t in r.tracks}) == 2

    def test_full_search_every_sixth_frame_windows_between(self, tracked) -> None:
        assert [r.scope for r in tracked] == ["full" if i % 6 == 0 else "tracked" for i in range(N)]
        # the windows find both moving faces between the full detections (one
        # hides the other for a few frames where they cross)
        counts = [len(r.detections) for r in tracked if r.scope == "tracked"]
        assert min(counts) >= 1 and max(counts) == 2
        assert sum(c == 2 for c in counts) >= 0.8 * len(counts), counts
        sources = [t.source for r in tracked for t in r.regions]
        assert sources.count("detected") >= 0.9 * len(sources)

    def test_windows_follow_the_faces(self, decoded, monkeypatch) -> None:
        an = Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu"))
        asked: list[list] = []
        real = an.detect_near
        calls = itertools.count()

        def near(pixels, boxes):
            asked.append(list(boxes))
            if next(calls) == 2:  # one search finds nothing: the faces are still looked for
                return real(pixels, [])
            return real(pixels, boxes)

        monkeypatch.setattr(an, "detect_near", near)
        res = list(
            anonymize_video(iter(decoded[:12]), anonymizer=an, detect_every=6, track_every=1)
        )
        assert len(asked) == 10 and all(len(a) == 2 for a in asked)
        assert res[3].scope == "tracked" and len(res[3].detections) == 0
        assert len(res[4].detections) == 2
        # the expected boxes move with the faces (about 13 px per frame)
        assert abs(asked[-1][0][0] - asked[0][0][0]) > 40

    def test_process_video_counts_and_fails_closed(
        self, clip: Path, tmp_path: Path, monkeypatch
    ) -> None:
        an = Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu", track_every=1))
        out = process_video(clip, tmp_path / "ok.mp4", anonymizer=an, detect_every=6)
        assert (out.detected_frames, out.tracked_frames) == (5, 25)
        assert out.to_dict()["tracked_frames"] == 25

        def broken(pixels, boxes):
            raise DetectionError("the face detector failed")

        monkeypatch.setattr(an, "detect_near", broken)
        with pytest.raises(DetectionError):
            process_video(clip, tmp_path / "o" / "x.mp4", anonymizer=an, detect_every=6)
        assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []

    def test_a_scene_cut_gets_a_full_detection_and_new_tracks(self, kit, decoded) -> None:
        # 11 frames of one shot, then the other faces of a different shot
        other = kit.frames(
            [kit.Sprite((60, 180), (120, 170), (0.5, 0.5)), kit.Sprite((420, 40), (380, 60))],
            n=12,
            seed=5,
        )
        frames = [*decoded[:11], *(255 - f for f in other)]
        an = Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu"))
        res = list(anonymize_video(iter(frames), anonymizer=an))
        assert [r.scope for r in res][:12] == [
            "full",
            *["tracked"] * 7,
            "full",
            "tracked",
            "tracked",
            "cut",
        ]
        assert len(res[11].detections) >= 1
        # no track is observed on both sides of the cut (each track is still
        # extended a few frames past its ends, harmlessly over the other shot)
        before = {tr.track for r in res[:11] for tr in r.regions if tr.source != "extended"}
        after = {tr.track for r in res[11:] for tr in r.regions if tr.source != "extended"}
        assert before and after and not before & after

    def test_cut_detector(self, decoded) -> None:
        from pixveil.video.engine import _CutDetector

        cuts = _CutDetector()
        assert not any(cuts.is_cut(f) for f in decoded)  # one shot: moving faces only
        assert cuts.is_cut(255 - decoded[-1]) and not cuts.is_cut(255 - decoded[-1])

    def test_on_by_default_and_validated(self, anonymizer, clip: Path) -> None:
        from pixveil.config import VIDEO_DETECT_EVERY

        cfg = AnonymizeConfig()
        assert (cfg.detect_every, cfg.track_every) == (VIDEO_DETECT_EVERY, 1) == (8, 1)
        res = list(anonymize_video(clip, anonymizer=anonymizer))
        assert [r.scope for r in res] == ["full" if i % 8 == 0 else "tracked" for i in range(N)]
        # without windows, the frames between full detections are not searched
        off = list(anonymize_video(clip, anonymizer=anonymizer, detect_every=3, track_every=0))
        assert [r.scope for r in off] == ["full" if i % 3 == 0 else None for i in range(N)]
        with pytest.raises(ValueError, match="track_every"):
            next(anonymize_video([], anonymizer=anonymizer, track_every=-1))
        with pytest.raises(ValueError, match="track_every"):
            AnonymizeConfig(track_every=-1)


@pytest.fixture(scope="module")
def still(kit) -> list[np.ndarray]:
    """A face that does not move: per-track releases must look the same in every frame."""
    return kit.frames([kit.Sprite((200, 60), (200, 60), (0.6, 0.6))], n=6)


class TestTemporalConsistency:
    def _face_pixels(self, res: list[FrameResult]) -> list[np.ndarray]:
        out = []
        for r in res:
            (t,) = r.regions
            x0, y0, x1, y1 = (round(v) for v in t.region.box)
            out.append(r.pixels[y0:y1, x0:x1].astype(int))
        return out

    def test_dp_pix_per_track_noise_is_one_release(self, still) -> None:
        an = Anonymizer(AnonymizeConfig(targets=("faces",), method="dp-pix", device="cpu", seed=3))
        per_frame = self._face_pixels(
            list(anonymize_video(iter(still), anonymizer=an, smooth=0, detect_every=1))
        )
        per_track = self._face_pixels(
            list(
                anonymize_video(iter(still), anonymizer=an, noise="track", smooth=0, detect_every=1)
            )
        )
        assert not all(np.array_equal(per_frame[0], p) for p in per_frame[1:])
        assert all(np.array_equal(per_track[0], p) for p in per_track[1:])

    def test_gan_face_one_synthetic_person_per_track(self, still, kit, monkeypatch) -> None:
        from pixveil.video import temporal

        drawn: list[int] = []
        real = temporal.TrackFaces._draw

        def draw(self, pixels, region, rng):
            drawn.append(1)
            return real(self, pixels, region, rng)

        monkeypatch.setattr(temporal.TrackFaces, "_draw", draw)
        an = Anonymizer(
            AnonymizeConfig(targets=("faces",), method="gan-face", device="cpu", seed=1)
        )
        frames = kit.frames(n=N)[:8]
        res = list(anonymize_video(iter(frames), anonymizer=an, detect_every=2))
        tracks = {t for r in res for t in r.tracks}
        assert len(tracks) == 2 and len(drawn) == 2  # one latent per track, not per frame
        assert all(o.method == "gan-face" for r in res for o in r.outcomes)
        faces = self._face_pixels(list(anonymize_video(iter(still), anonymizer=an, detect_every=1)))
        # the same synthetic face in every frame of a still face
        assert max(np.abs(f - faces[0]).mean() for f in faces) < 2.0
        assert np.abs(faces[0] - self._face_pixels_orig(still, faces)).mean() > 5.0

    @staticmethod
    def _face_pixels_orig(still, faces) -> np.ndarray:
        # the original face under the first frame's protected box
        h, w = faces[0].shape[:2]
        return still[0][60 : 60 + h, 200 : 200 + w].astype(int)


@pytest.mark.shared
def test_plate_synth_one_text_per_track(shared_data: Path) -> None:
    """A pan over a street photo: the plate keeps one synthetic text in every frame."""
    from pixveil.io import read_image

    img = read_image(shared_data / "plates" / "eu" / "eu1.jpg").pixels[200:440, 250:730]
    frames = [np.ascontiguousarray(img[:, 8 * i : 8 * i + 400]) for i in range(4)]
    an = Anonymizer(
        AnonymizeConfig(targets=("plates",), method="plate-synth", device="cpu", seed=0)
    )
    res = list(anonymize_video(iter(frames), anonymizer=an, detect_every=2))
    texts = {o.details.get("texts") for r in res for o in r.outcomes if o.method == "plate-synth"}
    tracks = {t for r in res for t in r.tracks}
    assert len(tracks) == 1 and len(texts) == 1, (tracks, texts)
    (read, written) = texts.pop()
    assert read != written
    assert all(r.regions for r in res)
