"""Reading images: formats, colour modes, EXIF orientation, bad files, limits."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps

from pixveil.errors import InputError
from pixveil.io import DEFAULT_MAX_PIXELS, LoadedImage, load_array, read_image

# EXIF orientation -> the Pillow transpose that shows the stored pixels upright
# (the table of the EXIF/TIFF standard, as in ImageOps.exif_transpose).
UPRIGHT_OP = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# ... and its inverse, which makes the stored pixels from the upright picture.
STORE_OP = {**UPRIGHT_OP, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _stored_for(upright: np.ndarray, orientation: int) -> Image.Image:
    img = Image.fromarray(upright)
    return img if orientation == 1 else img.transpose(STORE_OP[orientation])


def _assert_one_line_error(exc: pytest.ExceptionInfo[InputError], path: Path, reason: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    assert path.name in msg
    assert reason in msg, msg
    assert exc.value.path == path


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ----------------------------------------------------------------------------- formats


class TestFormats:
    @pytest.mark.parametrize(
        ("ext", "pil_format", "options"),
        [
            (".png", "PNG", {}),
            (".bmp", "BMP", {}),
            (".tif", "TIFF", {}),
            (".tiff", "TIFF", {"compression": "tiff_deflate"}),
            (".webp", "WEBP", {"lossless": True, "exact": True}),
            (".ppm", "PPM", {}),
        ],
    )
    def test_lossless_formats_read_exactly(
        self, tmp_path: Path, noise_rgb: np.ndarray, ext: str, pil_format: str, options: dict
    ) -> None:
        path = tmp_path / f"img{ext}"
        Image.fromarray(noise_rgb).save(path, format=pil_format, **options)
        loaded = read_image(path)
        assert isinstance(loaded, LoadedImage)
        assert loaded.format == pil_format
        assert loaded.path == path
        assert loaded.pixels.dtype == np.uint8
        assert loaded.pixels.flags.c_contiguous
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)
        assert loaded.alpha is None
        assert loaded.n_frames == 1
        assert loaded.size == (noise_rgb.shape[1], noise_rgb.shape[0])

    @pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".jpe"])
    def test_jpeg_reads_close_to_source(
        self, tmp_path: Path, astro_crop: np.ndarray, ext: str
    ) -> None:
        path = tmp_path / f"img{ext}"
        Image.fromarray(astro_crop).save(path, format="JPEG", quality=95)
        loaded = read_image(path)
        assert loaded.format == "JPEG"
        assert loaded.pixels.shape == astro_crop.shape
        assert np.abs(loaded.pixels.astype(int) - astro_crop).mean() < 3.0

    def test_grey_pgm_and_bitmap_pbm(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        grey = noise_rgb[..., 0]
        Image.fromarray(grey).save(tmp_path / "g.pgm")
        loaded = read_image(tmp_path / "g.pgm")
        assert loaded.format == "PPM"
        np.testing.assert_array_equal(loaded.pixels, np.dstack([grey] * 3))
        bits = grey > 127
        Image.fromarray(bits).save(tmp_path / "b.pbm")
        loaded = read_image(tmp_path / "b.pbm")
        np.testing.assert_array_equal(loaded.pixels[..., 1], np.where(bits, 255, 0))

    def test_extension_does_not_decide_the_format(
        self, tmp_path: Path, noise_rgb: np.ndarray
    ) -> None:
        path = tmp_path / "actually_png.jpg"
        Image.fromarray(noise_rgb).save(path, format="PNG")
        loaded = read_image(path)
        assert loaded.format == "PNG"
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)

    def test_str_path_accepted(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        path = tmp_path / "a.png"
        Image.fromarray(noise_rgb).save(path)
        loaded = read_image(str(path))
        assert loaded.path == path
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)


# ----------------------------------------------------------------------------- colour modes


class TestModes:
    def test_L(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        grey = noise_rgb[..., 0]
        Image.fromarray(grey).save(tmp_path / "l.png")
        loaded = read_image(tmp_path / "l.png")
        assert loaded.alpha is None
        np.testing.assert_array_equal(loaded.pixels, np.dstack([grey] * 3))

    def test_LA_keeps_alpha(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        la = noise_rgb[..., :2]
        Image.merge("LA", [Image.fromarray(la[..., 0]), Image.fromarray(la[..., 1])]).save(
            tmp_path / "la.png"
        )
        loaded = read_image(tmp_path / "la.png")
        assert loaded.alpha is not None
        np.testing.assert_array_equal(loaded.alpha, la[..., 1])
        np.testing.assert_array_equal(loaded.pixels, np.dstack([la[..., 0]] * 3))

    def test_mode_1(self, tmp_path: Path) -> None:
        bits = np.zeros((9, 13), bool)
        bits[2:5, 3:11] = True
        Image.fromarray(bits).save(tmp_path / "one.png")
        with Image.open(tmp_path / "one.png") as im:
            assert im.mode == "1"
        loaded = read_image(tmp_path / "one.png")
        np.testing.assert_array_equal(loaded.pixels[..., 2], np.where(bits, 255, 0))

    def test_P_without_transparency(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        pal = Image.fromarray(astro_crop).quantize(colors=32)
        pal.save(tmp_path / "p.png")
        loaded = read_image(tmp_path / "p.png")
        assert loaded.alpha is None
        np.testing.assert_array_equal(loaded.pixels, np.asarray(pal.convert("RGB")))

    def test_P_with_transparency(self, tmp_path: Path) -> None:
        idx = np.zeros((8, 10), np.uint8)
        idx[:, 5:] = 1
        img = Image.frombytes("P", (10, 8), idx.tobytes())
        img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        img.save(tmp_path / "pt.png", transparency=1)
        loaded = read_image(tmp_path / "pt.png")
        assert loaded.alpha is not None
        np.testing.assert_array_equal(loaded.alpha, np.where(idx == 1, 0, 255))
        np.testing.assert_array_equal(loaded.pixels[:, :5], np.broadcast_to([255, 0, 0], (8, 5, 3)))

    def test_RGB_with_transparent_colour(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        rgb = noise_rgb.copy()
        rgb[0, 0] = (1, 2, 3)
        Image.fromarray(rgb).save(tmp_path / "trns.png", transparency=(1, 2, 3))
        loaded = read_image(tmp_path / "trns.png")
        assert loaded.alpha is not None
        assert loaded.alpha[0, 0] == 0
        assert (loaded.alpha == 0).sum() == np.all(rgb == (1, 2, 3), axis=2).sum()

    def test_RGBA(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        a = np.random.default_rng(5).integers(0, 256, noise_rgb.shape[:2], dtype=np.uint8)
        Image.fromarray(np.dstack([noise_rgb, a])).save(tmp_path / "rgba.png")
        loaded = read_image(tmp_path / "rgba.png")
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)
        np.testing.assert_array_equal(loaded.alpha, a)

    def test_CMYK_jpeg_adobe_inverted(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        path = tmp_path / "cmyk.jpg"
        Image.fromarray(astro_crop).convert("CMYK").save(path, quality=95)
        assert b"Adobe" in path.read_bytes()  # libjpeg's APP14 marker: inverted CMYK
        loaded = read_image(path)
        assert loaded.format == "JPEG"
        assert loaded.pixels.shape == astro_crop.shape
        # colours right, not inverted (an inverted read would be ~120 off)
        assert np.abs(loaded.pixels.astype(int) - astro_crop).mean() < 6.0

    def test_16bit_png_uses_full_range(self, tmp_path: Path) -> None:
        v = np.linspace(0, 65535, 24 * 32).astype(np.uint16).reshape(24, 32)
        Image.fromarray(v).save(tmp_path / "g16.png")
        with Image.open(tmp_path / "g16.png") as im:
            assert im.mode.startswith("I")
        loaded = read_image(tmp_path / "g16.png")
        g = loaded.pixels[..., 0].astype(int)
        assert np.abs(g - (v >> 8)).max() <= 1
        assert g.min() == 0 and g.max() == 255  # scaled, not clipped at 255
        np.testing.assert_array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])

    @pytest.mark.parametrize(("ext", "dtype"), [(".tif", ">u2"), (".pgm", "<u2")])
    def test_16bit_tiff_big_endian_and_pgm(self, tmp_path: Path, ext: str, dtype: str) -> None:
        v = np.linspace(0, 65535, 10 * 12).astype(np.uint16).reshape(10, 12)
        Image.fromarray(v.astype(dtype)).save(tmp_path / f"g16{ext}")
        loaded = read_image(tmp_path / f"g16{ext}")
        assert np.abs(loaded.pixels[..., 0].astype(int) - (v >> 8)).max() <= 1

    def test_float_and_int32_tiff(self, tmp_path: Path) -> None:
        f = np.linspace(0, 1, 120, dtype=np.float32).reshape(10, 12)
        Image.fromarray(f).save(tmp_path / "f.tif")
        np.testing.assert_array_equal(
            read_image(tmp_path / "f.tif").pixels[..., 0], np.rint(f * 255).astype(np.uint8)
        )
        i = (np.arange(120).reshape(10, 12) * 500).astype(np.int32)
        Image.fromarray(i).save(tmp_path / "i.tif")
        got = read_image(tmp_path / "i.tif").pixels[..., 0].astype(int)
        np.testing.assert_array_equal(got, np.rint(i / 257).astype(int))
        wide = np.arange(-60, 60, dtype=np.int32).reshape(10, 12) * 1000
        Image.fromarray(wide).save(tmp_path / "wide.tif")
        got = read_image(tmp_path / "wide.tif").pixels[..., 0]
        assert got.min() == 0 and got.max() == 255

    def test_rgb_icc_profile_kept_other_profiles_dropped(
        self, tmp_path: Path, noise_rgb: np.ndarray
    ) -> None:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        Image.fromarray(noise_rgb).save(tmp_path / "icc.png", icc_profile=srgb)
        assert read_image(tmp_path / "icc.png").icc_profile == srgb
        grey = bytearray(srgb)
        grey[16:20] = b"GRAY"
        Image.fromarray(noise_rgb[..., 0]).save(tmp_path / "gicc.png", icc_profile=bytes(grey))
        assert read_image(tmp_path / "gicc.png").icc_profile is None
        Image.fromarray(noise_rgb).save(tmp_path / "none.png")
        assert read_image(tmp_path / "none.png").icc_profile is None


# ----------------------------------------------------------------------------- frames


class TestFrames:
    COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))

    def _frames(self) -> list[Image.Image]:
        return [Image.new("RGB", (10, 6), c) for c in self.COLOURS]

    @pytest.mark.parametrize(
        ("name", "options"),
        [("anim.gif", {}), ("anim.webp", {"lossless": True}), ("pages.tif", {})],
    )
    def test_first_frame_and_count(self, tmp_path: Path, name: str, options: dict) -> None:
        frames = self._frames()
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], **options)
        loaded = read_image(tmp_path / name)
        assert loaded.n_frames == 3
        np.testing.assert_array_equal(loaded.pixels, np.broadcast_to(self.COLOURS[0], (6, 10, 3)))

    def test_multi_picture_jpeg(self, tmp_path: Path) -> None:
        # phones store extra pictures (depth maps, previews) after the main JPEG (MPO)
        frames = self._frames()
        frames[0].save(tmp_path / "mpo.jpg", format="MPO", save_all=True, append_images=frames[1:])
        loaded = read_image(tmp_path / "mpo.jpg")
        assert loaded.format == "MPO"
        assert loaded.n_frames == 3
        assert np.abs(loaded.pixels.astype(int) - self.COLOURS[0]).max() <= 2

    def test_gif_transparency(self, tmp_path: Path) -> None:
        img = Image.new("P", (6, 4), 0)
        img.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
        img.paste(1, (0, 0, 3, 4))
        img.save(tmp_path / "t.gif", transparency=1)
        loaded = read_image(tmp_path / "t.gif")
        assert loaded.format == "GIF"
        assert loaded.alpha is not None
        np.testing.assert_array_equal(loaded.alpha[:, :3], 0)
        np.testing.assert_array_equal(loaded.alpha[:, 3:], 255)
        np.testing.assert_array_equal(loaded.pixels[0, 5], (10, 20, 30))


# ----------------------------------------------------------------------------- orientation


class TestOrientation:
    @pytest.mark.parametrize("orientation", range(1, 9))
    @pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
    def test_lossless_exact_for_every_orientation(
        self, tmp_path: Path, astro_crop: np.ndarray, orientation: int, fmt: str
    ) -> None:
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        stored = _stored_for(astro_crop, orientation)
        if fmt == "TIFF":
            stored.save(path, format=fmt, tiffinfo={0x0112: orientation})
        elif fmt == "WEBP":
            stored.save(path, format=fmt, lossless=True, exif=_exif_with_orientation(orientation))
        else:
            stored.save(path, format=fmt, exif=_exif_with_orientation(orientation))
        loaded = read_image(path)
        assert loaded.pixels.shape == astro_crop.shape
        np.testing.assert_array_equal(loaded.pixels, astro_crop)

    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_jpeg_every_orientation_matches_pillow(
        self, tmp_path: Path, astro_crop: np.ndarray, orientation: int
    ) -> None:
        path = tmp_path / f"o{orientation}.jpg"
        _stored_for(astro_crop, orientation).save(
            path, quality=95, exif=_exif_with_orientation(orientation)
        )
        loaded = read_image(path)
        assert loaded.pixels.shape == astro_crop.shape
        assert np.abs(loaded.pixels.astype(int) - astro_crop).mean() < 3.0
        with Image.open(path) as im:
            reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        np.testing.assert_array_equal(loaded.pixels, reference)

    def test_alpha_follows_orientation(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        alpha = np.zeros(astro_crop.shape[:2], np.uint8)
        alpha[:20, :10] = 255  # top-left corner of the upright picture
        upright = np.dstack([astro_crop, alpha])
        stored = Image.fromarray(upright).transpose(STORE_OP[6])
        stored.save(tmp_path / "a6.png", exif=_exif_with_orientation(6))
        loaded = read_image(tmp_path / "a6.png")
        np.testing.assert_array_equal(loaded.pixels, astro_crop)
        np.testing.assert_array_equal(loaded.alpha, alpha)

    @pytest.mark.parametrize("value", [0, 9, 65535])
    def test_invalid_orientation_is_ignored(
        self, tmp_path: Path, noise_rgb: np.ndarray, value: int
    ) -> None:
        Image.fromarray(noise_rgb).save(tmp_path / "bad.png", exif=_exif_with_orientation(value))
        np.testing.assert_array_equal(read_image(tmp_path / "bad.png").pixels, noise_rgb)

    @pytest.mark.shared
    @pytest.mark.parametrize("kind", ["landscape", "portrait"])
    def test_real_photos_come_out_upright(self, exif_data: Path, kind: str) -> None:
        folder = exif_data / "orientation"
        reference = read_image(folder / f"{kind}_1.jpg").pixels
        ref_small = _downscale(reference)
        for n in range(1, 9):
            loaded = read_image(folder / f"{kind}_{n}.jpg")
            assert loaded.pixels.shape == reference.shape, n
            # the files were encoded separately, with another brightness and
            # digit, so compare 8x-reduced pictures; the upright one must beat
            # every other orientation of the same pixels by far.
            errors = {}
            for k in range(1, 9):
                candidate = np.ascontiguousarray(_transpose(loaded.pixels, k))
                if candidate.shape == reference.shape:
                    errors[k] = float(np.abs(_downscale(candidate) - ref_small).mean())
            assert errors[1] < 8.0, (n, errors)
            assert min(v for k, v in errors.items() if k != 1) > 3 * errors[1], (n, errors)


def _transpose(arr: np.ndarray, orientation: int) -> np.ndarray:
    img = Image.fromarray(arr)
    return np.asarray(img if orientation == 1 else img.transpose(UPRIGHT_OP[orientation]))


def _downscale(arr: np.ndarray, f: int = 8) -> np.ndarray:
    """Reduce by ``f`` and remove each channel's mean (the files differ in brightness)."""
    h, w = arr.shape[0] // f * f, arr.shape[1] // f * f
    a = arr[:h, :w].astype(np.float64)
    small = a.reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3))
    return small - small.mean(axis=(0, 1))


