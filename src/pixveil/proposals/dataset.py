"""Write a labelled sample set to disk (resumable): images and CenterFace heatmaps."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pixveil.proposals.data import SampleConfig, SampleMaker, centerface_heat

__all__ = ["build_dataset", "open_dataset"]


def build_dataset(
    out: Path | str,
    n: int,
    *,
    cfg: SampleConfig | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> None:
    """Samples ``0 .. n-1`` to ``out/images.npy`` and ``out/heat.npy`` (float16, stride 4).

    Resumes from ``out/done.json``; one ONNX Runtime thread.
    """
    from pixveil.detect.faces import _session

    cfg = cfg or SampleConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = cfg.size
    meta = out / "meta.json"
    if not meta.exists():
        meta.write_text(json.dumps({"n": n, "size": s, "seed": seed, "config": cfg.__dict__}))
        np.lib.format.open_memmap(out / "images.npy", "w+", np.uint8, (n, s, s, 3))
        np.lib.format.open_memmap(out / "heat.npy", "w+", np.float16, (n, s // 4, s // 4))
    images = np.load(out / "images.npy", mmap_mode="r+")
    heat = np.load(out / "heat.npy", mmap_mode="r+")
    done_f = out / "done.json"
    start = json.loads(done_f.read_text())["done"] if done_f.exists() else 0
    maker = SampleMaker(cfg, seed=seed)
    session = _session(1).session
    t0 = time.time()
    for k in range(start, n):
        img = maker.sample(k)
        images[k] = img
        heat[k] = centerface_heat(img, session)
        if (k + 1) % 100 == 0 or k + 1 == n:
            images.flush()
            heat.flush()
            done_f.write_text(json.dumps({"done": k + 1}))
            log(f"{k + 1}/{n} samples, {time.time() - t0:.0f} s")


def open_dataset(folder: Path | str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(folder)
    done = json.loads((folder / "done.json").read_text())["done"]
    return (
        np.load(folder / "images.npy", mmap_mode="r")[:done],
        np.load(folder / "heat.npy", mmap_mode="r")[:done],
    )


if __name__ == "__main__":
    import sys

    build_dataset(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]) if len(sys.argv) > 3 else 0)
