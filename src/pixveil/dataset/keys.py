"""Key files of the dataset schemes: generation, the file format, safe writing.

Keys are 32 bytes from the operating system's cryptographic generator
(:func:`secrets.token_bytes`).  They live only in a key file, never in the
protected images, their names or their metadata.

Key file format (JSON, UTF-8)
-----------------------------
::

    {
      "format": "pixveil-dataset-key",
      "version": 1,
      "scheme": "pixel-based",            # a name of pixveil.dataset.SCHEMES
      "params": {},                       # the scheme's parameters, e.g. {"block_size": 4}
      "mode": "shared",                   # or "per-image"
      "key": "<64 hex digits>"            # mode "shared": one key for every image
      "keys": {"cat/0001": "<64 hex>"}    # mode "per-image": image id -> key
    }

An *image id* is the image's path relative to the dataset folder, with ``/``
separators and without its extension (``cat/0001.jpg`` and the protected
``cat/0001.png`` share the id ``cat/0001``).  The file is written atomically
with permissions 0600 (owner read/write only) and never replaces an existing
file unless asked to.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixveil.dataset.schemes import KEY_BYTES, get_scheme
from pixveil.errors import InputError, OutputError
from pixveil.io.files import temp_name

__all__ = [
    "KEY_FILE_FORMAT",
    "KeyFile",
    "image_id",
    "load_key_file",
    "new_key",
    "save_key_file",
    "unsafe_permissions",
]

KEY_FILE_FORMAT = "pixveil-dataset-key"
_VERSION = 1
_MODES = ("shared", "per-image")


def new_key() -> bytes:
    """A fresh key: :data:`~pixveil.dataset.schemes.KEY_BYTES` bytes from ``secrets``."""
    return secrets.token_bytes(KEY_BYTES)


def image_id(path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> str:
    """The id of an image: its path below ``root`` without extension, ``/``-separated.

    A file given without a folder (``root`` None) has its bare stem as id.
    """
    p = Path(path)
    if root is None:
        rel = Path(p.name)
    else:
        try:
            rel = p.relative_to(root)
        except ValueError:
            rel = Path(os.path.abspath(p)).relative_to(os.path.abspath(root))
    return rel.with_suffix("").as_posix()


@dataclass
class KeyFile:
    """The content of a key file.

    Attributes
    ----------
    scheme : str
        The scheme's registered name.
    params : dict
        The scheme's parameters (JSON values).
    key : bytes or None
        The shared key (mode ``"shared"``), else None.
    keys : dict of str to bytes
        Image id -> key (mode ``"per-image"``); empty in shared mode.
    """

    scheme: str
    params: dict[str, Any] = field(default_factory=dict)
    key: bytes | None = None
    keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def per_image(self) -> bool:
        return self.key is None

    def key_for(self, image: str) -> bytes:
        """The key of image id ``image`` (InputError when a per-image file has none)."""
        if self.key is not None:
            return self.key
        try:
            return self.keys[image]
        except KeyError:
            raise InputError(f"the key file has no key for image {image!r}") from None

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "format": KEY_FILE_FORMAT,
            "version": _VERSION,
            "scheme": self.scheme,
            "params": self.params,
            "mode": "per-image" if self.per_image else "shared",
        }
        if self.key is not None:
            doc["key"] = self.key.hex()
        else:
            doc["keys"] = {k: v.hex() for k, v in sorted(self.keys.items())}
        return json.dumps(doc, indent=1) + "\n"


def _hex_key(value: object, what: str, path: Path) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a hex string", path=path)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InputError(f"{what} is not hexadecimal", path=path) from None
    if len(raw) != KEY_BYTES:
        raise InputError(f"{what} must be {KEY_BYTES} bytes, got {len(raw)}", path=path)
    return raw


def load_key_file(path: str | os.PathLike[str]) -> KeyFile:
    """Read and check a key file.

    Raises
    ------
    InputError
        If the file is missing, unreadable, not a pixveil key file, of a newer
        version, names an unknown scheme or invalid parameters, or holds a
        malformed key.  The message names the file and never contains a key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        doc = json.loads(text)
    except FileNotFoundError:
        raise InputError("key file not found", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read the key file ({exc.strerror or exc})", path=p) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("not a pixveil key file (not JSON)", path=p) from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise InputError("not a pixveil key file", path=p)
    if doc.get("version") != _VERSION:
        raise InputError(f"unsupported key file version {doc.get('version')!r}", path=p)
    scheme, params, mode = doc.get("scheme"), doc.get("params", {}), doc.get("mode")
    if not isinstance(scheme, str) or not isinstance(params, dict) or mode not in _MODES:
        raise InputError("key file lacks a valid scheme, params or mode", path=p)
    try:
        get_scheme(scheme, **params)
    except ValueError as exc:
        raise InputError(f"key file: {exc}", path=p) from None
    if mode == "shared":
        return KeyFile(scheme, params, key=_hex_key(doc.get("key"), "key", p))
    keys = doc.get("keys")
    if not isinstance(keys, dict):
        raise InputError("per-image key file lacks its 'keys' map", path=p)
    parsed = {}
    for name, value in keys.items():
        parsed[str(name)] = _hex_key(value, f"key of image {name!r}", p)
    return KeyFile(scheme, params, keys=parsed)


def save_key_file(
    path: str | os.PathLike[str], keyfile: KeyFile, *, overwrite: bool = False
) -> Path:
    """Write ``keyfile`` to ``path`` with permissions 0600, atomically.

    The content goes to a new file created with mode 0600 in the destination
    folder (so it is never readable by others, whatever the umask), which is
    then linked to ``path`` (refusing an existing file) or, with
    ``overwrite=True``, renamed over it.

    Raises
    ------
    OutputError
        If ``path`` exists and ``overwrite`` is false, is a symbolic link or a
        folder, or the write fails (nothing is left behind then).
    """
    p = Path(path)
    if p.is_symlink() or p.is_dir():
        raise OutputError("refusing to write a key file over a link or folder", path=p)
    if p.exists() and not overwrite:
        raise OutputError("key file already exists; refusing to overwrite it", path=p)
    folder = p.parent if str(p.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / temp_name()  # pixveil's temporary-file name: cleaned if a kill leaves it
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb", closefd=False) as fh:
                fh.write(keyfile.to_json().encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, p)
        else:
            os.link(tmp, p)  # fails if p appeared meanwhile: never clobbers
            os.unlink(tmp)
    except FileExistsError:
        _remove(tmp)
        raise OutputError("key file already exists; refusing to overwrite it", path=p) from None
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write the key file ({exc.strerror or exc})", path=p) from None
    return p


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def unsafe_permissions(path: str | os.PathLike[str]) -> bool:
    """Whether the key file at ``path`` is readable or writable by group or others (POSIX)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO)) and os.name == "posix"
