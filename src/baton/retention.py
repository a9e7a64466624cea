"""Retention: what is kept how long, applied in rounds of small batches.

The horizons come from config (``retention:``, ``RetentionConfig``); storage carries out
the deletes (``baton.store.retention``). A round runs three kinds of batches, each until
nothing is left past its horizon or the round's cap is reached, so a large backlog (the
first round on an old database) is worked off over several rounds instead of in one long
stretch, and ingest keeps its turns at the writer between batches. Then freed SQLite pages
go back to the file system and the database size is measured.

The gateway runs rounds every ``retention.interval`` (``Pruner.context``, a
``cleanup_ctx``); ``baton prune`` runs one now, or with ``--dry-run`` counts what it would
delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from .clock import Clock
from .config import RetentionConfig
from .metrics import Metrics
from .store import Store
from .store.retention import TABLES, Cutoffs

log = structlog.get_logger("baton.retention")

# Per round: batches of each kind, and seconds of work, after which the rest waits for the
# next round. 1,000 batches of 50 rows is 50,000 rows of a kind per round.
MAX_BATCHES = 1000
MAX_SECONDS = 20.0
# Free pages handed back per write transaction: moving pages costs ~0.05-0.1 ms each, so
# 32 hold the writer about as long as a batch of deletes.
RECLAIM_PAGES = 32
# Free pages left in the file, as a share of it: the next inserts reuse them, and handing
# them back under steady churn would only make the file grow again. Bounds the file at
# live data plus this much.
RECLAIM_SLACK = 0.1

Batch = Callable[[float, int], Awaitable[dict[str, int]]]


class Pruner:
    def __init__(self, store: Store, config: RetentionConfig, clock: Clock,
                 metrics: Metrics | None = None, max_batches: int = MAX_BATCHES,
                 max_seconds: float = MAX_SECONDS) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.max_batches = max_batches
        self.max_seconds = max_seconds
        self.batches = 0  # write transactions of the last round (deletes and reclaims)

    def cutoffs(self, now: float) -> Cutoffs:
        c = self.config
        return Cutoffs(raw_events=now - c.raw_events,
                       resolved_incidents=now - c.resolved_incidents,
                       replay_ids=now - c.replay_ids)

    async def dry_run(self) -> dict[str, int]:
        """What a round now would delete, per table; deletes nothing."""
        return await self.store.prunable(self.cutoffs(self.clock.now()))

    async def run_once(self) -> dict[str, int]:
        """One round; returns the rows deleted per table."""
        cut = self.cutoffs(self.clock.now())
        deadline = time.monotonic() + self.max_seconds
        totals = dict.fromkeys(TABLES, 0)
        self.batches = 0
        # Incidents first: their callback ledger rows go with them, whatever their age.
        kinds: list[tuple[Batch, float]] = [
            (self.store.prune_incidents, cut.resolved_incidents),
            (self.store.prune_events, cut.raw_events),
            (self.store.prune_replay_ids, cut.replay_ids)]
        for batch, cutoff in kinds:
            for _ in range(self.max_batches):
                counts = await batch(cutoff, self.config.batch_size)
                self.batches += 1
                for table, n in counts.items():
                    totals[table] += n
                    if n and self.metrics is not None:
                        self.metrics.pruned.labels(table).inc(n)
                if not any(counts.values()) or time.monotonic() > deadline:
                    break
        if any(totals.values()):
            for _ in range(self.max_batches):
                self.batches += 1
                # Until none is spare: the slack is a share of a file that shrinks.
                if (not await self.store.reclaim(RECLAIM_PAGES, RECLAIM_SLACK)
                        or time.monotonic() > deadline):
                    break
            log.info("pruned", **{t: n for t, n in totals.items() if n})
        if self.metrics is not None:
            self.metrics.database_size.set(await self.store.database_size())
        return totals

    async def run(self, stopping: asyncio.Event) -> None:
        """Rounds every ``interval`` until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # storage busy or down: the next round tries again
                log.warning("pruning round failed", error_type=type(e).__name__,
                            error=str(e)[:300])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.config.interval)

    def context(self, enabled: bool = True
                ) -> Callable[[web.Application], AsyncIterator[None]]:
        """A ``cleanup_ctx`` that runs rounds while the app runs (none when not
        ``enabled``, as for tests that drive background work themselves). Appended after
        the store's own, so the store is open before the first round and closed after
        the last."""
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            stopping = asyncio.Event()
            task = (asyncio.create_task(self.run(stopping), name="baton-retention")
                    if enabled else None)
            try:
                yield
            finally:
                stopping.set()
                if task is not None:
                    # A batch in the writer still commits or rolls back whole.
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return ctx
