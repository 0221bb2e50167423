"""The core benchmark in one run: faces (speed + recall vs deface) and plates (recall, FPs).

Runs ``bench_faces.py`` (pixveil's face detector and deface side by side on 300 LFW
images, the 400 AT&T images and the 330 plate photos, then both CLIs end to end)
and ``bench_plates.py`` (plate recall and false positives per image on the 330
annotated plate photos), and writes both tables into one Markdown file.

    python bench/bench_core.py --out /tmp/core.md [--deface-backends opencv,onnxrt]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench_faces
import bench_plates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    ap.add_argument("--deface-backends", default="opencv,onnxrt")
    ap.add_argument("--cli", default="60", help="photos for the end-to-end CLI timing")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        faces_md, plates_md = Path(tmp) / "faces.md", Path(tmp) / "plates.md"
        rc = bench_faces.main(
            ["--deface-backends", args.deface_backends, "--cli", args.cli, "--out", str(faces_md)]
        )
        rc |= bench_plates.main(["--thresholds", "0.5,0.25", "--out", str(plates_md)])
        parts = [p.read_text() for p in (faces_md, plates_md) if p.exists()]
    args.out.write_text("\n\n".join(parts))
    print(f"wrote {args.out}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
