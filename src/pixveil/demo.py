"""The built-in demo: pictures that exist on any machine, protected end to end.

Inputs are made on the spot: the astronaut portrait that ships with scikit-image
(Eileen Collins, NASA, public domain) and a street scene with a car and a licence
plate that pixveil renders itself.  Both are saved as JPEG files carrying camera
and GPS EXIF tags, so the demo also shows that outputs carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pixveil.config import AnonymizeConfig
from pixveil.io import read_image, write_image
from pixveil.pipeline import Anonymizer, BatchReport, run_batch
from pixveil.protect import available_methods, get_method, protect_regions

__all__ = ["DemoResult", "astronaut", "run_demo", "street_scene"]

#: The methods shown side by side in ``<dir>/methods/``.
GALLERY_METHODS = ("blur", "pixelate", "mask", "dp-pix", "dp-blur", "gan-face", "plate-synth")


def astronaut() -> np.ndarray:
    """The scikit-image astronaut portrait, (512, 512, 3) uint8 RGB."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def street_scene(
    *, plate_text: str = "PV 4821 K", width: int = 1280, height: int = 720
) -> np.ndarray:
    """A rendered street with a car seen from behind and a readable plate.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8 RGB
    """
    rng = np.random.default_rng(7)
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(height * 0.45)
    sky = np.linspace([135, 180, 235], [200, 220, 240], horizon).astype(np.uint8)
    img[:horizon] = sky[:, None, :]
    road = np.linspace([90, 90, 95], [60, 60, 62], height - horizon).astype(np.uint8)
    img[horizon:] = road[:, None, :]
    # buildings
    x = 0
    while x < width:
        w = int(rng.integers(80, 180))
        h = int(rng.integers(80, horizon - 20))
        colour = tuple(int(c) for c in rng.integers(120, 210, 3))
        cv2.rectangle(img, (x, horizon - h), (x + w, horizon), colour, -1)
        for wy in range(horizon - h + 12, horizon - 20, 30):
            for wx in range(x + 10, x + w - 20, 28):
                cv2.rectangle(img, (wx, wy), (wx + 14, wy + 16), (70, 90, 120), -1)
        x += w + int(rng.integers(0, 20))
    # lane markings
    for y in range(horizon + 20, height, 60):
        cv2.rectangle(img, (width // 2 - 4, y), (width // 2 + 4, y + 30), (230, 230, 220), -1)
    # the car, seen from behind
    cx, cy = int(width * 0.42), int(height * 0.72)
    cw, ch = int(width * 0.36), int(height * 0.30)
    body = (150, 25, 30)
    cv2.rectangle(img, (cx - cw // 2, cy - ch // 2), (cx + cw // 2, cy + ch // 2), body, -1)
    cv2.rectangle(
        img, (cx - cw // 2 + 40, cy - ch // 2 - 90), (cx + cw // 2 - 40, cy - ch // 2), body, -1
    )
    cv2.rectangle(
        img,
        (cx - cw // 2 + 60, cy - ch // 2 - 75),
        (cx + cw // 2 - 60, cy - ch // 2 - 8),
        (40, 50, 60),
        -1,
    )
    for sx in (cx - cw // 2 + 15, cx + cw // 2 - 75):  # tail lights
        cv2.rectangle(img, (sx, cy - ch // 2 + 20), (sx + 60, cy - ch // 2 + 50), (230, 40, 30), -1)
    for sx in (cx - cw // 2 + 20, cx + cw // 2 - 80):  # tyres
        cv2.rectangle(img, (sx, cy + ch // 2), (sx + 60, cy + ch // 2 + 25), (20, 20, 20), -1)
    # the plate: white with a black border and dark characters
    pw, ph = 230, 52
    px0, py0 = cx - pw // 2, cy + ch // 2 - ph - 22
    cv2.rectangle(img, (px0, py0), (px0 + pw, py0 + ph), (245, 245, 240), -1)
    cv2.rectangle(img, (px0, py0), (px0 + pw, py0 + ph), (20, 20, 20), 2)
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize(plate_text, font, 1.25, 3)
    cv2.putText(
        img,
        plate_text,
        (px0 + (pw - tw) // 2, py0 + (ph + th) // 2),
        font,
        1.25,
        (15, 15, 15),
        3,
        cv2.LINE_AA,
    )
    # a pedestrian on the pavement: the astronaut's head on a simple body
    face = cv2.resize(astronaut()[20:240, 120:320], (110, 121), interpolation=cv2.INTER_AREA)
    fx, fy = int(width * 0.80), int(height * 0.30)
    cv2.rectangle(img, (fx - 10, fy + 115), (fx + 120, fy + 400), (40, 60, 120), -1)
    img[fy : fy + 121, fx : fx + 110] = face
    return img


def _jpeg_with_exif(pixels: np.ndarray, path: Path) -> int:
    """Save ``pixels`` as a JPEG carrying camera and GPS tags; returns the number of tags."""
    im = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F] = "pixveil demo camera"  # Make
    exif[0x0110] = "PV-1"  # Model
    exif[0x0132] = "2026:01:01 12:00:00"  # DateTime
    exif[0x013B] = "Jane Example"  # Artist
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    exif[0x8825] = gps  # GPSInfo
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="JPEG", quality=92, exif=exif.tobytes())
    with Image.open(path) as check:
        e = check.getexif()
        return len(e) + len(e.get_ifd(0x8825))


@dataclass
class DemoResult:
    output_dir: Path
    report: BatchReport
    notes: list[str] = field(default_factory=list)


def run_demo(directory: Path | str = "pixveil-demo", *, method: str = "blur") -> DemoResult:
    """Write the demo inputs, protect them, and write a gallery of every method.

    Layout: ``<dir>/input/`` (originals with EXIF), ``<dir>/output/`` (protected with
    ``method``), ``<dir>/methods/`` (the street scene under every registered method).
    """
    root = Path(directory)
    inputs = root / "input"
    tags = _jpeg_with_exif(astronaut(), inputs / "astronaut.jpg")
    _jpeg_with_exif(street_scene(), inputs / "street.jpg")
    report = run_batch([inputs], root / "output", AnonymizeConfig(method=method, sidecar=True))
    notes = [f"inputs: {inputs} (each with {tags} EXIF tags: camera, date, artist, GPS)"]
    for o in report.outcomes:
        if o.output is not None:
            with Image.open(o.output) as im:
                left = len(im.getexif()) + len(im.info.get("exif", b""))
            found = (
                ", ".join(f"{o.detections.count(k)} {k}(s)" for k in ("face", "plate"))
                if o.detections
                else ""
            )
            notes.append(f"{o.output}: {found}; EXIF tags left: {left}")
    # the street scene under every registered method, from one detection pass
    gallery = root / "methods"
    pixels = read_image(inputs / "street.jpg").pixels
    detections = Anonymizer(AnonymizeConfig(method=method)).detect(pixels)
    shown = [m for m in GALLERY_METHODS if m in available_methods()]
    for name in shown:
        protected = protect_regions(get_method(name), pixels, detections).image
        write_image(gallery / f"street_{name}.png", protected, format="png")
    notes.append(f"gallery: {gallery}/street_<method>.png for {', '.join(shown)}")
    return DemoResult(root / "output", report, notes)
