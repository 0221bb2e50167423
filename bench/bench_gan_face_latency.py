"""Per-face latency of gan-face (method alone, detector excluded) for both generators.

Example (one core)::

    taskset -c 0 python bench/bench_gan_face_latency.py --data /tmp/lfw_heldout

``--data`` is a folder of ``<identity>/<images>``; the first 40 ``*_0001.jpg`` photos
are used (LFW layout).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pixveil.detect import get_detector
from pixveil.protect import get_method


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--faces", type=int, default=40)
    a = ap.parse_args(argv)
    files = sorted(a.data.glob("*/*_0001.jpg"))[: a.faces]
    if not files:
        print(f"skipped: no photos in {a.data}", file=sys.stderr)
        return 0
    det = get_detector("faces")
    items = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        found = det.detect(img)
        if found:
            items.append((img, max(found, key=lambda r: r.width * r.height)))
    settings = [
        ("cond, eps=0.25", {}),
        ("cond, eps=0", {"epsilon": 0}),
        ("dcgan64, eps=0.25", {"model": "dcgan64"}),
    ]
    print("| model | ms/face |\n|---|---:|")
    for name, kw in settings:
        m = get_method("gan-face", **kw)
        m.apply(items[0][0], [items[0][1]], rng=np.random.default_rng(0))  # warm-up
        t = time.perf_counter()
        for i, (img, r) in enumerate(items):
            m.apply(img, [r], rng=np.random.default_rng(i))
        print(f"| {name} | {(time.perf_counter() - t) / len(items) * 1000:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
