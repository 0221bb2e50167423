"""`pixveil dataset protect|restore|schemes`: files, key files, exit codes, one-line errors."""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app
from pixveil.dataset import get_scheme, load_key_file
from pixveil.io import read_image

from .conftest import write_dataset

runner = CliRunner()


def _dataset(tmp_path: Path, cifar_jpegs: dict[str, bytes], *, broken: bool = False) -> Path:
    subset = {k: v for k, v in cifar_jpegs.items() if k.startswith(("cat/", "ship/", "truck/"))}
    root = write_dataset(tmp_path / "images", subset)
    (root / "README.txt").write_text("labels by folder")
    if broken:
        (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def _pixels(root: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(root).with_suffix("").as_posix(): read_image(p).pixels
        for p in sorted(root.rglob("*"))
        if p.suffix in (".jpg", ".png", ".bmp")
    }


def _invoke(*args: object) -> object:
    return runner.invoke(app, ["dataset", *[str(a) for a in args]])


def _all_output_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _key_encodings(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key), key[:8]]


@pytest.mark.parametrize(
    ("scheme_args", "name", "params"),
    [
        (["--scheme", "pixel-based"], "pixel-based", {}),
        (["--scheme", "block-scramble", "--block-size", "4"], "block-scramble", {"block_size": 4}),
    ],
)
def test_protect_then_restore_is_exact_and_keys_never_leak(
    tmp_path: Path, cifar_jpegs: dict[str, bytes], scheme_args: list[str], name: str, params: dict
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    key_file = tmp_path / "secret" / "key.bin"
    res = _invoke("protect", src, "-o", tmp_path / "prot", *scheme_args, "--key-file", key_file)
    assert res.exit_code == 0, res.output
    keys = load_key_file(key_file)
    assert keys.scheme == name and keys.params == params and not keys.per_image
    if sys.platform != "win32":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    plain, prot = _pixels(src), _pixels(tmp_path / "prot")
    assert list(plain) == list(prot) and len(plain) == 9  # mirrored, PNG, README skipped
    assert all(p.suffix == ".png" for p in (tmp_path / "prot").rglob("*/*"))
    scheme = get_scheme(name, **params)
    for ident, img in plain.items():
        assert np.array_equal(prot[ident], scheme.encrypt(img, keys.key))  # type: ignore[arg-type]
        assert not np.array_equal(prot[ident], img)
    # no metadata in the outputs, and the key in no byte of anything written there
    for p in (tmp_path / "prot").rglob("*.png"):
        with Image.open(p) as im:
            assert not im.info.keys() - {"dpi"} and not im.getexif()
    written = _all_output_bytes(tmp_path / "prot")
    assert (tmp_path / "prot" / "pixveil-run.json").is_file()
    for enc in _key_encodings(keys.key):  # type: ignore[arg-type]
        assert enc not in written
    res = _invoke("restore", tmp_path / "prot", "-o", tmp_path / "back", "--key-file", key_file)
    assert res.exit_code == 0, res.output
    back = _pixels(tmp_path / "back")
    assert list(back) == list(plain)
    for ident, img in plain.items():
        assert np.array_equal(back[ident], img)


def test_per_image_keys_differ_and_restore_exactly(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    key_file = tmp_path / "keys.json"
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "prot",
        "--scheme",
        "pixel-based",
        "--per-image-keys",
        "--key-file",
        key_file,
    )
    assert res.exit_code == 0, res.output
    keys = load_key_file(key_file)
    plain = _pixels(src)
    assert keys.per_image and sorted(keys.keys) == sorted(plain)
    assert len(set(keys.keys.values())) == len(plain)
    written = _all_output_bytes(tmp_path / "prot")
    for key in keys.keys.values():
        for enc in _key_encodings(key):
            assert enc not in written
    # one image's key does not decrypt another
    prot = _pixels(tmp_path / "prot")
    scheme = get_scheme("pixel-based")
    assert not np.array_equal(
        scheme.decrypt(prot["cat/0000"], keys.keys["ship/0000"]), plain["cat/0000"]
    )
    # an image the key file has no key for fails alone
    (tmp_path / "prot" / "cat" / "extra.png").write_bytes(
        (tmp_path / "prot" / "cat" / "0000.png").read_bytes()
    )
    res = _invoke("restore", tmp_path / "prot", "-o", tmp_path / "back", "--key-file", key_file)
    assert res.exit_code == 1 and "no key for image 'cat/extra'" in res.output
    back = _pixels(tmp_path / "back")
    assert "cat/extra" not in back
    assert all(np.array_equal(back[i], plain[i]) for i in plain)


def test_per_image_keys_without_a_key_file_are_discarded(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    res = _invoke(
        "protect", src, "-o", tmp_path / "prot", "--scheme", "block-scramble", "--per-image-keys"
    )
    assert res.exit_code == 0, res.output
    assert "keys are discarded" in res.output
    assert len(list((tmp_path / "prot").rglob("*.png"))) == 9
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".bin", ".key")]


