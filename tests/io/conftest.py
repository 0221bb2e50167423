"""Fixtures for the image I/O tests: small generated images and the shared data folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def astro_crop() -> np.ndarray:
    """(160, 120, 3) uint8 RGB: a non-square crop, so a wrong rotation changes the shape."""
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut()[:320:2, 40:280:2]
    return np.ascontiguousarray(img)


@pytest.fixture(scope="session")
def noise_rgb() -> np.ndarray:
    """(24, 32, 3) uint8 random RGB (exact round-trips must keep every value)."""
    return np.random.default_rng(1234).integers(0, 256, (24, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def exif_data() -> Path:
    """``../shared/data/exif`` (real camera photos); skips the test when it is absent."""
    folder = SHARED_DATA / "exif"
    if not folder.is_dir():
        pytest.skip("../shared/data/exif is not available")
    return folder.resolve()


@pytest.fixture(scope="session")
def exiftool() -> str:
    """Path of the exiftool program (Debian package libimage-exiftool-perl)."""
    path = shutil.which("exiftool")
    if path is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    return path
