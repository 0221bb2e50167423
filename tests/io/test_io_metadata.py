"""Outputs carry no metadata: checked on the file structure and with exiftool.

Sources are photos loaded with metadata (EXIF with GPS position, camera make and
model, dates, maker notes; XMP; IPTC; comments; PNG text chunks; ICC profiles):
generated here, and the real camera photos of ``../shared/data/exif`` when present.
Each is read and written in every output format, then the output is checked
against a positive list of structural fields; anything else is a failure.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from pixveil.io import FORMAT_EXTENSIONS, OUTPUT_FORMATS, read_image, write_image

SECRETS = (b"SecretCam", b"Model X", b"Jane Doe", b"secret comment", b"2021:05:04", b"MAKERNOTE")
MARKERS = (
    b"Exif\x00\x00",
    b"http://ns.adobe.com/xap/1.0/",
    b"Photoshop 3.0",
    b"8BIM",
    b"ICC_PROFILE",
)

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Doe</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)

# exiftool -G1 fields a clean output may have: file-system facts and image structure.
ALLOWED_GROUPS = frozenset({"System"})
ALLOWED_TAGS = frozenset(
    {
        "SourceFile",
        "ExifTool:ExifToolVersion",
        "File:FileType",
        "File:FileTypeExtension",
        "File:MIMEType",
        "File:ImageWidth",
        "File:ImageHeight",
        "File:EncodingProcess",
        "File:BitsPerSample",
        "File:ColorComponents",
        "File:YCbCrSubSampling",
        "File:BMPVersion",
        "File:Planes",
        "File:BitDepth",
        "File:Compression",
        "File:ImageLength",
        "File:PixelsPerMeterX",
        "File:PixelsPerMeterY",
        "File:NumColors",
        "File:NumImportantColors",
        "JFIF:JFIFVersion",
        "JFIF:ResolutionUnit",
        "JFIF:XResolution",
        "JFIF:YResolution",
        "PNG:ImageWidth",
        "PNG:ImageHeight",
        "PNG:BitDepth",
        "PNG:ColorType",
        "PNG:Compression",
        "PNG:Filter",
        "PNG:Interlace",
        "RIFF:ImageWidth",
        "RIFF:ImageHeight",
        "RIFF:VP8Version",
        "RIFF:HorizontalScale",
        "RIFF:VerticalScale",
        "RIFF:WebP_Flags",
        "RIFF:AlphaPreprocessing",
        "RIFF:AlphaFiltering",
        "RIFF:AlphaCompression",
        "Composite:ImageSize",
        "Composite:Megapixels",
    }
)
FORBIDDEN_NAMES = frozenset(
    {"Make", "Model", "DateTimeOriginal", "ThumbnailImage", "Comment", "UserComment", "Software"}
)
FORBIDDEN_GROUP_PREFIXES = (
    "GPS",
    "XMP",
    "IPTC",
    "ICC",
    "Photoshop",
    "IFD",
    "ExifIFD",
    "MakerNotes",
)


# ----------------------------------------------------------------------------- sources


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0112] = 1  # Orientation
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)})
    exif.get_ifd(0x8769).update({0x9003: "2021:05:04 10:11:12", 0x927C: b"MAKERNOTE"})
    return exif


def _with_iptc(jpeg: bytes) -> bytes:
    """Insert a Photoshop APP13 segment holding IPTC by-line and caption after SOI."""
    iptc = b""
    for dataset, value in ((80, b"Jane Doe"), (120, b"secret comment")):
        iptc += b"\x1c\x02" + bytes([dataset]) + struct.pack(">H", len(value)) + value
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    payload = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def _make_sources(folder: Path, upright: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.fromarray(upright)
    alpha = np.full(upright.shape[:2], 200, np.uint8)
    rgba = Image.fromarray(np.dstack([upright, alpha]))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=_exif(), xmp=XMP, comment="secret comment", icc_profile=icc)
    (folder / "meta.jpg").write_bytes(_with_iptc(buf.getvalue()))
    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("Description", "secret comment")
    info.add_text("Comment", "SecretCam " * 50, zip=True)
    rgba.save(folder / "meta.png", exif=_exif(), pnginfo=info, icc_profile=icc)
    rgba.save(folder / "meta.webp", exif=_exif(), xmp=XMP, icc_profile=icc, lossless=True)
    img.save(
        folder / "meta.tif",
        tiffinfo={270: "secret comment", 271: "SecretCam", 272: "Model X", 315: "Jane Doe"},
    )
    return sorted(folder.iterdir())


def _write_all_formats(sources: Iterable[Path], out: Path) -> list[Path]:
    outputs = []
    for src in sources:
        loaded = read_image(src)
        for fmt in OUTPUT_FORMATS:
            dst = out / f"{src.stem}_{src.suffix[1:]}{FORMAT_EXTENSIONS[fmt][0]}"
            outputs.append(
                write_image(
                    dst, loaded.pixels, alpha=loaded.alpha, format=fmt, protected_paths=[src]
                )
            )
    return outputs


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    skimage_data = pytest.importorskip("skimage.data")
    upright = np.ascontiguousarray(skimage_data.astronaut()[::4, ::4])
    root = tmp_path_factory.mktemp("metadata")
    sources = _make_sources(root / "in", upright)
    return sources, _write_all_formats(sources, root / "out")


@pytest.fixture(scope="module")
def real(
    tmp_path_factory: pytest.TempPathFactory, exif_data: Path
) -> tuple[list[Path], list[Path]]:
    sources = sorted((exif_data / "gps").glob("*.jpg"))
    sources += sorted((exif_data / "orientation").glob("*.jpg"))
    if not sources:
        pytest.skip("no photos in ../shared/data/exif")
    return sources, _write_all_formats(sources, tmp_path_factory.mktemp("real_out"))


# ----------------------------------------------------------------------------- structure


def _jpeg_problems(data: bytes) -> list[str]:
    """Segments of a baseline/progressive JPEG other than SOI, JFIF APP0, tables, SOF, SOS, EOI."""
    problems = []
    if data[:2] != b"\xff\xd8":
        return ["no SOI"]
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return [*problems, f"garbage at {pos}"]
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xE0:
            if not payload.startswith(b"JFIF\x00") or length != 16:
                problems.append(f"APP0 that is not a bare JFIF header ({length} bytes)")
        elif 0xE1 <= marker <= 0xEF:
            problems.append(f"APP{marker - 0xE0} segment {payload[:14]!r}")
        elif marker == 0xFE:
            problems.append(f"COM segment {payload[:20]!r}")
        elif marker not in (0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xDA):
            problems.append(f"unexpected marker 0x{marker:02X}")
        pos += 2 + length
        if marker == 0xDA:
            break
    end = data.rfind(b"\xff\xd9")
    if end != len(data) - 2:
        problems.append(f"{len(data) - 2 - end} bytes after the end marker")
    return problems


def _png_problems(data: bytes) -> list[str]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return ["no PNG signature"]
    problems, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind not in (b"IHDR", b"IDAT", b"IEND"):
            problems.append(f"chunk {kind.decode('latin-1')}")
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos != len(data):
        problems.append("data after IEND")
    return problems


def _webp_problems(data: bytes) -> list[str]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return ["no RIFF/WEBP header"]
    if struct.unpack("<I", data[4:8])[0] + 8 != len(data):
        return ["RIFF size does not match the file size"]
    problems, pos = [], 12
    while pos < len(data):
        kind = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind == b"VP8X" and data[pos + 8] & ~0x10:  # only the alpha flag may be set
            problems.append(f"VP8X flags 0x{data[pos + 8]:02X}")
        elif kind not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH"):
            problems.append(f"chunk {kind!r}")
        pos += 8 + size + (size & 1)
    return problems


def _bmp_problems(data: bytes) -> list[str]:
    problems = []
    if data[:2] != b"BM":
        return ["no BM signature"]
    if struct.unpack("<I", data[2:6])[0] != len(data):
        problems.append("file size field does not match (trailing data)")
    header = struct.unpack("<I", data[14:18])[0]
    if header != 40:  # BITMAPINFOHEADER: no room for a colour profile
        problems.append(f"info header of {header} bytes")
    return problems


STRUCTURE = {
    ".jpg": _jpeg_problems,
    ".png": _png_problems,
    ".webp": _webp_problems,
    ".bmp": _bmp_problems,
}


def _structure_problems(path: Path) -> list[str]:
    data = path.read_bytes()
    problems = STRUCTURE[path.suffix](data)
    problems += [f"contains {s!r}" for s in (*SECRETS, *MARKERS) if s in data]
    return problems


def _assert_clean_structure(outputs: list[Path]) -> None:
    bad = {p.name: probs for p in outputs if (probs := _structure_problems(p))}
    assert not bad, f"metadata left in outputs: {bad}"


# ----------------------------------------------------------------------------- exiftool


def _exiftool(exe: str, paths: list[Path]) -> list[dict[str, object]]:
    done = subprocess.run(
        [exe, "-j", "-G1", "-a", "-u", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    records: list[dict[str, object]] = json.loads(done.stdout)
    assert len(records) == len(paths), done.stderr
    return records


def _violations(record: dict[str, object]) -> list[str]:
    """Fields outside the allow-list, plus allowed fields with a telling value."""
    bad = []
    for key, value in record.items():
        group = key.split(":", 1)[0] if ":" in key else ""
        if key in ALLOWED_TAGS or group in ALLOWED_GROUPS:
            if key == "RIFF:WebP_Flags" and value != "Alpha":
                bad.append(f"{key}={value}")
            continue
        bad.append(f"{key}={str(value)[:40]}")
    return bad


def _forbidden(record: dict[str, object]) -> list[str]:
    hits = []
    for key in record:
        group, _, name = key.rpartition(":")
        if (
            name.startswith("GPS")
            or name in FORBIDDEN_NAMES
            or group.startswith(FORBIDDEN_GROUP_PREFIXES)
        ):
            hits.append(key)
    return hits


def _assert_exiftool_clean(exe: str, outputs: list[Path]) -> None:
    records = _exiftool(exe, outputs)
    bad = {Path(str(r["SourceFile"])).name: v for r in records if (v := _violations(r))}
    assert not bad, f"exiftool finds metadata outside the allow-list: {bad}"
    forbidden = {Path(str(r["SourceFile"])).name: f for r in records if (f := _forbidden(r))}
    assert not forbidden, f"forbidden tags present: {forbidden}"


# ----------------------------------------------------------------------------- tests


class TestSynthetic:
    def test_sources_really_carry_metadata(self, synthetic: tuple[list[Path], list[Path]]) -> None:
        sources, _ = synthetic
        for src in sources:
            assert b"SecretCam" in src.read_bytes(), src.name
        jpeg = next(s for s in sources if s.suffix == ".jpg").read_bytes()
        for marker in MARKERS:
            assert marker in jpeg, marker

    def test_every_format_written(self, synthetic: tuple[list[Path], list[Path]]) -> None:
        sources, outputs = synthetic
        assert len(outputs) == len(sources) * len(OUTPUT_FORMATS)
        assert {p.suffix for p in outputs} == {".png", ".jpg", ".bmp", ".webp"}

    def test_structure_is_clean(self, synthetic: tuple[list[Path], list[Path]]) -> None:
        _assert_clean_structure(synthetic[1])

    def test_structure_checker_finds_metadata(
        self, synthetic: tuple[list[Path], list[Path]]
    ) -> None:
        for src in synthetic[0]:
            if src.suffix in STRUCTURE:
                assert _structure_problems(src), src.name

    def test_pillow_sees_nothing(self, synthetic: tuple[list[Path], list[Path]]) -> None:
        for out in synthetic[1]:
            with Image.open(out) as im:
                im.load()
                assert len(im.getexif()) == 0, out.name
                assert not im.info.get("icc_profile"), out.name
                assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(im.info)
                assert not getattr(im, "text", {}), out.name

    def test_exiftool_allow_list(
        self, synthetic: tuple[list[Path], list[Path]], exiftool: str
    ) -> None:
        _assert_exiftool_clean(exiftool, synthetic[1])

    def test_exiftool_checker_finds_metadata(
        self, synthetic: tuple[list[Path], list[Path]], exiftool: str
    ) -> None:
        records = _exiftool(exiftool, synthetic[0])
        for rec in records:
            assert _violations(rec), rec["SourceFile"]
        jpeg = next(r for r in records if str(r["SourceFile"]).endswith(".jpg"))
        found = set(_forbidden(jpeg))
        for key in ("IFD0:Make", "IFD0:Model", "ExifIFD:DateTimeOriginal", "GPS:GPSLatitude"):
            assert key in found
        assert any(k.startswith("XMP") for k in found)
        assert any(k.startswith("IPTC") for k in found)
        assert any(k.startswith("ICC") for k in found)
        assert "File:Comment" in found

    def test_icc_only_on_request(self, tmp_path: Path, exiftool: str) -> None:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        pixels = np.zeros((8, 8, 3), np.uint8)
        outs = [
            write_image(tmp_path / f"icc{FORMAT_EXTENSIONS[f][0]}", pixels, icc_profile=icc)
            for f in ("png", "jpg", "webp")
        ]
        for rec in _exiftool(exiftool, outs):
            assert any(k.startswith("ICC") for k in _forbidden(rec)), rec["SourceFile"]


@pytest.mark.shared
@pytest.mark.slow
class TestRealPhotos:
    def test_sources_really_carry_metadata(
        self, real: tuple[list[Path], list[Path]], exiftool: str
    ) -> None:
        sources, _ = real
        records = _exiftool(exiftool, [s for s in sources if s.parent.name == "gps"])
        assert records
        for rec in records:
            found = _forbidden(rec)
            assert any(k.startswith("GPS:") for k in found), rec["SourceFile"]
            assert "IFD1:ThumbnailImage" in found

    def test_structure_is_clean(self, real: tuple[list[Path], list[Path]]) -> None:
        sources, outputs = real
        assert len(outputs) == len(sources) * len(OUTPUT_FORMATS)
        _assert_clean_structure(outputs)
        for out in outputs:
            data = out.read_bytes()
            assert b"NIKON" not in data and b"COOLPIX" not in data, out.name

    def test_exiftool_allow_list(self, real: tuple[list[Path], list[Path]], exiftool: str) -> None:
        _assert_exiftool_clean(exiftool, real[1])
