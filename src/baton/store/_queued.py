"""The async face both storage engines share: work goes to queues that their own threads
drain, and the caller awaits a future the thread completes on the caller's loop."""

from __future__ import annotations

import asyncio
import queue
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


class QueuedEngine:
    """Subclasses set ``_running``, ``_max_pending`` and the two queues, and run threads
    that take ``(fn, loop, future)`` items off them."""

    _running: bool
    _max_pending: int
    _writes: queue.Queue[Any]
    _reads: queue.Queue[Any]

    async def write(self, fn: Callable[[Tx], T], background: bool = False
                    ) -> tuple[T, int]:
        """Run ``fn`` in a write transaction. Returns its result and the number of outbox
        rows it added. Raises StorageUnavailable when too many writes wait (overload), or
        when the transaction fails in storage. ``background`` work (pruning) may be run
        after the foreground work queued with it, where the engine has one writer."""
        if not self._running:
            raise StorageUnavailable("storage is not open")
        if self._writes.qsize() >= self._max_pending:
            raise StorageUnavailable("write queue full", retry_after=2)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[T, int]] = loop.create_future()
        self._submit((fn, loop, fut), background)
        return await fut

    def _submit(self, item: tuple[Any, ...], background: bool) -> None:
        self._writes.put(item)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        if not self._running:
            raise StorageUnavailable("storage is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._reads.put((fn, loop, fut))
        return await fut
