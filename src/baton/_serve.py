"""``baton serve``'s listener: aiohttp's ``run_app`` with bounds on what clients can hold.

``run_app`` gives no way to cap connections, and a client that opens connections and
trickles bytes (slowloris) could take every file descriptor; asyncio then reports each
failed ``accept`` with a traceback, thousands a second. Here:

- a request's head must arrive within ``server.read_timeout`` of the connection opening or
  of its last answer (aiohttp's keep-alive timer, which also runs while a head is being
  read), and its body within the same time (``api.problem.read_limited``, 408);
- beyond ``server.max_connections`` a new connection is closed at once, counted in
  ``baton_connections_refused_total`` (``baton_connections_open`` shows the load);
- a failing ``accept`` (no descriptor left) is logged at most once per
  ACCEPT_LOG_INTERVAL, with how many were not logged.

Behind a reverse proxy (nginx, HAProxy, a cloud load balancer) for internet exposure;
see the README's Connections.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import structlog
from aiohttp import web

from .metrics import Metrics

log = structlog.get_logger("baton.serve")
# Descriptors kept for storage, outbound HTTP and files when max_connections is automatic.
RESERVED_DESCRIPTORS = 128
ACCEPT_LOG_INTERVAL = 10.0
LINGER = 1.0
_ACCEPT_FAILED = "socket.accept() out of system resource"


def connection_cap(configured: int) -> int:
    """``server.max_connections``, or (0) the open-file limit less the reserve."""
    if configured > 0:
        return configured
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(16, soft - RESERVED_DESCRIPTORS)


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed as soon as it is accepted, its descriptor freed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class AcceptErrorLog:
    """A loop exception handler: failed accepts logged at most once per ``interval``,
    everything else passed to asyncio's default handler."""

    def __init__(self, interval: float = ACCEPT_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self._last = -float("inf")
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_FAILED:
            loop.default_exception_handler(context)
            return
        now = self.clock()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        log.error("cannot accept connections", error=str(context.get("exception")),
                  not_logged_since_last=self.suppressed)
        self._last, self.suppressed = now, 0


def listener(server: Any, cap: int, metrics: Metrics) -> Callable[[], asyncio.BaseProtocol]:
    """The protocol factory for ``loop.create_server``: aiohttp's handler, or a refusal
    when ``cap`` connections are open. ``server`` is the runner's ``web.Server``."""
    metrics.connections.set_function(lambda: len(server.connections))

    def protocol() -> asyncio.BaseProtocol:
        if len(server.connections) >= cap:
            metrics.connections_refused.inc()
            return _Refused()
        handler: asyncio.BaseProtocol = server()
        return handler
    return protocol


async def _run(app: web.Application, host: str, port: int, shutdown_timeout: float,
               read_timeout: float, cap: int, metrics: Metrics,
               on_hangup: Callable[[], None] | None = None) -> None:
    # lingering_time: after an early answer (408, 413) aiohttp reads what remains of the
    # body so the client sees the answer; a trickling client would hold that 10 s.
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                           keepalive_timeout=read_timeout, shutdown_timeout=shutdown_timeout,
                           lingering_time=min(LINGER, read_timeout))
    await runner.setup()
    try:
        assert runner.server is not None
        loop = asyncio.get_running_loop()
        sock = await loop.create_server(listener(runner.server, cap, metrics), host, port,
                                        reuse_address=True, backlog=128)
        if on_hangup is not None:  # SIGHUP: reload the config (baton.reload)
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        try:
            await asyncio.Event().wait()  # until cancelled (a signal, see ``serve``)
        finally:
            if on_hangup is not None:
                loop.remove_signal_handler(signal.SIGHUP)
            sock.close()  # stop accepting; the runner then drains what is open
    finally:
        await runner.cleanup()


def serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float,
          read_timeout: float, max_connections: int, metrics: Metrics,
          on_hangup: Callable[[], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (as ``web.run_app`` does);
    call ``on_hangup`` on SIGHUP. Startup errors (port taken, storage) propagate to the
    caller."""
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(AcceptErrorLog())
    main = loop.create_task(_run(app, host, port, shutdown_timeout, read_timeout,
                                 connection_cap(max_connections), metrics, on_hangup))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)  # runs the runner's cleanup
        finally:
            rest = asyncio.all_tasks(loop)
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
