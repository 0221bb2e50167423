"""Progress bars for the commands, drawn from the library's progress events.

The library reports progress as :class:`~pixveil.progress.ProgressEvent` values
and never prints; :class:`ProgressBars` is the one place where the commands turn
them into rich progress bars.  Labels and details are shown as plain text, never
read as markup: they may hold file names (user data).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pixveil.progress import ProgressEvent

__all__ = ["ProgressBars"]


def _stage(event: ProgressEvent) -> str:
    return event.stage


def _message(event: ProgressEvent) -> str:
    return event.message


class ProgressBars:
    """A progress callback that draws one bar per key: label, bar, count, times, detail.

    Parameters
    ----------
    console : rich Console
        Where the bars go (the commands' standard error).
    disable : bool
        Draw nothing (``--quiet``, or not a terminal).
    key : callable, optional
        Which bar an event moves (default: its stage); a new key starts a new bar.
    label, detail : callable, optional
        The text before and after the bar (default: the stage, and the message).
    transient : bool
        Remove the bars when done.

    Use it as a context manager, and pass the instance as ``progress=``.
    """

    def __init__(
        self,
        console: Console,
        *,
        disable: bool,
        key: Callable[[ProgressEvent], str] = _stage,
        label: Callable[[ProgressEvent], str] = _stage,
        detail: Callable[[ProgressEvent], str] = _message,
        transient: bool = False,
    ) -> None:
        self._key, self._label, self._detail = key, label, detail
        self._tasks: dict[str, TaskID] = {}
        self.progress = Progress(
            TextColumn("{task.fields[label]}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            console=console,
            disable=disable,
            transient=transient,
        )

    def __call__(self, event: ProgressEvent) -> None:
        key = self._key(event)
        total = event.total or None
        if key not in self._tasks:
            self._tasks[key] = self.progress.add_task(
                "", total=total, label=self._label(event), detail=""
            )
        self.progress.update(
            self._tasks[key], completed=event.done, total=total, detail=self._detail(event)
        )

    def __enter__(self) -> ProgressBars:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)
