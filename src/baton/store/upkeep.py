"""The store's retention operations: one bounded batch per call, at background priority.
What is pruned and when is ``baton.retention``'s to decide; the SQL is ``retention``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from . import retention as _ret
from .engine import Engine
from .tx import Tx

T = TypeVar("T")


class Upkeep:
    engine: Engine

    async def _background(self, fn: Callable[[Tx], T]) -> T:
        """A write that yields to requests' writes: it runs on its own, never grouped
        with them (SQLite), so no request waits for its commit in the same group."""
        result, _ = await self.engine.write(fn, background=True)
        return result

    async def prune_incidents(self, cutoff: float, limit: int) -> dict[str, int]:
        """One batch: incidents resolved before ``cutoff`` with all their rows, at most
        ``limit`` rows in one write transaction. Rows deleted, by table."""
        skip = self.engine.skip_locked
        return await self._background(
            lambda tx: _ret.prune_incidents(tx, cutoff, limit, skip))

    async def prune_events(self, cutoff: float, limit: int) -> dict[str, int]:
        """One batch of request bodies received before ``cutoff``."""
        skip = self.engine.skip_locked
        return await self._background(lambda tx: _ret.prune_events(tx, cutoff, limit, skip))

    async def prune_replay_ids(self, cutoff: float, limit: int) -> dict[str, int]:
        """One batch of inbound message ids and callback event ids taken before
        ``cutoff``."""
        skip = self.engine.skip_locked
        return await self._background(
            lambda tx: _ret.prune_replay_ids(tx, cutoff, limit, skip))

    async def prunable(self, cutoffs: _ret.Cutoffs) -> dict[str, int]:
        """Rows per table that pruning at ``cutoffs`` would delete now; changes nothing."""
        return await self.engine.read(lambda tx: _ret.prunable(tx, cutoffs))

    async def reclaim(self, pages: int, slack: float = 0.0) -> int:
        """Return up to ``pages`` free pages to the file system (SQLite), keeping
        ``slack`` of the file free; pages freed."""
        return await self._background(lambda tx: _ret.reclaim(tx, pages, slack))

    async def database_size(self) -> int:
        return await self.engine.read(_ret.database_size)
