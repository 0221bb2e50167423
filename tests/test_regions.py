"""Region kinds: face, head (grown from the face) and person (people detector or body box)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from pixveil.protect import available_methods, get_method, protect_regions
from pixveil.protect.base import region_geometry
from pixveil.regions import (
    REGION_KINDS,
    body_box,
    check_region_kind,
    expand_regions,
    head_box,
    inner_face,
    people_boxes,
)
from pixveil.types import Region

LANDMARKS = np.array([[88, 95], [112, 95], [100, 108], [91, 120], [109, 120]], np.float32)
FACE = Region((80.0, 80.0, 120.0, 130.0), kind="face", score=0.9, landmarks=LANDMARKS)


def _scene(seed: int = 0, size: tuple[int, int] = (240, 200)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def _changeable(regions: list[Region], width: int, height: int, *, margin: float) -> np.ndarray:
    union = np.zeros((height, width), dtype=bool)
    for r in regions:
        geom = region_geometry(r, width, height, shape="auto", margin=margin)
        if geom is not None:
            (x0, y0, x1, y1), mask, _ = geom
            union[y0:y1, x0:x1] |= mask
    return union


class TestGeometry:
    def test_head_box_grows_around_the_face(self) -> None:
        x0, y0, x1, y1 = head_box(FACE)
        assert x0 < 80 and x1 > 120 and y0 < 80 - 0.5 * 50 and y1 > 130
        assert abs((x0 + x1) / 2 - 100) < 1  # centred on the landmarks' middle

    def test_head_mask_is_a_skull_and_a_neck(self) -> None:
        head = expand_regions([FACE], "head")[0]
        geom = region_geometry(head, 200, 240, shape="auto", margin=1.3)
        assert geom is not None
        (x0, y0, x1, y1), mask, _ = geom
        assert (x0, y0, x1, y1) == tuple(
            int(v) for v in (np.floor(head.box[0]), np.floor(head.box[1]), *np.ceil(head.box[2:]))
        )  # margin does not grow a head region
        h, w = mask.shape
        assert mask[h // 3, w // 2] and mask[h - 2, w // 2]  # skull centre, bottom of the neck
        assert not mask[0, 0] and not mask[h - 1, 0]  # corners above the shoulders stay

    def test_inner_face_round_trip(self) -> None:
        for kind in ("head", "person"):
            derived = expand_regions([FACE], kind)[0]
            assert derived.kind == kind
            face = inner_face(derived)
            assert face is not None and face.box == FACE.box
            assert face.landmarks is not None
            np.testing.assert_allclose(face.landmarks, LANDMARKS)

    def test_person_without_people_detection_is_the_grown_body(self) -> None:
        person = expand_regions([FACE], "person", people=[])[0]
        bx = body_box(FACE)
        assert person.box == pytest.approx(bx)
        assert person.box[3] > 130 + 6 * 50  # reaches far below the face

    def test_person_takes_the_body_detection_holding_the_face(self) -> None:
        body = (60.0, 60.0, 150.0, 300.0)
        stray = (300.0, 10.0, 360.0, 130.0)
        out = expand_regions([FACE], "person", people=[(body, 0.8), (stray, 0.7)])
        assert [r.kind for r in out] == ["person", "person"]
        hx0, hy0, hx1, _ = head_box(FACE)
        assert out[0].box == pytest.approx((min(60, hx0), min(60, hy0), max(150, hx1), 300))
        assert out[1].box == stray and inner_face(out[1]) is None

    def test_other_kinds_pass_through(self) -> None:
        plate = Region((10, 200, 60, 215), kind="plate", score=0.7)
        for kind in REGION_KINDS:
            out = expand_regions([plate, FACE], kind, people=[])
            assert out[0] is plate
        assert expand_regions([FACE], "face") == [FACE]

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValueError, match="face, head, person"):
            check_region_kind("body")
        with pytest.raises(ValueError, match="region"):
            expand_regions([FACE], "hair")


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    path = tmp_path_factory.mktemp("pic") / "pic.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)
    return {"image": {"image": str(path)}}


@pytest.mark.parametrize("kind", ["head", "person"])
@pytest.mark.parametrize("name", available_methods())
def test_every_method_changes_only_the_region(
    name: str, kind: str, required: dict[str, dict[str, Any]]
) -> None:
    image = _scene()
    plate = Region((10.0, 210.0, 60.0, 225.0), kind="plate", score=0.8)
    regions = expand_regions([FACE, plate], kind, people=[])
    method = get_method(name, **required.get(name, {}))
    companion = None if method.kinds is None else get_method("blur")
    out = protect_regions(
        method, image, regions, rng=np.random.default_rng(1), companion=companion
    ).image
    h, w = image.shape[:2]
    allowed = _changeable(regions, w, h, margin=method.params.margin)
    companion_margin = companion.params.margin if companion is not None else method.params.margin
    allowed |= _changeable(regions, w, h, margin=companion_margin)
    assert np.array_equal(out[~allowed], image[~allowed])
    derived = regions[0]
    geom = region_geometry(derived, w, h, shape="auto", margin=1.0)
    assert geom is not None
    (x0, y0, x1, y1), mask, _ = geom
    inside = mask & (out[y0:y1, x0:x1] != image[y0:y1, x0:x1]).any(axis=2)
    # the hair, ears and neck around the face change too, not only the face
    above = slice(0, max(1, int(FACE.box[1]) - y0))
    assert inside[above].mean() > 0.5 * mask[above].mean(), name


def test_gan_face_synthesises_the_face_and_fills_the_rest() -> None:
    pytest.importorskip("onnxruntime")
    from pixveil.protect.gan import SURROUND_COLOR

    image = _scene(3)
    head = expand_regions([FACE], "head")[0]
    out = protect_regions(get_method("gan-face"), image, [head], rng=np.random.default_rng(0)).image
    # above the face (hair) is the fill colour; at the face centre it is not
    assert tuple(out[int(head.box[1]) + 3, 100]) == SURROUND_COLOR
    assert tuple(out[105, 100]) != SURROUND_COLOR
    # a person found without a face is filled entirely
    lone = Region((10.0, 10.0, 40.0, 70.0), kind="person", score=0.9)
    filled = protect_regions(get_method("gan-face"), image, [lone]).image
    assert (filled[10:70, 10:40] == np.asarray(SURROUND_COLOR, np.uint8)).all()


def _hairline(image: np.ndarray, face: Region) -> int | None:
    """Row where the forehead's skin colour ends above the eyes (the hair line, or the
    top of a bald head), scanning up the face's middle column band."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lm = face.landmarks
    assert lm is not None
    x0, _, x1, y1 = face.box
    fw, fh = x1 - x0, y1 - face.box[1]
    eye_y, cx = float(lm[:2, 1].mean()), float(lm[:, 0].mean())
    skin = np.median(
        lab[int(eye_y) : int(lm[2, 1]) + 1, int(cx - 0.1 * fw) : int(cx + 0.1 * fw) + 1].reshape(
            -1, 3
        ),
        axis=0,
    )
    cols = slice(max(0, int(cx - 0.08 * fw)), int(cx + 0.08 * fw) + 1)
    run = 0
    for y in range(int(eye_y - 0.15 * fh), 0, -1):
        run = run + 1 if np.linalg.norm(np.median(lab[y, cols], axis=0) - skin) > 30 else 0
        if run >= 3:
            return y + 2
    return None