def test_existing_key_file_is_refused_unless_reused(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    key_file = tmp_path / "key.bin"
    assert (
        _invoke(
            "protect", src, "-o", tmp_path / "a", "--scheme", "pixel-based", "--key-file", key_file
        ).exit_code
        == 0
    )
    before = key_file.read_bytes()
    res = _invoke(
        "protect", src, "-o", tmp_path / "b", "--scheme", "pixel-based", "--key-file", key_file
    )
    assert res.exit_code == 2 and "already exists" in res.output and "--reuse-key" in res.output
    assert key_file.read_bytes() == before and not (tmp_path / "b").exists()
    # reused on purpose (a test split with the training split's key): the same transform
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "b",
        "--scheme",
        "pixel-based",
        "--key-file",
        key_file,
        "--reuse-key",
    )
    assert res.exit_code == 0, res.output
    assert key_file.read_bytes() == before
    a, b = _pixels(tmp_path / "a"), _pixels(tmp_path / "b")
    assert all(np.array_equal(a[i], b[i]) for i in a)
    # but not with another scheme or key mode than it holds
    for other in (["--scheme", "block-scramble"], ["--scheme", "pixel-based", "--per-image-keys"]):
        res = _invoke(
            "protect", src, "-o", tmp_path / "c", *other, "--key-file", key_file, "--reuse-key"
        )
        assert res.exit_code == 2 and "key file is for pixel-based" in res.output
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "d",
        "--scheme",
        "pixel-based",
        "--key-file",
        tmp_path / "new.bin",
        "--reuse-key",
    )
    assert res.exit_code == 2 and "key file not found" in res.output


def test_reusing_a_per_image_key_file_adds_keys_for_new_images(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    key_file = tmp_path / "keys.json"
    args = ["--scheme", "pixel-based", "--per-image-keys", "--key-file", key_file]
    assert _invoke("protect", src, "-o", tmp_path / "a", *args).exit_code == 0
    first = load_key_file(key_file).keys
    write_dataset(src, {"frog/0000": cifar_jpegs["frog/0000"]})
    assert _invoke("protect", src, "-o", tmp_path / "b", *args, "--reuse-key").exit_code == 0
    second = load_key_file(key_file).keys
    assert {k: second[k] for k in first} == first and set(second) - set(first) == {"frog/0000"}
    if sys.platform != "win32":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_broken_file_fails_alone_with_one_line(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs, broken=True)
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "prot",
        "--scheme",
        "pixel-based",
        "--key-file",
        tmp_path / "k",
    )
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "broken.jpg" in lines[0]
    assert not (tmp_path / "prot" / "cat" / "broken.png").exists()
    assert len(list((tmp_path / "prot").rglob("*.png"))) == 9
    run = json.loads((tmp_path / "prot" / "pixveil-run.json").read_text())
    assert run["summary"]["written"] == 9
    assert [f["image"] for f in run["failures"]] == ["cat/broken"]
    assert str(tmp_path) not in json.dumps(run)  # no local paths in the shared folder


def test_block_size_that_does_not_divide_fails_every_file(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "prot",
        "--scheme",
        "block-scramble",
        "--block-size",
        "5",
        "--key-file",
        tmp_path / "k",
    )
    assert res.exit_code == 1 and "whole number of 5x5 blocks" in res.output
    assert not list(tmp_path.glob("prot/**/*.png"))


