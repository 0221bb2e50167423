"""Damaged inputs: corrupt JPEG scans, bad PNG checksums, broken later frames, odd arguments.

Decoders let much of this through silently (Pillow patches a corrupt JPEG scan
with grey and does not check the CRC of PNG pixel data); read_image must refuse
it unless allow_damaged=True, and then say what was wrong.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import InputError
from pixveil.io import (
    DEFAULT_MAX_PIXELS,
    is_image_path,
    load_array,
    output_format_for,
    output_path_for,
    read_image,
    write_image,
)
from pixveil.io import jpeg as jpeg_module
from pixveil.io.jpeg import JpegCheckUnavailable, jpeg_damage

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _assert_one_line(exc: pytest.ExceptionInfo[InputError], path: Path | None, *parts: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and "\r" not in msg, msg
    if path is not None:
        assert msg.startswith(f"{path}: "), msg
        assert exc.value.path == path
    for part in parts:
        assert part in msg, msg


def _photo() -> np.ndarray:
    """(240, 320, 3) uint8: smooth colours plus texture, like a photo (no two rows alike)."""
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float64)
    rng = np.random.default_rng(5)
    base = np.dstack((xx * 0.7, yy * 0.9, 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 11.0)))
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90, **options)
    return buf.getvalue()


def _scan(data: bytes) -> tuple[int, int]:
    """Start and end (the EOI marker) of the first scan's entropy-coded data."""
    i = 2
    while data[i + 1] != 0xDA:
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return i + 2 + int.from_bytes(data[i + 2 : i + 4], "big"), data.rindex(b"\xff\xd9")


def _safe_pos(data: bytes, pos: int) -> int:
    """``pos`` or the next offset that does not split a marker or a stuffed 0xFF."""
    while data[pos - 1] == 0xFF or data[pos] == 0xFF:
        pos += 1
    return pos


