"""Re-identification scores (hand-made embeddings) and the dlib judge on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import InputError
from pixveil.evaluate.reid import (
    DEFAULT_THRESHOLD,
    false_accept_rate,
    pairwise_distances,
    rank1_identification,
    reid_scores,
    same_photo_verification,
    verification_rate,
)
from pixveil.protect import get_method
from pixveil.types import Region

# Three identities on orthogonal axes, 1.0 apart from the origin (√2 between them).
GALLERY = np.eye(3, 8)
GALLERY_IDS = ["ann", "bob", "cyd"]


def probe(near: int, offset: float, towards: int | None = None) -> np.ndarray:
    """A point ``offset`` away from identity ``near`` (towards another identity if given)."""
    v = GALLERY[near].copy()
    direction = np.zeros(8)
    direction[7 if towards is None else towards] = 1.0
    if towards is not None:
        direction = (GALLERY[towards] - GALLERY[near]) / np.sqrt(2)
    return v + offset * direction


class TestScores:
    def test_distances(self) -> None:
        d = pairwise_distances(GALLERY, GALLERY)
        np.testing.assert_allclose(np.diag(d), 0, atol=1e-7)
        np.testing.assert_allclose(d[0, 1], np.sqrt(2))
        with pytest.raises(ValueError, match="sizes differ"):
            pairwise_distances(GALLERY, np.zeros((1, 5)))

    def test_rank1_and_verification(self) -> None:
        probes = np.stack(
            [
                probe(0, 0.3),  # ann, close: identified and verified
                probe(1, 0.65),  # bob, identified (nearest) but above 0.6: not verified
                probe(2, 1.0, towards=0),  # cyd, moved most of the way to ann: misidentified
                probe(0, 0.59),  # ann, just inside the threshold
            ]
        )
        ids = ["ann", "bob", "cyd", "ann"]
        assert rank1_identification(GALLERY, GALLERY_IDS, probes, ids) == pytest.approx(3 / 4)
        assert verification_rate(GALLERY, GALLERY_IDS, probes, ids) == pytest.approx(2 / 4)
        # Impostor pairs: only the cyd probe (0.41 from ann) is within 0.6 of another identity.
        assert false_accept_rate(GALLERY, GALLERY_IDS, probes, ids) == pytest.approx(1 / 8)
        assert verification_rate(GALLERY, GALLERY_IDS, probes, ids, threshold=0.7) == 3 / 4

    def test_several_enrolments_per_identity(self) -> None:
        gallery = np.vstack([GALLERY, probe(1, 0.2)])
        gids = [*GALLERY_IDS, "bob"]
        probes = np.stack([probe(1, 0.5, towards=2)])
        # nearest bob entry (0.5 away) counts for verification
        assert verification_rate(gallery, gids, probes, ["bob"]) == 1.0
        assert rank1_identification(gallery, gids, probes, ["bob"]) == 1.0

    def test_same_photo(self) -> None:
        originals = np.stack([probe(0, 0.0), probe(1, 0.0)])
        protected = np.stack([probe(0, 0.2), probe(1, 0.9)])
        assert same_photo_verification(originals, protected) == 0.5
        with pytest.raises(ValueError, match="same shape"):
            same_photo_verification(originals, protected[:1])

    def test_collapsed_probes_show_in_false_accepts(self) -> None:
        """Protected faces that all collapse to one point 'verify' against everyone."""
        centre = GALLERY.mean(axis=0)
        probes = np.stack([centre] * 3)
        scores = reid_scores(GALLERY, GALLERY_IDS, probes, GALLERY_IDS, probe_originals=GALLERY)
        assert scores.verification == 0.0  # centre is 0.82 from each: above 0.6
        loose = reid_scores(GALLERY, GALLERY_IDS, probes, GALLERY_IDS, threshold=0.9)
        assert loose.verification == 1.0 and loose.false_accept == 1.0
        assert loose.same_photo is None
        assert scores.to_dict()["n_probes"] == 3 and scores.n_gallery == 3

    def test_validation(self) -> None:
        probes = np.stack([probe(0, 0.1)])
        with pytest.raises(ValueError, match="no gallery entry"):
            rank1_identification(GALLERY, GALLERY_IDS, probes, ["zed"])
        with pytest.raises(ValueError, match="one identity per embedding"):
            rank1_identification(GALLERY, GALLERY_IDS[:2], probes, ["ann"])
        with pytest.raises(ValueError, match="non-empty"):
            rank1_identification(GALLERY, GALLERY_IDS, np.zeros((0, 8)), [])
        with pytest.raises(ValueError, match="finite"):
            rank1_identification(GALLERY, GALLERY_IDS, np.full((1, 8), np.nan), ["ann"])

    def test_single_identity_has_no_false_accepts(self) -> None:
        assert false_accept_rate(GALLERY[:1], ["ann"], GALLERY[:1], ["ann"]) == 0.0

    def test_default_threshold(self) -> None:
        assert DEFAULT_THRESHOLD == 0.6


# ---------------------------------------------------------------------------
# The dlib judge
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from pixveil.evaluate.reid import get_face_encoder

    return get_face_encoder()


class TestFaceEncoder:
    def test_finds_and_encodes_the_astronaut(self, encoder, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        boxes = encoder.locate(astronaut)
        box = encoder.locate_central(astronaut)
        assert box in boxes
        x0, y0, x1, y1 = box
        assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # the face
        emb = encoder.encode(astronaut, box)
        assert emb.shape == (128,) and emb.dtype == np.float64
        again = encoder.encode(astronaut, box)
        np.testing.assert_array_equal(emb, again)

    def test_matches_face_recognition(self, encoder, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        """Same embeddings as face_recognition.face_encodings (its default 5-point model)."""
        fr = pytest.importorskip("face_recognition")
        box = encoder.locate_central(astronaut)
        css = (
            int(box[1]),
            int(box[2]) - 1,
            int(box[3]) - 1,
            int(box[0]),
        )  # top, right, bottom, left
        assert css in fr.face_locations(astronaut)
        theirs = fr.face_encodings(astronaut, known_face_locations=[css])[0]
        np.testing.assert_allclose(encoder.encode(astronaut, box), theirs, atol=1e-6)

    def test_blur_moves_the_embedding(self, encoder, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        box = encoder.locate_central(astronaut)
        blurred = get_method("blur").apply(astronaut, [Region(box, "face")])
        d = np.linalg.norm(encoder.encode(astronaut, box) - encoder.encode(blurred, box))
        assert d > DEFAULT_THRESHOLD

    def test_bad_inputs(self, encoder, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(InputError, match="too small"):
            encoder.encode(astronaut, (10, 10, 11, 11))
        with pytest.raises(InputError, match="uint8"):
            encoder.encode(astronaut.astype(np.float32), (10, 10, 100, 100))
        with pytest.raises(InputError):
            encoder.locate(astronaut[:, :, 0])

    def test_parameters_validated(self) -> None:
        from pixveil.evaluate.reid import FaceEncoder

        with pytest.raises(ValueError, match="num_jitters"):
            FaceEncoder(num_jitters=0)
        with pytest.raises(ValueError, match="upsample"):
            FaceEncoder(upsample=5)


def lfw_pairs(lfw: Path, n: int, encoder) -> list[tuple[str, np.ndarray, tuple, np.ndarray, tuple]]:  # type: ignore[no-untyped-def]
    """n identities (seeded order) with two photos in which dlib finds a face."""
    names = sorted(d.name for d in lfw.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 2)
    out = []
    for i in np.random.default_rng(0).permutation(len(names)):
        files = sorted((lfw / names[i]).glob("*.jpg"))[:2]
        a, b = (np.asarray(Image.open(f).convert("RGB")) for f in files)
        ba, bb = encoder.locate_central(a), encoder.locate_central(b)
        if ba is not None and bb is not None:
            out.append((names[i], a, ba, b, bb))
        if len(out) == n:
            break
    return out


@pytest.mark.slow
@pytest.mark.shared
def test_lfw_reidentified_unless_blurred(encoder, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    """Unprotected LFW probes are re-identified; the default blur stops it."""
    lfw = shared_data / "lfw"
    if not lfw.is_dir():
        pytest.skip("LFW is not in ../shared/data")
    pairs = lfw_pairs(lfw, 20, encoder)
    ids = [p[0] for p in pairs]
    gallery = np.stack([encoder.encode(a, ba) for _, a, ba, _, _ in pairs])
    clear = np.stack([encoder.encode(b, bb) for _, _, _, b, bb in pairs])
    blur = get_method("blur")
    blurred = np.stack(
        [encoder.encode(blur.apply(b, [Region(bb, "face")]), bb) for _, _, _, b, bb in pairs]
    )
    base = reid_scores(gallery, ids, clear, ids)
    protected = reid_scores(gallery, ids, blurred, ids, probe_originals=clear)
    assert base.rank1 >= 0.9 and base.verification >= 0.9
    assert protected.rank1 <= 0.15  # chance is 0.05
    assert protected.same_photo is not None and protected.same_photo <= 0.15
