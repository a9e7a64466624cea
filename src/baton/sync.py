"""Polling for vendors that cannot call back (Redmine has no webhooks).

Each round asks a polling connector about the tickets of open incidents only, a page at a
time, and applies what it reports exactly like a callback (``store.callbacks``): once per
vendor event, idempotently, never echoed to that connector. Rounds are bounded in pages,
so a huge backlog is walked across rounds instead of in one burst.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import aiohttp
import structlog

from .clock import Clock
from .dispatch import Lane
from .metrics import Metrics
from .model import ExternalRef
from .store import Store

log = structlog.get_logger("baton.sync")

PAGE = 100
MAX_PAGES = 20  # per connector and round: at most 2,000 tickets asked about per round


class Syncer:
    def __init__(self, store: Store, lanes: Mapping[str, Lane],
                 intervals: Mapping[str, float], clock: Clock, metrics: Metrics) -> None:
        self.store = store
        self.lanes = {n: lane for n, lane in lanes.items() if lane.connector.polls}
        self.intervals = intervals
        self.clock = clock
        self.metrics = metrics
        self.http: aiohttp.ClientSession | None = None
        self._due: dict[str, float] = {}
        self._cursor: dict[str, str] = {}  # where the next round resumes a long walk

    async def run_once(self, force: bool = False) -> dict[str, int]:
        """One round for every polling connector that is due (or all, when ``force``).
        Returns the number of vendor events applied per connector."""
        now = self.clock.now()
        applied: dict[str, int] = {}
        for name, lane in self.lanes.items():
            if not force and self._due.get(name, 0.0) > now:
                continue
            self._due[name] = now + self.intervals.get(name, 60.0)
            structlog.contextvars.bind_contextvars(connector=name)
            try:
                applied[name] = await self._round(name, lane)
                self.metrics.syncs.labels(name, "ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the vendor or storage failed: try again next round
                self.metrics.syncs.labels(name, "failed").inc()
                # Scrubbed before it is cut: the text may quote a URL or header with a
                # secret in it, and a cut must not leave half of one behind.
                log.warning("sync round failed", error_type=type(e).__name__,
                            error=lane.connector.scrub(str(e), 300))
            finally:
                structlog.contextvars.unbind_contextvars("connector")
        return applied

    async def _round(self, name: str, lane: Lane) -> int:
        assert self.http is not None, "syncer started without an HTTP session"
        after, applied = self._cursor.pop(name, ""), 0
        for _ in range(MAX_PAGES):
            rows = await self.store.open_refs(name, after, PAGE)
            if not rows:
                return applied
            refs = [ExternalRef(name, r["ref_id"], r["url"]) for r in rows]
            async with asyncio.timeout(lane.timeout):
                events = await lane.connector.sync(refs, self.http)
            if events:
                result = await self.store.apply_callbacks(name, events, self.clock.now())
                applied += result["applied"]
                if result["applied"]:
                    log.info("sync applied vendor changes", **result)
            after = rows[-1]["incident_id"]
            if len(rows) < PAGE:
                return applied
        self._cursor[name] = after  # the rest next round
        return applied

    def next_due(self) -> float | None:
        return min(self._due.values()) if self._due else None

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.run_once()
            due = self.next_due()
            wait = 1.0 if due is None else max(0.05, min(due - self.clock.now(), 60.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
