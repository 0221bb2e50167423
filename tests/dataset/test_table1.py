"""Classifier, reconstruction attack and `pixveil attack dataset` on a tiny CIFAR-10 subset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from pixveil.cli import app  # noqa: E402
from pixveil.dataset import LabeledImages, get_scheme, load_cifar10, new_key  # noqa: E402
from pixveil.dataset.classify import train_classifier  # noqa: E402
from pixveil.dataset.table1 import protect_images  # noqa: E402
from pixveil.evaluate.attacks import reconstruction_attack  # noqa: E402

from .conftest import CIFAR  # noqa: E402


@pytest.fixture(scope="module")
def cifar() -> tuple[LabeledImages, LabeledImages]:
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar10.tar.gz is not available")
    torch.set_num_threads(1)
    return (
        load_cifar10(CIFAR, split="train", limit_per_class=60),
        load_cifar10(CIFAR, split="test", limit_per_class=20),
    )


def test_adaptation_network_keeps_the_image_shape() -> None:
    from pixveil.dataset._nets import AdaptationNet, ResNet

    x = torch.rand(2, 3, 32, 32)
    assert AdaptationNet(4)(x).shape == x.shape
    assert ResNet(10)(x).shape == (2, 10)


@pytest.mark.slow
def test_plain_classifier_beats_chance(cifar: tuple[LabeledImages, LabeledImages]) -> None:
    train, test = cifar
    res = train_classifier(
        train.images, train.labels, test.images, test.labels, n_classes=10, epochs=4
    )
    assert res.n_train == 600 and res.n_test == 200
    assert res.accuracy > 0.2  # chance is 0.1


@pytest.mark.slow
def test_block_scramble_classifier_with_adaptation_learns(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    train, test = cifar
    scheme, key = get_scheme("block-scramble", block_size=4), new_key()
    res = train_classifier(
        protect_images(train.images, scheme, key),
        train.labels,
        protect_images(test.images, scheme, key),
        test.labels,
        n_classes=10,
        adaptation_block=4,
        epochs=4,
    )
    assert res.train_accuracy > 0.2


def test_classifier_rejects_a_block_size_that_does_not_divide(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    train, test = cifar
    with pytest.raises(ValueError, match="adaptation_block"):
        train_classifier(
            train.images, train.labels, test.images, test.labels, n_classes=10, adaptation_block=5
        )


@pytest.mark.slow
def test_attack_recovers_identity_and_not_pixel_based(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    train, test = cifar
    attacker = train.images[::3]  # 200 pairs
    plain = reconstruction_attack(
        attacker,
        attacker.copy(),
        test.images,
        test.images.copy(),
        epochs=1,
        image_size=32,
        flip=False,
        seed=0,
    )
    assert plain.ssim_reconstructed > 0.9  # the attack can output what it is given
    scheme, key = get_scheme("pixel-based"), new_key()
    prot = reconstruction_attack(
        attacker,
        protect_images(attacker, scheme, key),
        test.images,
        protect_images(test.images, scheme, key),
        epochs=1,
        image_size=32,
        flip=False,
        seed=0,
    )
    assert prot.ssim_protected < 0.2
    assert prot.ssim_reconstructed < plain.ssim_reconstructed - 0.3


@pytest.mark.slow
def test_cli_attack_dataset_writes_table_one(tmp_path: Path) -> None:
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar10.tar.gz is not available")
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app,
        [
            "attack", "dataset", "--data", str(CIFAR), "--schemes", "plain,block-scramble",
            "--n-train", "4", "--n-attack", "2", "--n-test", "2", "--clf-epochs", "1",
            "--attack-epochs", "1", "--no-unpaired", "-q", "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [r["scheme"] for r in rows] == ["plain", "block-scramble"]
    assert float(rows[0]["attack_ssim"]) == float(rows[0]["unet_ssim"])
    assert rows[0]["ga_ssim"] == ""  # --no-unpaired
    assert {"attack_ssim", "accuracy", "plain_accuracy"} <= set(rows[0])
    doc = json.loads((out / "results.json").read_text())
    assert doc["n_train"] == 40 and doc["n_attack"] == 20 and doc["n_test"] == 20
    assert "Table I" in (out / "index.html").read_text()
    assert float(rows[0]["attack_ssim"]) > float(rows[1]["attack_ssim"])


def test_cli_attack_dataset_refuses_unknown_scheme(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["attack", "dataset", "--schemes", "plain,rot13", "-o", str(tmp_path / "r")]
    )
    assert res.exit_code == 2
    assert "rot13" in res.output
    assert not (tmp_path / "r").exists()


def test_protect_images_plain_is_a_copy() -> None:
    x = np.zeros((2, 8, 8, 3), np.uint8)
    y = protect_images(x, None, new_key())
    assert np.array_equal(x, y) and y is not x


@pytest.mark.slow
def test_block_aware_attack_undoes_block_scramble_better(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    train, test = cifar
    attacker = train.images[::2]  # 300 pairs
    scheme, key = get_scheme("block-scramble", block_size=4), new_key()
    pairs = (attacker, protect_images(attacker, scheme, key))
    targets = (test.images, protect_images(test.images, scheme, key))
    plain_unet = reconstruction_attack(*pairs, *targets, epochs=3, image_size=32, flip=False)
    aware = reconstruction_attack(
        *pairs, *targets, epochs=3, image_size=32, flip=False, block_size=4
    )
    assert aware.ssim_protected < 0.1
    assert aware.ssim_reconstructed > max(0.3, plain_unet.ssim_reconstructed + 0.1)


@pytest.mark.slow
def test_pixel_affine_attack_undoes_a_shared_pixel_based_key(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    train, test = cifar
    attacker = train.images[::2]  # 300 pairs
    scheme, key = get_scheme("pixel-based"), new_key()
    pairs = (attacker, protect_images(attacker, scheme, key))
    targets = (test.images, protect_images(test.images, scheme, key))
    aware = reconstruction_attack(
        *pairs, *targets, epochs=3, image_size=32, flip=False, pixel_affine=True
    )
    assert aware.ssim_protected < 0.1
    assert aware.ssim_reconstructed > 0.4
    with pytest.raises(ValueError, match="not both"):
        reconstruction_attack(*pairs, *targets, block_size=4, pixel_affine=True)


@pytest.mark.parametrize(
    ("schemes", "message"),
    [
        ("plain:per-image", "plain images take no key"),
        ("pixel-based,pixel-based", "twice"),
        ("rot13:per-image", "rot13"),
    ],
)
def test_table_config_refuses_bad_rows(schemes: str, message: str) -> None:
    from pixveil.dataset.table1 import TableConfig

    with pytest.raises(ValueError, match=message):
        TableConfig(data=Path("x"), schemes=tuple(schemes.split(",")))


def test_per_image_keys_give_every_image_its_own_transform() -> None:
    """Same image twice: one shared key protects both alike, per-image keys differently,
    and each is still the scheme's encryption (it decrypts with *some* key it was given)."""
    img = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    batch = np.concatenate([img, img])
    for name in ("pixel-based", "block-scramble"):
        scheme = get_scheme(name)
        shared = protect_images(batch, scheme, new_key())
        assert np.array_equal(shared[0], shared[1])
        own = protect_images(batch, scheme, new_key(), per_image=True)
        assert not np.array_equal(own[0], own[1])
        assert not np.array_equal(own[0], img[0])


