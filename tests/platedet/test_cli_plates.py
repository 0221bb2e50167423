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
