"""What the store needs from a storage engine (SQLite or PostgreSQL): transactions on
its own threads, with lanes for the dispatcher (priority) and for upkeep (background)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from .tx import Tx

T = TypeVar("T")


class Engine(Protocol):
    skip_locked: bool

    def start(self) -> None: ...
    def stop(self) -> None: ...
    async def write(self, fn: Callable[[Tx], T], background: bool = False,
                    priority: bool = False, size: int = 0) -> tuple[T, int]: ...
    async def read(self, fn: Callable[[Tx], T]) -> T: ...
    def admit(self, size: int = 0) -> None: ...
    def check_space(self) -> None: ...
