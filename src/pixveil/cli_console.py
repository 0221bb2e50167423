"""The terminal side of the commands: consoles, exit codes, and safe printing of user data.

User data (file names, option values) is never read as rich markup: :func:`shown`
escapes markup and control characters, :func:`plain` only control characters (for
places that take no markup); :func:`error` prints one unwrapped ``error:`` line.
"""

from __future__ import annotations

import unicodedata

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "EXIT_FAILURES",
    "EXIT_STRICT",
    "EXIT_USAGE",
    "err",
    "error",
    "fail_usage",
    "out",
    "plain",
    "shown",
    "warn",
]

err = Console(stderr=True, highlight=False, emoji=False)
out = Console(highlight=False, emoji=False)

EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_STRICT = 3


def fail_usage(message: str) -> typer.Exit:
    error(message)
    return typer.Exit(EXIT_USAGE)


def shown(value: object) -> str:
    """``value`` as safe terminal text: control characters escaped, rich markup escaped.

    A file name is data: ``[/x]`` in it is printed as is, a newline or an ESC
    byte as ``\n`` / ``\x1b`` (as ``repr`` writes them), so one message stays one line
    and cannot move the cursor or change colours.
    """
    return escape(plain(value))


def plain(value: object) -> str:
    """``value`` as text with control characters escaped (for places that take no markup)."""
    text = str(value)
    if any(_is_control(ch) for ch in text):
        text = "".join(
            repr(ch)[1:-1] if _is_control(ch) and ch not in ("'", '"') else ch for ch in text
        )
    return text


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d"


def error(message: str, console: Console | None = None) -> None:
    """Print ``error: <message>`` as one unwrapped line (the message is data, not markup)."""
    (console or err).print(f"[red]error:[/red] {shown(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {shown(message)}", soft_wrap=True)
