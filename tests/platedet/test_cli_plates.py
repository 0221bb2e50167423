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
