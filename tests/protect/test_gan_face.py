"""gan-face on real faces: only the region changes, nothing original survives inside it,
independent noise per face, the guarantee's edge cases, sizes from 20 px to full frame."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixveil.detect import get_detector
from pixveil.errors import ModelError, PrivacyLeakWarning, PrivacyParameterError
from pixveil.gan.data import is_held_out
from pixveil.protect import get_method
from pixveil.protect.base import region_geometry
from pixveil.protect.gan import GanFace, face_transform
from pixveil.types import Region


@pytest.fixture(scope="module")
def faces() -> object:
    return get_detector("faces")


def _main_face(det: object, img: np.ndarray) -> Region:
    regions = det.detect(img)  # type: ignore[attr-defined]
    assert regions, "no face found"
    return max(regions, key=lambda r: r.width * r.height)


def _mask(
    method: GanFace, region: Region, img: np.ndarray
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    geom = region_geometry(
        region, img.shape[1], img.shape[0], shape=method.params.shape, margin=method.params.margin
    )
    assert geom is not None
    box, mask, _ = geom
    return box, mask


def test_only_the_face_region_changes_and_nothing_original_survives(
    astronaut: np.ndarray, faces: object
) -> None:
    m = get_method("gan-face")
    region = _main_face(faces, astronaut)
    out = m.apply(astronaut, [region], rng=np.random.default_rng(0))
    (x0, y0, x1, y1), mask = _mask(m, region, astronaut)  # type: ignore[arg-type]
    full = np.zeros(astronaut.shape[:2], bool)
    full[y0:y1, x0:x1] = mask
    changed = np.any(out != astronaut, axis=2)
    assert not changed[~full].any()
    # every pixel inside is recomputed; equal values can only be coincidences
    assert changed[full].mean() > 0.97
    assert np.abs(out[full].astype(int) - astronaut[full].astype(int)).mean() > 10


def test_the_result_is_still_a_face(astronaut: np.ndarray, faces: object) -> None:
    m = get_method("gan-face")
    region = _main_face(faces, astronaut)
    found = 0
    for seed in range(5):
        out = m.apply(astronaut, [region], rng=np.random.default_rng(seed))
        hits = [r for r in faces.detect(out) if r.iou(region) > 0.3]  # type: ignore[attr-defined]
        found += bool(hits)
    assert found >= 4


def test_seeded_runs_repeat_and_faces_get_independent_noise(
    astronaut: np.ndarray, faces: object
) -> None:
    m = get_method("gan-face")
    region = _main_face(faces, astronaut)
    a = m.apply(astronaut, [region], rng=np.random.default_rng(3))
    b = m.apply(astronaut, [region], rng=np.random.default_rng(3))
    c = m.apply(astronaut, [region], rng=np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # the same face twice in one image gets two different replacements
    twin = np.concatenate([astronaut, astronaut], axis=1)
    x0, y0, x1, y1 = region.box
    shifted = Region(
        (x0 + 512, y0, x1 + 512, y1),
        "face",
        region.score,
        landmarks=region.landmarks + np.array([512.0, 0.0], np.float32),
    )
    regions = [region, shifted]
    out = m.apply(twin, regions, rng=np.random.default_rng(0))
    left, right = out[:, :512], out[:, 512:]
    (x0, y0, x1, y1), _ = _mask(m, regions[0], twin)  # type: ignore[arg-type]
    assert np.abs(left[y0:y1, x0:x1].astype(int) - right[y0:y1, x0:x1].astype(int)).mean() > 3


def test_epsilon_zero_never_encodes_the_face(
    astronaut: np.ndarray, faces: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = get_method("gan-face", epsilon=0)
    assert isinstance(m, GanFace)

    def boom(*_: object) -> None:
        raise AssertionError("the face was encoded")

    monkeypatch.setattr(m.gan, "encode", boom)
    region = _main_face(faces, astronaut)
    out = m.apply(astronaut, [region], rng=np.random.default_rng(0))
    assert not np.array_equal(out, astronaut)


def test_epsilon_inf_warns() -> None:
    with pytest.warns(PrivacyLeakWarning):
        get_method("gan-face", epsilon=math.inf)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"epsilon": -1.0}, PrivacyParameterError),
        ({"epsilon": float("nan")}, PrivacyParameterError),
        ({"blend": "paste"}, ValueError),
        ({"pose": "none"}, ValueError),
        ({"truncation": -0.1}, ValueError),
        ({"truncation": 3.0}, ValueError),
        ({"refine_steps": 10_000}, ValueError),
        ({"refine_steps": 1.5}, ValueError),
        ({"device": "gpu"}, ValueError),
        ({"device": None}, ValueError),
    ],
)
def test_bad_parameters(params: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        get_method("gan-face", **params)


def test_device_is_plumbed_to_the_runtime(
    astronaut: np.ndarray, faces: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    from pixveil.gan.runtime import load_face_gan

    cpu = get_method("gan-face")
    auto = get_method("gan-face", device="auto")
    assert isinstance(cpu, GanFace) and isinstance(auto, GanFace)
    assert cpu.params.device == "cpu"  # type: ignore[attr-defined]
    assert auto.params.to_dict()["device"] == "auto"
    assert (cpu.gan.device, auto.gan.device) == ("cpu", "auto")
    assert auto.gan.runtime.fallback is None
    region = _main_face(faces, astronaut)
    a = cpu.apply(astronaut, [region], rng=np.random.default_rng(4))
    b = auto.apply(astronaut, [region], rng=np.random.default_rng(4))
    if auto.gan.runtime.device == "cpu":
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="device must be one of auto, cpu"):
        load_face_gan(device="gpu")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    missing = get_method("gan-face", device="cuda")
    assert isinstance(missing, GanFace)
    assert missing.gan.runtime.device == "cpu"
    assert missing.gan.runtime.fallback is not None
    assert "CUDAExecutionProvider" in missing.gan.runtime.fallback


def test_guarantee_is_stated() -> None:
    assert GanFace.guarantee == (
        "ε·d metric privacy of the face's latent code (L1); ε = 0: a random face"
    )


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="pixveil gan export"):
        get_method("gan-face", model=str(tmp_path))


@pytest.mark.parametrize("side", [20, 48, 1400])
def test_face_sizes_from_20_px_to_full_frame(astronaut: np.ndarray, side: int) -> None:
    m = get_method("gan-face")
    face = astronaut[20:260, 110:330]  # the portrait's head
    h = round(side * face.shape[0] / face.shape[1])
    big = cv2.resize(
        face, (side, h), interpolation=cv2.INTER_AREA if side < 220 else cv2.INTER_CUBIC
    )
    canvas = np.full((h + 40, side + 40, 3), 90, np.uint8)
    canvas[20 : 20 + h, 20 : 20 + side] = big
    region = Region((20.0, 20.0, 20.0 + side, 20.0 + h), "face", 0.9)
    out = m.apply(canvas, [region], rng=np.random.default_rng(0))
    (x0, y0, x1, y1), mask = _mask(m, region, canvas)  # type: ignore[arg-type]
    full = np.zeros(canvas.shape[:2], bool)
    full[y0:y1, x0:x1] = mask
    changed = np.any(out != canvas, axis=2)
    assert not changed[~full].any()
    assert changed[full].mean() > 0.9


def test_alignment_uses_landmarks_and_falls_back_to_the_box(
    astronaut: np.ndarray, faces: object
) -> None:
    m = get_method("gan-face", model="dcgan64")
    assert isinstance(m, GanFace)
    region = _main_face(faces, astronaut)
    with_lm = face_transform(region, m.gan, 1.0)
    no_lm = face_transform(Region(region.box, "face", region.score), m.gan, 1.0)
    # the landmark fit maps the canonical eyes onto the detected eyes
    eyes = np.c_[m.gan.card.landmarks[:2], np.ones(2)] @ with_lm.T
    assert np.abs(eyes - region.landmarks[:2]).max() < 0.08 * region.width
    # the box fit maps the canonical box centre onto the box centre
    cb = m.gan.card.box
    c = np.array([(cb[0] + cb[2]) / 2, (cb[1] + cb[3]) / 2, 1.0]) @ no_lm.T
    assert np.allclose(c, region.center, atol=1.0)


def test_pipeline_gives_plates_to_the_default_method() -> None:
    from pixveil.config import AnonymizeConfig
    from pixveil.demo import street_scene
    from pixveil.pipeline import Anonymizer

    scene = street_scene()
    an = Anonymizer(AnonymizeConfig(method="gan-face", seed=0))
    out, det = an.protect_array(scene)
    assert det.count("face") >= 1 and det.count("plate") >= 1
    for r in det:
        x0, y0, x1, y1 = r.pixel_box(scene.shape[1], scene.shape[0])
        assert np.any(out[y0:y1, x0:x1] != scene[y0:y1, x0:x1]), r.kind


@pytest.mark.shared
def test_held_out_lfw_faces_stay_faces(shared_data: Path, faces: object) -> None:
    from PIL import Image

    m = get_method("gan-face")
    idents = [p for p in sorted((shared_data / "lfw").iterdir()) if is_held_out(p.name)][::60][:20]
    found = total = 0
    for ident in idents:
        img = np.asarray(Image.open(sorted(ident.glob("*.jpg"))[0]).convert("RGB"))
        regions = faces.detect(img)  # type: ignore[attr-defined]
        if not regions:
            continue
        region = max(regions, key=lambda r: r.width * r.height)
        out = m.apply(img, [region], rng=np.random.default_rng(0))
        total += 1
        found += any(r.iou(region) > 0.3 for r in faces.detect(out))  # type: ignore[attr-defined]
    assert total >= 15
    assert found / total >= 0.9


def test_low_score_detections_get_the_default_method_not_a_face(astronaut: np.ndarray) -> None:
    from pixveil.protect import protect_regions

    m = get_method("gan-face")
    weak = Region((200.0, 300.0, 260.0, 370.0), "face", 0.3)  # e.g. a headrest
    strong = Region((170.0, 40.0, 290.0, 190.0), "face", 0.9)
    assert m.handles(strong) and not m.handles(weak)
    out = protect_regions(m, astronaut, [weak, strong], rng=np.random.default_rng(0)).image
    blurred = get_method("blur").apply(astronaut, [weak])
    (x0, y0, x1, y1), mask = _mask(get_method("blur"), weak, astronaut)  # type: ignore[arg-type]
    assert np.array_equal(out[y0:y1, x0:x1][mask], blurred[y0:y1, x0:x1][mask])
    with pytest.raises(ValueError, match="swap_threshold"):
        get_method("gan-face", swap_threshold=1.5)


@pytest.mark.parametrize(
    ("model", "blend"),
    [("", "model"), ("", "seamless"), ("dcgan64", "seamless"), ("dcgan64", "feather")],
)
def test_the_new_face_takes_the_lighting_of_a_dark_scene(
    astronaut: np.ndarray, faces: object, model: str, blend: str
) -> None:
    # A face behind a car window: dark and flat.  The synthetic face must come
    # out dark and flat too, not as a studio-lit face pasted in.
    region = _main_face(faces, astronaut)
    dark = (astronaut.astype(np.float32) * 0.2 + 15).astype(np.uint8)
    m = get_method("gan-face", blend=blend, model=model)
    out = m.apply(dark, [region], rng=np.random.default_rng(0))
    (x0, y0, x1, y1), mask = _mask(m, region, dark)  # type: ignore[arg-type]

    def lum(img: np.ndarray) -> np.ndarray:
        crop = img[y0:y1, x0:x1]
        return cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[..., 0][mask].astype(np.float64)

    before, after = lum(dark), lum(out)
    assert abs(after.mean() - before.mean()) < 12
    assert after.std() < 1.5 * before.std() + 2
    # and the face there is new: most pixels moved
    assert np.mean(np.any(out[y0:y1, x0:x1][mask] != dark[y0:y1, x0:x1][mask], axis=1)) > 0.9


@pytest.mark.parametrize("blend", ["seamless", "feather"])
def test_region_beyond_the_generated_crop_is_not_a_mirrored_face(blend: str) -> None:
    # The grown region often reaches above the generator's crop (the forehead).
    # There the swap must not show a mirror image of the crop's edge.
    from pixveil.protect.gan import swap_face

    face = np.full((64, 64, 3), 128, np.uint8)
    face[:8] = (255, 0, 0)  # a red band along the crop's top edge
    face[8:, :, 0] = np.linspace(100, 160, 64, dtype=np.uint8)[None, :]  # some texture
    patch = np.full((128, 128, 3), 100, np.uint8)
    m = np.array([[1.0, 0.0, 32.0], [0.0, 1.0, 32.0]])  # crop at (32..96, 32..96)
    mask = np.zeros((128, 128), bool)
    mask[4:-4, 4:-4] = True
    out = swap_face(patch, face, m, mask, blend=blend).astype(int)
    above = out[24:29, 40:88]  # 3..8 px above the crop: mirrored red rows without the fix
    assert (above[..., 0] - above[..., 1]).mean() < 20
    inside = out[34:38, 40:88]  # the red band itself is kept (up to the colour transfer)
    assert (inside[..., 0] - inside[..., 1]).mean() > (above[..., 0] - above[..., 1]).mean() + 10


def test_poisson_blend_reads_only_the_statistics_of_the_region(astronaut: np.ndarray) -> None:
    # The colour transfer reads the region's mean and spread, nothing else: the
    # region's pixels shuffled among themselves must give the same output.
    # (OpenCV's seamlessClone takes part of its guidance from the destination
    # under the mask; before the fix the original face leaked through it.)
    from pixveil.protect.gan import swap_face

    patch = np.ascontiguousarray(astronaut[20:220, 140:340])
    yy, xx = np.mgrid[0:64, 0:64]
    face = np.stack([96 + yy, 128 + (xx - 32), 120 + 0 * xx], -1).astype(np.uint8)
    m = np.array([[2.5, 0.0, 20.0], [0.0, 2.5, 20.0]])  # crop at (20..180, 20..180)
    mask = np.zeros(patch.shape[:2], bool)
    cv2.ellipse(mask.view(np.uint8), (100, 100), (55, 65), 0, 0, 360, 1, -1)
    shuffled = patch.copy()
    rng = np.random.default_rng(3)
    shuffled[mask] = rng.permutation(patch[mask])
    a = swap_face(patch, face, m, mask, blend="seamless")
    b = swap_face(shuffled, face, m, mask, blend="seamless")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding only
