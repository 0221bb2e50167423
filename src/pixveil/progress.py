"""One progress protocol for every long job: batches, evaluation, training, attacks.

The library never prints.  A long-running function takes a keyword-only
``progress`` argument, a :data:`ProgressCallback`, and calls it with a
:class:`ProgressEvent` as the work advances; the command line (or a web page, a
log, a test) decides how to show it.  ``None`` means nobody listens.

An event says which *stage* of the job it is about, how many units of that stage
are done out of how many (``total`` None when unknown), and optionally a one-line
``message``, the ``item`` (file, setting, identity) just handled, and the latest
figures (``metrics``: losses, accuracies).  Within one stage ``done`` never
decreases; a job that restarts a stage (a new epoch, a new seed) says so in the
stage or the message.

The callback runs in the caller's thread, between two units of work: it should be
quick, and an exception it raises stops the job (it is not swallowed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

__all__ = ["ProgressCallback", "ProgressEvent", "check_progress", "notify"]


@dataclass(frozen=True)
class ProgressEvent:
    """Where a long job stands.

    Parameters
    ----------
    stage : str
        The part of the job, named by the function that reports it (e.g.
        ``"protect"``, ``"gan"``, ``"encoder"``, ``"epoch"``); its docstring lists them.
    done : int
        Units of this stage done so far, ``>= 0``.
    total : int or None
        Units this stage will do, when known.
    message : str
        A one-line status, without markup (may be shown as is).
    item : str or None
        What the last unit was about (a file name, a setting label), when it
        helps to show it.  User data: escape it before printing it as markup.
    metrics : mapping of str to float
        The latest figures of the stage (``{"loss": 0.41}``); empty when none.
    """

    stage: str
    done: int
    total: int | None = None
    message: str = ""
    item: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """``done / total`` in ``[0, 1]``, or None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


#: What a ``progress=`` argument takes: a function of one :class:`ProgressEvent`.
ProgressCallback = Callable[[ProgressEvent], None]


def check_progress(progress: object) -> ProgressCallback | None:
    """``progress`` if it is None or callable; ``TypeError`` naming it otherwise."""
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a callable taking a ProgressEvent, or None, got {progress!r}"
        )
    return cast("ProgressCallback | None", progress)


def notify(progress: ProgressCallback | None) -> ProgressCallback:
    """A callback that is always safe to call: ``progress`` itself, or one that does nothing.

    Raises
    ------
    TypeError
        If ``progress`` is neither None nor callable.
    """
    checked = check_progress(progress)
    return checked if checked is not None else _ignore


def _ignore(event: ProgressEvent) -> None:
    """Listen to nothing."""