def test_head_region_covers_the_hair_line_on_lfw(shared_data: Path) -> None:
    from pixveil.detect import get_detector
    from pixveil.io import read_image

    detector = get_detector("faces")
    people = sorted(p for p in (shared_data / "lfw").iterdir() if p.is_dir())[::290][:20]
    checked = missed_by_face = 0
    for person in people:
        path = sorted(person.glob("*.jpg"))[0]
        image = read_image(path).pixels
        h, w = image.shape[:2]
        faces = [r for r in detector.detect(image) if r.kind == "face" and r.landmarks is not None]
        if not faces:
            continue
        face = min(faces, key=lambda r: abs(r.center[0] - w / 2) + abs(r.center[1] - h / 2))
        line = _hairline(image, face)
        if line is None:
            continue
        head = expand_regions([face], "head")[0]
        face_only = _changeable([face], w, h, margin=1.3)
        covered = _changeable([head], w, h, margin=1.3)
        cx = int(face.landmarks[:, 0].mean())  # type: ignore[index]
        fh = face.height
        # the hair line and the hair 0.4 face heights above it are in the head region ...
        for y in (line, int(line - 0.4 * fh)):
            assert y < 0 or covered[y, cx], f"{path.name}: row {y} uncovered"
        # ... and the ears' height at the face's sides too
        eye_y = int(face.landmarks[:2, 1].mean())  # type: ignore[index]
        assert covered[eye_y, max(0, int(face.box[0] - 0.1 * face.width))]
        assert covered[eye_y, min(w - 1, int(face.box[2] + 0.1 * face.width))]
        checked += 1
        if line - 0.4 * fh >= 0 and not face_only[int(line - 0.4 * fh), cx]:
            missed_by_face += 1
    assert checked >= 15
    assert missed_by_face >= checked // 2  # the face region alone leaves that hair visible


