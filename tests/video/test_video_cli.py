"""`pixveil anonymize` on videos: the same command as images, in a batch, fail closed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app

av = pytest.importorskip("av")

runner = CliRunner()
N = 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, kit, astronaut: np.ndarray) -> Path:
    root = tmp_path_factory.mktemp("cli") / "in"
    root.mkdir()
    kit.encode_clip(root / "clip.mp4", kit.frames(n=N), metadata={"location": "+48.8577+002.2950/"})
    Image.fromarray(astronaut).save(root / "photo.jpg")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real movie")
    return root


def test_a_folder_of_images_and_videos(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["anonymize", str(folder), "-o", str(out), "-t", "faces", "--detect-every", "2"]
    )
    assert res.exit_code == 1, res.output  # broken.mp4 fails alone
    assert (out / "photo.jpg").is_file()
    assert (out / "clip.mp4").is_file()
    assert not (out / "broken.mp4").exists()
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0]
    summary = json.loads((out / "pixveil-run.json").read_text())["summary"]
    assert summary["videos"] == 2 and summary["video_frames"] == N
    assert summary["regions"]["face"] >= 3  # the photo's face and two face tracks
    with av.open(str(out / "clip.mp4")) as c:
        assert c.streams.video[0].frames == N
        assert len(c.streams.audio) == 1
        assert "location" not in c.metadata


def test_single_video_to_a_named_file_without_audio(folder: Path, tmp_path: Path) -> None:
    dst = tmp_path / "safe.mkv"
    res = runner.invoke(
        app, ["anonymize", str(folder / "clip.mp4"), "-o", str(dst), "-t", "faces", "--no-audio"]
    )
    assert res.exit_code == 0, res.output
    with av.open(str(dst)) as c:
        assert len(c.streams.audio) == 0 and c.streams.video[0].codec_context.name == "h264"
    res = runner.invoke(app, ["anonymize", str(folder / "clip.mp4"), "-o", str(tmp_path / "x.jpg")])
    assert res.exit_code == 2 and "a video is written as" in res.output


def test_dry_run_counts_tracks(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    res = runner.invoke(
        app, ["anonymize", str(folder / "clip.mp4"), "-o", str(out), "-t", "faces", "--dry-run"]
    )
    assert res.exit_code == 0, res.output
    assert "clip.mp4: 2 faces tracks" in res.output
    assert not out.exists()


def test_per_track_noise_is_one_release_per_track(kit, tmp_path: Path) -> None:
    from types import SimpleNamespace

    still = SimpleNamespace(start=(240, 60), end=(240, 60), scale=(0.6, 0.6), mirror=False)
    clip = kit.encode_clip(tmp_path / "still.mp4", kit.frames(sprites=(still,), n=12))
    outs = {}
    for mode in ("frame", "track"):
        dst = tmp_path / f"{mode}.mp4"
        args = ["anonymize", str(clip), "-o", str(dst), "-t", "faces", "--method", "dp-pix"]
        res = runner.invoke(app, [*args, "--epsilon", "0.5", "--noise", mode, "--seed", "1"])
        assert res.exit_code == 0, res.output
        with av.open(str(dst)) as c:
            frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]
        outs[mode] = float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]))
    # a still face: fresh noise in every frame flickers, one release per track does not
    assert outs["frame"] > 3 * outs["track"], outs
    res = runner.invoke(app, ["anonymize", str(clip), "-o", str(tmp_path / "x"), "--noise", "px"])
    assert res.exit_code == 2 and "--noise must be frame or track" in res.output


def test_video_defaults_detect_one_frame_in_eight_at_full_size_windows_between(
    kit, tmp_path: Path, monkeypatch
) -> None:
    from pixveil.pipeline import Anonymizer

    clip = kit.encode_clip(tmp_path / "hd.mp4", kit.frames(n=9, size=(1280, 720)), audio=False)
    seen: list[tuple[int, int | None]] = []
    near: list[int] = []
    real = Anonymizer.detect
    real_near = Anonymizer.detect_near

    def detect(self, pixels, **kw):
        seen.append((pixels.shape[1], kw.get("max_size")))
        return real(self, pixels, **kw)

    def detect_near(self, pixels, boxes):
        near.append(len(boxes))
        return real_near(self, pixels, boxes)

    monkeypatch.setattr(Anonymizer, "detect", detect)
    monkeypatch.setattr(Anonymizer, "detect_near", detect_near)
    res = runner.invoke(app, ["anonymize", str(clip), "-o", str(tmp_path / "a"), "-t", "faces"])
    assert res.exit_code == 0, res.output
    assert seen == [(1280, None)] * 2  # frames 0 and 8
    assert near == [2] * 7  # frames 1-7: windows around the two faces
    seen.clear()
    near.clear()
    res = runner.invoke(
        app,
        ["anonymize", str(clip), "-o", str(tmp_path / "t"), "-t", "faces", "--track-every", "0"],
    )
    assert res.exit_code == 0 and seen == [(1280, None)] * 2 and near == [], res.output
    res = runner.invoke(
        app, ["anonymize", str(clip), "-o", str(tmp_path / "u"), "--track-every", "-1"]
    )
    assert res.exit_code == 2 and "--track-every must be >= 0" in res.output
    seen.clear()
    res = runner.invoke(
        app,
        [
            "anonymize",
            str(clip),
            "-o",
            str(tmp_path / "b"),
            "-t",
            "faces",
            "--detect-every",
            "3",
            "--video-max-size",
            "640",
        ],
    )
    assert res.exit_code == 0, res.output
    assert seen == [(1280, 640)] * 3
    seen.clear()
    res = runner.invoke(  # --max-size applies to videos too
        app, ["anonymize", str(clip), "-o", str(tmp_path / "c"), "-t", "faces", "--max-size", "960"]
    )
    assert res.exit_code == 0 and seen == [(1280, 960)] * 2, res.output
    seen.clear()
    res = runner.invoke(
        app,
        [
            "anonymize",
            str(clip),
            "-o",
            str(tmp_path / "e"),
            "-t",
            "faces",
            "--video-max-size",
            "full",
            "--detect-every",
            "1",
        ],
    )
    assert res.exit_code == 0 and seen == [(1280, None)] * 9, res.output
    for bad in ("32", "big"):
        res = runner.invoke(
            app, ["anonymize", str(clip), "-o", str(tmp_path / "d"), "--video-max-size", bad]
        )
        assert res.exit_code == 2 and "--video-max-size" in res.output


@pytest.mark.shared
def test_avi_becomes_matroska_with_every_audio_packet(
    shared_data: Path, kit, tmp_path: Path
) -> None:
    src = shared_data / "video" / "Megamind.avi"
    out = tmp_path / "out"
    res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), "-t", "faces", "-q"])
    assert res.exit_code == 0, res.output
    dst = out / "Megamind.mkv"
    assert dst.is_file() and not (out / "Megamind.mp4").exists()
    assert kit.audio_packets(dst) == kit.audio_packets(src)  # all 352, the partial first one too