def test_restore_with_the_wrong_key_gives_noise(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    from skimage.metrics import peak_signal_noise_ratio as psnr

    src = _dataset(tmp_path, cifar_jpegs)
    for name in ("right", "wrong"):
        _invoke(
            "protect",
            src,
            "-o",
            tmp_path / name,
            "--scheme",
            "pixel-based",
            "--key-file",
            tmp_path / f"{name}.bin",
        )
    assert (
        _invoke(
            "restore",
            tmp_path / "right",
            "-o",
            tmp_path / "back",
            "--key-file",
            tmp_path / "wrong.bin",
        ).exit_code
        == 0
    )
    plain, back = _pixels(src), _pixels(tmp_path / "back")
    assert np.median([psnr(plain[i], back[i]) for i in plain]) < 13


def test_jpeg_output_warns_and_breaks_exact_restore(
    tmp_path: Path, cifar_jpegs: dict[str, bytes]
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    res = _invoke(
        "protect",
        src,
        "-o",
        tmp_path / "prot",
        "--scheme",
        "pixel-based",
        "--key-file",
        tmp_path / "k",
        "--format",
        "jpg",
    )
    assert res.exit_code == 0 and "lossy" in res.output
    assert (
        _invoke(
            "restore", tmp_path / "prot", "-o", tmp_path / "back", "--key-file", tmp_path / "k"
        ).exit_code
        == 0
    )
    plain, back = _pixels(src), _pixels(tmp_path / "back")
    assert not any(np.array_equal(plain[i], back[i]) for i in plain)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "pixel-based"], "needs --key-file"),
        (["--scheme", "rot13", "--key-file", "K"], "unknown scheme 'rot13'"),
        (
            ["--scheme", "pixel-based", "--block-size", "4", "--key-file", "K"],
            "--block-size applies to block-scramble",
        ),
        (
            ["--scheme", "block-scramble", "--block-size", "0", "--key-file", "K"],
            "block_size must be in 1..64",
        ),
        (
            ["--scheme", "pixel-based", "--key-file", "OUT/key.bin"],
            "must not be inside the output folder",
        ),
        (
            ["--scheme", "pixel-based", "--key-file", "K", "--format", "tiff"],
            "unknown output format",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, cifar_jpegs: dict[str, bytes], args: list[str], message: str
) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    out = tmp_path / "out"
    args = [
        a.replace("OUT", str(out)).replace("K", str(tmp_path / "k.bin"))
        if a in ("K", "OUT/key.bin")
        else a
        for a in args
    ]
    res = _invoke("protect", src, "-o", out, *args)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], res.output
    assert not (tmp_path / "k.bin").exists() and not out.exists()


def test_restore_errors(tmp_path: Path, cifar_jpegs: dict[str, bytes]) -> None:
    src = _dataset(tmp_path, cifar_jpegs)
    res = _invoke("restore", src, "-o", tmp_path / "back", "--key-file", tmp_path / "none.bin")
    assert res.exit_code == 2 and "key file not found" in res.output
    (tmp_path / "junk.bin").write_text("{}")
    res = _invoke("restore", src, "-o", tmp_path / "back", "--key-file", tmp_path / "junk.bin")
    assert res.exit_code == 2 and "not a pixveil key file" in res.output
    res = _invoke(
        "restore",
        tmp_path / "nothing",
        "-o",
        tmp_path / "back",
        "--key-file",
        tmp_path / "junk.bin",
    )
    assert res.exit_code == 2


def test_schemes_lists_every_scheme() -> None:
    res = _invoke("schemes")
    assert res.exit_code == 0
    assert "pixel-based" in res.output and "block-scramble" in res.output


@pytest.mark.parametrize("scheme", ["pixel-based", "block-scramble"])
def test_generated_images_round_trip_without_shared_data(tmp_path: Path, scheme: str) -> None:
    """The same checks on generated PNGs (runs where ../shared/data is absent)."""
    from .conftest import generated_images

    src = tmp_path / "images"
    for i, img in enumerate(generated_images()):
        (src / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(src / f"class{i % 2}" / f"{i}.png")
    key_file = tmp_path / "key.bin"
    res = _invoke(
        "protect", src, "-o", tmp_path / "prot", "--scheme", scheme, "--key-file", key_file
    )
    assert res.exit_code == 0, res.output
    key = load_key_file(key_file).key
    assert key is not None and all(
        e not in _all_output_bytes(tmp_path / "prot") for e in _key_encodings(key)
    )
    res = _invoke("restore", tmp_path / "prot", "-o", tmp_path / "back", "--key-file", key_file)
    assert res.exit_code == 0, res.output
    plain, prot, back = _pixels(src), _pixels(tmp_path / "prot"), _pixels(tmp_path / "back")
    assert len(plain) == 4
    for ident, img in plain.items():
        assert not np.array_equal(prot[ident], img)
        assert np.array_equal(back[ident], img)
