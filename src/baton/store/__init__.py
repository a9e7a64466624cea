"""The storage port: everything the pipeline needs from durable storage, nothing more.

``Store`` is the one implementation of the port's operations; an ``Engine`` supplies
transactions (SQLite, or PostgreSQL with the same ``read``/``write`` contract on its own
connection pool and ``FOR UPDATE SKIP LOCKED`` claims).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..config import StorageConfig
from ..errors import ConfigError, Conflict, NotFound
from ..lifecycle import Lifecycle
from ..plugin import CallbackEvent
from ..records import (
    ClaimedDelivery,
    DeliveryOutcome,
    IngestResult,
    Resolver,
    RoutedAlert,
    TargetSpec,
    unresolved,
)
from ..suppression import Suppressor
from . import callbacks as _cb
from . import deliveries as _d
from . import reports as _r
from . import silences as _s
from . import views as _v
from .engine import Engine
from .repo import Repo
from .tx import Tx
from .upkeep import Upkeep

T = TypeVar("T")

__all__ = ["ClaimedDelivery", "DeliveryOutcome", "IngestResult", "Resolver", "RoutedAlert",
           "Store", "TargetSpec", "open_store", "unresolved"]


class OwnerLock(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...


class Store(Upkeep):
    def __init__(self, engine: Engine, single_process: bool,
                 owner_lock: OwnerLock | None = None) -> None:
        self.engine = engine
        self.single_process = single_process
        # SQLite: held while this process owns the database (see ``open``).
        self._owner_lock = owner_lock
        self.owner = False
        # Called after a commit that added outbox rows, to wake the local dispatcher;
        # other replicas find the rows by polling.
        self.on_enqueue: Callable[[], None] = lambda: None
        # Turns policy targets into people at the moment they are notified (schedules).
        self.resolver: Resolver = unresolved
        # Silences in storage always apply; config adds its silences, inhibition rules
        # and routes' time intervals.
        self._ready_check: asyncio.Future[None] | None = None  # the one under way
        self.suppressor = Suppressor()

    def open(self, *, owner: bool = False) -> None:
        """``owner``: this process runs the dispatcher (``baton serve``, an app). On SQLite
        it must be the only one, so it takes the database's lock first and refuses, with
        nothing touched, when another process holds it. Readers (the CLI's dlq, silence
        and report commands) open without it, beside a running server."""
        if owner and self._owner_lock is not None:
            self._owner_lock.acquire()
        try:
            self.engine.start()
        except BaseException:
            if owner and self._owner_lock is not None:
                self._owner_lock.release()
            raise
        self.owner = owner

    def close(self) -> None:
        self.engine.stop()
        if self.owner and self._owner_lock is not None:
            self._owner_lock.release()
        self.owner = False

    def _change(self, fn: Callable[[Lifecycle, Repo], T]) -> Callable[[Tx], T]:
        """A lifecycle decision as a write transaction."""
        lifecycle = Lifecycle(self.resolver, self.suppressor)
        skip = self.engine.skip_locked
        return lambda tx: fn(lifecycle, Repo(tx, skip))

    async def _write(self, fn: Callable[[Tx], T], priority: bool = False,
                     size: int = 0) -> T:
        """``priority``: the dispatcher's lane (claims, outcomes, timers), never shed and
        never behind request writes. ``size``: request bytes the write holds (shedding)."""
        result, enqueued = await self.engine.write(fn, priority=priority, size=size)
        if enqueued:
            self.on_enqueue()
        return result

    async def ping(self) -> None:
        await self.engine.read(lambda tx: tx.one("SELECT 1 AS ok"))

    async def ready(self) -> None:
        """Raise StorageUnavailable unless storage can take a write now: its disk has room
        and a one-row write commits (on the dispatcher's lane, so an ingest storm that is
        being shed does not make the gateway look broken). Probes that come while a check
        is under way share it: whoever can reach /readyz can keep at most one write on
        that lane, never queue many ahead of paging. A probe that comes after it gets a
        check of its own, so the answer is never stale."""
        if self._ready_check is None or self._ready_check.done():
            self._ready_check = asyncio.ensure_future(self._check_ready())
        # Shielded: one probe giving up (its own deadline) must not cancel the others'.
        await asyncio.shield(self._ready_check)

    async def _check_ready(self) -> None:
        self.engine.check_space()
        await self.engine.write(lambda tx: tx.run(
            "UPDATE baton_meta SET value = value WHERE name = 'schema_version'"),
            priority=True)

    def admit(self, size: int = 0) -> None:
        """Raise StorageUnavailable now if a request write of ``size`` bytes would be shed
        (overload): cheap, so ingest asks before reading a body."""
        self.engine.admit(size)

    # --- incidents -------------------------------------------------------------------
    async def ingest(self, source: str, body: str, routed: Sequence[RoutedAlert],
                     now: float, message_id: str | None = None) -> IngestResult:
        return await self._write(self._change(
            lambda lc, db: lc.ingest(db, source, body, routed, now, message_id)),
            size=len(body))

    async def message_seen(self, source: str, message_id: str) -> bool:
        """Whether a request with this message id was stored (see ``Pipeline._store``)."""
        row = await self.engine.read(lambda tx: tx.one(
            "SELECT 1 AS seen FROM inbound_messages WHERE source = ? AND message_id = ?",
            (source, message_id)))
        return row is not None

    async def acknowledge(self, incident_id: str, by: str, note: str | None,
                          now: float) -> dict[str, Any]:
        await self._write(self._change(
            lambda lc, db: lc.acknowledge(db, incident_id, by, note, now)))
        return await self.get_incident(incident_id)

    async def unacknowledge(self, incident_id: str, by: str, note: str | None,
                            now: float) -> dict[str, Any]:
        await self._write(self._change(
            lambda lc, db: lc.unacknowledge(db, incident_id, by, note, now)))
        return await self.get_incident(incident_id)

    async def escalate(self, incident_id: str, by: str, reason: str,
                       now: float) -> dict[str, Any]:
        await self._write(self._change(
            lambda lc, db: lc.escalate(db, incident_id, by, reason, now)))
        return await self.get_incident(incident_id)

    async def fire_timers(self, now: float, limit: int = 200) -> int:
        """Fire escalation timers due at ``now`` (each once, with its effect)."""
        return await self._write(self._change(lambda lc, db: lc.fire_due(db, now, limit)),
                                 priority=True)

    async def next_timer(self) -> float | None:
        return await self.engine.read(lambda tx: Repo(tx).next_due())

    async def resolve(self, incident_id: str, by: str, note: str | None,
                      now: float) -> dict[str, Any]:
        await self._write(self._change(
            lambda lc, db: lc.resolve(db, incident_id, by, note, now)))
        return await self.get_incident(incident_id)

    async def add_note(self, incident_id: str, by: str, text: str,
                       now: float) -> dict[str, Any]:
        await self._write(self._change(
            lambda lc, db: lc.add_note(db, incident_id, by, text, now)))
        return await self.get_incident(incident_id)

    async def get_incident(self, incident_id: str, *, alerts: bool = True,
                           deliveries: bool = True, timeline: bool = True) -> dict[str, Any]:
        doc = await self.engine.read(lambda tx: _v.get_incident(
            tx, incident_id, alerts=alerts, deliveries=deliveries, timeline=timeline))
        if doc is None:
            raise NotFound(f"incident {incident_id} not found")
        return doc

    async def list_incidents(self, status: str | None = None, service: str | None = None,
                             limit: int = 50, cursor: str | None = None,
                             ) -> tuple[list[dict[str, Any]], str | None]:
        return await self.engine.read(
            lambda tx: _v.list_incidents(tx, status, service, limit, cursor))

    async def incident_stats(self) -> tuple[dict[str, int], str]:
        """Incidents per status, and a mark that changes whenever an incident is opened or
        changed or its timeline grows (the console's live updates poll it: small reads)."""
        return await self.engine.read(_v.incident_stats)

    async def firing_labels(self, incident_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
        """The match labels of each incident's firing alerts: what silences are checked
        against (the console's preview of a silence before it is saved)."""
        return await self.engine.read(lambda tx: {
            i: list(Repo(tx).firing_labels(i).values()) for i in incident_ids})

    # --- reports ---------------------------------------------------------------------
    async def response_report(self, start: float, end: float) -> dict[str, Any]:
        """MTTA/MTTR, escalation and suppression over incidents created in [start, end],
        overall and by service."""
        return await self.engine.read(lambda tx: _r.response(tx, start, end))

    async def recurring_report(self, start: float, end: float,
                               limit: int) -> list[dict[str, Any]]:
        """The incident keys that recurred most among incidents created in [start, end]."""
        return await self.engine.read(lambda tx: _r.recurring(tx, start, end, limit))

    # --- silences --------------------------------------------------------------------
    async def create_silence(self, matchers: Sequence[str], starts_at: float, ends_at: float,
                             by: str, comment: str, now: float) -> dict[str, Any]:
        silence_id = await self._write(lambda tx: _s.create(tx, matchers, starts_at, ends_at,
                                                            by, comment, now))
        return await self.get_silence(silence_id, now)

    async def expire_silence(self, silence_id: str, by: str, now: float) -> dict[str, Any]:
        if any(s.id == silence_id for s in self.suppressor.silences):
            raise Conflict(f"silence {silence_id} is defined in the config file; remove or "
                           "change it there")

        def op(lc: Lifecycle, db: Repo) -> None:
            _s.expire(db.tx, silence_id, by, now)
            lc.silence_ended(db, silence_id, now)

        await self._write(self._change(op))
        return await self.get_silence(silence_id, now)

    async def get_silence(self, silence_id: str, now: float) -> dict[str, Any]:
        for s in self.suppressor.silences:
            if s.id == silence_id:
                return s.doc(now, _v.ts)
        row = await self.engine.read(lambda tx: _s.get(tx, silence_id))
        if row is None:
            raise NotFound(f"silence {silence_id} not found")
        return _s.doc(row, now)

    async def list_silences(self, state: str | None, now: float,
                            limit: int = 500) -> list[dict[str, Any]]:
        rows = await self.engine.read(lambda tx: _s.listing(tx, state, now, limit))
        configured = [d for d in (s.doc(now, _v.ts) for s in self.suppressor.silences)
                      if state is None or d["state"] == state]
        return [*configured, *(_s.doc(r, now) for r in rows)]

    # --- deliveries ------------------------------------------------------------------
    async def claim(self, connector: str, limit: int, now: float, lease: float,
                    worker: str) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries, each with its notification document read
        in the claim's own transaction: one trip through the writer per claim instead of
        that plus a trip through the reader per delivery (each trip is a thread hand-off
        and a wait in a queue, paid while the delivery holds a connector slot)."""
        skip = self.engine.skip_locked

        def op(tx: Tx) -> list[ClaimedDelivery]:
            claimed = _d.claim(tx, connector, limit, now, lease, worker, skip)
            return [dataclasses.replace(c, incident=_notification_doc(tx, c))
                    for c in claimed]

        result, _ = await self.engine.write(op, priority=True)
        return result

    async def finish(self, outcome: DeliveryOutcome, worker: str) -> bool:
        return await self._write(lambda tx: _d.finish(tx, outcome, worker), priority=True)

    async def release(self, ids: list[str], worker: str, now: float) -> int:
        return await self._write(lambda tx: _d.release(tx, ids, worker, now), priority=True)

    async def recover(self, now: float) -> int:
        """Take back claims of a previous run at once. Only the owner of a single-process
        engine may: its lock proves their claimer is gone. Anywhere else (PostgreSQL
        replicas, a reader beside a server) a claim comes back when its lease ends."""
        if not (self.single_process and self.owner):
            return 0
        return await self._write(lambda tx: _d.release_all(tx, now), priority=True)

    async def retry_delivery(self, delivery_id: str, by: str, now: float) -> dict[str, Any]:
        await self._write(lambda tx: _d.retry(tx, delivery_id, by, now))
        return await self.get_delivery(delivery_id)

    async def get_delivery(self, delivery_id: str) -> dict[str, Any]:
        row = await self.engine.read(
            lambda tx: tx.one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)))
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return _v.delivery_doc(row)

    async def list_deliveries(self, state: str | None = None, connector: str | None = None,
                              limit: int = 50, cursor: str | None = None,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        return await self.engine.read(
            lambda tx: _v.list_deliveries(tx, state, connector, limit, cursor))

    async def abandon(self, connector: str, reason: str, now: float) -> int:
        """Dead-letter the deliveries waiting for a connector no longer configured; the
        number dead-lettered. A read first: nothing waiting costs no write."""
        if not await self.engine.read(lambda tx: _d.waiting(tx, connector)):
            return 0
        return await self._write(lambda tx: _d.abandon(tx, connector, reason, now),
                                 priority=True)

    async def dead_ids(self) -> list[str]:
        return await self.engine.read(_d.dead_ids)

    async def depth(self) -> dict[str, int]:
        return await self.engine.read(_d.depth)

    async def next_due(self) -> float | None:
        return await self.engine.read(_d.next_due)

    async def notification_incident(self, c: ClaimedDelivery) -> dict[str, Any]:
        """The incident document a connector is sent: alerts, no ledger, and for a note
        the one note it is about as its timeline."""
        doc = await self.engine.read(lambda tx: _notification_doc(tx, c))
        if doc is None:
            raise NotFound(f"incident {c.incident_id} not found")
        return doc

    # --- callbacks -------------------------------------------------------------------
    async def apply_callbacks(self, connector: str, events: Sequence[CallbackEvent],
                              now: float) -> dict[str, Any]:
        result = await self._write(self._change(
            lambda lc, db: _cb.apply(lc, db, connector, events, now)))
        return result.to_dict()

    async def open_refs(self, connector: str, after: str = "",
                        limit: int = 100) -> list[dict[str, Any]]:
        return await self.engine.read(lambda tx: _cb.open_refs(tx, connector, after, limit))


def _notification_doc(tx: Tx, c: ClaimedDelivery) -> dict[str, Any] | None:
    """``notification_incident`` inside a claim. A document that cannot be built (a broken
    row) must not fail the claim of the whole batch: None lets that one delivery read it
    itself and fail alone, as it would have without this shortcut."""
    try:
        doc = _v.get_incident(tx, c.incident_id, alerts=True, deliveries=False,
                              timeline=False, max_alerts=_v.NOTIFICATION_ALERTS)
        if doc is not None and c.action == "note":
            # The note's id is the key's last part (see ``incidents.add_note``).
            doc["timeline"] = _v.note_entries(tx, c.incident_id,
                                              c.idempotency_key.rsplit("/", 1)[-1])
        return doc
    except (ValueError, TypeError, KeyError):  # bad stored JSON; storage errors propagate
        return None


def open_store(url: str, busy_timeout: float = StorageConfig.busy_timeout,
               max_pending: int = StorageConfig.max_pending_writes,
               create: bool = True, settings: StorageConfig | None = None) -> Store:
    """``create=False``: a SQLite file that does not exist is an error, never created (the
    CLI reads the store a server made; see ``baton.cli``). ``settings``: the deadline and
    shedding bounds (``operation_timeout``, ``max_queue_age``, ``max_pending_bytes``)."""
    cfg = settings or StorageConfig()
    bounds: dict[str, Any] = {"timeout": cfg.operation_timeout,
                              "max_queue_age": cfg.max_queue_age,
                              "max_pending_bytes": cfg.max_pending_bytes}
    if url.startswith("sqlite:"):
        from .sqlite import OwnerLock, SQLiteEngine, path_from_url

        path = path_from_url(url)
        lock = None if path == ":memory:" else OwnerLock(path)  # private to this process
        return Store(SQLiteEngine(url, busy_timeout, max_pending, create=create,
                                  **bounds),
                     single_process=True, owner_lock=lock)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresEngine

        # Other replicas may hold claims: they are taken back only when their leases end.
        return Store(PostgresEngine(url, busy_timeout, max_pending, **bounds), single_process=False)
    raise ConfigError([f"storage.url: unsupported scheme in {url.split(':', 1)[0]!r}"])
