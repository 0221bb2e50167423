"""The `pixveil` command: files written, messages, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app, parse_param

runner = CliRunner()


def _write_inputs(root: Path, astronaut: np.ndarray) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(astronaut).save(root / "face.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "readme.md").write_text("# not an image")
    return root


def test_parse_param() -> None:
    assert parse_param("block_size=16") == ("block_size", 16)
    assert parse_param("sigma=2.5") == ("sigma", 2.5)
    assert parse_param("shape=box") == ("shape", "box")
    assert parse_param("epsilon=inf")[1] == float("inf")
    assert parse_param("block-size=8") == ("block_size", 8)


def test_batch_with_a_bad_file_exits_1_and_writes_the_good_one(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    src = _write_inputs(tmp_path / "in", astronaut)
    out = tmp_path / "out"
    res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "--targets", "faces"])
    assert res.exit_code == 1, res.output
    assert (out / "face.jpg").is_file()
    assert not (out / "broken.jpg").exists()
    assert "broken.jpg" in res.output
    run = json.loads((out / "pixveil-run.json").read_text())
    assert run["summary"]["images"] == 2 and run["summary"]["written"] == 1
    assert run["summary"]["skipped_non_images"] == 1
    assert run["config"]["method"] == "blur"


def test_dp_method_with_epsilon(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = tmp_path / "face.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "anonymize",
            str(src),
            "-o",
            str(out),
            "--method",
            "dp-pix",
            "--epsilon",
            "0.5",
            "--targets",
            "faces",
            "--format",
            "bmp",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "face.bmp").is_file()
    run = json.loads((out / "pixveil-run.json").read_text())
    assert run["config"]["method_params"]["epsilon"] == 0.5


def test_detect_fast_blurs_the_face_with_the_int8_network(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    src = tmp_path / "face.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["anonymize", str(src), "-o", str(out), "--targets", "faces", "--detect", "fast",
              "--method", "mask", "--shape", "box"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run = json.loads((out / "pixveil-run.json").read_text())
    assert run["config"]["face_mode"] == "fast"
    pixels = np.asarray(Image.open(out / "face.png").convert("RGB"))
    face = pixels[90:150, 200:250].reshape(-1, 3)  # the middle of the astronaut's face
    assert (face == face[0]).all()  # one flat colour: masked
    assert not (pixels[300:, :100] == face[0]).all()  # the rest is left alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "smudge"], "unknown method"),
        (["--method", "blur", "-p", "colour=red"], "has no parameter colour"),
        (["--method", "dp-pix", "--epsilon", "-1"], "epsilon"),
        (["--targets", "elephants"], "unknown target"),
        (["--format", "gif"], "--format must be one of"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, astronaut: np.ndarray, args: list[str], message: str
) -> None:
    src = tmp_path / "face.png"
    Image.fromarray(astronaut).save(src)
    res = runner.invoke(app, ["anonymize", str(src), "-o", str(tmp_path / "out"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "out").exists()


def test_methods_lists_every_method() -> None:
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0
    for name in ("blur", "pixelate", "mask", "dp-pix", "dp-blur"):
        assert name in res.output


def test_demo_runs_from_nothing(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "-o", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("astronaut.jpg", "street.jpg"):
        assert (out / "input" / name).is_file()
        protected = out / "output" / name
        assert protected.is_file()
        with Image.open(protected) as im:
            assert len(im.getexif()) == 0
    street = json.loads((out / "output" / "street.jpg.json").read_text())
    kinds = [r["kind"] for r in street["regions"]]
    assert kinds.count("plate") >= 1 and kinds.count("face") >= 1
    assert len(list((out / "methods").glob("street_*.png"))) >= 5


def test_entry_point_version() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pixveil.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0 and res.stdout.startswith("pixveil ")