@pytest.mark.slow
def test_cli_attack_dataset_per_image_rows_and_ga_column(tmp_path: Path) -> None:
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar10.tar.gz is not available")
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app,
        [
            "attack", "dataset", "--data", str(CIFAR),
            "--schemes", "plain,pixel-based,pixel-based:per-image",
            "--n-train", "4", "--n-attack", "4", "--n-test", "2", "--clf-epochs", "1",
            "--attack-epochs", "2", "-q", "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {r["scheme"]: r for r in csv.DictReader((out / "results.csv").read_text().splitlines())}
    assert list(rows) == ["plain", "pixel-based", "pixel-based:per-image"]
    ga = {k: float(r["ga_ssim"]) for k, r in rows.items()}
    # the unpaired attacker keeps plain images (identity) and cannot undo either key mode here
    assert ga["plain"] > 0.8
    assert ga["pixel-based"] < 0.5 and ga["pixel-based:per-image"] < 0.5
    # the paired, scheme-aware attacker learns a shared key's map, not per-image keys
    aware = {k: float(r["attack_ssim"]) for k, r in rows.items()}
    assert aware["pixel-based:per-image"] < aware["plain"] - 0.3
    html_text = (out / "index.html").read_text()
    assert "pixel-based:per-image" in html_text and "GA SSIM" in html_text


def test_resnet18_is_reachable() -> None:
    """The paper's classifier: ``--stages 4 --blocks 2 --width 64`` is the CIFAR ResNet-18."""
    from pixveil.dataset._nets import ResNet

    net = ResNet(10, width=64, blocks=2, stages=4)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    n_params = sum(p.numel() for p in net.parameters())
    assert 11_100_000 < n_params < 11_200_000  # 11.17 M, the usual CIFAR ResNet-18


@pytest.mark.slow
def test_attacker_overlap_allows_the_whole_training_split(
    cifar: tuple[LabeledImages, LabeledImages],
) -> None:
    from pixveil.dataset.table1 import TableConfig, run_table

    train, test = cifar  # 60 training images per class
    kwargs = {"data": Path("x"), "schemes": ("plain",), "n_train": 60, "n_attack": 10}
    opts = {"clf_epochs": 1, "attack_epochs": 1, "unpaired": False}
    with pytest.raises(ValueError, match="attacker"):
        run_table(TableConfig(**kwargs, **opts), train=train, test=test)  # type: ignore[arg-type]
    res = run_table(
        TableConfig(**kwargs, **opts, attacker_overlap=True),  # type: ignore[arg-type]
        train=train,
        test=test,
    )
    assert (res.n_train, res.n_attack, res.n_test) == (600, 100, 200)
