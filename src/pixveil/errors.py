"""The exception hierarchy of pixveil.

Every error pixveil raises on purpose derives from :class:`PixveilError`.  Classes
that describe a bad value also inherit the matching built-in (``ValueError``), so
callers that already catch built-ins keep working.  Messages say what was
expected, what was received and, where there is one, the fix.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DetectionError",
    "InputError",
    "MissingDependencyError",
    "ModelError",
    "OutputError",
    "PixveilError",
    "PrivacyLeakWarning",
    "PrivacyParameterError",
    "ProtectionError",
]


class PixveilError(Exception):
    """Base class of every error pixveil raises on purpose."""


class _FileError(PixveilError):
    """An error about one file (or none): a one-line ``reason`` and the ``path`` it concerns.

    The message is ``"<path>: <reason>"``, or the reason alone without a path.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        msg = f"{self.path}: {reason}" if self.path is not None else reason
        super().__init__(msg)


class InputError(_FileError, ValueError):
    """An input file or array cannot be used (corrupt, truncated, too large, wrong type).

    Attributes
    ----------
    path : Path or None
        The offending file, when the input came from a file.
    reason : str
        A one-line explanation, without the file name.
    """


class OutputError(_FileError, OSError):
    """An output cannot be written (it would overwrite an input, or the write failed).

    Attributes
    ----------
    path : Path or None
        The output file or folder.
    reason : str
        A one-line explanation, without the file name.
    """


class ModelError(PixveilError, RuntimeError):
    """A shipped model is missing, corrupt or failed to run."""


class DetectionError(PixveilError, RuntimeError):
    """A detector failed on an image.  The image must then get no output (fail closed)."""


class ProtectionError(PixveilError, RuntimeError):
    """A protection method failed on a region.  The image must then get no output."""


class PrivacyParameterError(PixveilError, ValueError):
    """A privacy parameter (epsilon, sensitivity, block size...) is out of its allowed range."""


class MissingDependencyError(PixveilError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is needed for this feature; install it with: pip install 'pixveil[{extra}]'"
        )


class PrivacyLeakWarning(UserWarning):
    """A setting weakens or removes the stated privacy guarantee (for example epsilon = inf)."""