def test_people_detector_finds_pedestrians(shared_data: Path) -> None:
    cap = cv2.VideoCapture(str(shared_data / "video" / "vtest.avi"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    found = people_boxes(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert len(found) >= 2
    for (x0, y0, x1, y1), score in found:
        assert 0 < score < 1 and y1 - y0 > x1 - x0  # upright people


def test_anonymize_region_head_protects_hair(shared_data: Path) -> None:
    import pixveil

    path = shared_data / "lfw" / "Tony_Blair" / "Tony_Blair_0002.jpg"
    image = np.asarray(Image.open(path).convert("RGB"))
    face_only = pixveil.anonymize(path, method="mask", targets="faces")
    head = pixveil.anonymize(path, method="mask", targets="faces", region="head")
    face = max(face_only.detections, key=lambda r: r.area)
    x0, y0, x1, _ = (int(v) for v in face.box)
    hair = (slice(max(0, y0 - int(0.3 * face.height)), y0), slice(x0, x1))
    assert (face_only.image[hair] == image[hair]).mean() > 0.5  # hair left visible
    assert (head.image[hair] == 0).all()  # hair masked
    assert head.detections.to_dict() == face_only.detections.to_dict()  # the faces found


def test_video_refuses_head_region() -> None:
    from pixveil.config import AnonymizeConfig
    from pixveil.video import anonymize_video

    frames = [np.zeros((64, 64, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match="not supported for videos"):
        list(anonymize_video(frames, config=AnonymizeConfig(targets=("faces",), region="head")))


def test_config_checks_region() -> None:
    from pixveil.config import AnonymizeConfig

    assert AnonymizeConfig(region="Head").region == "head"
    with pytest.raises(ValueError, match="region must be one of"):
        AnonymizeConfig(region="body")


def test_cli_region(shared_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pixveil.cli import app

    runner = CliRunner()
    src = shared_data / "lfw" / "Tony_Blair" / "Tony_Blair_0002.jpg"
    out = tmp_path / "out.png"
    res = runner.invoke(
        app,
        ["anonymize", str(src), "-o", str(out), "-t", "faces", "-m", "mask", "--region", "head"],
    )
    assert res.exit_code == 0, res.output
    protected = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(src).convert("RGB"))
    assert (protected == 0).all(axis=2).mean() > 2 * 0.15  # far more than a face ellipse
    assert (protected[-5:, :5] == original[-5:, :5]).all()  # the corner stays
    bad = runner.invoke(
        app, ["anonymize", str(src), "-o", str(tmp_path / "x.png"), "--region", "body"]
    )
    assert bad.exit_code == 2 and "region must be one of" in bad.output


def test_methods_listing_states_the_informed_attacker() -> None:
    from typer.testing import CliRunner

    from pixveil.cli import app
    from pixveil.regions import INFORMED_ATTACKER_NOTE

    res = CliRunner().invoke(app, ["methods"])
    assert res.exit_code == 0
    assert " ".join(INFORMED_ATTACKER_NOTE.split()[:8]) in " ".join(res.output.split())
    assert "chance" in INFORMED_ATTACKER_NOTE and "--region" in INFORMED_ATTACKER_NOTE
