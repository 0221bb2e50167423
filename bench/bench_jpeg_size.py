"""JPEG output size with ``quality="keep"`` against quality 95, and false refusals of the damage check.

For every JPEG of the chosen sets, the file is read with :func:`pixveil.io.read_image`
(which refuses damaged data: a refusal of one of these real photos is a false
refusal) and written back from its pixels twice with :func:`pixveil.io.write_image`:
at quality 95 and with ``quality="keep"`` (the input's estimated luma/chroma quality
and subsampling).  Prints input bytes, output bytes and their ratio, how many outputs
are larger than their input, and SSIM / PSNR of each output against the decoded input.

Run from the repository root::

    python bench/bench_jpeg_size.py                 # exif (all) + every 6th plate photo
    python bench/bench_jpeg_size.py --lfw 13233     # also count false refusals on LFW
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from _common import LFW, PLATES, SHARED_DATA, table_head, table_row
from pixveil.errors import InputError
from pixveil.io import read_image, write_image


def _decode(path: Path) -> np.ndarray:
    return read_image(path).pixels


def measure(files: list[Path], tmp: Path) -> dict[str, object]:
    size_in = 0
    sizes = {"95": 0, "keep": 0}
    larger = {"95": 0, "keep": 0}
    ssim: dict[str, list[float]] = {"95": [], "keep": []}
    psnr: dict[str, list[float]] = {"95": [], "keep": []}
    refused: list[str] = []
    for f in files:
        try:
            loaded = read_image(f)
        except InputError as exc:
            refused.append(f"{f.name}: {exc.reason}")
            continue
        size_in += f.stat().st_size
        for label, quality in (("95", 95), ("keep", "keep")):
            dst = tmp / f"{label}.jpg"
            write_image(dst, loaded.pixels, quality=quality, jpeg_tables=loaded.jpeg_tables)  # type: ignore[arg-type]
            n = dst.stat().st_size
            sizes[label] += n
            larger[label] += n > f.stat().st_size
            out = _decode(dst)
            ssim[label].append(structural_similarity(loaded.pixels, out, channel_axis=2))
            psnr[label].append(peak_signal_noise_ratio(loaded.pixels, out))
    return {
        "files": len(files),
        "refused": refused,
        "in": size_in,
        "sizes": sizes,
        "larger": larger,
        "ssim": {k: float(np.mean(v)) if v else float("nan") for k, v in ssim.items()},
        "psnr": {k: float(np.mean(v)) if v else float("nan") for k, v in psnr.items()},
    }


def count_refusals(files: list[Path]) -> tuple[int, list[str]]:
    refused = []
    for f in files:
        try:
            read_image(f)
        except InputError as exc:
            refused.append(f"{f.name}: {exc.reason}")
    return len(files), refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plate-step", type=int, default=6, help="every Nth plate photo")
    parser.add_argument("--lfw", type=int, default=0, help="LFW images to check for refusals")
    args = parser.parse_args()
    exif = sorted((SHARED_DATA / "exif").glob("**/*.jpg"))
    plates = sorted(PLATES.glob("*/*.jpg"))
    if not exif or not plates:
        raise SystemExit("needs ../shared/data/exif and ../shared/data/plates")
    sets = {"exif": exif, f"plates (every {args.plate_step}th)": plates[:: args.plate_step]}
    print("\n".join(table_head(["set", "input", "quality 95", "keep"])))
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in sets.items():
            r = measure(files, Path(tmp))
            cells = []
            for k in ("95", "keep"):
                n = r["sizes"][k]  # type: ignore[index]
                cells.append(
                    f"{n:,} B, ×{n / r['in']:.2f}, {r['larger'][k]} larger; "  # type: ignore[index,operator]
                    f"SSIM {r['ssim'][k]:.4f}, PSNR {r['psnr'][k]:.1f} dB"  # type: ignore[index]
                )
            print(table_row([f"{name} ({r['files']})", f"{r['in']:,} B", *cells]))
    print("\nfalse refusals of the damage check (real photos read with read_image):")
    groups = {"plates (all)": plates, "exif (all)": exif}
    if args.lfw:
        groups[f"LFW (first {args.lfw})"] = sorted(LFW.glob("*/*.jpg"))[: args.lfw]
    for name, files in groups.items():
        n, refused = count_refusals(files)
        print(f"  {name}: {len(refused)} of {n}" + "".join(f"\n    {r}" for r in refused))


if __name__ == "__main__":
    main()
