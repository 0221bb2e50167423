"""A few training steps, export to ONNX, and the ONNX Runtime detector on the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from pixveil.platedet.train import TrainConfig, export_onnx, train

    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        out=str(run),
        steps=2,
        batch=2,
        size=64,
        min_plate_width=16,
        max_plate_width=48,
        pretrained=False,
        checkpoint_minutes=60,
    )
    seen: list[int] = []
    ckpt = train(cfg, progress=lambda step, total, m: seen.append(step), log_every=1)
    assert ckpt.is_file() and seen[:2] == [1, 2]
    return export_onnx(ckpt, run / "export", card={"note": "test"})


@pytest.mark.slow
class TestRoundTrip:
    def test_files(self, exported: dict[str, Path]) -> None:
        card = json.loads(exported["card"].read_text())
        assert card["training"]["step"] == 2 and card["note"] == "test"
        assert exported["onnx"].stat().st_size < 15e6

    def test_onnxruntime_maps(self, exported: dict[str, Path]) -> None:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
        maps = sess.run(None, {"image": np.zeros((1, 3, 96, 160), np.float32)})[0]
        assert maps.shape == (1, 11, 24, 40)
        assert maps[:, 0].min() >= 0 and maps[:, 0].max() <= 1

    def test_matches_torch(self, exported: dict[str, Path]) -> None:
        import onnxruntime as ort

        from pixveil.platedet.model import Exported
        from pixveil.platedet.train import load_checkpoint

        net, _ = load_checkpoint(exported["weights"])
        x = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)
        with torch.no_grad():
            want = Exported(net)(torch.from_numpy(x)).numpy()
        sess = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": x})[0]
        # float16 weights file vs float32 ONNX: close, not equal
        np.testing.assert_allclose(got, want, atol=0.05, rtol=0.05)

    def test_detector(self, exported: dict[str, Path]) -> None:
        from pixveil.detect.plate_net import PlateNetDetector

        det = PlateNetDetector(model=str(exported["onnx"]), threshold=0.01, threads=1)
        img = np.random.default_rng(1).integers(0, 255, (150, 230, 3), dtype=np.uint8)
        quads, scores = det.detect_arrays(img)
        assert quads.shape[1:] == (4, 2) and scores.shape == (len(quads),)
        assert (np.diff(scores) <= 0).all()
        for r in det.detect(img):
            assert r.kind == "plate" and r.landmarks is not None and r.landmarks.shape == (4, 2)
            assert 0 <= r.box[0] < r.box[2] <= 230 and 0 <= r.box[1] < r.box[3] <= 150

    def test_resume(self, exported: dict[str, Path]) -> None:
        from pixveil.platedet.train import TrainConfig, train

        run = exported["onnx"].parent.parent
        cfg = TrainConfig(out=str(run), steps=3, batch=2, size=64, pretrained=False)
        steps: list[int] = []
        train(cfg, resume=True, progress=lambda s, t, m: steps.append(s), log_every=1)
        assert steps[0] == 3
        ck = torch.load(run / "ckpt.pt", weights_only=False)
        assert ck["step"] == 3
