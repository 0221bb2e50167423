"""A small name -> implementation registry (one for detectors, one for methods)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps names to implementations; refuses duplicates unless ``force=True``.

    Parameters
    ----------
    what : str
        What is registered ("protection method", "detector"), used in messages.
    builtin : iterable of str, keyword-only
        Modules that register the built-in implementations when imported.  They
        are imported on the first lookup (:meth:`get`, :meth:`names`, ``in``,
        iteration, ``len``), not before: importing the registry stays cheap.
    """

    def __init__(self, what: str, *, builtin: Iterable[str] = ()) -> None:
        self._what = what
        self._items: dict[str, T] = {}
        self._builtin = tuple(builtin)
        self._builtin_loaded = not self._builtin

    def load_builtin(self) -> None:
        """Import the built-in modules (once; again after a failed import)."""
        if self._builtin_loaded:
            return
        for module in self._builtin:
            importlib.import_module(module)
        self._builtin_loaded = True

    def register(self, name: str, item: T, *, force: bool = False) -> T:
        if not name or name != name.strip().lower():
            raise ValueError(f"{self._what} name must be non-empty lower case, got {name!r}")
        if name in self._items and not force:
            raise ValueError(
                f"{self._what} {name!r} is already registered (pass force=True to replace)"
            )
        self._items[name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove and return the item registered as ``name`` (for plugins and tests)."""
        item = self.get(name)
        del self._items[name]
        return item

    def decorator(self, name: str, *, force: bool = False) -> Callable[[T], T]:
        def deco(item: T) -> T:
            return self.register(name, item, force=force)

        return deco

    def get(self, name: str) -> T:
        self.load_builtin()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"unknown {self._what} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        self.load_builtin()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.load_builtin()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load_builtin()
        return len(self._items)