# ----------------------------------------------------------------------------- bad input


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_bitmap_png(path: Path, width: int, height: int) -> None:
    """A valid, all-black 1-bit PNG of width x height, written in ~50 kB without the pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


class TestBadInput:
    def test_truncated_jpeg_even_if_another_library_allows_truncation(
        self, tmp_path: Path, astro_crop: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # face_recognition sets this global to True when it is imported
        monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        buf = io.BytesIO()
        Image.fromarray(astro_crop).save(buf, format="JPEG", quality=90)
        path = tmp_path / "photo.jpg"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(InputError, match="truncated"):
            read_image(path)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for its owner

    @pytest.mark.parametrize("fraction", [0.02, 0.5, 0.98])
    def test_truncated_jpeg(self, tmp_path: Path, astro_crop: np.ndarray, fraction: float) -> None:
        buf = io.BytesIO()
        Image.fromarray(astro_crop).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        path = tmp_path / "photo.jpg"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "truncated image data (file ends early)")

    def test_jpeg_missing_only_its_end_marker(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        buf = io.BytesIO()
        Image.fromarray(astro_crop).save(buf, format="JPEG", quality=90)
        path = tmp_path / "photo.jpg"
        path.write_bytes(buf.getvalue()[:-2])
        with pytest.raises(InputError, match="truncated"):
            read_image(path)

    def test_truncated_png(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        buf = io.BytesIO()
        Image.fromarray(astro_crop).save(buf, format="PNG")
        path = tmp_path / "t.png"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "truncated")

    @pytest.mark.parametrize(
        ("offset", "reason"),
        [(30, "not a recognised image"), (60, "corrupt image data"), (200, "corrupt image data")],
    )
    def test_corrupt_png(
        self, tmp_path: Path, noise_rgb: np.ndarray, offset: int, reason: str
    ) -> None:
        buf = io.BytesIO()
        Image.fromarray(noise_rgb).save(buf, format="PNG")
        data = bytearray(buf.getvalue())
        data[offset] ^= 0xFF  # 30: the header's checksum; 60, 200: the compressed pixels
        path = tmp_path / "corrupt.png"
        path.write_bytes(bytes(data))
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, reason)

    def test_random_bytes(self, tmp_path: Path) -> None:
        path = tmp_path / "x.jpg"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "not a recognised image (cannot identify image file)")

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.jpg"
        path.touch()
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "file is empty (0 bytes)")

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "missing.png"
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "no such file")

    def test_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "folder.jpg"
        path.mkdir()
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "is a directory")

    @pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
    def test_fifo_does_not_block(self, tmp_path: Path) -> None:
        path = tmp_path / "pipe.jpg"
        os.mkfifo(path)
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "not a regular file")

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file"
    )
    def test_unreadable_file(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        path = tmp_path / "secret.png"
        Image.fromarray(noise_rgb).save(path)
        path.chmod(0)
        try:
            with pytest.raises(InputError) as exc:
                read_image(path)
            _assert_one_line_error(exc, path, "permission denied")
        finally:
            path.chmod(0o600)

    @pytest.mark.parametrize("fmt", ["TGA", "ICO", "PCX"])
    def test_other_pillow_formats_refused(
        self, tmp_path: Path, noise_rgb: np.ndarray, fmt: str
    ) -> None:
        path = tmp_path / "disguised.png"
        Image.fromarray(noise_rgb).save(path, format=fmt)
        with pytest.raises(InputError) as exc:
            read_image(path)
        _assert_one_line_error(exc, path, "not a recognised image")

    def test_not_a_path(self) -> None:
        with pytest.raises(InputError, match="expected a file path"):
            read_image(123)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [0, -5, 1.5, True, None])
    def test_bad_max_pixels(self, tmp_path: Path, bad: object) -> None:
        with pytest.raises(ValueError, match="max_pixels"):
            read_image(tmp_path / "x.png", max_pixels=bad)  # type: ignore[arg-type]


class TestPixelLimit:
    def test_20000_square_png_refused_before_decoding(self, tmp_path: Path) -> None:
        path = tmp_path / "bomb.png"
        _huge_bitmap_png(path, 20_000, 20_000)
        assert path.stat().st_size < 200_000
        start = time.perf_counter()
        with pytest.raises(InputError) as exc:
            read_image(path)
        assert time.perf_counter() - start < 2.0  # 400 Mpx were not decoded
        _assert_one_line_error(
            exc,
            path,
            "400,000,000 pixels exceeds the limit of 100,000,000 (use --max-pixels to raise it)",
        )
        assert DEFAULT_MAX_PIXELS == 100_000_000

    def test_own_limit(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        Image.fromarray(noise_rgb).save(tmp_path / "s.png")
        n = noise_rgb.shape[0] * noise_rgb.shape[1]
        assert read_image(tmp_path / "s.png", max_pixels=n).pixels.shape == noise_rgb.shape
        with pytest.raises(InputError, match=f"{n:,} pixels exceeds the limit of {n - 1:,}"):
            read_image(tmp_path / "s.png", max_pixels=n - 1)

    def test_pillow_warning_zone_does_not_leak(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Above Pillow's MAX_IMAGE_PIXELS it warns (an error under this test
        # configuration), above twice that it raises; our own limit governs.
        Image.fromarray(noise_rgb).save(tmp_path / "s.png")
        n = noise_rgb.shape[0] * noise_rgb.shape[1]
        for pillow_limit in (n - 1, n // 3):
            monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
            loaded = read_image(tmp_path / "s.png")
            np.testing.assert_array_equal(loaded.pixels, noise_rgb)
            assert pillow_limit == Image.MAX_IMAGE_PIXELS  # restored
            with pytest.raises(InputError, match="exceeds the limit"):
                read_image(tmp_path / "s.png", max_pixels=n // 2)


# ----------------------------------------------------------------------------- hygiene


def test_no_file_handles_left_open(tmp_path: Path, noise_rgb: np.ndarray) -> None:
    good = tmp_path / "g.png"
    Image.fromarray(noise_rgb).save(good)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    trunc = tmp_path / "t.png"
    trunc.write_bytes(good.read_bytes()[:-30])
    before = _open_fds()
    for _ in range(20):
        read_image(good)
        for p in (bad, trunc):
            with pytest.raises(InputError):
                read_image(p)
    assert _open_fds() == before


@pytest.mark.parametrize(("cut", "orientation"), [(10, 1), (60, 6)])
def test_corrupt_exif_is_no_error(
    tmp_path: Path, astro_crop: np.ndarray, cut: int, orientation: int
) -> None:
    # Pillow warns about the damaged EXIF block (an error under this test
    # configuration); reading goes on, with the orientation when it is readable.
    exif = _exif_with_orientation(6)
    exif[0x010F] = "SecretCam" * 20
    damaged = exif.tobytes()[:-cut]
    path = tmp_path / "damaged_exif.jpg"
    _stored_for(astro_crop, 6).save(path, quality=95, exif=damaged)
    filters_before = list(warnings.filters)
    loaded = read_image(path)
    assert warnings.filters == filters_before
    expected = astro_crop if orientation == 6 else np.asarray(_stored_for(astro_crop, 6))
    assert loaded.pixels.shape == expected.shape
    assert np.abs(loaded.pixels.astype(int) - expected).mean() < 3.0


def test_import_is_light() -> None:
    code = (
        "import sys, pixveil.io; "
        "bad = [m for m in ('cv2', 'onnxruntime', 'torch', 'skimage') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------------------- arrays


class TestLoadArray:
    def test_rgb_uint8_is_copied(self, noise_rgb: np.ndarray) -> None:
        src = noise_rgb.copy()
        loaded = load_array(src)
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)
        assert not np.shares_memory(loaded.pixels, src)
        assert loaded.alpha is None and loaded.path is None and loaded.format == "ARRAY"
        assert loaded.n_frames == 1 and loaded.icc_profile is None

    @pytest.mark.parametrize("shape", [(24, 32), (24, 32, 1)])
    def test_grey(self, noise_rgb: np.ndarray, shape: tuple[int, ...]) -> None:
        g = noise_rgb[..., 0].reshape(shape)
        loaded = load_array(g)
        np.testing.assert_array_equal(loaded.pixels, np.dstack([noise_rgb[..., 0]] * 3))

    def test_rgba(self, noise_rgb: np.ndarray) -> None:
        a = np.full(noise_rgb.shape[:2], 7, np.uint8)
        loaded = load_array(np.dstack([noise_rgb, a]))
        np.testing.assert_array_equal(loaded.pixels, noise_rgb)
        np.testing.assert_array_equal(loaded.alpha, a)
        assert loaded.pixels.flags.c_contiguous and loaded.alpha is not None
        assert loaded.alpha.flags.c_contiguous

    def test_uint16_full_range(self) -> None:
        v = np.array([[0, 255, 256, 32768, 65280, 65535]], np.uint16)
        got = load_array(v).pixels[0, :, 0].astype(int)
        assert np.abs(got - (v[0] >> 8)).max() <= 1
        assert got[0] == 0 and got[-1] == 255

    def test_bool_and_float(self) -> None:
        b = np.array([[True, False]])
        np.testing.assert_array_equal(load_array(b).pixels[0, :, 0], [255, 0])
        f = np.array([[0.0, 0.5, 1.0]], np.float32)
        np.testing.assert_array_equal(load_array(f).pixels[0, :, 0], [0, 128, 255])

    @pytest.mark.parametrize(
        "bad",
        [
            np.zeros((4, 4), np.int64),
            np.zeros((4, 4, 3), np.int8),
            np.zeros((4, 4, 2), np.uint8),
            np.zeros((4, 4, 5), np.uint8),
            np.zeros((4,), np.uint8),
            np.zeros((2, 4, 4, 3), np.uint8),
            np.zeros((0, 4, 3), np.uint8),
            np.full((4, 4), 1.5),
            np.full((4, 4), -0.1),
            np.full((4, 4), np.nan),
            np.zeros((4, 4), np.complex64),
            [[0, 1], [2, 3]],
        ],
    )
    def test_refused(self, bad: object) -> None:
        with pytest.raises(InputError):
            load_array(bad)  # type: ignore[arg-type]

    def test_loaded_image_validates(self, noise_rgb: np.ndarray) -> None:
        with pytest.raises(InputError):
            LoadedImage(noise_rgb.astype(np.float32), None, "PNG", None, None, 1)
        with pytest.raises(InputError):
            LoadedImage(noise_rgb, np.zeros((3, 3), np.uint8), "PNG", None, None, 1)
        with pytest.raises(InputError):
            LoadedImage(noise_rgb, None, "PNG", None, None, 0)
