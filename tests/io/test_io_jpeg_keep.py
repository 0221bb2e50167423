"""quality="keep": JPEG outputs coded at the source's level, with nothing of its own tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from pixveil.errors import InputError
from pixveil.io import JpegTables, load_array, read_image, write_image
from pixveil.io.jpeg import standard_table

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def _photo(h: int = 240, w: int = 320) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(11)
    base = np.dstack((xx * 0.7, yy * 0.9, 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 11.0)))
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def _save_jpeg(path: Path, pixels: np.ndarray, **options: object) -> Path:
    Image.fromarray(pixels).save(path, format="JPEG", **options)
    return path


def _coding(path: Path) -> tuple[dict[int, list[int]], str]:
    with Image.open(path) as im:
        return {k: list(v) for k, v in im.quantization.items()}, SAMPLING[
            JpegImagePlugin.get_sampling(im)
        ]


def _standard(q: int) -> dict[int, list[int]]:
    with Image.open(io.BytesIO(_jpeg_bytes(q))) as im:
        return {k: list(v) for k, v in im.quantization.items()}


def _jpeg_bytes(q: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_photo(16, 16)).save(buf, format="JPEG", quality=q)
    return buf.getvalue()


class TestJpegTables:
    @pytest.mark.parametrize("q", [1, 2, 10, 25, 49, 50, 51, 75, 90, 95, 99, 100])
    def test_standard_tables_are_recognised_exactly(self, q: int) -> None:
        std = _standard(q)
        tables = JpegTables.from_pillow(std, 2)
        assert tables is not None and tables.qtables == [std[0], std[1]]
        if q > 2:  # below, several qualities share the all-255 chroma table
            assert tables == JpegTables(q, q, "4:2:0")

    def test_own_scaling_matches_libjpeg(self) -> None:
        for q in (5, 50, 80, 97):
            std = _standard(q)
            assert JpegTables(q, q, "4:4:4").qtables == [std[0], std[1]]

    def test_custom_tables_reduced_to_standard_ones(self) -> None:
        rng = np.random.default_rng(3)
        own = {0: list(rng.integers(2, 40, 64)), 1: list(rng.integers(2, 60, 64))}
        tables = JpegTables.from_pillow(own, 1)
        assert tables is not None and tables.subsampling == "4:2:2"
        assert tables.qtables[0] != own[0] and tables.qtables[1] != own[1]
        # all that remains of the source: two numbers and a subsampling
        assert set(vars(tables)) == {"luma_quality", "chroma_quality", "subsampling"}

    def test_one_table_for_all_components(self) -> None:
        tables = JpegTables.from_pillow({0: list(standard_table(np.full(64, 16), 80))}, 2)
        assert tables is not None and 1 <= tables.chroma_quality <= 100

    @pytest.mark.parametrize("sampling", [-1, 3, 7])
    def test_unusual_subsampling_becomes_420(self, sampling: int) -> None:
        tables = JpegTables.from_pillow(_standard(80), sampling)
        assert tables is not None and tables.subsampling == "4:2:0"

    @pytest.mark.parametrize("bad", [None, {}, {0: [1, 2, 3]}, {0: "abc"}])
    def test_unusable_tables(self, bad: object) -> None:
        assert JpegTables.from_pillow(bad, 2) is None  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("args", "word"),
        [((0, 50, "4:2:0"), "luma_quality"), ((50, 101, "4:2:0"), "chroma_quality"),
         ((50, 50, "4:1:1"), "subsampling"), ((True, 50, "4:2:0"), "luma_quality")],
    )  # fmt: skip
    def test_validated(self, args: tuple, word: str) -> None:
        with pytest.raises(ValueError, match=word):
            JpegTables(*args)


class TestReadRecordsTables:
    @pytest.mark.parametrize(("subsampling", "name"), [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
    def test_jpeg(self, tmp_path: Path, subsampling: int, name: str) -> None:
        path = _save_jpeg(tmp_path / "a.jpg", _photo(), quality=83, subsampling=subsampling)
        assert read_image(path).jpeg_tables == JpegTables(83, 83, name)

    @pytest.mark.parametrize(("orientation", "name"), [(1, "4:2:2"), (3, "4:2:2"), (6, "4:2:0")])
    def test_422_turned_a_quarter(self, tmp_path: Path, orientation: int, name: str) -> None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = _save_jpeg(tmp_path / "a.jpg", _photo(), quality=83, subsampling=1, exif=exif)
        assert read_image(path).jpeg_tables == JpegTables(83, 83, name)

    def test_not_jpeg(self, tmp_path: Path) -> None:
        Image.fromarray(_photo()).save(tmp_path / "a.png")
        assert read_image(tmp_path / "a.png").jpeg_tables is None
        assert load_array(_photo()).jpeg_tables is None


class TestWriteKeep:
    @pytest.mark.parametrize("subsampling", [0, 1, 2])
    def test_output_coded_like_the_source(self, tmp_path: Path, subsampling: int) -> None:
        src = _save_jpeg(tmp_path / "in.jpg", _photo(), quality=72, subsampling=subsampling)
        loaded = read_image(src)
        out = write_image(
            tmp_path / "out.jpg", loaded.pixels, quality="keep", jpeg_tables=loaded.jpeg_tables
        )
        assert _coding(out) == _coding(src)

    def test_custom_tables_do_not_reach_the_output(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(8)
        own = [list(rng.integers(3, 30, 64)), list(rng.integers(3, 50, 64))]
        src = _save_jpeg(tmp_path / "in.jpg", _photo(), qtables=own)
        loaded = read_image(src)
        out = write_image(
            tmp_path / "out.jpg", loaded.pixels, quality="keep", jpeg_tables=loaded.jpeg_tables
        )
        tables, _ = _coding(out)
        assert tables[0] != own[0] and tables[1] != own[1]
        standard = [JpegTables(q, q, "4:2:0").qtables for q in range(1, 101)]
        assert tables[0] in [s[0] for s in standard]
        assert tables[1] in [s[1] for s in standard]

    def test_keep_is_not_larger_than_the_source(self, tmp_path: Path) -> None:
        # the issue: at 95 a JPEG grows; kept coding stays about the same size
        src = _save_jpeg(tmp_path / "in.jpg", _photo(480, 640), quality=80)
        loaded = read_image(src)
        at95 = write_image(tmp_path / "q95.jpg", loaded.pixels, quality=95)
        kept = write_image(
            tmp_path / "keep.jpg", loaded.pixels, quality="keep", jpeg_tables=loaded.jpeg_tables
        )
        size = src.stat().st_size
        assert at95.stat().st_size > 1.3 * size
        assert kept.stat().st_size <= size

    def test_keep_without_tables_is_95(self, tmp_path: Path) -> None:
        px = _photo()
        a = write_image(tmp_path / "a.jpg", px, quality="keep")
        b = write_image(tmp_path / "b.jpg", px, quality=95)
        assert a.read_bytes() == b.read_bytes()
        w1 = write_image(
            tmp_path / "a.webp", px, quality="keep", jpeg_tables=JpegTables(50, 50, "4:2:0")
        )
        w2 = write_image(tmp_path / "b.webp", px, quality=95)
        assert w1.read_bytes() == w2.read_bytes()

    def test_keep_output_has_no_metadata(self, tmp_path: Path) -> None:
        exif = Image.Exif()
        exif[0x010F] = "CameraMaker"
        exif[0x0131] = "Firmware 1.2.3"
        src = tmp_path / "in.jpg"
        Image.fromarray(_photo()).save(src, quality=85, exif=exif, comment=b"serial 123")
        loaded = read_image(src)
        out = write_image(
            tmp_path / "out.jpg", loaded.pixels, quality="keep", jpeg_tables=loaded.jpeg_tables
        )
        data = out.read_bytes()
        assert b"CameraMaker" not in data and b"Firmware" not in data and b"serial" not in data
        with Image.open(out) as im:
            assert not im.getexif() and "comment" not in im.info

    @pytest.mark.parametrize("bad", ["Keep", "max", "", 0, 101, 95.0, True])
    def test_bad_quality(self, tmp_path: Path, bad: object) -> None:
        with pytest.raises(
            InputError, match="quality must be an integer in \\[1, 100\\] or 'keep'"
        ):
            write_image(tmp_path / "a.jpg", _photo(), quality=bad)  # type: ignore[arg-type]

    def test_bad_tables(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="jpeg_tables must be a JpegTables"):
            write_image(tmp_path / "a.jpg", _photo(), quality="keep", jpeg_tables={0: [1] * 64})  # type: ignore[arg-type]


def test_real_photos_keep_is_smaller_than_95(tmp_path: Path) -> None:
    files = sorted((SHARED_DATA / "exif").glob("**/*.jpg"))
    if not files:
        pytest.skip("../shared/data/exif is not available")
    sizes = {"in": 0, "95": 0, "keep": 0}
    for i, f in enumerate(files):
        loaded = read_image(f)
        sizes["in"] += f.stat().st_size
        sizes["95"] += write_image(tmp_path / f"{i}a.jpg", loaded.pixels).stat().st_size
        sizes["keep"] += (
            write_image(
                tmp_path / f"{i}b.jpg",
                loaded.pixels,
                quality="keep",
                jpeg_tables=loaded.jpeg_tables,
            )
            .stat()
            .st_size
        )
    assert sizes["keep"] < sizes["in"] < sizes["95"], sizes
