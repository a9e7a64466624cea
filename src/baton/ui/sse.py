"""``GET /ui/events``: server-sent events telling open consoles that incidents changed.

The stream polls one small read (counts per status and the newest change) and sends an
``incidents`` event when it moves; the page then fetches its list again. Polling keeps
this independent of which process wrote the change (PostgreSQL replicas, the CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from ..api import state

STOPPING = web.AppKey("ui_stopping", asyncio.Event)  # set at shutdown: streams end
POLL = 1.0  # seconds between looks at the store
KEEPALIVE = 15.0  # a comment line now and then, so proxies keep the stream open
MAX_AGE = 600.0  # then the stream ends and EventSource reconnects (bounded handlers)


async def events(request: web.Request) -> web.StreamResponse:
    store = request.config_dict[state.STORE]
    stopping = request.app[STOPPING]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    _, mark = await store.incident_stats()
    started = last_write = time.monotonic()
    try:
        while not stopping.is_set() and time.monotonic() - started < MAX_AGE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL)
            if stopping.is_set():
                break
            _, now_mark = await store.incident_stats()
            if now_mark != mark:
                mark = now_mark
                await response.write(b"event: incidents\ndata: changed\n\n")
                last_write = time.monotonic()
            elif time.monotonic() - last_write > KEEPALIVE:
                await response.write(b": keepalive\n\n")
                last_write = time.monotonic()
    except (ConnectionResetError, RuntimeError):
        pass  # the browser went away
    return response
