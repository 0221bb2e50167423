"""Protect a dataset folder with a scheme and a key file, or restore it with the key.

:func:`protect_dataset` and :func:`restore_dataset` are the library calls behind
``pixveil dataset protect`` and ``pixveil dataset restore``.  They mirror the
input folder under the output folder, write metadata-free images with
:func:`pixveil.io.write_image` (PNG by default: lossless, so the key inverts the
output exactly), and fail closed per file: a file that cannot be read,
transformed or written gets no output and is reported; the others go on.

Keys
----
The key file is prepared *before* any image is written: a new one is created
(never over an existing file), or an existing one is reused only when asked
(``reuse_key=True``, e.g. to protect a test split with the training split's
key), after checking that its scheme and parameters are the requested ones.
With per-image keys a reused file keeps the keys it has and gains keys for new
images.  Per-image keys without a key file are generated and discarded: the
outputs can then never be restored, by anyone (the "no key management" setting
of Sirichotedumrong, Kinoshita and Kiya 2019).

A key file inside the output folder is refused: the output folder is what gets
shared.  The run file ``pixveil-run.json`` written into the output folder holds
the scheme, its parameters and the summary (failed images by id, not by local
path), never a key.

An input image's alpha channel is dropped (it is not transformed, and would show
the outline of what the image holds); everything else of the source (EXIF, ICC
profile, text chunks) never reaches an output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixveil.batch import BatchReport, ImageOutcome, collect_inputs, failed_outcome
from pixveil.dataset.keys import (
    KeyFile,
    image_id,
    load_key_file,
    new_key,
    save_key_file,
)
from pixveil.dataset.schemes import Scheme, get_scheme
from pixveil.errors import InputError, OutputError
from pixveil.io import (
    ProtectedPaths,
    atomic_write_text,
    clean_stale_temps,
    normalize_format,
    output_path_for,
    read_image,
    write_image,
)

__all__ = ["RUN_FILE", "DatasetRun", "protect_dataset", "restore_dataset"]

#: The run file written into the output folder (no keys in it).
RUN_FILE = "pixveil-run.json"


@dataclass(frozen=True)
class DatasetRun:
    """What a protect or restore run did.

    Attributes
    ----------
    report : BatchReport
        Per-file outcomes (the batch conventions of :mod:`pixveil.batch`).
    scheme : Scheme
        The scheme used.
    key_file : Path or None
        The key file read or written; None when per-image keys were discarded.
    key_file_created : bool
        Whether this run created (or extended) the key file.
    """

    report: BatchReport
    scheme: Scheme
    key_file: Path | None
    key_file_created: bool


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
    except ValueError:
        return False
    return True


def _check_folders(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise InputError("not a folder (give the dataset folder)", path=src)
    if os.path.abspath(src) == os.path.abspath(out):
        raise OutputError("the output folder must differ from the input folder", path=out)


def _prepare_keys(
    key_file: Path | None,
    *,
    scheme: Scheme,
    scheme_name: str,
    ids: list[str],
    per_image_keys: bool,
    reuse_key: bool,
) -> tuple[KeyFile, bool]:
    """The keys to use, saved first when they are new (see the module notes)."""
    mode = "per-image" if per_image_keys else "shared"
    if key_file is None:
        if not per_image_keys:
            raise InputError("a shared key needs a key file (--key-file)")
        if reuse_key:
            raise InputError("reusing a key needs the key file (--key-file)")
        return KeyFile(scheme_name, scheme.params(), keys={i: new_key() for i in ids}), False
    exists = key_file.exists() or key_file.is_symlink()
    if exists and not reuse_key:
        raise OutputError(
            "key file already exists; pass --reuse-key to protect with the keys it holds, "
            "or choose a new key file",
            path=key_file,
        )
    if not exists and reuse_key:
        raise InputError("key file not found (--reuse-key needs an existing one)", path=key_file)
    if not exists:
        if per_image_keys:
            keys = KeyFile(scheme_name, scheme.params(), keys={i: new_key() for i in ids})
        else:
            keys = KeyFile(scheme_name, scheme.params(), key=new_key())
        save_key_file(key_file, keys)
        return keys, True
    keys = load_key_file(key_file)
    held = "per-image" if keys.per_image else "shared"
    if keys.scheme != scheme_name or keys.params != scheme.params() or held != mode:
        raise InputError(
            f"key file is for {keys.scheme} {keys.params} with {held} keys, not "
            f"{scheme_name} {scheme.params()} with {mode} keys",
            path=key_file,
        )
    missing = [i for i in ids if keys.per_image and i not in keys.keys]
    if missing:
        keys.keys.update({i: new_key() for i in missing})
        save_key_file(key_file, keys, overwrite=True)
        return keys, True
    return keys, False


def protect_dataset(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    scheme: str,
    params: dict[str, Any] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    per_image_keys: bool = False,
    reuse_key: bool = False,
    output_format: str = "png",
    on_result: Callable[[ImageOutcome], None] | None = None,
) -> DatasetRun:
    """Protect every image below ``src`` into ``out_dir`` with ``scheme``.

    Parameters
    ----------
    src : path
        The dataset folder (``<class>/<images>``, or any tree of images).
    out_dir : path
        Output folder; ``src``'s tree is mirrored in it.
    scheme : str
        A name of :data:`pixveil.dataset.SCHEMES` (``"pixel-based"``,
        ``"block-scramble"``, ``"gan"``).
    params : dict, optional
        The scheme's parameters (``{"block_size": 4}``; ``{"model": folder}`` for
        ``gan``, which takes no key: ``key_file`` and ``per_image_keys`` must then
        be left out).
    key_file : path, optional
        Where the key(s) are (or go).  Needed for a shared key.
    per_image_keys : bool
        An independent key per image (mapped by image id in the key file).
    reuse_key : bool
        Use an existing key file instead of refusing it.
    output_format : {"png", "bmp", "webp", "jpg"}
        PNG (default) and BMP are lossless; JPEG (and lossy WebP) break exact
        inversion.

    Raises
    ------
    InputError, OutputError, PrivacyParameterError
        For a bad folder, scheme, parameter or key file, before any image is
        written.  Per-file failures are reported in the result instead.
    """
    src_p, out = Path(src), Path(out_dir)
    _check_folders(src_p, out)
    sch = get_scheme(scheme, **(params or {}))
    fmt = normalize_format(output_format)
    kf = None if key_file is None else Path(key_file)
    if kf is not None and _inside(kf, out):
        raise OutputError(
            "the key file must not be inside the output folder (that folder is what you share)",
            path=kf,
        )
    images, skipped = collect_inputs([src_p], exclude=out)
    if not sch.keyed:
        # a keyless scheme (the GAN transform): nothing to generate, store or restore
        if kf is not None or per_image_keys or reuse_key:
            raise InputError(f"scheme {scheme} takes no key (no --key-file, --per-image-keys)")
        report = _run(images, skipped, out, fmt, lambda px, i: sch.encrypt(px, None), on_result)
        _write_run_file(src_p, out, "protect", scheme, sch, False, fmt, report)
        return DatasetRun(report, sch, None, False)
    ids = [image_id(p, root) for p, root in images]
    keys, created = _prepare_keys(
        kf,
        scheme=sch,
        scheme_name=scheme,
        ids=ids,
        per_image_keys=per_image_keys,
        reuse_key=reuse_key,
    )
    report = _run(
        images, skipped, out, fmt, lambda px, i: sch.encrypt(px, keys.key_for(i)), on_result
    )
    _write_run_file(src_p, out, "protect", scheme, sch, per_image_keys, fmt, report)
    return DatasetRun(report, sch, kf, created)


def restore_dataset(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    key_file: str | os.PathLike[str],
    output_format: str = "png",
    on_result: Callable[[ImageOutcome], None] | None = None,
) -> DatasetRun:
    """Invert :func:`protect_dataset`: decrypt every image below ``src`` with the key file.

    The scheme and its parameters come from the key file.  An image whose id
    has no key in a per-image key file fails (no output).  Exact only when the
    protected images were written losslessly (PNG, BMP).
    """
    src_p, out = Path(src), Path(out_dir)
    _check_folders(src_p, out)
    fmt = normalize_format(output_format)
    kf = Path(key_file)
    keys = load_key_file(kf)
    sch = get_scheme(keys.scheme, **keys.params)
    images, skipped = collect_inputs([src_p], exclude=out)
    report = _run(
        images, skipped, out, fmt, lambda px, i: sch.decrypt(px, keys.key_for(i)), on_result
    )
    _write_run_file(src_p, out, "restore", keys.scheme, sch, keys.per_image, fmt, report)
    return DatasetRun(report, sch, kf, False)


def _run(
    images: list[tuple[Path, Path | None]],
    skipped: list[Path],
    out: Path,
    fmt: str,
    transform: Callable[[Any, str], Any],
    on_result: Callable[[ImageOutcome], None] | None,
) -> BatchReport:
    stale = clean_stale_temps(out) if out.is_dir() and not out.is_symlink() else []
    report = BatchReport(skipped=skipped, stale_removed=stale)
    protected = ProtectedPaths([p for p, _ in images])
    planned: dict[str, Path] = {}
    for path, root in images:
        try:
            dst = output_path_for(path, input_root=root, out_dir=out, format=fmt)
            key = os.path.normcase(os.path.abspath(dst))
            if key in planned:
                raise OutputError(f"output would collide with that of {planned[key]}", path=dst)
            pixels = transform(read_image(path).pixels, image_id(path, root))
            write_image(dst, pixels, format=fmt, protected_paths=protected, root=out)
            planned[key] = path
            outcome = ImageOutcome(path, dst, None, None)
        except Exception as exc:  # fail closed: no output for this file, and say why
            outcome = failed_outcome(path, exc)
        report.outcomes.append(outcome)
        if on_result is not None:
            on_result(outcome)
    return report


def _write_run_file(
    src: Path,
    out: Path,
    command: str,
    name: str,
    sch: Scheme,
    per_image: bool,
    fmt: str,
    report: BatchReport,
) -> None:
    if not report.n_written:
        return
    summary = report.to_dict()
    doc = {
        "command": f"dataset {command}",
        "scheme": name,
        "params": sch.params(),
        "keys": ("per-image" if per_image else "shared") if sch.keyed else "none",
        "format": fmt,
        "summary": {k: summary[k] for k in ("images", "written", "skipped_non_images")},
        # image ids, not paths: the folder is shared, the local paths need not be
        "failures": [{"image": image_id(o.path, src), "error": o.error} for o in report.failures],
    }
    atomic_write_text(out / RUN_FILE, json.dumps(doc, indent=2) + "\n", root=out)
