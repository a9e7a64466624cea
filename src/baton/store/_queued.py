"""The async face both storage engines share: work goes to queues that their own threads
drain, and the caller awaits a future the thread completes on the caller's loop.

Overload and a hung database are answered here, before and while a caller waits:

- **Shedding.** A request's write is refused at once (503 + Retry-After) when the oldest
  request write still waiting has waited ``max_queue_age``, when the bodies of waiting
  writes pass ``max_pending_bytes``, or when ``max_pending`` writes wait: well before a
  sender's own timeout, and before more bodies pile up in memory.
- **Lanes.** The dispatcher's writes (claims, outcomes, timers) go to a priority lane that
  request writes never shed and never queue ahead of, so paging continues in a storm.
  Background work (pruning) yields to both.
- **Deadline.** No caller waits longer than ``timeout`` for an operation. A write whose
  deadline passes before its work is done is withdrawn: never run if still queued, rolled
  back instead of committed if running (a hung connection mid-transaction), so its 503
  ("nothing was stored") is exact. Only a write whose commit is already under way when
  the deadline passes may commit after its caller was told 503 (saying so): the sender's
  retry then lands on the same incident by its dedup key (or is recognised by its message
  id), so nothing is lost and no second incident is opened; a dispatcher claim committed
  that way comes back when its lease ends.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import StorageUnavailable
from .tx import Tx

T = TypeVar("T")


def settle(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], result: Any,
           exc: BaseException | None) -> None:
    """Complete a caller's future from an engine thread, on the caller's loop."""
    def apply() -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
    try:
        loop.call_soon_threadsafe(apply)
    except RuntimeError:  # the loop closed while the operation ran: nobody is waiting
        pass


class Withdrawn(Exception):
    """The caller gave up on this operation: it must not run, or must roll back."""


class Ticket:
    """One operation's place in its lane. ``state`` moves, under the backlog's lock:
    queued -> running -> committing (its work done, the commit under way), or to
    withdrawn (its caller gave up while queued) or abandoned (while running: the engine
    rolls it back instead of committing)."""

    __slots__ = ("number", "state")

    def __init__(self, number: int) -> None:
        self.number = number
        self.state = "queued"


class Backlog:
    """Operations queued for engine threads and not started yet: how many, their bytes, and
    how long the oldest has waited; and the hand-over of each between its caller and the
    engine thread, which share this lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # tests swap in a fake to age the queue without sleeping
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[float, int]] = {}  # insertion order: oldest first
        self._numbers = itertools.count()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, size: int) -> Ticket:
        with self._lock:
            ticket = Ticket(next(self._numbers))
            self._waiting[ticket.number] = (self.clock(), size)
            self.bytes += size
            return ticket

    def _unqueue(self, ticket: Ticket) -> None:
        entry = self._waiting.pop(ticket.number, None)
        if entry is not None:
            self.bytes -= entry[1]

    def start(self, ticket: Ticket) -> bool:
        """An engine thread begins the operation (again, after a conflict); False: its
        caller gave up, so it must not run."""
        with self._lock:
            if ticket.state in ("withdrawn", "abandoned"):
                return False
            self._unqueue(ticket)
            ticket.state = "running"
            return True

    def finish(self, ticket: Ticket) -> bool:
        """The operation's work is done and its commit follows; False: its caller gave up
        meanwhile, so the engine must roll it back."""
        with self._lock:
            if ticket.state == "abandoned":
                return False
            ticket.state = "committing"
            return True

    def withdraw(self, ticket: Ticket) -> bool:
        """The caller gives up. True: the operation is certain never to commit (it had not
        started, or it will roll back); False: its commit may already be under way."""
        with self._lock:
            if ticket.state == "queued":
                self._unqueue(ticket)
                ticket.state = "withdrawn"
            elif ticket.state == "running":
                ticket.state = "abandoned"
            return ticket.state != "committing"

    def oldest_age(self) -> float:
        with self._lock:
            first = next(iter(self._waiting.values()), None)
        return 0.0 if first is None else max(0.0, self.clock() - first[0])


