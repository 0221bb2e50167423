"""End-to-end behaviour of the pipeline: detection + protection + sanitized writing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

import pixveil
from pixveil.config import AnonymizeConfig
from pixveil.detect import DETECTORS, Detector, register_detector
from pixveil.errors import DetectionError
from pixveil.pipeline import run_batch
from pixveil.protect import METHODS, ProtectionMethod, register_method
from pixveil.types import Region


class _BrokenDetector(Detector):
    kind: ClassVar[str] = "face"

    def detect(self, image: np.ndarray) -> list[Region]:
        raise DetectionError("simulated detector crash")


class _BrokenMethod(ProtectionMethod):
    def replace(self, patch, region, *, rng):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated method crash")


@pytest.fixture
def broken_plugins() -> Iterator[None]:
    """A detector and a method that crash, registered for one test only."""
    import pixveil.detect
    import pixveil.protect

    pixveil.detect.available_targets(), pixveil.protect.available_methods()  # load built-ins
    register_detector("test-broken-detector")(_BrokenDetector)
    register_method("test-broken-method")(_BrokenMethod)
    try:
        yield
    finally:
        DETECTORS.unregister("test-broken-detector")
        METHODS.unregister("test-broken-method")


def _save_jpeg(pixels: np.ndarray, path: Path, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95, **kw)
    return path


def _changed_mask(a: np.ndarray, b: np.ndarray, tol: int = 0) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > tol


class TestAnonymizeArray:
    def test_face_found_and_only_its_pixels_change(self, astronaut: np.ndarray) -> None:
        result = pixveil.anonymize(astronaut, targets="faces")
        faces = result.detections.of_kind("face")
        assert len(faces) == 1
        x0, y0, x1, y1 = faces[0].box
        # the astronaut's face is in the upper middle of the portrait
        assert 150 < (x0 + x1) / 2 < 280 and 60 < (y0 + y1) / 2 < 200
        changed = _changed_mask(astronaut, result.image)
        ys, xs = np.nonzero(changed)
        grown = faces[0].scaled(1.3)
        assert xs.min() >= grown.box[0] - 1 and xs.max() <= grown.box[2] + 1
        assert ys.min() >= grown.box[1] - 1 and ys.max() <= grown.box[3] + 1
        # and the face itself is really changed, not touched lightly
        face = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        diff = np.abs(astronaut[face].astype(int) - result.image[face].astype(int)).mean()
        assert diff > 15

    def test_result_unpacks_and_keeps_shape(self, astronaut: np.ndarray) -> None:
        image, detections = pixveil.anonymize(astronaut, targets=("faces",), method="mask")
        assert image.shape == astronaut.shape and image.dtype == np.uint8
        assert len(detections) == 1

    def test_dp_noise_is_seeded_only_on_request(self, astronaut: np.ndarray) -> None:
        a = pixveil.anonymize(astronaut, targets="faces", method="dp-pix", epsilon=1.0, seed=3)
        b = pixveil.anonymize(astronaut, targets="faces", method="dp-pix", epsilon=1.0, seed=3)
        c = pixveil.anonymize(astronaut, targets="faces", method="dp-pix", epsilon=1.0)
        d = pixveil.anonymize(astronaut, targets="faces", method="dp-pix", epsilon=1.0)
        assert np.array_equal(a.image, b.image)
        assert not np.array_equal(c.image, d.image)

    def test_unknown_target_and_method(self, astronaut: np.ndarray) -> None:
        with pytest.raises(ValueError, match="unknown target"):
            pixveil.anonymize(astronaut, targets="elephants")
        with pytest.raises(ValueError, match="unknown protection method"):
            pixveil.anonymize(astronaut, method="smudge")


# EXIF orientation -> the transpose that stores an upright picture under that tag
_STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(_STORE))
def test_rotated_phone_photo_is_protected_where_the_face_is(
    tmp_path: Path, astronaut: np.ndarray, orientation: int
) -> None:
    upright = pixveil.anonymize(astronaut, targets="faces", method="mask")
    (face,) = upright.detections.of_kind("face")
    stored = Image.fromarray(astronaut).transpose(_STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    src = tmp_path / f"phone_{orientation}.jpg"
    stored.save(src, quality=97, exif=exif.tobytes())

    out_dir = tmp_path / "out"
    report = run_batch([src], out_dir, AnonymizeConfig(targets=("faces",), method="mask"))
    assert report.n_ok == 1, report.failures
    outcome = report.outcomes[0]
    assert outcome.detections is not None
    (found,) = outcome.detections.of_kind("face")
    assert found.iou(face) > 0.8
    with Image.open(outcome.output) as im:  # type: ignore[arg-type]
        written = np.asarray(im.convert("RGB"))
        assert im.getexif().get(0x0112) is None  # no orientation tag left to re-rotate it
    assert written.shape == astronaut.shape
    # masked (black) where the face is, in the upright frame; background unchanged
    cx, cy = (int(v) for v in face.center)
    assert written[cy - 5 : cy + 5, cx - 5 : cx + 5].max() < 40
    assert np.abs(written[400:500, 20:120].astype(int) - astronaut[400:500, 20:120]).mean() < 4


def _bomb_png(path: Path) -> Path:
    Image.new("1", (20000, 20000)).save(path, optimize=True)
    return path


@pytest.fixture
def mixed_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    root = tmp_path / "photos"
    _save_jpeg(astronaut, root / "good.jpg")
    (root / "sub").mkdir()
    Image.fromarray(astronaut[::2, ::2]).save(root / "sub" / "good2.png")
    data = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "random.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "empty.jpg").write_bytes(b"")
    _bomb_png(root / "bomb.png")
    (root / "notes.txt").write_text("not an image")
    return root


class TestBatch:
    def test_bad_files_fail_alone(self, mixed_folder: Path, tmp_path: Path) -> None:
        out = tmp_path / "out"
        report = run_batch([mixed_folder], out, AnonymizeConfig(targets=("faces",)))
        assert report.n_images == 6
        assert [p.name for p in report.skipped] == ["notes.txt"]
        ok = sorted(o.path.name for o in report.outcomes if o.ok)
        failed = {o.path.name: o.error for o in report.failures}
        assert ok == ["good.jpg", "good2.png"]
        assert set(failed) == {"truncated.jpg", "random.jpg", "empty.jpg", "bomb.png"}
        for name, error in failed.items():
            assert error and "\n" not in error, name
        # the output tree mirrors the input tree; nothing for the bad files
        written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert written == ["good.jpg", "sub/good2.png"]
        assert report.count("face") == 2

    def test_odd_modes_are_processed(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = tmp_path / "modes"
        src.mkdir()
        Image.fromarray(astronaut).convert("CMYK").save(src / "cmyk.jpg", quality=95)
        g16 = (astronaut.mean(axis=2) * 257).astype(np.uint16)
        Image.fromarray(g16).save(src / "gray16.png")
        Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE).save(
            src / "palette.png"
        )
        frames = [Image.fromarray(astronaut), Image.fromarray(255 - astronaut)]
        frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
        rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 200, np.uint8)])
        Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
        report = run_batch([src], tmp_path / "out", AnonymizeConfig(targets=("faces",)))
        assert report.n_ok == 5, [(o.path.name, o.error) for o in report.failures]
        assert report.count("face") == 5
        with Image.open(tmp_path / "out" / "alpha.png") as im:
            assert im.mode == "RGBA"
            assert np.asarray(im)[..., 3].min() == 200

    def test_never_overwrites_inputs(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = _save_jpeg(astronaut, tmp_path / "a.jpg")
        before = hashlib.sha256(src.read_bytes()).hexdigest()
        report = run_batch([tmp_path], tmp_path, AnonymizeConfig(targets=("faces",)))
        assert report.n_ok == 0 and len(report.failures) == 1
        assert hashlib.sha256(src.read_bytes()).hexdigest() == before

    @pytest.mark.usefixtures("broken_plugins")
    def test_fail_closed_when_detection_raises(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = _save_jpeg(astronaut, tmp_path / "in" / "a.jpg")
        out = tmp_path / "out"
        cfg = AnonymizeConfig(targets=("faces", "test-broken-detector"))
        report = run_batch([src], out, cfg)
        assert report.n_ok == 0
        assert "simulated detector crash" in (report.failures[0].error or "")
        assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))

    @pytest.mark.usefixtures("broken_plugins")
    def test_fail_closed_when_protection_raises(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _save_jpeg(astronaut, tmp_path / "in" / "a.jpg")
        out = tmp_path / "out"
        report = run_batch(
            [src], out, AnonymizeConfig(targets=("faces",), method="test-broken-method")
        )
        assert report.n_ok == 0
        assert "simulated method crash" in (report.failures[0].error or "")
        assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))

    def test_sidecar_has_boxes_but_no_pixels_or_text(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        src = _save_jpeg(astronaut, tmp_path / "in" / "a.jpg")
        report = run_batch([src], tmp_path / "out", AnonymizeConfig(sidecar=True))
        assert report.n_ok == 1
        payload = json.loads((tmp_path / "out" / "a.jpg.json").read_text())
        faces = [r for r in payload["regions"] if r["kind"] == "face"]
        assert len(faces) == 1 and len(faces[0]["box"]) == 4 and len(faces[0]["landmarks"]) == 5
        assert all("label" not in r for r in payload["regions"])
        assert payload["width"] == 512

    def test_format_option_changes_extension(self, tmp_path: Path, astronaut: np.ndarray) -> None:
        src = _save_jpeg(astronaut, tmp_path / "in" / "a.jpg")
        report = run_batch(
            [src], tmp_path / "out", AnonymizeConfig(targets=("faces",), output_format="bmp")
        )
        assert report.outcomes[0].output == tmp_path / "out" / "a.bmp"
        with Image.open(tmp_path / "out" / "a.bmp") as im:
            assert im.format == "BMP"


def test_kind_specific_methods_never_leave_other_kinds_unprotected() -> None:
    from pixveil.errors import ProtectionError
    from pixveil.protect import protect_regions
    from pixveil.protect.base import MethodParams, ProtectionMethod
    from pixveil.types import Region

    class FacesOnly(ProtectionMethod):
        name = "faces-only-test"
        Params = MethodParams
        kinds = frozenset({"face"})

        def replace(self, patch: np.ndarray, region: Region, *, rng: object) -> np.ndarray:
            return np.zeros_like(patch)

    img = np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    face = Region((5.0, 5.0, 45.0, 55.0), "face", 0.9)
    plate = Region((70.0, 20.0, 115.0, 40.0), "plate", 0.9)
    m = FacesOnly(shape="box", margin=1.0)
    with pytest.raises(ProtectionError, match="cannot protect this 'plate' region"):
        m.apply(img, [face, plate])
    done = protect_regions(m, img, [face, plate])
    out = done.image
    assert [o.method for o in done.outcomes] == ["faces-only-test", "blur"]
    assert (out[5:55, 5:45] == 0).all()  # the face: by the method
    assert np.abs(out[20:40, 70:115].astype(int) - img[20:40, 70:115]).mean() > 20  # default (blur)
    assert np.array_equal(out[:, 48:60], img[:, 48:60])  # nothing else (grown plate starts at 63)
