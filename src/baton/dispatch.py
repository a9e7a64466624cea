"""The dispatcher: claims due deliveries from storage and runs them through connectors.

Retries, ordering, backoff, timeouts, concurrency limits and the circuit breaker live here,
once, for every connector (as in Alertmanager's notify pipeline). Connectors only classify.
All state that matters survives in storage; what is in memory here (in-flight tasks, the
breaker) is per-replica and safe to lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import structlog

from .backoff import RetryPolicy, decide
from .clock import Clock
from .config import ConnectorConfig, DispatchConfig
from .metrics import Metrics
from .model import Notification, Outcome
from .plugin import Connector
from .store import ClaimedDelivery, DeliveryOutcome, Store

log = structlog.get_logger("baton.dispatch")


@dataclass
class Lane:
    """One connector with its limits and its per-replica runtime state."""

    connector: Connector
    timeout: float
    concurrency: int
    retry: RetryPolicy
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    # (count, per seconds): the vendor's rate limit, kept here rather than by sleeping in
    # the connector, so deliveries over it wait in storage and hold no slot.
    rate_limit: tuple[int, float] | None = None
    inflight: set[str] = field(default_factory=set)
    failures: int = 0  # consecutive retryable failures
    open_until: float = 0.0
    started: deque[float] = field(default_factory=deque)  # attempt starts in the window

    @classmethod
    def from_config(cls, c: ConnectorConfig, connector: Connector) -> Lane:
        return cls(connector=connector, timeout=c.timeout, concurrency=c.concurrency,
                   retry=RetryPolicy(c.max_attempts, c.max_age, c.backoff_initial,
                                     c.backoff_max, c.max_retry_after),
                   rate_limit=c.rate_limit)

    def allowance(self, now: float) -> tuple[int, float | None]:
        """Attempts the rate limit allows now (a sliding window: never more than ``count``
        starts in any ``per`` seconds), and when the next one will be allowed if none is."""
        if self.rate_limit is None:
            return 1 << 30, None
        count, per = self.rate_limit
        while self.started and self.started[0] <= now - per:
            self.started.popleft()
        free = count - len(self.started)
        return (free, None) if free > 0 else (0, self.started[0] + per)


class Dispatcher:
    def __init__(self, store: Store, lanes: Mapping[str, Lane], clock: Clock,
                 metrics: Metrics, *, poll_interval: float = 1.0, lease: float = 60.0,
                 worker_id: str | None = None,
                 batch_size: int = DispatchConfig.batch_size) -> None:
        self.store = store
        self.lanes = dict(lanes)
        self.clock = clock
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.lease = lease
        # Most rows one claim takes (``dispatch.batch_size``): a claim is one write
        # transaction, which ingest waits behind on SQLite's single writer.
        self.batch_size = batch_size
        # Unique per process run: containers share pid 1 and often a hostname, and a
        # replica must never finish or release another's claims (PostgreSQL).
        self.worker = worker_id or (f"{socket.gethostname()}:{os.getpid()}:"
                                    f"{os.urandom(3).hex()}")
        self.http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._timers_checked = float("-inf")
        self._next_timer: float | None = None
        self._next_rate: float | None = None  # when a rate-limited lane may send again
        # Connectors a reload removed, with the reason their deliveries are dead-lettered:
        # rows still come for them (a frozen policy's next level, a resolve) and nothing
        # would ever claim them (see ``baton.reload``).
        self.removed: dict[str, str] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until stopped; woken early when new work is committed."""
        while not self._stopping:
            # Cleared before the cycle, not after: a wake-up that arrives while it runs
            # (a commit, a freed slot) must start the next cycle, not wait a poll interval.
            self._wake.clear()
            try:
                await self.run_once(timers=self._timers_due())
            except Exception:  # storage hiccup: log and keep polling; nothing is lost
                log.exception("dispatch cycle failed")
                # Forget the due-time hint: a past one would make the next sleep zero and
                # spin this loop until storage recovers.
                self._next_timer = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sleep())

    def _timers_due(self) -> bool:
        """Timers are checked once per poll interval (new ones may come from any replica)
        and at the due time of the earliest one known, not on every wake-up."""
        now = self.clock.now()
        return (now >= self._timers_checked + self.poll_interval
                or (self._next_timer is not None and now >= self._next_timer))

    def _sleep(self) -> float:
        wait = self.poll_interval
        for due in (self._next_timer, self._next_rate):
            if due is not None:
                wait = min(wait, max(0.0, due - self.clock.now()))
        return wait

    async def fire_timers(self) -> int:
        now = self.clock.now()
        fired = await self.store.fire_timers(now)
        self._next_timer = await self.store.next_timer()
        self._timers_checked = now
        if fired:
            log.info("escalation timers fired", count=fired)
        return fired

    async def run_once(self, timers: bool = True) -> int:
        """Fire due escalation timers, then claim what is due now for every connector with
        free slots and start the attempts. Returns the number of attempts started."""
        if timers:
            await self.fire_timers()
            await self.abandon_removed()
        now = self.clock.now()
        started = 0
        self._next_rate = None
        for name, lane in self.lanes.items():
            if self._stopping:
                break
            if lane.open_until > now:
                continue
            # Half-open: after the cool-down a single probe decides whether to close; while
            # it is in flight (it counts in ``inflight``) no second one starts.
            free = (1 if lane.failures >= lane.breaker_threshold else lane.concurrency
                    ) - len(lane.inflight)
            allowed, next_allowed = lane.allowance(now)
            if next_allowed is not None:
                self._next_rate = min(self._next_rate or next_allowed, next_allowed)
            free = min(free, allowed)
            if free <= 0:
                continue
            # The lease must outlive an attempt, or a slow attempt could be claimed again
            # while it still runs.
            lease = max(self.lease, lane.timeout * 2 + 5)
            want = min(free, self.batch_size)
            batch = await self.store.claim(name, want, now, lease, self.worker)
            if len(batch) == want < free:
                self._wake.set()  # cut short by batch_size: claim the rest next cycle, now
            for claimed in batch:
                lane.inflight.add(claimed.id)
                if lane.rate_limit is not None:
                    lane.started.append(now)
                task = asyncio.create_task(self._attempt(lane, claimed))
                self._tasks[claimed.id] = task
                task.add_done_callback(self._forget(claimed.id))
                started += 1
        return started

    async def abandon_removed(self) -> int:
        """Dead-letter what waits for connectors a reload removed (one read each when
        nothing does)."""
        n = 0
        for name, reason in list(self.removed.items()):
            count = await self.store.abandon(name, reason, self.clock.now())
            if count:
                self.metrics.deliveries.labels(name, "dead").inc(count)
                log.warning("dead-lettered deliveries of a removed connector",
                            connector=name, count=count)
            n += count
        return n

    def _forget(self, delivery_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(delivery_id, None)
        return forget

    async def idle(self) -> None:
        """Wait until no attempt is in flight (tests use this after ``run_once``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _attempt(self, lane: Lane, d: ClaimedDelivery) -> None:
        structlog.contextvars.bind_contextvars(
            connector=d.connector, delivery_id=d.id, incident_id=d.incident_id)
        started = time.perf_counter()
        try:
            try:
                outcome = await self._send(lane, d)
                result = self._decide(lane, d, outcome, time.perf_counter() - started)
            finally:
                # The slot bounds requests in flight to the receiver, and this one has
                # been answered (or given up): free it now rather than after ``finish``
                # commits, so the next claim can share a group commit with this finish
                # instead of queueing behind it.
                # Order is unaffected: the row stays in_flight under its lease until
                # ``finish`` commits, and the claim query skips every later delivery of
                # the same incident and connector until then.
                lane.inflight.discard(d.id)
                # Claim the next due delivery now. Without this a busy lane sends only
                # ``concurrency`` deliveries per poll interval.
                self.wake()
            await self.store.finish(result, self.worker)
        except Exception:
            # Storage refused the result: the claim's lease runs out and the delivery is
            # attempted again (same idempotency key), so nothing is lost.
            log.exception("could not record delivery result")

    async def _send(self, lane: Lane, d: ClaimedDelivery) -> Outcome:
        assert self.http is not None, "dispatcher started without an HTTP session"
        try:
            incident = (d.incident if d.incident is not None
                        else await self.store.notification_incident(d))
            note = Notification(delivery_id=d.id, connector=d.connector,
                                action=d.action,  # type: ignore[arg-type]
                                idempotency_key=d.idempotency_key, attempt=d.attempts,
                                incident=incident, target=d.target)
            async with asyncio.timeout(lane.timeout):
                return await lane.connector.send(note, self.http)
        except TimeoutError:
            return Outcome.retryable(f"timed out after {lane.timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the delivery boundary: a connector bug must not kill us
            # Not log.exception: a traceback's text is not scrubbed, and a connector's
            # exception may quote its secrets; the scrubbed message and the frame are.
            tb = e.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = (f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None
                     else "?")
            log.error("connector raised", error_type=e.__class__.__name__,
                      error=lane.connector.scrub(str(e), 300), at=where)
            return Outcome.retryable(f"connector error: {e.__class__.__name__}")

    def _decide(self, lane: Lane, d: ClaimedDelivery, outcome: Outcome,
                duration: float) -> DeliveryOutcome:
        """Count the attempt, move the breaker, and say what to record. Synchronous, so the
        breaker has seen this outcome before the slot is freed (a half-open probe's result
        decides the next claim)."""
        now = self.clock.now()
        decision = decide(outcome, d.attempts, d.created_at, now, lane.retry)
        removed = self.removed.get(d.connector)
        if removed is not None and decision.state == "pending":
            # Sent by the old instance while a reload removed it: no retry will come.
            decision = dataclasses.replace(decision, state="dead", next_attempt_at=None,
                                           reason="; ".join(
                                               r for r in (decision.reason, removed) if r))
        self.metrics.deliveries.labels(d.connector, outcome.kind).inc()
        self.metrics.delivery_latency.labels(d.connector).observe(duration)
        if outcome.kind == "retryable":
            lane.failures += 1
            if lane.failures >= lane.breaker_threshold:
                # Open (or re-open after a failed half-open probe): pause this connector
                # so a dead target is not hammered; its deliveries wait in storage.
                if lane.open_until <= now:
                    log.warning("circuit open", failures=lane.failures,
                                cooldown=lane.breaker_cooldown)
                lane.open_until = now + lane.breaker_cooldown
                self.metrics.circuit_open.labels(d.connector).set(1)
        else:
            if lane.failures >= lane.breaker_threshold:
                self.metrics.circuit_open.labels(d.connector).set(0)
            lane.failures = 0
        if decision.state == "dead":
            self.metrics.deliveries.labels(d.connector, "dead").inc()
        ref = outcome.external_ref.to_dict() if outcome.external_ref else None
        result = DeliveryOutcome(
            delivery_id=d.id, state=decision.state, at=now, status=outcome.status,
            error=decision.reason, next_attempt_at=decision.next_attempt_at,
            external_ref=ref, duration=duration)
        log.info("delivery attempt", outcome=outcome.kind, state=decision.state,
                 attempt=d.attempts, status=outcome.status, detail=outcome.detail,
                 duration=round(duration, 4))
        return result

    async def stop(self, grace: float) -> None:
        """Stop claiming; let attempts in flight finish for ``grace`` seconds; give the rest
        back to storage so another replica (or the next start) sends them."""
        self._stopping = True
        self._wake.set()
        pending = list(self._tasks.values())
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace)
            ids = [i for i, t in list(self._tasks.items()) if t in still]
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)
            if ids:
                released = await self.store.release(ids, self.worker, self.clock.now())
                log.info("released in-flight deliveries", count=released)
