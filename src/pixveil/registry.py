"""A small name -> implementation registry (one for detectors, one for methods)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps names to implementations; refuses duplicates unless ``force=True``.

    Parameters
    ----------
    what : str
        What is registered ("protection method", "detector"), used in messages.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._items: dict[str, T] = {}

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
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"unknown {self._what} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
