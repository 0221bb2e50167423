"""Input lists: a ``.txt`` input names the files to protect, one per line (either engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.batch import read_input_list, run_batch
from pixveil.config import AnonymizeConfig
from pixveil.errors import InputError


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def test_listed_files_mirror_their_folders_below_the_common_one(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    small = np.ascontiguousarray(astronaut[::2, ::2])
    _save(tmp_path / "data" / "a" / "x.png", small)
    _save(tmp_path / "data" / "b" / "x.png", small[:, ::-1])
    _save(tmp_path / "data" / "b" / "unlisted.png", small)
    listing = tmp_path / "lists" / "todo.txt"
    listing.parent.mkdir()
    listing.write_text("# two files with one name\n../data/a/x.png\n\n  ../data/b/x.png  \n")
    report = run_batch([listing], tmp_path / "out", AnonymizeConfig(targets=("faces",)))
    assert report.n_ok == 2 and report.count("face") == 2
    written = sorted(
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")
    )
    assert written == ["a/x.png", "b/x.png"]


def test_a_missing_entry_fails_alone_and_an_unreadable_list_is_refused(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    good = _save(tmp_path / "in" / "ok.png", np.ascontiguousarray(astronaut[::2, ::2]))
    listing = tmp_path / "in.txt"
    listing.write_text(f"{good}\n{tmp_path / 'in' / 'gone.png'}\n")
    report = run_batch([listing], tmp_path / "out", AnonymizeConfig(targets=("faces",)))
    assert [o.path.name for o in report.failures] == ["gone.png"]
    assert (tmp_path / "out" / "ok.png").is_file()
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00broken")
    with pytest.raises(InputError, match="cannot read the input list"):
        read_input_list(bad)
    assert read_input_list(_write(tmp_path / "empty.txt", "# nothing\n\n")) == []


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
