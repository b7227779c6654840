"""A tiny named registry; one instance per kind of plug-in (datasets, generators, models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from engine.core.errors import CausalMixError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a factory. Plug-in modules register themselves on import."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise CausalMixError(f"unknown {self.kind} '{name}' (known: {known})")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
