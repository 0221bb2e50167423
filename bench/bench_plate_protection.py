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
import time

import numpy as np

from _common import (
    PlateReader,
    add_plate_method_options,
    char_accuracy,
    method_from_spec,
    plate_chars,
    plate_samples,
    table_head,
)
from pixveil.evaluate import parse_list
from pixveil.io import read_image
from pixveil.types import Region


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_plate_method_options(ap, methods="none,blur,pixelate,dp-pix,dp-blur,mask")
    args = ap.parse_args(argv)
    samples = plate_samples(args.limit)
    methods = parse_list(args.methods)
    built = {m: method_from_spec(m) for m in methods if m != "none"}
    read = PlateReader()
    rng = np.random.default_rng(args.seed)
    scores: dict[str, list[float]] = {m: [] for m in methods}
    t0 = time.perf_counter()
    for s in samples:
        pixels = read_image(s.path).pixels
        region = Region(s.box, "plate")
        truth = plate_chars(s.text)
        for m in methods:
            img = pixels if m == "none" else built[m].apply(pixels, [region], rng=rng)
            scores[m].append(char_accuracy(read(img, s.box), truth))
    dt = time.perf_counter() - t0
    print(f"{len(samples)} plates, {dt:.0f} s\n")
    print("\n".join(table_head(["method", "char accuracy", "read exactly", "≤ 1 error"])))
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
