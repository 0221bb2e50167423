"""The text targets from the config and the command line: options, errors, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from pixveil.cli import app
from pixveil.config import AnonymizeConfig

runner = CliRunner()

EMAIL = "Write to li.chen@example.com"
PHONE = "Call +44 20 7946 0958 today"
PLAIN = "Thank you for your order"


def _document(path: Path) -> dict[str, tuple[int, int, int, int]]:
    """A rendered page with two PII lines and one plain line; returns each line's pixel box."""
    img = Image.new("RGB", (800, 260), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(22)
    boxes = {}
    for y, text in ((30, EMAIL), (110, PLAIN), (190, PHONE)):
        draw.text((40, y), text, fill="black", font=font)
        boxes[text] = draw.textbbox((40, y), text, font=font)
    img.save(path)
    return boxes


class TestConfig:
    def test_detector_options(self) -> None:
        cfg = AnonymizeConfig(
            targets=("text", "text-pii"), text_threshold=0.4, pii_patterns=("staff=EMP\\d{4}",)
        )
        assert cfg.detector_options("text") == {"threshold": 0.4}
        assert cfg.detector_options("text-pii") == {
            "threshold": 0.4,
            "patterns": ("staff=EMP\\d{4}",),
        }
        assert cfg.detector_options("faces") == {}
        assert json.loads(cfg.to_json())["pii_patterns"] == ["staff=EMP\\d{4}"]

    def test_defaults_pass_no_options(self) -> None:
        assert AnonymizeConfig(targets=("text-pii",)).detector_options("text-pii") == {}

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"text_threshold": 1.5}, "text_threshold"),
            ({"text_threshold": 0.0}, "text_threshold"),
            ({"pii_patterns": ("bad=([",)}, "invalid regular expression"),
            ({"pii_patterns": ("email=x@y",)}, "built in"),
            ({"pii_patterns": "date"}, "sequence"),
            ({"pii_patterns": ("nosuch",)}, "optional built-in"),
        ],
    )
    def test_validation(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            AnonymizeConfig(targets=("text-pii",), **kwargs)  # type: ignore[arg-type]


class TestCli:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--pii-pattern", "staff=EMP(\\d"], "invalid regular expression"),
            (["--pii-pattern", "Bad Name=x"], "pattern name"),
            (["--text-threshold", "2"], "--text-threshold must be in (0, 1)"),
        ],
    )
    def test_bad_options_exit_2_with_one_line(
        self, tmp_path: Path, args: list[str], message: str
    ) -> None:
        src = tmp_path / "doc.png"
        _document(src)
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "-t", "text-pii", *args])
        assert res.exit_code == 2, res.output
        assert message in res.output
        errors = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1
        assert not out.exists()

    def test_pattern_without_text_pii_warns(self, tmp_path: Path) -> None:
        src = tmp_path / "doc.png"
        _document(src)
        res = runner.invoke(
            app,
            [
                "anonymize",
                str(src),
                "-o",
                str(tmp_path / "out"),
                "-t",
                "text",
                "-q",
                "--pii-pattern",
                "date",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "only applies to the text-pii target" in res.output

    def test_text_pii_mask_end_to_end(self, tmp_path: Path) -> None:
        src = tmp_path / "doc.png"
        boxes = _document(src)
        out = tmp_path / "out"
        res = runner.invoke(
            app,
            [
                "anonymize",
                str(src),
                "-o",
                str(out),
                "--targets",
                "text-pii",
                "--method",
                "mask",
                "-p",
                "color=#ff0000",
                "--sidecar",
                "-q",
            ],
        )
        assert res.exit_code == 0, res.output
        before = np.asarray(Image.open(src).convert("RGB")).astype(int)
        after = np.asarray(Image.open(out / "doc.png").convert("RGB")).astype(int)
        assert after.shape == before.shape

        def changed(box: tuple[int, int, int, int]) -> float:
            x0, y0, x1, y1 = box
            diff = np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).sum(axis=2) > 0
            return float(diff.mean())

        dark = before.sum(axis=2) < 384  # the ink of the characters (grey; the mask is red)
        for text in (EMAIL, PHONE):
            x0, y0, x1, y1 = boxes[text]
            ink = dark[y0:y1, x0:x1]
            still = (after[y0:y1, x0:x1] == before[y0:y1, x0:x1]).all(axis=2) & ink
            assert not still.any(), f"ink of {text!r} left unchanged"
            assert changed(boxes[text]) > 0.5
        assert changed(boxes[PLAIN]) == 0.0
        sidecar = json.loads((out / "doc.png.json").read_text())
        assert [r["kind"] for r in sidecar["regions"]] == ["text", "text"]
        assert all("label" not in r for r in sidecar["regions"])  # no text leaks into sidecars
        run = json.loads((out / "pixveil-run.json").read_text())
        assert run["config"]["targets"] == ["text-pii"]
        assert run["summary"]["regions"] == {"text": 2}

    def test_text_target_protects_every_line(self, tmp_path: Path) -> None:
        src = tmp_path / "doc.png"
        boxes = _document(src)
        out = tmp_path / "out"
        res = runner.invoke(
            app,
            [
                "anonymize",
                str(src),
                "-o",
                str(out),
                "-t",
                "text",
                "-m",
                "mask",
                "-q",
                "-p",
                "color=#ff0000",
            ],
        )
        assert res.exit_code == 0, res.output
        before = np.asarray(Image.open(src).convert("RGB")).astype(int)
        after = np.asarray(Image.open(out / "doc.png").convert("RGB")).astype(int)
        for x0, y0, x1, y1 in boxes.values():
            ink = before[y0:y1, x0:x1].sum(axis=2) < 384
            same = (after[y0:y1, x0:x1] == before[y0:y1, x0:x1]).all(axis=2)
            assert not (same & ink).any()
