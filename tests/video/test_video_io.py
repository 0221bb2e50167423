"""pixveil.io.video: decoding upright frames, writing H.264 with audio copied and no metadata."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pixveil.errors import DetectionError, InputError, OutputError
from pixveil.io.video import (
    VideoFrame,
    is_video_path,
    open_video,
    probe_video,
    video_output_suffix,
    write_video,
)

av = pytest.importorskip("av")

META = {
    "creation_time": "2021-06-01T10:00:00Z",
    "location": "+48.8577+002.2950/",
    "title": "Holiday with Alice",
    "comment": "shot on my phone",
}
# What an output's tags may hold: FFmpeg's structural defaults, nothing from the source.
ALLOWED_CONTAINER_TAGS = {"major_brand", "minor_version", "compatible_brands"}
ALLOWED_STREAM_TAGS = {"language": {"und"}, "handler_name": {"VideoHandler", "SoundHandler"}}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _frames(path: Path) -> list[VideoFrame]:
    with open_video(path) as reader:
        return list(reader)


def _assert_no_metadata(path: Path) -> None:
    mkv = path.suffix == ".mkv"
    with av.open(str(path)) as c:
        tags = dict(c.metadata)
        if mkv:  # Matroska's mandatory muxing-application element, without a version
            assert tags.pop("encoder", "Lavf") == "Lavf"
        assert set(tags) <= ALLOWED_CONTAINER_TAGS, c.metadata
        assert not c.chapters()
        for s in c.streams:
            assert s.type in ("video", "audio"), s.type
            for k, v in s.metadata.items():
                if mkv and k == "DURATION":  # Matroska stores each track's length as a tag
                    continue
                assert v in ALLOWED_STREAM_TAGS.get(k, set()), (k, v)
            assert _display_matrix(s) is None
    data = path.read_bytes()
    needles = [b"x264 - core", b"Lavf6", b"Core Media", b"Alice", b"+48.8577", b"phone"]
    if not mkv:
        needles.append(b"Lavf")
    for needle in needles:
        assert needle not in data, needle


def _display_matrix(stream: object) -> object:
    sd = getattr(stream, "side_data", None)
    if not sd:
        return None
    return next((v for k, v in dict(sd).items() if "DISPLAY" in str(k).upper()), None)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, kit) -> tuple[Path, list[np.ndarray]]:
    frames = kit.frames(n=24)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    kit.encode_clip(path, frames, metadata=META, rotate=90)
    return path, frames


class TestRead:
    def test_probe(self, clip) -> None:
        path, frames = clip
        info = probe_video(path)
        assert (info.width, info.height) == (640, 360)  # upright
        assert (info.coded_width, info.coded_height) == (360, 640)
        assert info.rotation == 90
        assert info.frame_rate == 30
        assert info.n_frames == len(frames)
        assert info.audio_codecs == ("aac",)
        assert info.codec == "h264"

    def test_frames_upright_with_timestamps(self, clip) -> None:
        path, frames = clip
        got = _frames(path)
        assert len(got) == len(frames)
        for f, ref in zip(got, frames, strict=True):
            assert f.pixels.shape == ref.shape and f.pixels.dtype == np.uint8
            assert _psnr(f.pixels, ref) > 30
        times = [f.time for f in got]
        assert times == pytest.approx([i / 30 for i in range(len(frames))], abs=1e-3)

    def test_flips_follow_the_display_matrix(self) -> None:
        from pixveil.io.video import _apply_transform, _display_transform

        img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
        # 90 degrees counter-clockwise, as PyAV's set_display_rotation(90) stores it
        rot, how = _display_transform((0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30))
        assert rot == 90
        assert np.array_equal(_apply_transform(img, how), np.rot90(img, 1))
        rot, how = _display_transform((-65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30))
        assert rot == 180 and np.array_equal(_apply_transform(img, how), img[::-1, ::-1])
        assert _display_transform(None) == (0, "none")

    def test_reader_iterates_once(self, clip) -> None:
        with open_video(clip[0]) as reader:
            list(reader)
            with pytest.raises(RuntimeError):
                iter(reader)

    def test_paths(self) -> None:
        assert is_video_path("a/B.MP4") and is_video_path("x.mkv") and not is_video_path("x.jpg")
        assert video_output_suffix("a.avi") == ".mkv"
        assert video_output_suffix("a.webm") == ".mp4"
        assert video_output_suffix("a.MOV") == ".mov"
        assert video_output_suffix("a.mkv") == ".mkv"

    def test_max_pixels(self, clip) -> None:
        with pytest.raises(InputError, match="exceeds the limit"):
            probe_video(clip[0], max_pixels=1000)


class TestWrite:
    def test_roundtrip_keeps_audio_frames_duration_and_drops_metadata(
        self, clip, tmp_path: Path, kit
    ) -> None:
        path, frames = clip
        out = write_video(tmp_path / "out.mp4", iter(_frames(path)), audio_from=path)
        assert kit.audio_packets(out) == kit.audio_packets(path) != []
        with av.open(str(path)) as a, av.open(str(out)) as b:
            va, vb = a.streams.video[0], b.streams.video[0]
            assert vb.frames == va.frames == len(frames)
            frame = Fraction(1, 30)
            assert abs(vb.duration * vb.time_base - va.duration * va.time_base) <= frame
            assert vb.average_rate == va.average_rate == 30
            assert vb.codec_context.name == "h264" and vb.codec_context.pix_fmt == "yuv420p"
            assert (vb.codec_context.width, vb.codec_context.height) == (640, 360)
        got = _frames(out)
        info = probe_video(out)
        assert info.rotation == 0  # upright pixels, no matrix for players to re-apply
        assert all(_psnr(g.pixels, r) > 30 for g, r in zip(got, frames, strict=True))
        _assert_no_metadata(out)

    @pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
    def test_exiftool_finds_nothing(self, tmp_path: Path, kit) -> None:
        src = tmp_path / "phone.mov"
        kit.encode_clip(
            src,
            kit.frames(n=6),
            fmt="mov",
            rotate=270,
            metadata={**META, "make": "Apple", "model": "iPhone 15"},
            options={"movflags": "use_metadata_tags"},
        )
        before = _exiftool(src)
        assert "Apple" in before and "48.8577" in before.replace(" deg", "")
        out = write_video(tmp_path / "out.mov", _frames(src), audio_from=src)
        # the file type ("Apple QuickTime") and box vendor codes are structure, not metadata
        after = "\n".join(
            line
            for line in _exiftool(out).splitlines()
            if not line.startswith(("[File]", "[ExifTool]", "[System]"))
            and "Vendor ID" not in line
            and "Major Brand" not in line
        )
        for needle in ("Apple", "iPhone", "GPS", "Alice", "Lavf", "Core Media", "2021"):
            assert needle not in after, needle
        assert "Rotation                        : 0" in after

    def test_vfr_timestamps_kept(self, tmp_path: Path, kit) -> None:
        frames = kit.frames(n=10)
        tb = Fraction(1, 90000)
        pts = [0, 3000, 9000, 12000, 21000, 24000, 27000, 36000, 39000, 42000]
        src = kit.encode_clip(tmp_path / "vfr.mp4", frames, pts=pts, time_base=tb, audio=False)
        src_times = [f.time for f in _frames(src)]
        out = write_video(tmp_path / "out.mp4", _frames(src))
        assert [f.time for f in _frames(out)] == pytest.approx(src_times, abs=1e-4)

    def test_no_audio(self, clip, tmp_path: Path) -> None:
        out = write_video(tmp_path / "o.mkv", _frames(clip[0]), audio_from=None)
        with av.open(str(out)) as c:
            assert not c.streams.audio and len(c.streams.video) == 1

    def test_data_streams_dropped(self, tmp_path: Path, kit) -> None:
        src = kit.encode_clip(tmp_path / "s.ts", kit.frames(n=4), telemetry=True, fmt="mpegts")
        assert probe_video(src).dropped == ("data",)
        out = write_video(tmp_path / "o.mp4", _frames(src), audio_from=src)
        with av.open(str(out)) as c:
            assert sorted(s.type for s in c.streams) == ["audio", "video"]

    def test_arrays_and_odd_sizes(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 255, (33, 45, 3), dtype=np.uint8) for _ in range(5)]
        out = write_video(tmp_path / "a.mp4", iter(frames), frame_rate=25)
        got = _frames(out)
        assert len(got) == 5 and got[0].pixels.shape == (34, 46, 3)
        assert got[-1].time == pytest.approx(4 / 25)

    def test_failing_source_leaves_nothing(self, clip, tmp_path: Path) -> None:
        def frames():
            yield from _frames(clip[0])[:5]
            raise DetectionError("the detector failed on frame 5")

        dst = tmp_path / "out" / "o.mp4"
        with pytest.raises(DetectionError, match="frame 5"):
            write_video(dst, frames(), audio_from=clip[0])
        assert not dst.exists()
        assert list(dst.parent.iterdir()) == []  # no temporary file either

    def test_input_error_of_source_is_kept(self, tmp_path: Path) -> None:
        def frames():
            yield np.zeros((16, 16, 3), np.uint8)
            raise InputError("damaged", path="x.mp4")

        with pytest.raises(InputError, match=r"x\.mp4: damaged"):
            write_video(tmp_path / "o.mp4", frames())
        assert list(tmp_path.iterdir()) == []

    def test_refusals(self, clip, tmp_path: Path) -> None:
        frames = [np.zeros((16, 16, 3), np.uint8)] * 2
        with pytest.raises(OutputError, match="unknown video extension"):
            write_video(tmp_path / "o.webm", frames)
        with pytest.raises(OutputError, match="overwrite the input"):
            write_video(clip[0], frames, audio_from=clip[0])
        with pytest.raises(OutputError, match="one size"):
            write_video(tmp_path / "o.mp4", [frames[0], np.zeros((8, 8, 3), np.uint8)])
        with pytest.raises(ValueError, match="crf"):
            write_video(tmp_path / "o.mp4", frames, crf=60)
        assert not (tmp_path / "o.mp4").exists()

    @pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
    def test_never_writes_through_a_link_below_root(self, tmp_path: Path) -> None:
        root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
        root.mkdir()
        elsewhere.mkdir()
        (root / "sub").symlink_to(elsewhere)
        with pytest.raises(OutputError, match="symbolic link"):
            write_video(root / "sub" / "o.mp4", [np.zeros((16, 16, 3), np.uint8)], root=root)
        assert list(elsewhere.iterdir()) == []


def _exiftool(path: Path) -> str:
    return subprocess.run(
        ["exiftool", "-a", "-G1", "-ee", str(path)], capture_output=True, text=True, check=True
    ).stdout


# ----------------------------------------------------------------------------- bad inputs


def _bad_inputs(tmp: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    out = {}
    (tmp / "empty.mp4").write_bytes(b"")
    out["empty"] = tmp / "empty.mp4"
    (tmp / "truncated.mp4").write_bytes(data[: len(data) * 6 // 10])
    out["truncated"] = tmp / "truncated.mp4"
    # moov first (streamable), data cut: the index lists frames that are not there
    fast = tmp / "fast.mp4"
    with av.open(str(good)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                o.mux(p)
    fdata = fast.read_bytes()
    (tmp / "truncated_fast.mp4").write_bytes(fdata[: len(fdata) * 7 // 10])
    out["truncated_fast"] = tmp / "truncated_fast.mp4"
    # random bytes in the middle of the video data
    corrupt = bytearray(data)
    rng = np.random.default_rng(1)
    start = data.find(b"mdat")
    for pos in rng.integers(start + len(data) // 3, start + len(data) // 2, 300):
        corrupt[pos] = int(rng.integers(0, 256))
    (tmp / "corrupt.mp4").write_bytes(bytes(corrupt))
    out["corrupt"] = tmp / "corrupt.mp4"
    audio = tmp / "audio.mp4"
    with av.open(str(audio), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for s0 in range(0, 48000, 1024):
            af = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            af.sample_rate, af.pts = 48000, s0
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    out["audio_only"] = audio
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp / "photo.mp4", format="JPEG")
    out["image"] = tmp / "photo.mp4"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp / "still.mov", format="PNG")
    out["png"] = tmp / "still.mov"
    (tmp / "text.mp4").write_text("not a video at all\n" * 20)
    out["text"] = tmp / "text.mp4"
    return out


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, kit) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    good = kit.encode_clip(tmp / "good.mp4", kit.frames(n=30))
    return _bad_inputs(tmp, good)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "empty"),
        ("truncated", "not a readable video"),
        ("truncated_fast", "damaged|truncated"),
        ("corrupt", "damaged|cannot be decoded"),
        ("audio_only", "no video stream"),
        ("image", "still image"),
        ("png", "still image"),
        ("text", "not a readable video"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(bad_inputs, name: str, reason: str) -> None:
    path = bad_inputs[name]
    with pytest.raises(InputError, match=reason) as err, open_video(path) as reader:
        for _ in reader:
            pass
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    assert err.value.path == path


def test_damaged_allowed_decodes_what_it_can(bad_inputs) -> None:
    with open_video(bad_inputs["corrupt"], allow_damaged=True) as reader:
        assert sum(1 for _ in reader) > 0


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        open_video("/nonexistent/clip.mp4")


# ----------------------------------------------------------------------------- shared clips


@pytest.mark.shared
class TestSharedClips:
    def test_megamind_audio_remux(self, shared_data: Path, tmp_path: Path, kit) -> None:
        src = shared_data / "video" / "Megamind.avi"
        info = probe_video(src)
        assert (info.width, info.height, info.n_frames) == (720, 528, 270)
        assert info.audio_codecs == ("ac3",)
        frames = _frames(src)
        assert len(frames) == 270
        out = write_video(tmp_path / "m.mkv", frames, audio_from=src)
        assert kit.audio_packets(out) == kit.audio_packets(src)
        with av.open(str(out)) as c:
            v = c.streams.video[0]
            assert v.frames in (0, 270)  # Matroska does not index a count
            assert v.guessed_rate == info.frame_rate
        assert len(_frames(out)) == 270
        _assert_no_metadata(out)

    def test_broken_timing_keeps_every_frame(self, shared_data: Path) -> None:
        frames = _frames(shared_data / "video" / "Megamind_bugy.avi")
        assert len(frames) == 270
        pts = [f.pts for f in frames]
        assert all(b > a for a, b in itertools.pairwise(pts))

    def test_vtest_probe(self, shared_data: Path) -> None:
        info = probe_video(shared_data / "video" / "vtest.avi")
        assert (info.width, info.height, info.frame_rate, info.n_frames) == (768, 576, 10, 795)
        assert info.codec == "msmpeg4v3" or info.codec.startswith("msmpeg4")
        assert not info.has_audio


@pytest.mark.parametrize(
    ("codec", "fmt", "suffix", "pix_fmt"),
    [
        ("libx264", "mp4", ".mp4", "yuv422p10le"),
        ("libx264", "mp4", ".mp4", "yuv444p"),
        ("libx265", "mp4", ".mp4", "yuv420p"),
        ("libvpx-vp9", "webm", ".webm", "yuv420p"),
        ("libsvtav1", "matroska", ".mkv", "yuv420p10le"),
        ("mjpeg", "avi", ".avi", "yuvj422p"),
        ("mpeg4", "avi", ".avi", "yuv420p"),
    ],
)
def test_codecs_bit_depths_and_subsampling(
    tmp_path: Path, codec: str, fmt: str, suffix: str, pix_fmt: str
) -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([xx * 1.5, yy * 2, 255 - xx], axis=2).astype(np.uint8)
    path = tmp_path / f"clip{suffix}"
    try:
        c = av.open(str(path), "w", format=fmt)
        v = c.add_stream(codec, rate=25)
    except (av.error.FFmpegError, ValueError) as exc:  # an encoder this FFmpeg build lacks
        pytest.skip(f"{codec}: {exc}")
    v.width, v.height, v.pix_fmt = 160, 120, pix_fmt
    if codec == "libx265":
        v.options = {"x265-params": "log-level=error"}
    for i in range(6):
        f = av.VideoFrame.from_ndarray(np.roll(img, 3 * i, axis=1), format="rgb24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    c.close()
    with open_video(path) as reader:
        assert reader.info.pix_fmt == pix_fmt
        got = list(reader)
    assert len(got) == 6
    assert float(np.abs(got[0].pixels.astype(int) - img).mean()) < 4
    out = write_video(tmp_path / "out.mp4", got)
    assert probe_video(out).codec == "h264"
