"""Tests of the int8 CenterFace (``FaceDetector(precision="int8")``, ``--detect fast``)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from pixveil import _onnx
from pixveil.config import AnonymizeConfig
from pixveil.detect import face_int8, faces
from pixveil.detect.faces import INT8_THRESHOLD, FaceDetector
from pixveil.errors import InputError, ModelError
from pixveil.types import box_iou

from .test_faces import ASTRONAUT_FACE, _rgb, background, covers, face_crop, paste_face


@pytest.fixture(scope="module")
def int8() -> FaceDetector:
    return FaceDetector(precision="int8")


@pytest.fixture(scope="module")
def float32() -> FaceDetector:
    return FaceDetector()


class TestOptions:
    def test_defaults(self, int8: FaceDetector) -> None:
        assert int8.precision == "int8"
        assert int8.threshold == INT8_THRESHOLD == 0.12
        assert "precision='int8'" in repr(int8)
        assert FaceDetector().precision == "float32"
        assert FaceDetector().threshold == 0.2
        assert FaceDetector(precision="int8", threshold=0.3).threshold == 0.3

    @pytest.mark.parametrize("value", ["int4", "fp16", "", None, 8])
    def test_bad_precision(self, value: object) -> None:
        with pytest.raises(InputError, match="precision must be one of float32, int8"):
            FaceDetector(precision=value)  # type: ignore[arg-type]

    def test_own_session_shared_by_instances(self, int8: FaceDetector) -> None:
        assert FaceDetector(precision="int8").runtime.session is int8.runtime.session
        assert FaceDetector().runtime.session is not int8.runtime.session
        assert int8.runtime.session.get_inputs()[0].name == "input.1"

    def test_the_int8_graph_is_quantised(self) -> None:
        import onnx

        ops = {n.op_type for n in onnx.load_from_string(face_int8.model_bytes()).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
        float_ops = {n.op_type for n in onnx.load_from_string(faces._model_bytes()).graph.node}
        assert "DequantizeLinear" not in float_ops

    def test_config_fast_mode_selects_the_int8_network(self) -> None:
        assert AnonymizeConfig(face_mode="fast").detector_options("faces") == {
            "precision": "int8",
            "mode": "cascade",
        }
        assert AnonymizeConfig(face_mode="cascade").detector_options("faces") == {"mode": "cascade"}
        with pytest.raises(ValueError, match="exhaustive, cascade or fast"):
            AnonymizeConfig(face_mode="quick")


class TestCpuCheck:
    @pytest.mark.parametrize(
        ("cpuinfo", "expected"),
        [
            ("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n", True),
            ("flags\t\t: fpu sse2 avx2 avx_vnni\n", True),
            ("flags : fpu sse2 avx2 fma\nflags : fpu sse2 avx2 fma\n", False),
            ("Features : fp asimd evtstrm aes asimddp\n", True),
            ("Features : fp asimd evtstrm aes\n", False),
            ("model name : something\n", None),
            ("", None),
        ],
    )
    def test_flags(self, cpuinfo: str, expected: bool | None) -> None:
        assert face_int8.has_int8_dot_product(cpuinfo) is expected

    @pytest.mark.parametrize(
        ("cpuinfo", "seven"),
        [
            ("flags : fpu sse2 avx2 avx512f avx512bw avx512_vnni\n", False),  # 32-bit sums
            ("flags : fpu sse2 avx2 avx_vnni\n", False),
            ("Features : fp asimd asimddp\n", False),
            ("flags : fpu sse2 avx2 fma\n", True),  # vpmaddubsw: 16-bit sums saturate
            ("flags : fpu sse2 avx512f avx512bw\n", True),
            ("model name : unknown\n", True),  # cannot be told: the copy that cannot saturate
        ],
    )
    def test_which_int8_file_runs(self, cpuinfo: str, seven: bool) -> None:
        assert face_int8.uses_7bit_weights(cpuinfo) is seven
        assert face_int8.model_card(cpuinfo) == (
            face_int8.MODEL_CARD_7BIT if seven else face_int8.MODEL_CARD
        )
        assert face_int8.default_threshold(cpuinfo) == (
            face_int8.THRESHOLD_7BIT if seven else INT8_THRESHOLD
        )

    def test_a_cpu_without_int8_dot_products_runs_the_7bit_copy(
        self, tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from PIL import Image
        from typer.testing import CliRunner

        from pixveil.cli import app

        monkeypatch.setattr(face_int8, "has_int8_dot_product", lambda cpuinfo=None: False)
        det = FaceDetector(precision="int8")
        assert det.threshold == face_int8.THRESHOLD_7BIT
        assert "7-bit" in det.runtime.name
        regions = det.detect(astronaut)
        assert len(regions) == 1 and box_iou(regions[0].box, ASTRONAUT_FACE) > 0.5
        src = tmp_path / "a.png"
        Image.fromarray(astronaut).save(src)
        res = CliRunner().invoke(
            app, ["anonymize", str(src), "-o", str(tmp_path / "o"), "--detect", "fast", "-q"]
        )
        assert res.exit_code == 0, res.output
        assert (tmp_path / "o" / "a.png").is_file()


class TestModelFile:
    @pytest.mark.parametrize("card_path", [face_int8.MODEL_CARD, face_int8.MODEL_CARD_7BIT])
    def test_shipped_files_match_their_cards(self, card_path: Path) -> None:
        card = json.loads(card_path.read_text())
        data = face_int8.model_bytes(card_path)
        assert hashlib.sha256(data).hexdigest() == card["files"]["onnx"]["sha256"]
        assert len(data) < 3_000_000  # int8 weights: about a quarter of the float file
        assert card["source_sha256"] == hashlib.sha256(faces._model_bytes()).hexdigest()
        seven = card_path == face_int8.MODEL_CARD_7BIT
        assert ("reduce_range" in card["quantisation"]) is seven
        assert ("--reduce-range" in card["command"]) is seven

    def test_7bit_weights_are_within_7_bits(self) -> None:
        import onnx
        from onnx import numpy_helper

        def weight_range(card: Path) -> int:
            model = onnx.load_from_string(face_int8.model_bytes(card))
            ints = [numpy_helper.to_array(t) for t in model.graph.initializer
                    if t.data_type == onnx.TensorProto.INT8 and t.dims and len(t.dims) == 4]  # fmt: skip
            return max(int(np.abs(w.astype(np.int16)).max()) for w in ints)

        assert weight_range(face_int8.MODEL_CARD) > 64  # full 8-bit range
        assert weight_range(face_int8.MODEL_CARD_7BIT) <= 64  # pair sums fit 16 bits

    def test_replaced_file_is_a_model_error(self, tmp_path: Path) -> None:
        card = tmp_path / "centerface_int8.json"
        shutil.copy(face_int8.MODEL_CARD, card)
        onnx_name = json.loads(card.read_text())["files"]["onnx"]["name"]
        data = bytearray(face_int8.model_bytes())
        data[-10] ^= 0xFF
        (tmp_path / onnx_name).write_bytes(bytes(data))
        with pytest.raises(ModelError, match="SHA-256 mismatch"):
            face_int8.model_bytes(card)
        (tmp_path / onnx_name).unlink()
        with pytest.raises(ModelError, match="cannot be read"):
            face_int8.model_bytes(card)

    def test_broken_model_fails_closed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_onnx, "_cache", {})
        monkeypatch.setattr(faces, "_int8_model_bytes", lambda: b"\x08\x07not a model")
        with pytest.raises(ModelError, match="int8"):
            FaceDetector(precision="int8")

    @pytest.mark.slow
    def test_build_is_reproducible(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        """The builder quantises from calibration photos; the same photos give the same file."""
        import cv2

        folder = tmp_path / "calib"
        folder.mkdir()
        for k in range(3):
            canvas = background(720, 1280, seed=k)
            paste_face(canvas, face_crop(astronaut), 60 + 40 * k, 200 + 300 * k, 200)
            cv2.imwrite(str(folder / f"{k}.jpg"), canvas[:, :, ::-1])
        a = face_int8.build(folder, tmp_path / "a" / "m.onnx", n=3)
        b = face_int8.build(folder, tmp_path / "b" / "m.onnx", n=3)
        assert a["files"] == b["files"]
        assert face_int8.model_bytes(tmp_path / "a" / "m.json")  # its card verifies it
        with pytest.raises(ModelError, match="calibration needs 4"):
            face_int8.build(folder, tmp_path / "c" / "m.onnx", n=4)


class TestDetection:
    def test_astronaut(self, int8: FaceDetector, astronaut: np.ndarray) -> None:
        regions = int8.detect(astronaut)
        assert len(regions) == 1
        assert box_iou(regions[0].box, ASTRONAUT_FACE) > 0.5
        assert regions[0].landmarks is not None

    def test_small_faces_the_float_network_finds(
        self, int8: FaceDetector, float32: FaceDetector, astronaut: np.ndarray
    ) -> None:
        canvas = background(720, 1280, seed=5)
        crop = face_crop(astronaut)
        centres = [
            paste_face(canvas, crop, w, x, y)
            for w, x, y in [(20, 100, 100), (24, 400, 500), (30, 800, 150), (40, 1100, 450),
                            (64, 600, 300), (120, 150, 400)]
        ]  # fmt: skip
        for det in (float32, int8):
            regions = det.detect(canvas)
            for c in centres:
                assert any(covers(r.box, c) for r in regions), (det.precision, c)
            assert len(regions) <= len(centres) + 1, det.precision

    def test_cascade_windows_use_the_int8_network(
        self, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        det = FaceDetector(precision="int8", mode="cascade", threads=2)
        used: list[object] = []
        run = det._run

        def spy(blob: np.ndarray, session: object = None) -> list[np.ndarray]:
            used.append(det._session if session is None else session)
            return run(blob, session)

        monkeypatch.setattr(det, "_run", spy)
        canvas = background(1700, 2600, seed=2)
        centre = paste_face(canvas, face_crop(astronaut), 28, 1300, 900)
        assert any(covers(r.box, centre) for r in det.detect(canvas))
        int8_sessions = {
            id(faces._session(t, "cpu", "int8").session) for t in (None, 1, 2)
        }  # fmt: skip
        assert used and all(id(s) in int8_sessions for s in used)


# ------------------------------------------------------------------------ real data


@pytest.mark.shared
@pytest.mark.slow
def test_keeps_the_float_networks_faces_in_street_scenes(
    shared_data: Path, int8: FaceDetector, float32: FaceDetector
) -> None:
    """LFW faces of 16-64 px pasted on US street photos (never used for calibration):
    the int8 network at its threshold finds >= 97 % of the ones the float one finds."""
    rng = random.Random(7)
    streets = sorted((shared_data / "plates" / "us").glob("*.jpg"))
    people = sorted((shared_data / "lfw").glob("*/*_0002.jpg"))
    both = only_float = 0
    for street in rng.sample(streets, 6):
        scene = np.ascontiguousarray(_rgb(street))
        h, w = scene.shape[:2]
        placed = []
        for k, person in enumerate(rng.sample(people, 8)):
            crop = _rgb(person)[60:190, 70:180]  # the face and a little context
            fw = (16, 20, 24, 28, 32, 40, 48, 64)[k]
            x, y = 40 + k * (w - 120) // 8, rng.randint(20, h - 120)
            placed.append(paste_face(scene, crop, fw, x, y))
        f_regions, i_regions = float32.detect(scene), int8.detect(scene)
        for c in placed:
            if any(covers(r.box, c) for r in f_regions):
                hit = any(covers(r.box, c) for r in i_regions)
                both += hit
                only_float += not hit
    assert both + only_float >= 24
    assert both / (both + only_float) >= 0.97, (both, only_float)
