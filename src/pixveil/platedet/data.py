"""The annotated plate photos (``plates/{eu,us}/*.jpg`` + ``.txt``) and their splits.

Each ``.txt`` is one line ``file x y w h TEXT``: the pixel box of the photo's one plate
and its characters (openalpr benchmark layout, as in ``../shared/data/plates``).  These
photos are test data only and never ship with pixveil; what is trained on them may.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pixveil.platedet.synth import Photo

__all__ = [
    "REGIONS",
    "LabelledPhoto",
    "default_data_root",
    "load_photos",
    "load_split",
    "load_unannotated",
]

#: The sub-folders of the plate data set.
REGIONS = ("eu", "us")


@dataclass(frozen=True)
class LabelledPhoto:
    """One annotated photo: region (``"eu"``/``"us"``), path, plate box ``(x0, y0, x1, y1)``, text.

    ``others`` holds boxes of real plates in the photo that the data set does not
    annotate (other cars'; see :func:`load_unannotated`): finding one is neither a hit
    nor a false positive.
    """

    region: str
    path: Path
    box: tuple[float, float, float, float]
    text: str
    others: tuple[tuple[float, float, float, float], ...] = ()

    def as_photo(self) -> Photo:
        return Photo(self.path, self.box, others=self.others)


def default_data_root() -> Path:
    """``../shared/data`` seen from the current directory (may not exist)."""
    return (Path.cwd() / ".." / "shared" / "data").resolve()


def load_unannotated(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """The reviewed unannotated plates of a JSON file such as ``bench/plate_unannotated.json``.

    Returns
    -------
    dict
        ``"<region>/<file name>"`` to the boxes ``(x0, y0, x1, y1)`` of its ``plates``
        (the file's ``not_counted`` entries are left out).

    Raises
    ------
    ValueError
        When the file is not such a list.
    """
    try:
        data = json.loads(Path(path).read_text())
        out: dict[str, list[tuple[float, float, float, float]]] = {}
        for entry in data["plates"]:
            x0, y0, x1, y1 = (float(v) for v in entry["box"])
            out.setdefault(str(entry["photo"]), []).append((x0, y0, x1, y1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a list of unannotated plates ({exc})") from exc
    return out


def load_photos(
    root: Path,
    region: str,
    *,
    unannotated: dict[str, list[tuple[float, float, float, float]]] | None = None,
) -> list[LabelledPhoto]:
    """Every annotated photo of ``root/<region>``, sorted by file name.

    Parameters
    ----------
    root : Path
        The plate folder (``.../plates``), holding ``eu`` and ``us``.
    region : {"eu", "us"}
    unannotated : dict, optional
        From :func:`load_unannotated`: each photo's other real plates go to its
        ``others``.  By default photos have none.

    Raises
    ------
    ValueError
        For an unknown region.
    FileNotFoundError
        When ``root/<region>`` is not a folder.
    """
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    folder = Path(root) / region
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected plates/{region}/*.txt)")
    out = []
    for txt in sorted(folder.glob("*.txt")):
        parts = txt.read_text().split()
        if len(parts) < 5:
            continue
        x, y, w, h = (float(v) for v in parts[1:5])
        jpg = txt.with_suffix(".jpg")
        others = tuple((unannotated or {}).get(f"{region}/{jpg.name}", ()))
        out.append(LabelledPhoto(region, jpg, (x, y, x + w, y + h), " ".join(parts[5:]), others))
    return out


def load_split(
    root: Path,
    regions: tuple[str, ...],
    *,
    unannotated: dict[str, list[tuple[float, float, float, float]]] | None = None,
) -> list[LabelledPhoto]:
    """The photos of several regions, in order (``("eu",)``, ``("eu", "us")``...)."""
    out: list[LabelledPhoto] = []
    for r in regions:
        out.extend(load_photos(root, r, unannotated=unannotated))
    return out
