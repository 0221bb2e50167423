"""Fixtures of the dataset tests: a small CIFAR-10 subset (skipped when absent) and generated images."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

CIFAR = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10.tar.gz"
).resolve()

#: Test-split images per class in the subset.
PER_CLASS = 3


@pytest.fixture(scope="session")
def cifar_jpegs() -> dict[str, bytes]:
    """The first PER_CLASS test JPEGs (by name) of each CIFAR-10 class: id -> file bytes."""
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar10.tar.gz is not available")
    found: dict[str, bytes] = {}
    with tarfile.open(CIFAR) as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[1] == "test":
                f = tar.extractfile(m)
                assert f is not None
                found[f"{parts[2]}/{Path(parts[3]).stem}"] = f.read()
    keep: dict[str, bytes] = {}
    for ident in sorted(found):
        cls = ident.split("/")[0]
        if sum(1 for k in keep if k.startswith(cls + "/")) < PER_CLASS:
            keep[ident] = found[ident]
    return keep


@pytest.fixture(scope="session")
def cifar_images(cifar_jpegs: dict[str, bytes]) -> np.ndarray:
    """The subset decoded, (N, 32, 32, 3) uint8."""
    import io

    from PIL import Image

    return np.stack(
        [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in cifar_jpegs.values()]
    )


def write_dataset(root: Path, jpegs: dict[str, bytes]) -> Path:
    """Write ``id -> JPEG bytes`` as ``root/<class>/<name>.jpg`` (a temporary copy for one test)."""
    for ident, data in jpegs.items():
        p = root / f"{ident}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def generated_images() -> list[np.ndarray]:
    """Synthetic test images: smooth gradients, flat areas, saturated colours, noise."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:48, 0:64]
    grad = np.dstack(((x * 4) % 256, (y * 5) % 256, ((x + y) * 2) % 256)).astype(np.uint8)
    flat = np.full((32, 32, 3), (200, 30, 90), np.uint8)
    extremes = np.zeros((16, 24, 3), np.uint8)
    extremes[:, 12:] = 255
    noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    return [grad, flat, extremes, noise]
