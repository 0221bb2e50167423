"""Key generation and key files: format, permissions, refusals."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from pixveil.dataset import KeyFile, image_id, load_key_file, new_key, save_key_file
from pixveil.dataset.keys import unsafe_permissions
from pixveil.errors import InputError, OutputError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


def test_new_keys_are_32_random_bytes() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 32 for k in keys)


def test_shared_key_file_round_trip(tmp_path: Path) -> None:
    kf = KeyFile("block-scramble", {"block_size": 4}, key=new_key())
    p = save_key_file(tmp_path / "key.bin", kf)
    back = load_key_file(p)
    assert back == kf and not back.per_image
    assert back.key_for("any/image") == kf.key
    doc = json.loads(p.read_text())
    assert doc["format"] == "pixveil-dataset-key" and doc["mode"] == "shared"
    assert doc["key"] == kf.key.hex()  # type: ignore[union-attr]


def test_per_image_key_file_round_trip(tmp_path: Path) -> None:
    keys = {"cat/0001": new_key(), "dog/0002": new_key()}
    p = save_key_file(tmp_path / "k.json", KeyFile("pixel-based", keys=keys))
    back = load_key_file(p)
    assert back.per_image and back.keys == keys
    assert back.key_for("dog/0002") == keys["dog/0002"]
    with pytest.raises(InputError, match="no key for image 'bird/0003'"):
        back.key_for("bird/0003")


@posix_only
def test_key_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        p = save_key_file(tmp_path / "key.bin", KeyFile("pixel-based", key=new_key()))
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        save_key_file(p, KeyFile("pixel-based", key=new_key()), overwrite=True)
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not unsafe_permissions(p)
    p.chmod(0o644)
    assert unsafe_permissions(p)


def test_never_overwrites_unless_asked(tmp_path: Path) -> None:
    p = tmp_path / "key.bin"
    first = KeyFile("pixel-based", key=new_key())
    save_key_file(p, first)
    with pytest.raises(OutputError, match="already exists"):
        save_key_file(p, KeyFile("pixel-based", key=new_key()))
    assert load_key_file(p) == first
    assert [f.name for f in tmp_path.iterdir()] == ["key.bin"]  # no temporary file left


@posix_only
def test_refuses_a_symbolic_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x")
    (tmp_path / "key.bin").symlink_to(target)
    with pytest.raises(OutputError, match="link"):
        save_key_file(tmp_path / "key.bin", KeyFile("pixel-based", key=new_key()), overwrite=True)
    assert target.read_text() == "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "not a pixveil key file"),
        ('{"format": "pixveil-dataset-key", "version": 9}', "unsupported key file version"),
        (
            '{"format": "pixveil-dataset-key", "version": 1, "scheme": "rot13", "mode": "shared"}',
            "rot13",
        ),
        (
            '{"format": "pixveil-dataset-key", "version": 1, "scheme": "block-scramble", '
            '"params": {"block_size": 0}, "mode": "shared", "key": ""}',
            "block_size",
        ),
        (
            '{"format": "pixveil-dataset-key", "version": 1, "scheme": "pixel-based", "mode": "shared", "key": "zz"}',
            "not hexadecimal",
        ),
        (
            '{"format": "pixveil-dataset-key", "version": 1, "scheme": "pixel-based", "mode": "shared", "key": "00ff"}',
            "must be 32 bytes",
        ),
        (
            '{"format": "pixveil-dataset-key", "version": 1, "scheme": "pixel-based", "mode": "per-image"}',
            "'keys' map",
        ),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "key.bin"
    p.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_key_file(p)
    assert str(p) in str(info.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="key file not found"):
        load_key_file(tmp_path / "nope.bin")


def test_image_ids() -> None:
    assert image_id(Path("data/cat/0001.jpg"), Path("data")) == "cat/0001"
    assert image_id(Path("data/cat/sub/x.tar.png"), Path("data")) == "cat/sub/x.tar"
    assert image_id(Path("elsewhere/photo.png"), None) == "photo"
