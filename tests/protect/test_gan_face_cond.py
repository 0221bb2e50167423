"""gan-face's conditional generator: the face is redrawn from its surroundings, never copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app
from pixveil.detect import get_detector
from pixveil.errors import ModelError
from pixveil.gan.cond_runtime import CondFaceGAN
from pixveil.gan.runtime import FaceGAN, default_model_dir
from pixveil.protect import get_method
from pixveil.protect.base import region_geometry
from pixveil.protect.gan import GanFace, context_gain
from pixveil.types import Region


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> Region:
    regions = get_detector("faces").detect(astronaut)
    return max(regions, key=lambda r: r.width * r.height)


def _region_mask(m: GanFace, region: Region, shape: tuple[int, ...]) -> np.ndarray:
    geom = region_geometry(region, shape[1], shape[0], shape="ellipse", margin=m.params.margin)
    assert geom is not None
    (x0, y0, x1, y1), mask, _ = geom
    full = np.zeros(shape[:2], bool)
    full[y0:y1, x0:x1] = mask
    return full


def test_the_default_is_conditional_and_dcgan64_stays_available() -> None:
    default = get_method("gan-face")
    old = get_method("gan-face", model="dcgan64")
    assert isinstance(default, GanFace) and isinstance(old, GanFace)
    assert isinstance(default.gan, CondFaceGAN) and default.context > 1
    assert isinstance(old.gan, FaceGAN) and old.context == 1.0
    assert default.gan.res == 192 and default.gan.res / default.gan.card.context == 128


@pytest.mark.parametrize("blend", ["model", "seamless"])
def test_at_epsilon_zero_the_output_depends_on_the_context_only(
    astronaut: np.ndarray, face: Region, blend: str
) -> None:
    # "seamless" for this generator: Poisson with the surroundings as the boundary
    m = get_method("gan-face", epsilon=0, blend=blend)
    assert isinstance(m, GanFace)
    inside = _region_mask(m, face, astronaut.shape)
    other = astronaut.copy()
    rng = np.random.default_rng(7)
    other[inside] = rng.integers(0, 256, (int(inside.sum()), 3), dtype=np.uint8)  # another "face"
    a = m.apply(astronaut, [face], rng=np.random.default_rng(1))
    b = m.apply(other, [face], rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)  # not one bit of the face reached the output
    assert not (a[~inside] != astronaut[~inside]).any()
    assert np.abs(a[inside].astype(int) - astronaut[inside].astype(int)).mean() > 10


def test_with_noise_the_code_goes_through_the_encoder(astronaut: np.ndarray, face: Region) -> None:
    m = get_method("gan-face", epsilon=1.0)
    calls: list[tuple[int, ...]] = []
    assert isinstance(m.gan, CondFaceGAN)  # type: ignore[attr-defined]
    real = m.gan.encode  # type: ignore[attr-defined]

    def spy(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(crop.shape)
        return real(crop, mask)  # type: ignore[no-any-return]

    m.gan.encode = spy  # type: ignore[attr-defined]
    try:
        out = m.apply(astronaut, [face], rng=np.random.default_rng(0))
    finally:
        del m.gan.encode  # type: ignore[attr-defined]
    assert calls == [(192, 192, 3)]
    assert not np.array_equal(out, astronaut)


def test_the_new_face_is_a_face_and_fits_in(astronaut: np.ndarray, face: Region) -> None:
    det = get_detector("faces")
    m = get_method("gan-face")
    hits = 0
    for seed in range(4):
        out = m.apply(astronaut, [face], rng=np.random.default_rng(seed))
        hits += any(r.iou(face) > 0.5 for r in det.detect(out))
    assert hits >= 3
    # the seam: along the region's edge the new pixels continue the old ones
    inside = _region_mask(m, face, astronaut.shape)  # type: ignore[arg-type]
    from scipy import ndimage

    ring_in = inside & ~ndimage.binary_erosion(inside, iterations=2)
    ring_out = ndimage.binary_dilation(inside, iterations=2) & ~inside
    out = m.apply(astronaut, [face], rng=np.random.default_rng(0)).astype(float)
    orig = astronaut.astype(float)

    def jump(img: np.ndarray) -> float:
        return float(np.abs(img[ring_in] - img[ring_out].mean(0)).mean())

    assert jump(out) < jump(orig) + 15


def test_blend_model_needs_the_conditional_generator() -> None:
    with pytest.raises(ValueError, match="conditional"):
        get_method("gan-face", model="dcgan64", blend="model")


def test_a_corrupt_prior_is_refused(tmp_path: Path) -> None:
    src = default_model_dir()
    for f in src.glob("gan_face_cond*"):
        shutil.copy(f, tmp_path / f.name)
    prior = tmp_path / "gan_face_cond_prior.npz"
    data = bytearray(prior.read_bytes())
    data[-100] ^= 0xFF
    prior.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        CondFaceGAN(tmp_path)


def test_context_gain_lifts_only_flat_dark_scenes() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (192, 192, 3), dtype=np.uint8)
    mask = np.zeros((192, 192), np.float32)
    mask[40:150, 50:140] = 1
    assert context_gain(crop, mask, 23.6) == 1.0
    dark = (crop * 0.1 + 5).astype(np.uint8)  # std ~7, mean ~18
    g = context_gain(dark, mask, 23.6)
    assert 3 < g <= 8


def test_cli_model_option(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(astronaut).save(src)
    runner = CliRunner()
    for model in ("dcgan64", ""):
        out = tmp_path / f"out_{model or 'default'}"
        args = ["anonymize", str(src), "-o", str(out), "--method", "gan-face", "--seed", "0"]
        if model:
            args += ["--model", model]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert (out / "in.png").is_file()
    res = runner.invoke(
        app, ["anonymize", str(src), "-o", str(tmp_path / "x"), "--method", "blur", "--model", "a"]
    )
    assert res.exit_code == 2 and "--model" in res.output


def test_pose_box_ignores_the_landmarks(astronaut: np.ndarray, face: Region) -> None:
    m = get_method("gan-face", epsilon=0, pose="box")
    bare = Region(face.box, "face", face.score)
    a = m.apply(astronaut, [face], rng=np.random.default_rng(2))
    b = m.apply(astronaut, [bare], rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    with_lm = get_method("gan-face", epsilon=0).apply(
        astronaut, [face], rng=np.random.default_rng(2)
    )
    assert not np.array_equal(a, with_lm)
