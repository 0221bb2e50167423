"""Where ``pixveil anonymize`` writes: a folder, one named file, or standard output.

Also spools an image read from standard input (``-``) into a private temporary
folder, so the rest of the command treats it like any file.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pixveil.io import (
    FORMAT_EXTENSIONS,
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    normalize_format,
    output_format_for,
)
from pixveil.io.video import VIDEO_OUTPUT_FORMATS, is_video_path

__all__ = ["OutputPlan", "plan_outputs", "take_stdin"]


_WRITABLE_SUFFIXES = frozenset(ext for exts in FORMAT_EXTENSIONS.values() for ext in exts)


@dataclass
class OutputPlan:
    """Where a run writes: a folder, one named file, or standard output."""

    out_dir: Path
    output_file: Path | None = None
    to_stdout: bool = False
    #: A temporary folder holding standard input / the standard-output file.
    scratch: Path | None = None
    #: Shown instead of the scratch file's name in messages.
    aliases: dict[Path, str] = dataclasses.field(default_factory=dict)


def plan_outputs(inputs: list[Path], output: Path, output_format: str | None) -> OutputPlan:
    """Check the input paths and choose the output mode (usage errors raise ValueError)."""
    stdin = [p for p in inputs if str(p) == "-"]
    if len(stdin) > 1:
        raise ValueError("standard input ('-') can be given only once")
    missing = [p for p in inputs if str(p) != "-" and not (p.exists() or p.is_symlink())]
    if missing:
        raise ValueError(f"{missing[0]}: no such file or folder")
    single = len(inputs) == 1 and (str(inputs[0]) == "-" or not inputs[0].is_dir())
    if str(output) == "-":
        if not single or is_video_path(inputs[0]):
            raise ValueError("-o - (standard output) needs exactly one input image")
        return OutputPlan(out_dir=Path("."), to_stdout=True)
    if (
        output.exists()
        and not output.is_dir()
        and not (single and output.suffix.lower() in _WRITABLE_SUFFIXES)
    ):
        raise ValueError(
            f"-o {output} is an existing file; give a folder (or one input and an image file name)"
        )
    if single and is_video_path(inputs[0]) and not output.is_dir():
        if output.suffix.lower() in VIDEO_OUTPUT_FORMATS:
            return OutputPlan(out_dir=output.parent, output_file=output)
        if output.suffix.lower() in IMAGE_EXTENSIONS or is_video_path(output):
            raise ValueError(
                f"-o {output}: a video is written as {', '.join(VIDEO_OUTPUT_FORMATS)}; "
                "choose one of those extensions"
            )
    if single and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        if output.suffix.lower() not in _WRITABLE_SUFFIXES:
            raise ValueError(
                f"-o {output}: pixveil writes {', '.join(OUTPUT_FORMATS)} files; "
                "choose one of those extensions"
            )
        fmt = normalize_format(output.suffix)
        if output_format is not None and normalize_format(output_format) != fmt:
            raise ValueError(
                f"--format {output_format} does not match the extension of -o {output.name}"
            )
        return OutputPlan(out_dir=output.parent, output_file=output)
    return OutputPlan(out_dir=output)


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, ".png"),
    (b"GIF8", 0, ".gif"),
    (b"BM", 0, ".bmp"),
    (b"WEBP", 8, ".webp"),
    (b"II*\x00", 0, ".tif"),
    (b"MM\x00*", 0, ".tif"),
)


def _sniff_suffix(head: bytes) -> str:
    for magic, offset, suffix in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return suffix
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"123456":
        return ".pnm"
    return ".img"


def take_stdin(plan: OutputPlan, inputs: list[Path], output_format: str | None) -> list[Path]:
    """Spool standard input into the plan's scratch folder; returns the inputs with it in."""
    if not any(str(p) == "-" for p in inputs) and not plan.to_stdout:
        return inputs
    plan.scratch = Path(tempfile.mkdtemp(prefix="pixveil-"))
    result: list[Path] = []
    for p in inputs:
        if str(p) != "-":
            result.append(p)
            continue
        data = sys.stdin.buffer.read()
        spooled = plan.scratch / ("stdin" + _sniff_suffix(data[:16]))
        spooled.write_bytes(data)
        plan.aliases[spooled] = "<stdin>"
        result.append(spooled)
    if plan.to_stdout:
        src = result[0]
        fmt = output_format or output_format_for(src, None)
        plan.output_file = plan.scratch / ("stdout" + FORMAT_EXTENSIONS[normalize_format(fmt)][0])
        plan.out_dir = plan.scratch
    return result
