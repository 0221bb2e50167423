"""Train (tiny), resume, export and use a face GAN end to end (needs torch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app
from pixveil.gan.data import CROP_BOX_LFW, crop_face, is_held_out, training_files
from pixveil.progress import ProgressEvent

torch = pytest.importorskip("torch")


def _cartoon(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((250, 250, 3), rng.integers(40, 200, 3), np.uint8)
    skin = tuple(int(v) for v in rng.integers(120, 230, 3))
    cv2.ellipse(img, (125, 130), (48, 62), 0, 0, 360, skin, -1)
    for x in (105, 145):
        cv2.circle(img, (x, 115), 6, (30, 30, 30), -1)
    cv2.ellipse(img, (125, 160), (18, 7), 0, 0, 180, (120, 40, 40), -1)
    return img


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    names = [n for n in (f"person_{i}" for i in range(40)) if not is_held_out(n)][:8]
    held = next(n for n in (f"other_{i}" for i in range(100)) if is_held_out(n))
    for k, name in enumerate([*names, held]):
        (root / name).mkdir()
        for j in range(3):
            Image.fromarray(_cartoon(10 * k + j)).save(root / name / f"{name}_{j:04d}.jpg")
    return root


def test_held_out_split_is_fixed_and_excluded(faces_dir: Path) -> None:
    train = training_files(faces_dir)
    held = training_files(faces_dir, held_out=True)
    assert len(train) == 24 and len(held) == 3
    assert not {p.parent.name for p in train} & {p.parent.name for p in held}
    # fixed rule (documented in the model card): sha256(name)[0] % 4 == 0
    assert is_held_out("Aaron_Eckhart") is False or is_held_out("Aaron_Eckhart") is True
    assert [is_held_out(n) for n in ("a", "b", "c")] == [is_held_out(n) for n in ("a", "b", "c")]


def test_crop_face_box() -> None:
    img = Image.fromarray(_cartoon(0))
    crop = crop_face(img, 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    x0, y0, x1, y1 = CROP_BOX_LFW
    assert (x1 - x0, y1 - y0) == (116, 116)


def test_train_resume_export_sample_and_swap(faces_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["gan", "train", "--data", str(faces_dir), "--out", str(run), "--epochs", "1"]
    args += ["--encoder-steps", "2", "--batch", "8", "--threads", "1", "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["state"] == {"epoch": 1, "step_in_epoch": 0, "gan_steps": 3, "enc_steps": 2}
    assert (run / "samples" / "epoch_001.png").is_file()
    with (run / "log.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["phase", "epoch", "step"]

    # resume: asking for one more epoch continues from the checkpoint
    res = runner.invoke(app, [*args[:7], "2", *args[8:]])
    assert res.exit_code == 0, res.output
    ck2 = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck2["state"]["epoch"] == 2 and ck2["state"]["gan_steps"] == 6
    assert not torch.equal(ck["G"]["net.0.weight"], ck2["G"]["net.0.weight"])
    # the averaged generator trails the trained one
    w, w_avg, w_old = (c["net.0.weight"] for c in (ck2["G"], ck2["G_ema"], ck["G_ema"]))
    assert not torch.equal(w, w_avg) and not torch.equal(w_avg, w_old)

    models = tmp_path / "models"
    res = runner.invoke(app, ["gan", "export", str(run), "--to", str(models)])
    assert res.exit_code == 0, res.output
    card = json.loads((models / "gan_face_64.json").read_text())
    assert set(card["files"]) == {"generator", "encoder", "critic"}
    assert card["training"]["averaged_generator"] is True

    grid = tmp_path / "grid.png"
    res = runner.invoke(app, ["gan", "sample", "--model", str(models), "-n", "9", "-o", str(grid)])
    assert res.exit_code == 0, res.output
    with Image.open(grid) as im:
        assert im.size == (3 * 66 + 2, 3 * 66 + 2)

    # the exported graphs agree with the torch models
    from pixveil.gan.models import Generator, recalibrate_bn
    from pixveil.gan.runtime import FaceGAN

    gan = FaceGAN(models)
    g = Generator(card["nz"], 64, 64)
    g.load_state_dict(ck2["G_ema"])
    recalibrate_bn(g, card["nz"], "cpu")
    g.eval()
    z = np.random.default_rng(0).standard_normal((2, card["nz"])).astype(np.float32)
    with torch.no_grad():
        ref = g(torch.from_numpy(z)).numpy()
    assert np.abs(gan.generate_raw(z) - ref).max() < 2e-2  # float16 weight storage

    # a corrupted model file is refused
    onnx_g = models / card["files"]["generator"]["name"]
    data = bytearray(onnx_g.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in models.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / onnx_g.name).write_bytes(bytes(data))
    from pixveil.errors import ModelError

    with pytest.raises(ModelError, match="SHA-256"):
        FaceGAN(bad)


def test_train_needs_a_data_folder(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["gan", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "-q"]
    )
    assert res.exit_code == 2
    assert "not a folder" in " ".join(res.output.split())


def test_without_averaging_the_grids_and_the_export_use_the_trained_generator(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixveil.gan.export import export
    from pixveil.gan.train import TrainConfig, train

    run = tmp_path / "run"
    cfg = TrainConfig(
        data=str(faces_dir), out=str(run), epochs=1, encoder_steps=1, batch=8, threads=1,
        ema_decay=0.0,
    )  # fmt: skip
    events: list[ProgressEvent] = []
    train(cfg, progress=events.append)
    # the library prints nothing; progress goes to the callback
    assert capsys.readouterr() == ("", "")
    gan = [(e.done, e.total) for e in events if e.stage == "gan"]
    assert gan == [(0, 3), (1, 3), (2, 3), (3, 3)]  # 24 training faces, batches of 8
    assert set(events[1].metrics) == {"d", "g"}
    assert [(e.done, e.total) for e in events if e.stage == "encoder"] == [(0, 1), (1, 1)]
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    # the average is never updated (no per-step copy) ...
    assert not torch.equal(ck["G"]["net.0.weight"], ck["G_ema"]["net.0.weight"])
    # ... and nothing shows or ships it
    samples = run / "samples"
    assert (samples / "epoch_001.png").read_bytes() == (samples / "raw_001.png").read_bytes()
    export(run, tmp_path / "models")
    card = json.loads((tmp_path / "models" / "gan_face_64.json").read_text())
    assert card["training"]["averaged_generator"] is False
