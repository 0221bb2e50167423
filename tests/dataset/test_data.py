"""The dataset loaders: <class>/<images> folders and the CIFAR-10 JPEG tarball."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.dataset import CIFAR10_CLASSES, iter_image_folder, load_cifar10, load_image_folder
from pixveil.errors import InputError

from .conftest import CIFAR, PER_CLASS, write_dataset


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls, n in (("zebra", 2), ("apple", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png"
            )
    (root / "apple" / "notes.txt").write_text("not an image")
    (root / "apple" / ".hidden.png").write_bytes(b"")
    return root


def test_image_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "ds")
    data = load_image_folder(root)
    assert data.classes == ("apple", "zebra")
    assert data.ids == ("apple/0", "apple/1", "apple/2", "zebra/0", "zebra/1")
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.images.shape == (5, 8, 10, 3) and data.images.dtype == np.uint8
    assert np.array_equal(data.images[3], np.asarray(Image.open(root / "zebra" / "0.png")))
    limited = load_image_folder(root, limit_per_class=1)
    assert limited.ids == ("apple/0", "zebra/0")
    assert [i for _, _, i in iter_image_folder(root)] == list(data.ids)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        load_image_folder(tmp_path / "flat")
    root = _folder(tmp_path / "ds")
    Image.new("RGB", (4, 4)).save(root / "zebra" / "small.png")
    with pytest.raises(InputError, match="differ in size"):
        load_image_folder(root)
    with pytest.raises(ValueError, match="limit_per_class"):
        load_image_folder(root, limit_per_class=0)


def test_cifar10_subset_from_the_tarball(cifar_jpegs: dict[str, bytes]) -> None:
    data = load_cifar10(CIFAR, split="test", limit_per_class=PER_CLASS)
    assert data.classes == CIFAR10_CLASSES
    assert data.images.shape == (10 * PER_CLASS, 32, 32, 3)
    assert np.bincount(data.labels).tolist() == [PER_CLASS] * 10
    assert data.ids == tuple(cifar_jpegs)
    for img, ident, label in zip(data.images, data.ids, data.labels, strict=True):
        assert ident.split("/")[0] == CIFAR10_CLASSES[label]
        assert np.array_equal(
            img, np.asarray(Image.open(io.BytesIO(cifar_jpegs[ident])).convert("RGB"))
        )


def test_cifar10_from_an_extracted_folder_matches(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    subset = {k: v for k, v in cifar_jpegs.items() if k.startswith(("cat/", "ship/"))}
    write_dataset(tmp_path / "cifar10" / "test", subset)
    data = load_cifar10(tmp_path, split="test")
    assert data.ids == tuple(subset)
    assert sorted(set(data.labels.tolist())) == [
        CIFAR10_CLASSES.index("cat"),
        CIFAR10_CLASSES.index("ship"),
    ]


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_cifar10(tmp_path / "none.tar.gz")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path / "none.tar.gz", split="valid")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="cannot read"):
        load_cifar10(tmp_path / "junk.tar.gz")