class QueuedEngine:
    """Subclasses set ``_running``, the bounds and the queues, and run threads that take
    ``(fn, loop, future)`` items off them. ``_submit`` routes an item to its lane."""

    _running: bool
    _max_pending: int
    _writes: queue.Queue[Any]
    _reads: queue.Queue[Any]
    # Defaults for engines built without the overload settings (subclasses override).
    timeout: float = 10.0
    max_queue_age: float = 2.0
    max_pending_bytes: int = 64 * 1024 * 1024

    def _init_backlogs(self) -> None:
        # Request writes (shed by age and bytes) and the rest (dispatcher, background),
        # which are only withdrawn at their deadline.
        self.backlog = Backlog()
        self._other = Backlog()

    def admit(self, size: int = 0) -> None:
        """Raise StorageUnavailable (503) if a request write of ``size`` bytes would be shed
        now; callers check before reading a body so a storm does not fill memory."""
        if not self._running:
            raise StorageUnavailable("storage is not open")
        if len(self.backlog) >= self._max_pending:
            raise StorageUnavailable("write queue full", retry_after=2)
        age = self.backlog.oldest_age()
        if age >= self.max_queue_age:
            raise StorageUnavailable(
                f"overloaded: writes have waited {age:.1f}s for storage",
                retry_after=max(1, min(30, math.ceil(age))))
        if size and self.backlog.bytes + size > self.max_pending_bytes:
            raise StorageUnavailable("overloaded: too many request bytes wait for storage",
                                     retry_after=2)

    async def write(self, fn: Callable[[Tx], T], background: bool = False,
                    priority: bool = False, size: int = 0) -> tuple[T, int]:
        """Run ``fn`` in a write transaction. Returns its result and the number of outbox
        rows it added. Raises StorageUnavailable when a request write is shed (see the
        module doc), when the deadline passes, or when the transaction fails in storage.
        ``priority``: the dispatcher's lane. ``background`` work (pruning) may be run after
        the foreground work queued with it. ``size``: the request bytes it holds."""
        if priority or background:
            if not self._running:
                raise StorageUnavailable("storage is not open")
            backlog = self._other
        else:
            self.admit(size)
            backlog = self.backlog
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[T, int]] = loop.create_future()
        ticket = backlog.add(size)

        def started(tx: Tx) -> T:
            if not backlog.start(ticket):
                raise Withdrawn()
            result = fn(tx)
            if not backlog.finish(ticket):
                raise Withdrawn()  # rolls this operation back: its caller was told 503
            return result

        self._submit((started, loop, fut), background, priority)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except asyncio.CancelledError:
            # The caller went away (a client disconnected, a probe's own deadline): what
            # has not started never runs, so nothing is stored that nobody was told of.
            if backlog.withdraw(ticket):
                fut.cancel()
            raise
        except TimeoutError:
            fut.cancel()  # whatever it settles to later, nobody reads it
            if backlog.withdraw(ticket):
                raise StorageUnavailable(
                    f"storage did not complete the write within {self.timeout:g}s; "
                    "nothing was stored", retry_after=5) from None
            raise StorageUnavailable(
                f"storage did not answer within {self.timeout:g}s; the write may still "
                "commit, and a retry is deduplicated", retry_after=5) from None
        finally:
            # Failed before it started (no connection, a failed BEGIN): it must not count
            # as waiting, or the queue would look old forever and shed every request.
            backlog.withdraw(ticket)

    def _submit(self, item: tuple[Any, ...], background: bool, priority: bool) -> None:
        self._writes.put(item)

    def check_space(self) -> None:
        """Raise StorageUnavailable if the store's disk is (nearly) full; engines whose
        disk is not ours to see (PostgreSQL) learn it from a failing write instead."""

    async def read(self, fn: Callable[[Tx], T]) -> T:
        if not self._running:
            raise StorageUnavailable("storage is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._reads.put((fn, loop, fut))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except TimeoutError:
            fut.cancel()  # a read changes nothing: it may run later, unread
            raise StorageUnavailable(
                f"storage did not answer a read within {self.timeout:g}s",
                retry_after=5) from None