def _pillow_decodes(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _damaged_jpegs() -> dict[str, bytes]:
    data = _jpeg(_photo())
    start, end = _scan(data)
    third = _safe_pos(data, start + (end - start) // 3)
    half = _safe_pos(data, start + (end - start) // 2)
    flipped = bytearray(data)
    for k in range(8):  # a burst of flipped bits, as from a bad sector or a bad cable
        flipped[_safe_pos(data, half + 3 * k)] ^= 0x5A
    return {
        # a restart marker where none belongs
        "injected restart marker": data[:third] + b"\xff\xd3" + data[third:],
        # a chunk of scan data lost in transfer: the rest decodes as flat grey
        "lost chunk": data[:third] + data[third + 4096 :],
        "bit flips": bytes(flipped),
        # garbage before the end marker
        "extraneous bytes": data[:end] + bytes(range(1, 40)) + data[end:],
    }


DAMAGED = _damaged_jpegs()


class TestCorruptJpeg:
    @pytest.mark.parametrize("kind", sorted(DAMAGED))
    def test_refused(self, tmp_path: Path, kind: str) -> None:
        data = DAMAGED[kind]
        _pillow_decodes(data)  # the point: Pillow alone decodes it without complaint
        path = tmp_path / "damaged.jpg"
        path.write_bytes(data)
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "corrupt image data (Corrupt JPEG data: ", "--allow-damaged")

    def test_lost_chunk_really_decodes_grey(self) -> None:
        # what the check guards against: most of the picture silently replaced
        clean = _pillow_decodes(_jpeg(_photo()))
        damaged = _pillow_decodes(DAMAGED["lost chunk"])
        rows_changed = np.mean(np.abs(damaged.astype(int) - clean).max(axis=(1, 2)) > 24)
        assert rows_changed > 0.3

    @pytest.mark.parametrize("kind", sorted(DAMAGED))
    def test_allow_damaged_decodes_and_says_why(self, tmp_path: Path, kind: str) -> None:
        path = tmp_path / "damaged.jpg"
        path.write_bytes(DAMAGED[kind])
        loaded = read_image(path, allow_damaged=True)
        assert loaded.pixels.shape == (240, 320, 3)
        assert loaded.damage is not None
        assert loaded.damage.startswith("corrupt image data (Corrupt JPEG data: ")
        assert "\n" not in loaded.damage and "allow-damaged" not in loaded.damage

    @pytest.mark.parametrize(
        "options",
        [{}, {"progressive": True}, {"restart_marker_blocks": 4}, {"subsampling": 0}],
        ids=["baseline", "progressive", "restart-markers", "4:4:4"],
    )
    def test_clean_jpeg_codings_accepted(self, tmp_path: Path, options: dict) -> None:
        path = tmp_path / "clean.jpg"
        path.write_bytes(_jpeg(_photo(), **options))
        loaded = read_image(path)
        assert loaded.damage is None

    def test_clean_grey_and_cmyk_jpeg_accepted(self, tmp_path: Path) -> None:
        Image.fromarray(_photo()[..., 0]).save(tmp_path / "grey.jpg", quality=90)
        Image.fromarray(_photo()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
        assert read_image(tmp_path / "grey.jpg").damage is None
        assert read_image(tmp_path / "cmyk.jpg").damage is None

    def test_damaged_cmyk_and_progressive_refused(self, tmp_path: Path) -> None:
        for name, data in (
            ("cmyk.jpg", _cmyk_jpeg()),
            ("progressive.jpg", _jpeg(_photo(), progressive=True)),
        ):
            start, end = _scan(data)
            pos = _safe_pos(data, start + (end - start) // 2)
            path = tmp_path / name
            path.write_bytes(data[:pos] + b"\xff\xd5" + data[pos:])
            with pytest.raises(InputError, match="corrupt image data"):
                read_image(path)

    def test_truncated_refused_unless_allowed(self, tmp_path: Path) -> None:
        data = _jpeg(_photo())
        path = tmp_path / "cut.jpg"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "truncated image data (file ends early)", "--allow-damaged")
        loaded = read_image(path, allow_damaged=True)
        assert loaded.damage == "truncated image data (file ends early)"
        # the top half is there, the bottom (missing) half is flat
        clean = _pillow_decodes(data)
        assert np.abs(loaded.pixels[:60].astype(int) - clean[:60]).max() <= 2
        assert np.ptp(loaded.pixels[-40:].astype(int)) <= 2

    def test_truncated_even_when_another_library_allows_truncation(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from PIL import ImageFile

        monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        data = _jpeg(_photo())
        path = tmp_path / "cut.jpg"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match="truncated"):
            read_image(path)
        assert read_image(path, allow_damaged=True).damage is not None
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True

    def test_unreadable_data_still_refused_with_allow_damaged(self, tmp_path: Path) -> None:
        path = tmp_path / "noise.jpg"
        path.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
        with pytest.raises(InputError):
            read_image(path, allow_damaged=True)

    def test_check_unavailable_fails_closed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def unavailable(data: bytes) -> str | None:
            raise JpegCheckUnavailable("OpenCV cannot be imported: test")

        monkeypatch.setattr("pixveil.io.read.jpeg_damage", unavailable)
        path = tmp_path / "clean.jpg"
        path.write_bytes(_jpeg(_photo()))
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "cannot check the JPEG data for corruption", "--allow-damaged")
        loaded = read_image(path, allow_damaged=True)
        assert loaded.damage is None  # unchecked, not known to be damaged

    def test_self_test_failure_makes_the_check_unavailable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(jpeg_module, "_self_test_passed", False)
        monkeypatch.setattr(jpeg_module, "_damage_unchecked", lambda data: None)
        with pytest.raises(JpegCheckUnavailable, match="cannot be observed"):
            jpeg_damage(_jpeg(_photo()))

    def test_other_stderr_output_is_passed_on(self, capfd: pytest.CaptureFixture[str]) -> None:
        import os

        def noisy() -> int:
            os.write(2, b"a line from another thread\n")
            os.write(2, b"Corrupt JPEG data: premature end of data segment\n")
            return 1

        result, text = jpeg_module._capture_stderr(noisy)
        assert result == 1 and "premature end" in text
        err = capfd.readouterr().err
        assert "a line from another thread" in err
        assert "Corrupt JPEG data" not in err

    def test_threads_get_their_own_verdict(self, tmp_path: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        clean = _jpeg(_photo())
        paths = []
        for i in range(12):
            path = tmp_path / f"{i}.jpg"
            path.write_bytes(DAMAGED["injected restart marker"] if i % 2 else clean)
            paths.append(path)

        def verdict(path: Path) -> bool:
            try:
                read_image(path)
            except InputError:
                return False
            return True

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(verdict, paths)) == [i % 2 == 0 for i in range(12)]

    def test_allow_damaged_must_be_bool(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="allow_damaged"):
            read_image(tmp_path / "x.jpg", allow_damaged="yes")  # type: ignore[arg-type]


def _cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_photo()).convert("CMYK").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ----------------------------------------------------------------------------- real photos


def _real_jpegs() -> list[Path]:
    files = sorted((SHARED_DATA / "plates").glob("*/*.jpg"))
    files += sorted((SHARED_DATA / "exif").glob("**/*.jpg"))
    lfw = sorted((SHARED_DATA / "lfw").glob("*/*.jpg"))
    files += lfw[:: max(1, len(lfw) // 300)]
    return files


def test_no_real_photo_is_reported_damaged() -> None:
    files = _real_jpegs()
    if not files:
        pytest.skip("../shared/data is not available")
    flagged = [(f.name, jpeg_damage(f.read_bytes())) for f in files]
    assert [x for x in flagged if x[1] is not None] == []


def test_real_photo_with_a_lost_chunk_is_refused(tmp_path: Path) -> None:
    files = sorted((SHARED_DATA / "plates").glob("*/*.jpg"))
    if not files:
        pytest.skip("../shared/data/plates is not available")
    data = files[0].read_bytes()
    start, end = _scan(data)
    cut = _safe_pos(data, start + (end - start) // 4)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data[:cut] + data[cut + 2048 :])
    with pytest.raises(InputError, match="corrupt image data"):
        read_image(path)


# ----------------------------------------------------------------------------- PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_bad_crc(pixels: np.ndarray, chunk: bytes) -> bytes:
    """A valid PNG of ``pixels`` with a tEXt chunk, then the CRC of ``chunk`` broken."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = buf.getvalue()
    iend = data.rindex(b"IEND") - 4
    data = data[:iend] + _png_chunk(b"tEXt", b"Comment\x00hello") + data[iend:]
    out = bytearray(data)
    i = out.index(chunk)
    length = struct.unpack(">I", out[i - 4 : i])[0]
    out[i + 4 + length] ^= 0x01  # the first byte of the CRC
    return bytes(out)


class TestCorruptPng:
    def test_bad_idat_crc_refused(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        # PngSuite xcsn0g01: an IDAT chunk with an incorrect checksum
        data = _png_with_bad_crc(noise_rgb, b"IDAT")
        with Image.open(io.BytesIO(data)) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), noise_rgb)  # silent
        path = tmp_path / "xcsn.png"
        path.write_bytes(data)
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "corrupt image data (", "IDAT", "--allow-damaged")
        loaded = read_image(path, allow_damaged=True)
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)
        assert loaded.damage is not None and "IDAT" in loaded.damage

    def test_bad_ancillary_crc_refused(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        path = tmp_path / "text.png"
        path.write_bytes(_png_with_bad_crc(noise_rgb, b"tEXt"))
        with pytest.raises(InputError, match="corrupt image data"):
            read_image(path)

    def test_clean_png_with_chunks_accepted(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        data = bytearray(_png_with_bad_crc(noise_rgb, b"tEXt"))
        i = data.index(b"tEXt")
        data[i + 4 + len(b"Comment\x00hello")] ^= 0x01  # undo
        path = tmp_path / "ok.png"
        path.write_bytes(bytes(data))
        assert read_image(path).damage is None

    def test_broken_pixel_data_decoded_leniently_when_allowed(
        self, tmp_path: Path, noise_rgb: np.ndarray
    ) -> None:
        big = np.tile(noise_rgb, (8, 8, 1))
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, format="PNG")
        data = bytearray(buf.getvalue())
        i = data.index(b"IDAT")
        data[i + 4 + 3000 : i + 4 + 3040] = bytes(40)  # the zlib stream breaks there
        path = tmp_path / "broken.png"
        path.write_bytes(bytes(data))
        with pytest.raises(InputError, match="corrupt image data"):
            read_image(path)
        loaded = read_image(path, allow_damaged=True)
        assert loaded.damage is not None and loaded.damage.startswith("corrupt image data")
        np.testing.assert_array_equal(loaded.pixels[:2], big[:2])

    def test_truncated_png_allowed(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        big = np.tile(noise_rgb, (8, 8, 1))
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, format="PNG")
        path = tmp_path / "cut.png"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(InputError, match="truncated"):
            read_image(path)
        loaded = read_image(path, allow_damaged=True)
        assert loaded.damage is not None and "truncated" in loaded.damage
        np.testing.assert_array_equal(loaded.pixels[:8], big[:8])  # what was there


# ----------------------------------------------------------------------------- frames


def _gif_blocks(data: bytes) -> list[int]:
    """Offsets of the image descriptors (0x2C) of a GIF."""
    pos = 13
    if data[10] & 0x80:
        pos += 3 * (2 << (data[10] & 7))
    found = []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:
            found.append(pos)
            flags = data[pos + 9]
            pos += 10
            if flags & 0x80:
                pos += 3 * (2 << (flags & 7))
            pos += 1  # LZW minimum code size
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return found


def _three_frames() -> list[Image.Image]:
    return [Image.new("RGB", (10, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


def _broken_gif(kind: str) -> bytes:
    buf = io.BytesIO()
    frames = _three_frames()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    data = bytearray(buf.getvalue())
    second = _gif_blocks(bytes(data))[1]
    if kind == "colour table past the end":  # Pillow raised a bare IndexError
        data[second + 9] = 0xFF
        return bytes(data[: second + 10])
    # "descriptor cut short": Pillow raised a bare struct.error
    return bytes(data[: second + 5])


def _broken_tiff() -> bytes:
    """Two pages; the second IFD has no image width (Pillow raised a bare TypeError)."""
    buf = io.BytesIO()
    frames = _three_frames()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:2])
    t = bytearray(buf.getvalue())
    assert t[:2] == b"II"
    ifd0 = struct.unpack_from("<I", t, 4)[0]
    n0 = struct.unpack_from("<H", t, ifd0)[0]
    ifd1 = struct.unpack_from("<I", t, ifd0 + 2 + 12 * n0)[0]
    struct.pack_into("<H", t, ifd1, 1)
    struct.pack_into("<HHII", t, ifd1 + 2, 0x0106, 3, 1, 2)  # only PhotometricInterpretation
    struct.pack_into("<I", t, ifd1 + 14, 0)
    return bytes(t)


BROKEN_FRAMES = {
    "gif-colour-table": ("anim.gif", _broken_gif("colour table past the end")),
    "gif-descriptor-cut": ("anim.gif", _broken_gif("descriptor cut short")),
    "tiff-second-ifd": ("pages.tif", _broken_tiff()),
}


class TestBrokenLaterFrames:
    @pytest.mark.parametrize("case", sorted(BROKEN_FRAMES))
    def test_refused_with_one_line(self, tmp_path: Path, case: str) -> None:
        name, data = BROKEN_FRAMES[case]
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "corrupt image data (a later frame is broken")

    @pytest.mark.parametrize("case", sorted(BROKEN_FRAMES))
    def test_first_frame_with_allow_damaged(self, tmp_path: Path, case: str) -> None:
        name, data = BROKEN_FRAMES[case]
        path = tmp_path / name
        path.write_bytes(data)
        loaded = read_image(path, allow_damaged=True)
        assert loaded.n_frames == 1
        np.testing.assert_array_equal(loaded.pixels, np.broadcast_to((255, 0, 0), (6, 10, 3)))
        assert loaded.damage is not None and "a later frame is broken" in loaded.damage

    def test_any_exception_from_frame_count_becomes_input_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        frames = _three_frames()
        path = tmp_path / "anim.gif"
        frames[0].save(path, save_all=True, append_images=frames[1:])
        from PIL import GifImagePlugin

        def explode(self: object) -> int:
            raise ZeroDivisionError("boom\nsecond line")

        monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(explode))
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line(exc, path, "ZeroDivisionError: boom second line")


# ----------------------------------------------------------------------------- odd arguments


class TestOddArguments:
    @pytest.mark.parametrize("bad", [["a.jpg"], ("a.jpg",), b"a.jpg", 3, None, {"a.jpg"}])
    def test_read_image(self, bad: object) -> None:
        with pytest.raises(InputError) as exc:
            read_image(bad)  # type: ignore[arg-type]
        _assert_one_line(exc, None, "expected a file path, got ")

    def test_write_image(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        with pytest.raises(InputError, match="expected a file path, got list"):
            write_image([str(tmp_path / "a.png")], noise_rgb)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="expected a folder path, got list"):
            write_image(tmp_path / "a.png", noise_rgb, root=[tmp_path])  # type: ignore[arg-type]
        with pytest.raises(InputError, match="NUL"):
            write_image(str(tmp_path / "a\x00.png"), noise_rgb)
        assert list(tmp_path.iterdir()) == []

    def test_path_helpers(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="got list"):
            is_image_path(["a.jpg"])  # type: ignore[arg-type]
        with pytest.raises(InputError, match="got list"):
            output_format_for(["a.jpg"], None)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="got list"):
            output_path_for(["a.jpg"], input_root=None, out_dir=tmp_path, format="png")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="got list"):
            output_path_for("a.jpg", input_root=None, out_dir=[tmp_path], format="png")  # type: ignore[arg-type]

    def test_protected_paths(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        write_image(tmp_path / "a.png", noise_rgb)  # an existing destination is checked
        with pytest.raises(InputError, match="got list"):
            write_image(tmp_path / "a.png", noise_rgb, protected_paths=[["x.png"]])  # type: ignore[list-item]
        with pytest.raises(InputError, match="not a single path"):
            write_image(tmp_path / "a.png", noise_rgb, protected_paths=str(tmp_path / "x.png"))


# ----------------------------------------------------------------------------- arrays


class TestArrayPixelLimit:
    def test_over_the_limit_refused(self) -> None:
        with pytest.raises(InputError) as exc:
            load_array(np.zeros((100, 200, 3), np.uint8), max_pixels=19_999)
        msg = str(exc.value)
        assert msg == ("20,000 pixels exceeds the limit of 19,999 (use --max-pixels to raise it)")

    def test_at_the_limit_accepted(self) -> None:
        assert load_array(np.zeros((100, 200), np.uint8), max_pixels=20_000).size == (200, 100)

    def test_default_limit(self) -> None:
        # a view, so nothing of this size is allocated
        huge = np.broadcast_to(np.zeros(1, np.uint8), (DEFAULT_MAX_PIXELS // 1000 + 1, 1000))
        with pytest.raises(InputError, match="exceeds the limit of 100,000,000"):
            load_array(huge)

    @pytest.mark.parametrize("bad", [0, -1, 2.5, True])
    def test_bad_limit(self, bad: object) -> None:
        with pytest.raises(ValueError, match="max_pixels"):
            load_array(np.zeros((2, 2), np.uint8), max_pixels=bad)  # type: ignore[arg-type]
