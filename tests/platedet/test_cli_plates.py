"""`pixveil plates`: exit codes and messages (the sub-app on its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pixveil.cli_plates import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("train", "export", "eval"):
        assert cmd in result.output


def test_eval_without_model_exits_2(tmp_path: Path) -> None:
    (tmp_path / "eu").mkdir()
    result = runner.invoke(
        app, ["eval", "--plates", str(tmp_path), "--model", str(tmp_path / "none.onnx")]
    )
    assert result.exit_code == 2
    assert "missing" in result.output


def test_eval_with_a_bad_unannotated_list_exits_2(tmp_path: Path) -> None:
    (tmp_path / "eu").mkdir()
    bad = tmp_path / "list.json"
    bad.write_text('{"plates": [{"photo": "eu/a.jpg", "box": [1, 2]}]}')
    result = runner.invoke(
        app, ["eval", "--plates", str(tmp_path), "--regions", "eu", "--unannotated", str(bad)]
    )
    assert result.exit_code == 2
    assert "not a list of unannotated plates" in result.output


def test_eval_does_not_count_unannotated_plates(tmp_path: Path) -> None:
    """A photo whose only "false positive" is a listed real plate scores 0 FP with the list."""
    import json

    import cv2
    import numpy as np

    from pixveil.detect.plate_net import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped plate model")
    from pixveil.platedet.synth import SceneSynth, SynthConfig

    cfg = SynthConfig(size=(480, 640), min_plate_width=110, max_plate_width=150, max_plates=2)
    sample = next(
        s for s in (SceneSynth(cfg, seed=11).sample(i) for i in range(40)) if len(s.quads) == 2
    )
    (tmp_path / "eu").mkdir()
    cv2.imwrite(str(tmp_path / "eu" / "a.jpg"), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
    boxes = [[float(v) for v in (*q.min(axis=0), *q.max(axis=0))] for q in sample.quads]
    x0, y0, x1, y1 = boxes[0]
    (tmp_path / "eu" / "a.txt").write_text(f"a.jpg {x0} {y0} {x1 - x0} {y1 - y0} AB123\n")
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps({"plates": [{"photo": "eu/a.jpg", "box": boxes[1]}]}))
    args = ["eval", "--plates", str(tmp_path), "--regions", "eu", "--threshold", "0.3"]
    plain = tmp_path / "plain.json"
    fair = tmp_path / "fair.json"
    assert runner.invoke(app, [*args, "--json", str(plain)]).exit_code == 0
    result = runner.invoke(app, [*args, "--unannotated", str(listed), "--json", str(fair)])
    assert result.exit_code == 0, result.output
    p, f = json.loads(plain.read_text())["eu"], json.loads(fair.read_text())["eu"]
    assert p["recall"] == f["recall"] == 1.0
    assert f["fp_per_image"] == p["fp_per_image"] - 1
    assert np.isfinite(f["ms_per_image"])


def test_export_without_checkpoint_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = runner.invoke(app, ["export", str(tmp_path), "--to", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no checkpoint" in result.output


def test_train_bad_region_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--regions", "mars"])
    assert result.exit_code == 2
    assert "train_regions" in result.output


def test_mine_without_photos_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["mine", "--to", str(tmp_path / "h.json"), "--plates", str(tmp_path), "--synthetic", "0"],
    )
    assert result.exit_code == 2
    assert "no such folder" in result.output
    assert not (tmp_path / "h.json").exists()


def test_mine_writes_the_file(tmp_path: Path) -> None:
    # One blank photo with its plate box: nothing to mine, but a valid file.
    import cv2
    import numpy as np

    from pixveil.detect.plate_net import default_model_path
    from pixveil.platedet import mine

    if not default_model_path().is_file():
        pytest.skip("no shipped plate model")
    (tmp_path / "eu").mkdir()
    cv2.imwrite(str(tmp_path / "eu" / "a.jpg"), np.full((240, 320, 3), 120, np.uint8))
    (tmp_path / "eu" / "a.txt").write_text("a.jpg 100 100 60 20 AB123\n")
    out = tmp_path / "h.json"
    args = ["mine", "--to", str(out), "--plates", str(tmp_path), "--synthetic", "0"]
    result = runner.invoke(app, [*args, "--ocr-threshold", "0"])
    assert result.exit_code == 0, result.output
    assert mine.load(out)["photos"] == {}
