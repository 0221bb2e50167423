"""Reduced-scale JPEG decoding (Pillow ``draft()``) against resizing the decoded photo.

The network cascade needs the photo at full resolution anyway (its windows and
the blur read it), so ``draft()`` could only replace the two resizes the cascade
does (the coarse pass at 1024 px, the proposal network's half-resolution input)
by a second, reduced-scale decode.  This prints the CPU time of each, per photo,
on generated 12 MP photos (``_common.make_scene``, seed 0: tuning data).

    python bench/bench_draft.py
"""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
from PIL import Image

from _common import make_scene, table_head, table_row


def cpu_ms(fn, reps: int = 10) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t0) / reps * 1000


def main() -> None:
    scene, _, _ = make_scene(0, 18, width=4000, height=3000)
    buf = io.BytesIO()
    Image.fromarray(scene).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()

    def decode(scale: int | None) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            if scale:
                im.draft("RGB", (4000 // scale, 3000 // scale))
            return np.asarray(im.convert("RGB"))

    rows = [
        ("decode, full resolution (needed anyway)", cpu_ms(lambda: decode(None))),
        ("decode with draft(), 1/2 scale", cpu_ms(lambda: decode(2))),
        ("decode with draft(), 1/4 scale", cpu_ms(lambda: decode(4))),
        (
            "cv2.resize INTER_AREA to 1024x768 (coarse pass)",
            cpu_ms(lambda: cv2.resize(scene, (1024, 768), interpolation=cv2.INTER_AREA)),
        ),
        (
            "cv2.resize INTER_AREA to 2000x1500 (proposal input)",
            cpu_ms(lambda: cv2.resize(scene, (2000, 1500), interpolation=cv2.INTER_AREA)),
        ),
    ]
    print("\n".join(table_head(["step, 4000x3000 JPEG q90", "CPU ms (mean of 10)"], right=1)))
    for name, ms in rows:
        print(table_row([name, f"{ms:.1f}"]))


if __name__ == "__main__":
    main()
