"""``GET /ui/events``: server-sent events telling open consoles that incidents changed.

One watcher per process polls one small read (counts per status and the newest change)
while at least one console listens, and wakes every stream when it moves; each page then
fetches its list again. Polling keeps this independent of which process wrote the change
(PostgreSQL replicas, the CLI), and one poller keeps its cost independent of how many
consoles are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..api import state
from ..store import Store

POLL = 1.0  # seconds between looks at the store
KEEPALIVE = 15.0  # a comment line now and then, so proxies keep the stream open
MAX_AGE = 600.0  # then the stream ends and EventSource reconnects (bounded handlers)

log = structlog.get_logger("baton.ui")


class Watcher:
    """Polls the store while anyone listens; ``changed`` is replaced by a new event each
    time the mark moves, so a listener waits on the one it holds."""

    def __init__(self) -> None:
        self.listeners = 0
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def listen(self, store: Store) -> None:
        self.listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(store), name="baton-ui-watcher")

    def leave(self) -> None:
        self.listeners -= 1

    async def _run(self, store: Store) -> None:
        mark = None
        while self.listeners > 0 and not self.stopping.is_set():
            try:
                _, now_mark = await store.incident_stats()
            except Exception as e:  # storage trouble: the consoles just stay as they are
                log.warning("console watcher could not read incidents", error=str(e))
            else:
                if mark is not None and now_mark != mark:
                    self.changed.set()
                    self.changed = asyncio.Event()
                mark = now_mark
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), POLL)

    async def stop(self) -> None:
        self.stopping.set()
        self.changed.set()  # wakes every stream, which then sees ``stopping``
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


WATCHER = web.AppKey("ui_watcher", Watcher)


async def watcher_context(app: web.Application) -> AsyncIterator[None]:
    app[WATCHER] = watcher = Watcher()
    yield
    await watcher.stop()


async def stopping(app: web.Application) -> None:
    """On shutdown: end the streams first, so the server does not wait on them."""
    app[WATCHER].stopping.set()
    app[WATCHER].changed.set()


async def events(request: web.Request) -> web.StreamResponse:
    watcher = request.app[WATCHER]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    watcher.listen(request.config_dict[state.STORE])
    started = time.monotonic()
    try:
        while not watcher.stopping.is_set() and time.monotonic() - started < MAX_AGE:
            changed = watcher.changed
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if watcher.stopping.is_set():
                break
            await response.write(b"event: incidents\ndata: changed\n\n")
    except (ConnectionResetError, RuntimeError):
        pass  # the browser went away
    finally:
        watcher.leave()
    return response
