"""Writing files safely: atomic replacement, no symbolic links, no stray temporary files.

Every file pixveil writes goes first to a hidden temporary file in the destination
folder, named by :data:`TEMP_NAME_PATTERN` (``.pixveil-<16 hex digits>.tmp``), which
is renamed over the destination once complete: a reader never sees a partial
file, and a failed write leaves nothing behind.  Only a killed process can leave
such a temporary file; :func:`clean_stale_temps` removes them.

Symbolic links
--------------
A destination that is itself a symbolic link is refused: writing would either
replace the link or (with a plain ``open``) write into whatever it points to.
When an output folder ``root`` is given, the destination must lie inside it and
no folder between ``root`` and the file may be a symbolic link either, so that
nobody who can write inside ``root`` can redirect an output elsewhere.  Missing
folders are created one at a time and each is opened without following links
(``O_NOFOLLOW``), so a folder swapped for a link meanwhile is refused, not
followed.  ``root`` itself, and the folders above it, are the caller's choice
and may be links.  Where the system lacks ``openat``-style calls (Windows), the
same checks are made on paths, which narrows but cannot close the race.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pixveil._slots import waiting_on_disk
from pixveil.errors import InputError, OutputError

__all__ = [
    "TEMP_NAME_PATTERN",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_temps",
]

_TEMP_PREFIX = ".pixveil-"
_TEMP_SUFFIX = ".tmp"
_TEMP_HEX_DIGITS = 16

#: Names of pixveil's temporary files (hidden, ``.pixveil-<16 hex digits>.tmp``).
#: The writers make every name from it and :func:`clean_stale_temps` removes
#: only names that match it (or the older sidecar pattern below).
TEMP_NAME_PATTERN: re.Pattern[str] = re.compile(
    rf"\A{re.escape(_TEMP_PREFIX)}[0-9a-f]{{{_TEMP_HEX_DIGITS}}}{re.escape(_TEMP_SUFFIX)}\Z"
)

# Sidecar temporary files of earlier versions: ``.<output image>.json.<pid>.tmp``.
_LEGACY_SIDECAR_TEMP = re.compile(
    r"\A\..+\.(?:png|jpg|jpeg|jpe|bmp|webp)\.json\.[0-9]+\.tmp\Z", re.I
)

#: Age (seconds since the last write) below which :func:`clean_stale_temps`
#: leaves a temporary file alone by default: it may belong to a run in progress.
DEFAULT_MIN_AGE: float = 60.0

_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY: int = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_BINARY: int = getattr(os, "O_BINARY", 0)

# openat()-style calls, which check and create one component at a time relative
# to an open folder, so that no path is looked up twice.
_HAS_DIR_FD: bool = (
    bool(_O_NOFOLLOW and _O_DIRECTORY)
    and {os.open, os.mkdir, os.stat, os.unlink, os.rename} <= os.supports_dir_fd
)


def temp_name() -> str:
    """A new temporary file name matching :data:`TEMP_NAME_PATTERN`."""
    return f"{_TEMP_PREFIX}{secrets.token_hex(_TEMP_HEX_DIGITS // 2)}{_TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a bare file name) is one of pixveil's temporary files."""
    return bool(TEMP_NAME_PATTERN.match(name) or _LEGACY_SIDECAR_TEMP.match(name))


def as_path(value: object, what: str = "a file path") -> Path:
    """``value`` as a Path; InputError for anything that is not a str or os.PathLike."""
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"expected {what}, got {type(value).__name__}")
    p = Path(value)
    if "\x00" in str(p):
        raise InputError(f"expected {what} without NUL characters")
    return p


