"""Writing images (formats, alpha, atomic replace, inputs never overwritten); output names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pixveil.errors import InputError, OutputError
from pixveil.io import (
    FORMAT_EXTENSIONS,
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    ProtectedPaths,
    is_image_path,
    normalize_format,
    output_format_for,
    output_path_for,
    read_image,
    write_image,
)

PIL_NAME = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "webp": "WEBP"}


def _alpha(shape: tuple[int, ...]) -> np.ndarray:
    a = np.full(shape, 255, np.uint8)
    a[:, : shape[1] // 3] = 0
    a[:, shape[1] // 3 : 2 * shape[1] // 3] = 128
    return a


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- formats


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("fmt", "quality", "max_mean_error"),
        [
            ("png", 95, 0.0),
            ("bmp", 95, 0.0),
            ("webp", 100, 0.0),
            ("webp", 90, 4.0),
            ("jpg", 95, 3.0),
            ("jpg", 75, 7.0),
        ],
    )
    def test_every_format(
        self, tmp_path: Path, astro_crop: np.ndarray, fmt: str, quality: int, max_mean_error: float
    ) -> None:
        path = tmp_path / f"out{FORMAT_EXTENSIONS[fmt][0]}"
        assert write_image(path, astro_crop, quality=quality) == path
        with Image.open(path) as im:
            assert im.format == PIL_NAME[fmt]
        loaded = read_image(path)
        assert loaded.pixels.shape == astro_crop.shape
        assert loaded.alpha is None
        err = np.abs(loaded.pixels.astype(int) - astro_crop).mean()
        assert err <= max_mean_error
        if max_mean_error == 0.0:
            np.testing.assert_array_equal(loaded.pixels, astro_crop)

    def test_jpeg_quality_is_used(self, tmp_path: Path, astro_crop: np.ndarray) -> None:
        write_image(tmp_path / "q30.jpg", astro_crop, quality=30)
        write_image(tmp_path / "q95.jpg", astro_crop, quality=95)
        assert (tmp_path / "q30.jpg").stat().st_size < 0.6 * (tmp_path / "q95.jpg").stat().st_size

    @pytest.mark.parametrize("fmt", ["png", "webp"])
    def test_alpha_kept(self, tmp_path: Path, noise_rgb: np.ndarray, fmt: str) -> None:
        alpha = _alpha(noise_rgb.shape[:2])
        path = tmp_path / f"a.{fmt}"
        write_image(path, noise_rgb, alpha=alpha, quality=100)
        loaded = read_image(path)
        np.testing.assert_array_equal(loaded.alpha, alpha)
        visible = alpha > 0  # lossless WebP may drop the colour of invisible pixels
        np.testing.assert_array_equal(loaded.pixels[visible], noise_rgb[visible])

    @pytest.mark.parametrize("fmt", ["jpg", "bmp"])
    def test_alpha_composited_on_white(
        self, tmp_path: Path, astro_crop: np.ndarray, fmt: str
    ) -> None:
        alpha = _alpha(astro_crop.shape[:2])
        path = tmp_path / f"a.{fmt}"
        write_image(path, astro_crop, alpha=alpha, quality=100)
        loaded = read_image(path)
        assert loaded.alpha is None
        a = alpha[..., None] / 255.0
        expected = np.rint(astro_crop * a + 255.0 * (1.0 - a))
        diff = np.abs(loaded.pixels.astype(int) - expected.astype(int))
        if fmt == "bmp":
            assert diff.max() == 0
        else:
            assert diff.mean() < 4.0
        w3 = astro_crop.shape[1] // 3
        assert loaded.pixels[:, :w3].min() >= (255 if fmt == "bmp" else 200)  # transparent: white

    def test_format_argument_overrides_extension(
        self, tmp_path: Path, noise_rgb: np.ndarray
    ) -> None:
        path = tmp_path / "named.dat"
        write_image(path, noise_rgb, format="PNG")
        with Image.open(path) as im:
            assert im.format == "PNG"
        write_image(tmp_path / "j.jpeg", noise_rgb, format="jpeg")
        with Image.open(tmp_path / "j.jpeg") as im:
            assert im.format == "JPEG"

    def test_unknown_extension_without_format(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        with pytest.raises(OutputError, match="pass format="):
            write_image(tmp_path / "x.tif", noise_rgb)
        assert not (tmp_path / "x.tif").exists()

    def test_icc_profile_only_when_asked(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        for fmt in ("png", "jpg", "webp"):
            write_image(tmp_path / f"no.{fmt}", noise_rgb)
            write_image(tmp_path / f"yes.{fmt}", noise_rgb, icc_profile=srgb)
            with Image.open(tmp_path / f"no.{fmt}") as im:
                assert "icc_profile" not in im.info or not im.info["icc_profile"]
            with Image.open(tmp_path / f"yes.{fmt}") as im:
                assert im.info.get("icc_profile") == srgb
        write_image(tmp_path / "yes.bmp", noise_rgb, icc_profile=srgb)  # cannot hold one
        assert srgb not in (tmp_path / "yes.bmp").read_bytes()


class TestValidation:
    @pytest.mark.parametrize(
        "pixels",
        [
            np.zeros((4, 4), np.uint8),
            np.zeros((4, 4, 4), np.uint8),
            np.zeros((4, 4, 3), np.float32),
            np.zeros((0, 4, 3), np.uint8),
            [[0, 0, 0]],
        ],
    )
    def test_bad_pixels(self, tmp_path: Path, pixels: object) -> None:
        with pytest.raises(InputError, match="pixels"):
            write_image(tmp_path / "x.png", pixels)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []

    def test_bad_alpha(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        with pytest.raises(InputError, match="alpha"):
            write_image(tmp_path / "x.png", noise_rgb, alpha=np.zeros((2, 2), np.uint8))
        with pytest.raises(InputError, match="alpha"):
            write_image(tmp_path / "x.png", noise_rgb, alpha=np.zeros(noise_rgb.shape[:2]))

    @pytest.mark.parametrize("quality", [0, 101, 50.5, True, "95"])
    def test_bad_quality(self, tmp_path: Path, noise_rgb: np.ndarray, quality: object) -> None:
        with pytest.raises(InputError, match="quality"):
            write_image(tmp_path / "x.jpg", noise_rgb, quality=quality)  # type: ignore[arg-type]

    @pytest.mark.parametrize("icc", [b"", "profile", 5])
    def test_bad_icc(self, tmp_path: Path, noise_rgb: np.ndarray, icc: object) -> None:
        with pytest.raises(InputError, match="icc_profile"):
            write_image(tmp_path / "x.png", noise_rgb, icc_profile=icc)  # type: ignore[arg-type]

    def test_bad_format(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        with pytest.raises(InputError, match="unknown output format 'gif'"):
            write_image(tmp_path / "x.png", noise_rgb, format="gif")


# ----------------------------------------------------------------------------- safety


class TestNeverOverwriteInputs:
    @pytest.fixture
    def source(self, tmp_path: Path, noise_rgb: np.ndarray) -> Path:
        src = tmp_path / "in" / "photo.png"
        src.parent.mkdir()
        Image.fromarray(noise_rgb).save(src)
        return src

    def _refused(self, target: Path, source: Path, pixels: np.ndarray, protected: object) -> None:
        before = source.read_bytes()
        with pytest.raises(OutputError, match="refusing to overwrite the input") as exc:
            write_image(target, pixels[::-1].copy(), protected_paths=protected)  # type: ignore[arg-type]
        assert "\n" not in str(exc.value)
        assert source.read_bytes() == before
        assert _leftovers(source.parent) == []

    def test_same_path(self, source: Path, noise_rgb: np.ndarray) -> None:
        self._refused(source, source, noise_rgb, [source])
        self._refused(source, source, noise_rgb, [str(source)])
        self._refused(source, source, noise_rgb, ProtectedPaths([source]))

    def test_other_spelling(
        self, source: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(source.parent)
        self._refused(Path("photo.png"), source, noise_rgb, [source])
        self._refused(source.parent / ".." / "in" / "photo.png", source, noise_rgb, [source])
        self._refused(source, source, noise_rgb, [Path("./photo.png")])

    def test_symlink_to_input(self, source: Path, noise_rgb: np.ndarray, tmp_path: Path) -> None:
        link = tmp_path / "link.png"
        link.symlink_to(source)
        self._refused(link, source, noise_rgb, [source])
        self._refused(source, source, noise_rgb, [link])
        linked_dir = tmp_path / "linked"
        linked_dir.symlink_to(source.parent, target_is_directory=True)
        self._refused(linked_dir / "photo.png", source, noise_rgb, [source])

    def test_hard_link_to_input(self, source: Path, noise_rgb: np.ndarray, tmp_path: Path) -> None:
        hard = tmp_path / "hard.png"
        os.link(source, hard)
        self._refused(hard, source, noise_rgb, [source])

    def test_other_files_are_written(
        self, source: Path, noise_rgb: np.ndarray, tmp_path: Path
    ) -> None:
        out = tmp_path / "out" / "photo.png"
        write_image(out, noise_rgb, protected_paths=[source])
        np.testing.assert_array_equal(read_image(out).pixels, noise_rgb)

    def test_protected_paths_object_is_reusable(self, source: Path, tmp_path: Path) -> None:
        guard = ProtectedPaths([source, tmp_path / "does-not-exist.png"])
        assert len(guard) == 2
        assert guard.match(source) == source
        assert guard.match(tmp_path / "does-not-exist.png") == tmp_path / "does-not-exist.png"
        assert guard.match(tmp_path / "other.png") is None


class TestAtomicWrite:
    def test_creates_parent_folders(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        path = tmp_path / "a" / "b" / "c.png"
        write_image(path, noise_rgb)
        assert path.is_file()

    def test_replaces_an_existing_output(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        path = tmp_path / "o.png"
        path.write_bytes(b"old")
        write_image(path, noise_rgb)
        np.testing.assert_array_equal(read_image(path).pixels, noise_rgb)
        assert _leftovers(tmp_path) == []

    def test_permissions_follow_umask(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        old = os.umask(0o022)
        try:
            write_image(tmp_path / "p.png", noise_rgb)
        finally:
            os.umask(old)
        assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644

    def test_directory_target(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        (tmp_path / "d.png").mkdir()
        with pytest.raises(OutputError, match="is a directory"):
            write_image(tmp_path / "d.png", noise_rgb)

    def test_parent_is_a_file(self, tmp_path: Path, noise_rgb: np.ndarray) -> None:
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(OutputError, match="cannot create the folder"):
            write_image(tmp_path / "f" / "x.png", noise_rgb)

    @pytest.mark.parametrize("exc_type", [OSError, ValueError])
    def test_failed_write_leaves_nothing(
        self,
        tmp_path: Path,
        noise_rgb: np.ndarray,
        monkeypatch: pytest.MonkeyPatch,
        exc_type: type[Exception],
    ) -> None:
        def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
            fp.write(b"\x89PNG partial data")  # type: ignore[attr-defined]
            raise exc_type("disk full")

        existing = tmp_path / "existing.png"
        write_image(existing, noise_rgb)
        before = existing.read_bytes()
        monkeypatch.setattr(Image.Image, "save", failing_save)
        with pytest.raises(OutputError, match="disk full") as exc:
            write_image(tmp_path / "new.png", noise_rgb)
        assert exc.value.path == tmp_path / "new.png"
        with pytest.raises(OutputError):
            write_image(existing, noise_rgb[::-1].copy())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.png"]
        assert existing.read_bytes() == before

    def test_interrupted_write_leaves_nothing(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def interrupted(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
            fp.write(b"partial")  # type: ignore[attr-defined]
            raise KeyboardInterrupt

        monkeypatch.setattr(Image.Image, "save", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_image(tmp_path / "new.png", noise_rgb)
        assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- paths


class TestPaths:
    def test_constants(self) -> None:
        assert OUTPUT_FORMATS == ("png", "jpg", "bmp", "webp")
        assert {
            ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
            ".pgm", ".ppm", ".pbm", ".pnm",
        } == IMAGE_EXTENSIONS  # fmt: skip
        assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)

    @pytest.mark.parametrize(
        ("name", "expected"),
        [("a.jpg", True), ("A.JPEG", True), ("x.Tiff", True), ("b.pnm", True), ("c.txt", False),
         ("jpg", False), (".jpg", False), ("d.jpg.json", False), ("e", False)],
    )  # fmt: skip
    def test_is_image_path(self, name: str, expected: bool) -> None:
        assert is_image_path(name) is expected
        assert is_image_path(Path("dir") / name) is expected

    @pytest.mark.parametrize(
        ("name", "expected"),
        [("a.jpg", "jpg"), ("a.JPEG", "jpg"), ("a.jpe", "jpg"), ("a.png", "png"),
         ("a.bmp", "bmp"), ("a.webp", "webp"), ("a.tif", "png"), ("a.tiff", "png"),
         ("a.gif", "png"), ("a.pgm", "png"), ("a.ppm", "png"), ("a.pbm", "png"),
         ("a.pnm", "png"), ("<array>", "png")],
    )  # fmt: skip
    def test_output_format_default(self, name: str, expected: str) -> None:
        assert output_format_for(Path(name), None) == expected
        assert expected in OUTPUT_FORMATS

    @pytest.mark.parametrize(
        ("requested", "expected"),
        [("png", "png"), ("JPG", "jpg"), ("jpeg", "jpg"), (".webp", "webp"), ("bmp", "bmp")],
    )
    def test_output_format_requested(self, requested: str, expected: str) -> None:
        assert output_format_for("a.gif", requested) == expected
        assert normalize_format(requested) == expected

    @pytest.mark.parametrize("bad", ["gif", "tiff", "", "png2"])
    def test_output_format_unknown(self, bad: str) -> None:
        with pytest.raises(InputError, match="unknown output format"):
            output_format_for("a.png", bad)

    def test_output_path_single_file(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        assert (
            output_path_for(
                tmp_path / "x" / "IMG_1.JPG", input_root=None, out_dir=out, format="jpg"
            )
            == out / "IMG_1.JPG"
        )
        assert (
            output_path_for(tmp_path / "scan.tif", input_root=None, out_dir=out, format="png")
            == out / "scan.png"
        )
        assert (
            output_path_for(tmp_path / "photo.jpeg", input_root=None, out_dir=out, format="webp")
            == out / "photo.webp"
        )
        assert (
            output_path_for("noext", input_root=None, out_dir=out, format="png")
            == out / "noext.png"
        )
        assert (
            output_path_for("v1.2.photo.gif", input_root=None, out_dir=out, format="png")
            == out / "v1.2.photo.png"
        )

    def test_output_path_mirrors_tree(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        root = tmp_path / "album"
        out = tmp_path / "out"
        src = root / "2024" / "trip" / "a.gif"
        assert output_path_for(src, input_root=root, out_dir=out, format="png") == (
            out / "2024" / "trip" / "a.png"
        )
        monkeypatch.chdir(tmp_path)
        assert (
            output_path_for(Path("album/2024/b.jpg"), input_root=root, out_dir=out, format="jpg")
            == out / "2024" / "b.jpg"
        )

    def test_output_path_outside_root(self, tmp_path: Path) -> None:
        with pytest.raises(OutputError, match="not inside the input folder"):
            output_path_for(
                tmp_path / "elsewhere" / "a.png",
                input_root=tmp_path / "album",
                out_dir=tmp_path / "out",
                format="png",
            )
