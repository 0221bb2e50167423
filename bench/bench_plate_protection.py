"""Is a protected plate still readable?  OCR of plates before and after each method.

For every annotated photo in ``../shared/data/plates/{eu,us}``, the annotated
plate box is protected with each method (its default parameters and margin),
then the PP-OCR recogniser that pixveil's plate detector uses (restricted to
A-Z, 0-9) reads the same box.  Printed per method: mean character accuracy
against the true plate text (1 - Levenshtein / length, floored at 0) and the
share of plates read exactly or with at most one error.

    python bench/bench_plate_protection.py [--limit N] [--methods blur,pixelate,...]

A method may carry parameters: ``blur:text_strength=0.1`` (several with ``:``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_plates import DATA, load_samples  # noqa: E402
from pixveil.detect.ocr import TextLineRecognizer  # noqa: E402
from pixveil.io import read_image  # noqa: E402
from pixveil.privacy.plate_codes import levenshtein  # noqa: E402
from pixveil.protect import get_method  # noqa: E402
from pixveil.types import Region  # noqa: E402

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def char_accuracy(read: str, truth: str) -> float:
    return max(0.0, 1.0 - levenshtein(read, truth) / max(1, len(truth)))


def build(spec: str):  # type: ignore[no-untyped-def]
    """``"blur:text_strength=0.1"`` -> the method with those parameters."""
    name, *params = spec.split(":")
    kwargs = {}
    for p in params:
        k, v = p.split("=", 1)
        kwargs[k] = float(v) if "." in v else int(v)
    return get_method(name, **kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    ap.add_argument("--methods", default="none,blur,pixelate,dp-pix,dp-blur,mask")
    ap.add_argument("--seed", type=int, default=0, help="seed of the DP noise (benchmark only)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no data at {DATA}")
        return 1
    samples = load_samples(DATA)
    if args.limit:
        samples = samples[: args.limit]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    built = {m: build(m) for m in methods if m != "none"}
    reader = TextLineRecognizer(alphabet=ALPHABET)
    rng = np.random.default_rng(args.seed)
    scores: dict[str, list[float]] = {m: [] for m in methods}
    t0 = time.perf_counter()
    for s in samples:
        pixels = read_image(s.path).pixels
        region = Region(s.box, "plate")
        x0, y0, x1, y1 = s.box
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        truth = "".join(c for c in s.text.upper() if c in ALPHABET)
        for m in methods:
            img = pixels if m == "none" else built[m].apply(pixels, [region], rng=rng)
            ((text, _conf),) = reader.read([reader.crop(img, quad, pad=0.1)])
            text = "".join(c for c in text.upper() if c in ALPHABET)
            scores[m].append(char_accuracy(text, truth))
    dt = time.perf_counter() - t0
    print(f"{len(samples)} plates, {dt:.0f} s\n")
    print("| method | char accuracy | read exactly | ≤ 1 error |")
    print("|---|---|---|---|")
    for m in methods:
        v = np.array(scores[m])
        lengths = np.array([max(1, len(s.text)) for s in samples])
        errors = np.round((1 - v) * lengths)
        print(
            f"| {m} | {100 * v.mean():.1f} % | {100 * (errors == 0).mean():.1f} % "
            f"| {100 * (errors <= 1).mean():.1f} % |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
