"""`pixveil evaluate --data clips/`: temporal metrics of protected clips in the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pixveil.cli import app

pytest.importorskip("av")
pytest.importorskip("face_recognition")

runner = CliRunner()


def test_evaluate_a_folder_of_clips(kit, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    kit.encode_clip(clips / "two [faces].mp4", kit.frames(n=15), audio=False)
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(clips),
            "--methods",
            "blur,gan-face",
            "-o",
            str(out),
            "-q",
            "--video-frames",
            "12",
            "--sweep",
            "blur:strength=0.1",
            "--epsilons",
            "0.25",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {r["setting"]: r for r in csv.DictReader((out / "video.csv").read_text().splitlines())}
    assert set(rows) == {"blur strength=0.1", "gan-face epsilon=0.25"}, rows
    blur, gan = rows["blur strength=0.1"], rows["gan-face epsilon=0.25"]
    for r in (blur, gan):
        assert r["clip"] == "two [faces].mp4" and int(r["frames"]) == 12
        assert int(r["reference_faces"]) >= 20  # two faces in (nearly) every frame
        assert float(r["coverage"]) >= 0.95
        assert float(r["fps"]) > 0
    # blur leaves no face dlib could match to the person; gan-face keeps one synthetic
    # person along each track, and that person is not the original
    assert float(gan["same_track"]) >= 0.8
    assert float(gan["matches_original"]) <= 0.2
    assert float(gan["reanonymized_matches"]) <= 0.2
    assert blur["reanonymized_matches"] == ""
    # flicker: blur moves with the scene, its error stays near the flow's own
    assert float(blur["flicker"]) < float(gan["flicker"]) + 10
    data = json.loads((out / "video.json").read_text())
    assert (data["detect_every"], data["track_every"], data["video_max_size"]) == (8, 1, None)
    assert len(data["rows"]) == 2
    html = (out / "index.html").read_text()
    assert "Video: temporal metrics" in html and "two [faces].mp4" in html