# ----------------------------------------------------------------------------- writing


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, root: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path : path
        Destination; missing parent folders are created.  An existing regular
        file is replaced; a symbolic link or a folder there is refused.
    data : bytes
        The content.
    root : path, optional
        The output folder: ``path`` must lie inside it, and no folder between
        ``root`` and ``path`` may be a symbolic link (see the module notes).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If ``path`` is a symbolic link, a folder, outside ``root``, lies behind a
        symbolic link below ``root``, or the write fails.  Nothing is left behind
        then, and an existing file at ``path`` is untouched.
    InputError
        If ``path`` or ``root`` is not a path, or ``data`` is not bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"data must be bytes, got {type(data).__name__}")
    payload = bytes(data)
    return atomic_write(path, lambda fh: fh.write(payload), root=root, what="file")


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    root: str | os.PathLike[str] | None = None,
    encoding: str = "utf-8",
) -> Path:
    """Write ``text`` to ``path`` atomically; as :func:`atomic_write_bytes` otherwise.

    The text is encoded with ``encoding`` (UTF-8 by default) and written as is:
    no newline translation.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding), root=root)


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    root: str | os.PathLike[str] | None = None,
    what: str = "file",
) -> Path:
    """Create ``path`` atomically with ``write(fh)``; the engine of the other writers.

    ``write`` receives a binary file open on a hidden temporary file in the
    destination folder, and may stream into it (``np.save``, ``torch.save``,
    an image encoder).  An OSError it raises becomes "cannot write the <what>";
    a ValueError, TypeError or KeyError (an encoder's) "cannot encode the <what>".
    ``root`` and the refusals are those of :func:`atomic_write_bytes`.
    """
    target = as_path(path)
    root_path = None if root is None else as_path(root, "a folder path")
    if not target.name or target.name in (".", ".."):
        raise OutputError("has no file name", path=target)
    if _HAS_DIR_FD:
        _write_with_dir_fd(target, root_path, write, what)
    else:  # pragma: no cover - exercised on Linux by forcing this path in the tests
        _write_with_paths(target, root_path, write, what)
    return target


def _write_with_dir_fd(
    target: Path, root: Path | None, write: Callable[[BinaryIO], object], what: str
) -> None:
    dir_fd = _open_parent(target, root)
    try:
        name = target.name
        _check_destination(name, target, dir_fd)
        tmp = temp_name()
        done = False
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
            # 0o666 minus the umask, like any new file (a temporary file would get 0o600)
            fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                waiting_on_disk()
                os.fsync(fh.fileno())
            # rename() replaces a link rather than following it; checking again just
            # before narrows the window in which one could have been put there.
            _check_destination(name, target, dir_fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            done = True
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the {what} ({_os_reason(exc)})", path=target) from exc
        except (ValueError, TypeError, KeyError) as exc:  # Pillow's encoders
            raise OutputError(f"cannot encode the {what} ({_one_line(exc)})", path=target) from exc
        finally:
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _open_parent(target: Path, root: Path | None) -> int:
    """An open folder descriptor of ``target``'s folder, created if missing."""
    if root is None:
        parent = target.parent
        _make_folder(parent, target)
        try:
            return os.open(parent, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as exc:
            raise OutputError(
                f"cannot open the folder {parent} ({_os_reason(exc)})", path=target
            ) from exc
    root_abs, parts = _inside_root(target, root)
    _make_folder(root_abs, target)
    try:
        dir_fd = os.open(root_abs, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError as exc:
        raise OutputError(
            f"cannot open the output folder {root_abs} ({_os_reason(exc)})", path=target
        ) from exc
    here = root_abs
    try:
        for part in parts[:-1]:
            here = here / part
            next_fd = _open_subfolder(dir_fd, part, here, target)
            os.close(dir_fd)
            dir_fd = next_fd
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def _open_subfolder(dir_fd: int, name: str, shown: Path, target: Path) -> int:
    """Open (creating it if missing) the folder ``name`` in ``dir_fd``, never through a link."""
    flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
    for _ in range(3):
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _refuse_link_or_raise(dir_fd, name, shown, target, exc)
        try:
            os.mkdir(name, 0o777, dir_fd=dir_fd)
        except FileExistsError:
            continue  # made meanwhile (another run): open it, still without following links
        except OSError as exc:
            raise OutputError(
                f"cannot create the folder {shown} ({_os_reason(exc)})", path=target
            ) from exc
    raise OutputError(f"cannot create the folder {shown} (it keeps changing)", path=target)


def _refuse_link_or_raise(dir_fd: int, name: str, shown: Path, target: Path, exc: OSError) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(f"refusing to write through the symbolic link {shown}", path=target)
    if exc.errno == errno.ENOTDIR or (st is not None and not stat.S_ISDIR(st.st_mode)):
        raise OutputError(f"cannot create the folder {shown} (a file is in the way)", path=target)
    raise OutputError(f"cannot open the folder {shown} ({_os_reason(exc)})", path=target) from exc


def _check_destination(name: str, target: Path, dir_fd: int) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(
            f"cannot examine the destination ({_os_reason(exc)})", path=target
        ) from exc
    _refuse_mode(st.st_mode, target)


def _refuse_mode(mode: int, target: Path) -> None:
    if stat.S_ISLNK(mode):
        raise OutputError(f"refusing to write through the symbolic link {target}", path=target)
    if stat.S_ISDIR(mode):
        raise OutputError("is a directory", path=target)


def _inside_root(target: Path, root: Path) -> tuple[Path, tuple[str, ...]]:
    """``root`` made absolute, and the components of ``target`` below it."""
    root_abs = Path(os.path.abspath(root))
    target_abs = Path(os.path.abspath(target))
    try:
        rel = target_abs.relative_to(root_abs)
    except ValueError:
        raise OutputError(f"is outside the output folder {root}", path=target) from None
    if not rel.parts:
        raise OutputError("is the output folder itself, not a file in it", path=target)
    return root_abs, rel.parts


def _make_folder(folder: Path, target: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(
            f"cannot create the folder {folder} (a file is in the way)", path=target
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder {folder} ({_os_reason(exc)})", path=target
        ) from exc


def _write_with_paths(
    target: Path, root: Path | None, write: Callable[[BinaryIO], object], what: str
) -> None:
    """The same steps on paths, for systems without openat()-style calls."""
    if root is None:
        parent = target.parent
        _make_folder(parent, target)
    else:
        root_abs, parts = _inside_root(target, root)
        _make_folder(root_abs, target)
        parent = root_abs
        for part in parts[:-1]:
            parent = parent / part
            _path_check_folder(parent, target)
            try:
                os.mkdir(parent)
            except FileExistsError:
                pass  # there already, or made meanwhile: checked again below
            except OSError as exc:
                raise OutputError(
                    f"cannot create the folder {parent} ({_os_reason(exc)})", path=target
                ) from exc
            _path_check_folder(parent, target)
    dest = parent / target.name
    _path_check_destination(dest, target)
    tmp = parent / temp_name()
    done = False
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as fh:
            write(fh)
            fh.flush()
            waiting_on_disk()
            os.fsync(fh.fileno())
        _path_check_destination(dest, target)
        os.replace(tmp, dest)
        done = True
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the {what} ({_os_reason(exc)})", path=target) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise OutputError(f"cannot encode the {what} ({_one_line(exc)})", path=target) from exc
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _lstat(path: Path, what: str, target: Path) -> os.stat_result | None:
    """``os.lstat(path)``, None when nothing is there; OutputError naming ``what`` otherwise."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"cannot examine {what} ({_os_reason(exc)})", path=target) from exc


def _path_check_folder(folder: Path, target: Path) -> None:
    st = _lstat(folder, f"the folder {folder}", target)
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode) or _is_junction(folder):
        raise OutputError(f"refusing to write through the symbolic link {folder}", path=target)
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot create the folder {folder} (a file is in the way)", path=target)


def _path_check_destination(dest: Path, target: Path) -> None:
    st = _lstat(dest, "the destination", target)
    if st is None:
        return
    if _is_junction(dest):
        raise OutputError(f"refusing to write through the symbolic link {target}", path=target)
    _refuse_mode(st.st_mode, target)


def _is_junction(p: Path) -> bool:
    isjunction = getattr(os.path, "isjunction", None)  # Python 3.12+
    return bool(isjunction(p)) if isjunction is not None else False


# ----------------------------------------------------------------------------- cleaning


def clean_stale_temps(
    out_dir: str | os.PathLike[str], *, min_age: float = DEFAULT_MIN_AGE
) -> list[Path]:
    """Remove the temporary files that killed runs left in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        An output folder.  It is searched recursively; symbolic links inside it
        are never followed (``out_dir`` itself may be one).
    min_age : float
        Files written less than this many seconds ago are kept: they may belong to
        a run still writing into the same folder (default :data:`DEFAULT_MIN_AGE`,
        60 s).  0 removes every match.

    Returns
    -------
    list of Path
        The files removed (``out_dir / relative path``), in the order found.
        Only regular files whose name matches :data:`TEMP_NAME_PATTERN`
        (``.pixveil-<16 hex digits>.tmp``) or the sidecar temporary name of earlier
        versions (``.<image>.json.<pid>.tmp``) are removed; nothing else is touched.
        A missing ``out_dir`` gives an empty list.

    Raises
    ------
    OutputError
        If ``out_dir`` is not a folder, or a matching file cannot be removed.
    InputError
        If ``out_dir`` is not a path or ``min_age`` is not a number >= 0.
    """
    top = as_path(out_dir, "a folder path")
    if isinstance(min_age, bool) or not isinstance(min_age, (int, float)) or not min_age >= 0:
        raise InputError(f"min_age must be a number of seconds >= 0, got {min_age!r}")
    try:
        st = os.stat(top)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OutputError(f"cannot examine the folder ({_os_reason(exc)})", path=top) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError("is not a folder", path=top)
    now = time.time()
    removed: list[Path] = []
    # lazily: each remove() uses the folder descriptor of its step of the walk
    for folder, name, remove, file_st in _walk_files(top):
        if not is_temp_name(name) or not stat.S_ISREG(file_st.st_mode):
            continue
        if now - file_st.st_mtime < min_age:
            continue
        shown = folder / name
        try:
            remove()
        except FileNotFoundError:
            continue  # removed meanwhile
        except OSError as exc:
            raise OutputError(f"cannot remove ({_os_reason(exc)})", path=shown) from exc
        removed.append(shown)
    return removed


def _walk_files(top: Path) -> Iterator[tuple[Path, str, Callable[[], None], os.stat_result]]:
    """(folder, name, remove, lstat) of every non-folder entry below ``top``, links not followed."""
    if _HAS_DIR_FD and hasattr(os, "fwalk"):
        try:
            top_fd = os.open(top, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as exc:
            raise OutputError(f"cannot read the folder ({_os_reason(exc)})", path=top) from exc
        try:
            for rel, _dirs, files, dir_fd in os.fwalk(".", follow_symlinks=False, dir_fd=top_fd):
                folder = top / rel
                for name in files:
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        continue

                    def remove(name: str = name, dir_fd: int = dir_fd) -> None:
                        os.unlink(name, dir_fd=dir_fd)

                    yield folder, name, remove, st
        finally:
            os.close(top_fd)
        return
    for dirpath, _dirs, files in os.walk(top, followlinks=False):  # pragma: no cover
        folder = Path(dirpath)
        for name in files:
            full = folder / name
            try:
                st = os.lstat(full)
            except OSError:
                continue

            def remove_path(full: Path = full) -> None:
                os.unlink(full)

            yield folder, name, remove_path, st


# ----------------------------------------------------------------------------- utilities


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else _one_line(exc)
