"""Safe file writing: symbolic links refused, atomic replacement, stale temporary files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pixveil.errors import InputError, OutputError
from pixveil.io import (
    TEMP_NAME_PATTERN,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_temps,
    write_image,
)
from pixveil.io import files as files_module

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")


@pytest.fixture(params=["dir_fd", "paths"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with openat()-style calls and with the path-based fallback (Windows)."""
    if request.param == "dir_fd" and not files_module._HAS_DIR_FD:
        pytest.skip("this system has no openat()-style calls")
    monkeypatch.setattr(files_module, "_HAS_DIR_FD", request.param == "dir_fd")
    yield request.param


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- symbolic links


@needs_symlinks
class TestSymlinks:
    def test_target_link_refused_without_root(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        victim = tmp_path / "victim.png"
        victim.write_bytes(b"precious")
        link = tmp_path / "out.png"
        link.symlink_to(victim)
        with pytest.raises(OutputError) as exc:
            write_image(link, noise_rgb)
        msg = str(exc.value)
        assert "\n" not in msg
        assert f"refusing to write through the symbolic link {link}" in msg
        assert victim.read_bytes() == b"precious"
        assert link.is_symlink()
        assert _tree(tmp_path) == ["out.png", "victim.png"]

    def test_dangling_target_link_refused(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        link = tmp_path / "out.png"
        link.symlink_to(tmp_path / "elsewhere" / "new.png")
        with pytest.raises(OutputError, match="symbolic link"):
            write_image(link, noise_rgb)
        assert not (tmp_path / "elsewhere").exists()

    def test_linked_parent_allowed_without_root(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        # as before: without root, the caller's folders may be links
        real = tmp_path / "real"
        real.mkdir()
        (tmp_path / "alias").symlink_to(real, target_is_directory=True)
        write_image(tmp_path / "alias" / "a.png", noise_rgb)
        assert (real / "a.png").is_file()

    def test_linked_folder_below_root_refused(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        out = tmp_path / "out"
        outside = tmp_path / "outside"
        out.mkdir()
        outside.mkdir()
        (out / "sub").symlink_to(outside, target_is_directory=True)
        dest = out / "sub" / "deeper" / "a.png"
        with pytest.raises(OutputError) as exc:
            write_image(dest, noise_rgb, root=out)
        assert f"refusing to write through the symbolic link {out / 'sub'}" in str(exc.value)
        assert list(outside.iterdir()) == []

    def test_target_link_below_root_refused(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        out = tmp_path / "out"
        (out / "a").mkdir(parents=True)
        victim = tmp_path / "victim.png"
        victim.write_bytes(b"precious")
        (out / "a" / "x.png").symlink_to(victim)
        with pytest.raises(OutputError, match="refusing to write through the symbolic link"):
            write_image(out / "a" / "x.png", noise_rgb, root=out)
        assert victim.read_bytes() == b"precious"
        assert _tree(out) == ["a", "a/x.png"]

    def test_root_itself_may_be_a_link(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        real = tmp_path / "real"
        real.mkdir()
        out = tmp_path / "out"
        out.symlink_to(real, target_is_directory=True)
        write_image(out / "x" / "y" / "a.png", noise_rgb, root=out)
        assert (real / "x" / "y" / "a.png").is_file()

    def test_folder_swapped_for_a_link_while_creating(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not files_module._HAS_DIR_FD:
            pytest.skip("needs openat()-style calls")
        out = tmp_path / "out"
        out.mkdir()
        outside = tmp_path / "outside"
        outside.mkdir()
        real_mkdir = os.mkdir

        def racing_mkdir(name: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
            # another process puts a link where the folder is about to be made
            if name == "sub" and dir_fd is not None:
                os.symlink(outside, "sub", dir_fd=dir_fd)
            real_mkdir(name, mode, dir_fd=dir_fd)

        monkeypatch.setattr(os, "mkdir", racing_mkdir)
        with pytest.raises(OutputError, match="refusing to write through the symbolic link"):
            write_image(out / "sub" / "a.png", noise_rgb, root=out)
        assert list(outside.iterdir()) == []

    def test_sidecar_writers_follow_the_same_rules(self, tmp_path: Path, mode: str) -> None:
        out = tmp_path / "out"
        outside = tmp_path / "outside"
        out.mkdir()
        outside.mkdir()
        (out / "sub").symlink_to(outside, target_is_directory=True)
        with pytest.raises(OutputError, match="symbolic link"):
            atomic_write_text(out / "sub" / "a.json", "{}", root=out)
        victim = outside / "v.json"
        victim.write_text("old")
        (out / "b.json").symlink_to(victim)
        with pytest.raises(OutputError, match="symbolic link"):
            atomic_write_bytes(out / "b.json", b"new")
        assert victim.read_text() == "old"


class TestRoot:
    def test_outside_root_refused(self, tmp_path: Path, noise_rgb: np.ndarray, mode: str) -> None:
        out = tmp_path / "out"
        for dest in (tmp_path / "a.png", out / ".." / "a.png", tmp_path / "outx" / "a.png"):
            with pytest.raises(OutputError, match="outside the output folder"):
                write_image(dest, noise_rgb, root=out)
        assert _tree(tmp_path) == []

    def test_root_itself_refused(self, tmp_path: Path, mode: str) -> None:
        with pytest.raises(OutputError):
            atomic_write_bytes(tmp_path, b"x", root=tmp_path)

    def test_missing_folders_created(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        out = tmp_path / "new" / "out"
        write_image(out / "a" / "b" / "c.png", noise_rgb, root=out)
        assert _tree(tmp_path) == [
            "new",
            "new/out",
            "new/out/a",
            "new/out/a/b",
            "new/out/a/b/c.png",
        ]

    def test_relative_paths(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write_image(Path("out/x/a.png"), noise_rgb, root="out")
        assert (tmp_path / "out" / "x" / "a.png").is_file()

    def test_file_in_the_way(self, tmp_path: Path, noise_rgb: np.ndarray, mode: str) -> None:
        (tmp_path / "a").write_bytes(b"file")
        with pytest.raises(OutputError, match="a file is in the way"):
            write_image(tmp_path / "a" / "b.png", noise_rgb, root=tmp_path)

    def test_destination_is_a_folder(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        (tmp_path / "a.png").mkdir()
        with pytest.raises(OutputError, match="is a directory"):
            write_image(tmp_path / "a.png", noise_rgb, root=tmp_path)


# ----------------------------------------------------------------------------- atomic writers


class TestAtomicWriters:
    def test_bytes_and_text(self, tmp_path: Path, mode: str) -> None:
        assert atomic_write_bytes(tmp_path / "a" / "x.bin", b"\x00\x01") == tmp_path / "a" / "x.bin"
        assert (tmp_path / "a" / "x.bin").read_bytes() == b"\x00\x01"
        atomic_write_text(tmp_path / "y.json", '{"é": 1}\n', root=tmp_path)
        assert (tmp_path / "y.json").read_bytes() == '{"é": 1}\n'.encode()
        atomic_write_text(tmp_path / "y.json", "replaced")
        assert (tmp_path / "y.json").read_text() == "replaced"
        assert _tree(tmp_path) == ["a", "a/x.bin", "y.json"]

    def test_permissions_follow_the_umask(self, tmp_path: Path, mode: str) -> None:
        if os.name != "posix":
            pytest.skip("POSIX permissions")
        old = os.umask(0o022)
        try:
            atomic_write_bytes(tmp_path / "x", b"1")
        finally:
            os.umask(old)
        assert (tmp_path / "x").stat().st_mode & 0o777 == 0o644

    def test_bad_arguments(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="data must be bytes"):
            atomic_write_bytes(tmp_path / "x", "text")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="text must be a str"):
            atomic_write_text(tmp_path / "x", b"bytes")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="expected a file path, got list"):
            atomic_write_bytes([tmp_path / "x"], b"")  # type: ignore[arg-type]

    def test_failed_write_leaves_nothing_and_keeps_the_old_file(
        self, tmp_path: Path, mode: str
    ) -> None:
        (tmp_path / "x.json").write_text("old")

        def broken(fh: object) -> None:
            raise OSError(28, "No space left on device")

        with pytest.raises(OutputError) as exc:
            files_module.atomic_write(tmp_path / "x.json", broken)
        assert (
            str(exc.value)
            == f"{tmp_path / 'x.json'}: cannot write the file (no space left on device)"
        )
        assert _tree(tmp_path) == ["x.json"]
        assert (tmp_path / "x.json").read_text() == "old"

    def test_temp_file_is_hidden_and_named_by_the_pattern(
        self, tmp_path: Path, noise_rgb: np.ndarray, mode: str
    ) -> None:
        seen: list[list[str]] = []

        def spy(fh: object) -> None:
            seen.append(sorted(os.listdir(tmp_path)))

        files_module.atomic_write(tmp_path / "a.png", spy)
        [names] = seen
        assert len(names) == 1
        assert names[0].startswith(".")
        assert TEMP_NAME_PATTERN.match(names[0])
        assert os.listdir(tmp_path) == ["a.png"]

    def test_write_image_temp_never_visible(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch, mode: str
    ) -> None:
        # every name that exists while the image is written is hidden, until the rename
        from PIL import Image

        real_save = Image.Image.save
        seen: list[str] = []

        def spying_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
            seen.extend(os.listdir(tmp_path))
            real_save(self, fp, *args, **kwargs)  # type: ignore[arg-type]
            seen.extend(os.listdir(tmp_path))

        monkeypatch.setattr(Image.Image, "save", spying_save)
        write_image(tmp_path / "a.jpg", noise_rgb)
        assert seen and all(name.startswith(".pixveil-") for name in seen)
        assert os.listdir(tmp_path) == ["a.jpg"]

    def test_encoder_failure_leaves_nothing(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch, mode: str
    ) -> None:
        from PIL import Image

        def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
            fp.write(b"partial")  # type: ignore[attr-defined]
            raise ValueError("encoder exploded")

        monkeypatch.setattr(Image.Image, "save", failing_save)
        with pytest.raises(OutputError, match="cannot encode the image \\(encoder exploded\\)"):
            write_image(tmp_path / "a.png", noise_rgb)
        assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- cleaning


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


class TestCleanStaleTemps:
    def _leftovers(self, out: Path) -> dict[str, Path]:
        (out / "sub" / "deeper").mkdir(parents=True)
        paths = {
            "image temp": out / ".pixveil-0123456789abcdef.tmp",
            "nested temp": out / "sub" / "deeper" / ".pixveil-fedcba9876543210.tmp",
            "old sidecar temp": out / "sub" / ".IMG_1.JPG.json.4242.tmp",
            "output": out / "a.png",
            "sidecar": out / "a.png.json",
            "user's hidden file": out / ".notes.tmp",
            "user's temp with a pid": out / ".cache.1234.tmp",
            "near miss: short hex": out / ".pixveil-0123.tmp",
            "near miss: upper-case hex": out / ".pixveil-0123456789ABCDEF.tmp",
            "near miss: not hidden": out / "pixveil-0123456789abcdef.tmp",
            "near miss: other suffix": out / ".pixveil-0123456789abcdef.tmp.png",
        }
        for p in paths.values():
            p.write_bytes(b"x")
            _age(p, 3600)
        return paths

    def test_removes_only_its_own_temps(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        paths = self._leftovers(out)
        removed = clean_stale_temps(out)
        temps = {"image temp", "nested temp", "old sidecar temp"}
        assert sorted(removed) == sorted(paths[k] for k in temps)
        for key, p in paths.items():
            assert p.exists() == (key not in temps), key

    def test_recent_temps_kept_by_default(self, tmp_path: Path) -> None:
        fresh = tmp_path / ".pixveil-00000000000000aa.tmp"
        fresh.write_bytes(b"in progress")
        assert clean_stale_temps(tmp_path) == []
        assert fresh.exists()
        assert clean_stale_temps(tmp_path, min_age=0) == [fresh]
        assert not fresh.exists()

    @needs_symlinks
    def test_never_follows_links(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        foreign = elsewhere / ".pixveil-0123456789abcdef.tmp"
        foreign.write_bytes(b"not ours to remove")
        _age(foreign, 3600)
        (out / "linked").symlink_to(elsewhere, target_is_directory=True)
        link_named_like_a_temp = out / ".pixveil-aaaaaaaaaaaaaaaa.tmp"
        link_named_like_a_temp.symlink_to(foreign)
        _age(link_named_like_a_temp, 3600)
        assert clean_stale_temps(out, min_age=0) == []
        assert foreign.exists() and link_named_like_a_temp.is_symlink()

    @needs_symlinks
    def test_out_dir_may_be_a_link(self, tmp_path: Path) -> None:
        real = tmp_path / "real"
        real.mkdir()
        temp = real / ".pixveil-0123456789abcdef.tmp"
        temp.write_bytes(b"x")
        (tmp_path / "out").symlink_to(real, target_is_directory=True)
        assert clean_stale_temps(tmp_path / "out", min_age=0) == [
            tmp_path / "out" / ".pixveil-0123456789abcdef.tmp"
        ]
        assert not temp.exists()

    def test_temps_of_a_killed_write_are_found(
        self, tmp_path: Path, noise_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # a write killed after creating its temporary file, before renaming it
        def killed(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "rename", killed)
        monkeypatch.setattr(os, "replace", killed)
        monkeypatch.setattr(os, "unlink", lambda *a, **k: None)  # the process dies: no cleanup
        with pytest.raises(KeyboardInterrupt):
            write_image(tmp_path / "sub" / "a.png", noise_rgb)
        monkeypatch.undo()
        [temp] = [p for p in (tmp_path / "sub").iterdir()]
        assert TEMP_NAME_PATTERN.match(temp.name)
        assert clean_stale_temps(tmp_path, min_age=0) == [temp]
        assert _tree(tmp_path) == ["sub"]

    def test_missing_folder_and_bad_arguments(self, tmp_path: Path) -> None:
        assert clean_stale_temps(tmp_path / "missing") == []
        (tmp_path / "file").write_bytes(b"x")
        with pytest.raises(OutputError, match="is not a folder"):
            clean_stale_temps(tmp_path / "file")
        for bad in (-1, float("nan"), "60", True):
            with pytest.raises(InputError, match="min_age"):
                clean_stale_temps(tmp_path, min_age=bad)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="got list"):
            clean_stale_temps([tmp_path])  # type: ignore[arg-type]

    def test_unreadable_folder(self, tmp_path: Path) -> None:
        if os.name != "posix" or os.geteuid() == 0:
            pytest.skip("root reads any folder")
        out = tmp_path / "out"
        out.mkdir()
        out.chmod(0)
        try:
            with pytest.raises(OutputError, match="cannot read the folder"):
                clean_stale_temps(out)
        finally:
            out.chmod(0o755)

    def test_path_fallback(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(files_module, "_HAS_DIR_FD", False)
        out = tmp_path / "out"
        out.mkdir()
        paths = self._leftovers(out)
        assert len(clean_stale_temps(out)) == 3
        assert paths["output"].exists() and not paths["nested temp"].exists()
