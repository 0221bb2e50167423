"""Evaluation folders: layouts, deterministic sampling, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import InputError
from pixveil.evaluate.datasets import load_dataset, natural_key


def _image(path: Path, value: int, *, mode: str = "RGB", size: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        Image.fromarray(np.full((size, size), value, np.uint8), mode="L").save(path)
    else:
        Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """ann: 5 images, bob: 3, cyd: 1, dan: 4 (+ a text file and a hidden file)."""
    root = tmp_path / "people"
    for name, n in (("ann", 5), ("bob", 3), ("cyd", 1), ("dan", 4)):
        for k in range(1, n + 1):
            _image(root / name / f"{k}.png", 10 * k)
    (root / "ann" / "notes.txt").write_text("not an image")
    _image(root / "ann" / ".hidden.png", 1)
    return root


class TestIdentities:
    def test_everything_by_default(self, people: Path) -> None:
        ds = load_dataset(people)
        assert ds.layout == "identities" and ds.has_identities
        assert ds.identities == ["ann", "bob", "cyd", "dan"]
        assert len(ds) == 13
        assert ds.identities_found == 4 and ds.images_found == 13
        # grouped by identity, natural file order
        assert [it.name for it in ds][:5] == [f"ann/{k}.png" for k in range(1, 6)]
        assert ds.labels[:6] == ["ann"] * 5 + ["bob"]

    def test_per_identity_drops_small_identities(self, people: Path) -> None:
        ds = load_dataset(people, per_identity=3)
        assert ds.identities == ["ann", "bob", "dan"]
        assert len(ds) == 9
        assert all(ds.labels.count(name) == 3 for name in ds.identities)
        assert ds.identities_eligible == 3
        assert any("fewer than 3 images" in n for n in ds.notes)

    def test_sampling_is_deterministic_and_seeded(self, people: Path) -> None:
        a = load_dataset(people, identities=2, per_identity=2, seed=3)
        b = load_dataset(people, identities=2, per_identity=2, seed=3)
        assert [it.path for it in a] == [it.path for it in b]
        assert len(a.identities) == 2 and len(a) == 4
        picks = {
            tuple(it.path for it in load_dataset(people, identities=2, per_identity=2, seed=s))
            for s in range(8)
        }
        assert len(picks) > 1  # the seed changes the choice

    def test_an_identity_choice_ignores_the_other_identities(
        self, people: Path, tmp_path: Path
    ) -> None:
        before = [
            it.path.name
            for it in load_dataset(people, per_identity=2, seed=1)
            if it.identity == "ann"
        ]
        for k in range(1, 4):
            _image(people / "eve" / f"{k}.png", k)
        after = [
            it.path.name
            for it in load_dataset(people, per_identity=2, seed=1)
            if it.identity == "ann"
        ]
        assert before == after and len(before) == 2

    def test_more_identities_than_eligible_is_noted(self, people: Path) -> None:
        ds = load_dataset(people, identities=10, per_identity=4)
        assert ds.identities == ["ann", "dan"]
        assert any("only 2 have at least 4" in n for n in ds.notes)

    def test_no_identity_has_enough_images(self, people: Path) -> None:
        with pytest.raises(InputError, match="no identity has at least 9"):
            load_dataset(people, per_identity=9)

    def test_top_level_images_are_ignored_with_a_note(self, people: Path) -> None:
        _image(people / "loose.png", 3)
        ds = load_dataset(people)
        assert all(it.identity is not None for it in ds)
        assert any("directly inside the folder ignored" in n for n in ds.notes)

    def test_grey_pgm_is_loaded_as_rgb(self, tmp_path: Path) -> None:
        root = tmp_path / "att"
        _image(root / "s1" / "1.pgm", 77, mode="L")
        _image(root / "s1" / "2.pgm", 99, mode="L")
        ds = load_dataset(root)
        image = ds.load(1)
        assert image.shape == (12, 12, 3) and image.dtype == np.uint8
        assert (image == 99).all()


class TestFlat:
    def test_flat_folder(self, tmp_path: Path) -> None:
        for k in range(5):
            _image(tmp_path / "flat" / f"img{k}.jpg", 20 * k)
        ds = load_dataset(tmp_path / "flat")
        assert ds.layout == "flat" and not ds.has_identities
        assert ds.identities == [] and ds.labels == [None] * 5
        assert ds[0].name == "img0.jpg"

    def test_flat_sampling_and_ignored_options(self, tmp_path: Path) -> None:
        for k in range(6):
            _image(tmp_path / "flat" / f"{k}.png", k)
        ds = load_dataset(tmp_path / "flat", max_images=3, identities=2, seed=5)
        assert len(ds) == 3
        assert ds.to_dict()["images_found"] == 6
        assert any("ignored" in n for n in ds.notes)
        assert [it.path for it in ds] == [
            it.path for it in load_dataset(tmp_path / "flat", max_images=3, seed=5)
        ]

    def test_forced_flat_layout_ignores_sub_folders(self, people: Path) -> None:
        _image(people / "top.png", 5)
        ds = load_dataset(people, layout="flat")
        assert [it.name for it in ds] == ["top.png"]
        assert any("sub-folders ignored" in n for n in ds.notes)


class TestErrors:
    def test_not_a_folder(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="not a folder"):
            load_dataset(tmp_path / "missing")

    def test_empty_folder(self, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match="no image"):
            load_dataset(tmp_path / "empty")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"identities": 0},
            {"per_identity": -1},
            {"max_images": 1.5},
            {"seed": -1},
            {"identities": True},
            {"layout": "nested"},
        ],
    )
    def test_bad_options(self, people: Path, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            load_dataset(people, **kwargs)  # type: ignore[arg-type]

    def test_corrupt_image_raises_on_load(self, tmp_path: Path) -> None:
        bad = tmp_path / "flat" / "bad.jpg"
        bad.parent.mkdir()
        bad.write_bytes(b"\xff\xd8 not a jpeg")
        ds = load_dataset(tmp_path / "flat")
        with pytest.raises(InputError, match=r"bad\.jpg"):
            ds.load(0)


def test_natural_key() -> None:
    names = ["10.pgm", "2.pgm", "1.pgm", "b.png", "A.png"]
    assert sorted(names, key=natural_key) == ["1.pgm", "2.pgm", "10.pgm", "A.png", "b.png"]
