"""Bounded fuzz of `pixveil anonymize` over hostile file names and small hostile files.

Each example builds a small input tree (names with rich markup, emoji codes,
control characters, bidi overrides, format strings, leading dashes; contents that
are valid, truncated, corrupt, empty, not images or decompression bombs), runs the
command in-process and checks what a user relies on: no traceback, an exit code
of 0 or 1, every input written or reported, no output for a failed input, nothing
written outside ``-o``, and every error printed as one line that shows the name
literally (each character as itself or as an escape; control characters only
escaped).  The examples are derandomized, so CI
sees the same ones every time.  A few fixed regression tests follow.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
import traceback
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner, Result

from pixveil.cli import app

runner = CliRunner()
FACES = ["--targets", "faces"]
RUN_FILE = "pixveil-run.json"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


# ----------------------------------------------------------------------------- small files


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def _pixels() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    rng = np.random.default_rng(7)
    base = np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.int16)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def _png_crc_broken(png: bytes) -> bytes:
    at = png.find(b"IDAT")
    n = int.from_bytes(png[at - 4 : at], "big")
    crc = at + 4 + n
    return png[:crc] + bytes(b ^ 0xFF for b in png[crc : crc + 4]) + png[crc + 4 :]


def _jpeg_restart_injected(jpeg: bytes) -> bytes:
    sos = jpeg.find(b"\xff\xda")
    body = sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")
    mid = (body + len(jpeg)) // 2
    return jpeg[:mid] + b"\xff\xd0" + jpeg[mid:]


def _png_header_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    ihdr = (100_000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_IM = Image.fromarray(_pixels())
_JPEG = _encode(_IM, "JPEG", quality=90)
_PNG = _encode(_IM, "PNG")
#: name -> (bytes, must it be written?)  Valid contents must be written; the others must fail.
CONTENTS: dict[str, tuple[bytes, bool]] = {
    "jpeg": (_JPEG, True),
    "png": (_PNG, True),
    "png-palette-alpha": (_encode(_IM.convert("P"), "PNG", transparency=0), True),
    "gif": (_encode(_IM, "GIF"), True),
    "tiff": (_encode(_IM, "TIFF"), True),
    "jpeg-cut": (_JPEG[: len(_JPEG) // 2], False),
    "png-cut": (_PNG[: len(_PNG) // 2], False),
    "png-bad-crc": (_png_crc_broken(_PNG), False),
    "jpeg-restart-injected": (_jpeg_restart_injected(_JPEG), False),
    "empty": (b"", False),
    "text": (b"not an image\n", False),
    "bomb": (_png_header_bomb(), False),
}

# ----------------------------------------------------------------------------- hostile names

FRAGMENTS = [
    "[/x]", "[red]", "[bold]", "[/]", "[link=https://e.x]", "[/link]", "\\[b]", ":smile:",
    ":thumbs_up:", "\n", "\r", "\t", "\x07", "\x1b[31m", "\x1b]0;title\x07", "\x7f", "\x85",
    "\x9b", "\u202e", "\u2028", "\u200b", "e\u0301", "\U0001f600", "\U0001f469\u200d\U0001f467",
    "%s", "%n", "{}", "{0}", "{name!r}", "-", "--", " ", "'", '"', "$(x)", ";", "..", "#",
]  # fmt: skip
_FREE = st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",))
NAME_PART = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(_FREE, min_size=1, max_size=6)),
    min_size=1,
    max_size=5,
).map("".join)
EXT = st.sampled_from([".jpg", ".JPG", ".jpeg", ".png", ".gif", ".tif", ".webp", ".bmp"])
FOLDER = st.one_of(st.just(""), NAME_PART, st.sampled_from([RUN_FILE, "a.jpg.json", "-o"]))


@st.composite
def input_files(draw: st.DrawFn) -> list[tuple[str, str]]:
    """1-4 files as (path relative to the input folder, content kind), distinct output names.

    A ``/`` in a drawn name (``[/x]``, ``https://``) makes folders, as it does on disk.
    """
    files: list[tuple[str, str]] = []
    dirs: set[Path] = set()
    outputs: set[tuple[Path, str]] = set()
    for _ in range(draw(st.integers(1, 4))):
        rel = Path(draw(FOLDER), draw(NAME_PART) + draw(EXT))
        kind = draw(st.sampled_from(sorted(CONTENTS)))
        parts = rel.parts
        if rel.is_absolute() or not parts or ".." in parts or rel.suffix.lower() not in IMAGE_EXTS:
            continue
        if any(len(part.encode()) > 180 for part in parts):
            continue
        parents = set(rel.parents) - {Path(".")}
        if rel in dirs or parents & {Path(f) for f, _ in files}:
            continue  # a file where a folder must be, or the reverse
        if (rel.parent, rel.stem) in outputs:  # two inputs with one output name fail by design
            continue
        dirs |= parents
        outputs.add((rel.parent, rel.stem))
        files.append((str(rel), kind))
    return files or [("plain.jpg", "jpeg")]


# ----------------------------------------------------------------------------- checks


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and ch != "\n"


def _char_forms(ch: str) -> list[str]:
    """How one character may be shown: itself (unless a control character) or escaped."""
    o = ord(ch)
    forms = {repr(ch)[1:-1], ascii(ch)[1:-1], f"\\u{o:04x}", f"\\U{o:08x}"}
    if o < 0x100:
        forms.add(f"\\x{o:02x}")
    if unicodedata.category(ch) != "Cc":
        forms.add(ch)
    return sorted(forms, key=len, reverse=True)


def _line_shows(line: str, text: str) -> bool:
    """Whether ``line`` shows ``text``, each character raw or escaped (control ones escaped)."""
    pattern = "".join("(?:" + "|".join(map(re.escape, _char_forms(c))) + ")" for c in text)
    return re.search(pattern, line) is not None


def _traceback(res: Result) -> str:
    if res.exc_info is None:
        return res.output
    return "".join(traceback.format_exception(*res.exc_info)) + "\n" + res.output


def _tree(root: Path, skip: Path) -> set[str]:
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        found.update(str(d / n) for n in dirnames + filenames if not skip.is_relative_to(d / n))
    return found


def _outputs(out_dir: Path, stem: str) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return [
        p
        for p in out_dir.iterdir()
        if p.suffix.lower() in IMAGE_EXTS and p.name.rsplit(".", 1)[0] == stem and p.is_file()
    ]


def check_run(
    res: Result, files: list[tuple[str, str]], src: Path, out: Path, root_before: set[str]
) -> None:
    """Every property of one run of the command over ``files`` (relative to ``src``)."""
    exc = res.exception
    assert exc is None or (isinstance(exc, SystemExit) and exc.code in (0, 1)), _traceback(res)
    assert "Traceback (most recent call last)" not in res.output, res.output
    raw = sorted({ascii(c) for c in res.output if _is_control(c)})
    assert not raw, f"raw control characters {raw} on the terminal:\n{res.output!r}"
    assert not (_tree(src.parent, out) - root_before), "files written outside -o"

    run = json.loads((out / RUN_FILE).read_text("utf-8")) if (out / RUN_FILE).is_file() else None
    failures = run["summary"]["failures"] if run else []
    if run:
        assert run["summary"]["images"] == len(files), run["summary"]
    stderr_lines = res.stderr.split("\n")
    for rel_text, kind in files:
        rel = Path(rel_text)
        outs = _outputs(out / rel.parent, rel.stem)
        failed = [f for f in failures if Path(f["file"]) == src / rel]
        shown = [ln for ln in stderr_lines if _line_shows(ln, rel.name)]
        where = f"{rel_text!a} ({kind})"
        if CONTENTS[kind][1]:
            assert outs and not failed, f"valid input {where} not written:\n{res.output}"
            continue
        assert not outs, f"output {outs} written for the failed input {where}"
        assert failed or not run, f"failed input {where} missing from the run file"
        assert shown, f"failed input {where} not shown literally on one line:\n{res.stderr!r}"
        if failed:
            reason = failed[0]["error"][-24:]
            assert any(_line_shows(ln, reason) for ln in shown), (
                f"error line of {where} split over several lines:\n{res.stderr!r}"
            )


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    files=input_files(),
    options=st.sampled_from([[], ["--sidecar"], ["--format", "png"], ["--format", "webp"]]),
)
def test_hostile_names_and_files(files: list[tuple[str, str]], options: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="pixveil-fuzz-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        for rel, kind in files:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(CONTENTS[kind][0])
        before = _tree(Path(tmp), out)
        res = runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES, *options])
        check_run(res, files, src, out, before)


# ----------------------------------------------------------------------------- fixed regressions


def _run(src: Path, out: Path, *extra: str) -> Result:
    return runner.invoke(app, ["anonymize", str(src), "-o", str(out), *FACES, *extra])


@pytest.mark.parametrize(
    "name",
    [
        ":smile: :thumbs_up:.jpg",  # rich emoji codes are not markup, escape() keeps them
        "c1\x85nel\x9bcsi.jpg",  # C1 controls: NEL breaks lines, CSI starts escape sequences
        "bell\x07tab\tcr\rdel\x7f.jpg",
        "rtl\u202egpj.exe.jpg",
        "%s%n {} {0} {name!r}.jpg",
    ],
)
def test_failed_name_is_shown_literally_on_one_line(tmp_path: Path, name: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(_JPEG[:300])
    (src / "good.jpg").write_bytes(_JPEG)
    out = tmp_path / "out"
    before = _tree(tmp_path, out)
    check_run(_run(src, out), [(name, "jpeg-cut"), ("good.jpg", "jpeg")], src, out, before)


def test_long_name_whose_sidecar_name_is_too_long_gets_no_image(tmp_path: Path) -> None:
    # 255 bytes is a legal name; "<name>.json" is not, so the sidecar cannot be written
    name = "n" * 251 + ".jpg"
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(_JPEG)
    out = tmp_path / "out"
    res = _run(src, out, "--sidecar")
    assert res.exception is None or isinstance(res.exception, SystemExit), _traceback(res)
    if (out / name).exists():  # then it must be a success, not a failure with its image left
        assert res.exit_code == 0, res.output
    else:
        assert res.exit_code == 1, res.output
        assert any(name in ln for ln in res.stderr.split("\n")), res.stderr


def test_no_write_through_a_symlinked_output_subfolder(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.jpg").write_bytes(_JPEG)
    (src / "top.jpg").write_bytes(_JPEG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    res = _run(src, out)
    assert res.exit_code == 1, res.output
    assert not any(elsewhere.iterdir()), "written through the symlink"
    assert (out / "top.jpg").is_file()
    assert any("x.jpg" in ln and "link" in ln.lower() for ln in res.stderr.split("\n")), res.output


def test_stale_temp_file_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.jpg").write_bytes(_JPEG)
    out = tmp_path / "out" / "deep"
    out.mkdir(parents=True)
    stale = out / ".pixveil-0123456789abcdef.tmp"
    stale.write_bytes(b"\xff\xd8 killed mid-write")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    keep = out / "notes.tmp"  # not ours: never touched
    keep.write_text("mine")
    res = _run(src, out.parent)
    assert res.exit_code == 0, res.output
    assert not stale.exists()
    assert keep.read_text() == "mine"


def test_each_failure_is_printed_once(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "plain-broken.jpg").write_bytes(_JPEG[:300])
    (src / "good.jpg").write_bytes(_JPEG)
    res = _run(src, tmp_path / "out")
    assert res.exit_code == 1
    assert res.stderr.count("plain-broken.jpg") == 1, res.stderr
