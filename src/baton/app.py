"""The composition root: config in, a ready ``aiohttp`` application out.

Nothing is built at import time. Tests call ``create_app(config, clock=FakeClock(),
run_dispatcher=False)`` and drive the dispatcher themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import warnings
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from . import __version__
from .api import callbacks, manage, ops, pagerduty, reports, schedules, silences, state
from .api import ingest as ingest_api
from .api import reload as reload_api
from .api.probes import ProbeLog
from .api.problem import Handler, problem_middleware
from .clock import Clock, SystemClock
from .config import Config
from .dispatch import Dispatcher, Lane
from .ingest import Pipeline, suppressor_for
from .metrics import Metrics
from .plugin import CONNECTOR_GROUP, SOURCE_GROUP, Connector, Source, load
from .reload import Reloader
from .retention import Pruner
from .store import Store, open_store
from .sync import Syncer
from .targets import make_resolver
from .ui import mount as mount_ui

log = structlog.get_logger("baton.app")


def build_sources(config: Config) -> dict[str, Source]:
    return {name: load(SOURCE_GROUP, s.type)(name, s.options)
            for name, s in config.sources.items()}


def build_lanes(config: Config) -> dict[str, Lane]:
    lanes = {}
    for name, c in config.connectors.items():
        connector: Connector = load(CONNECTOR_GROUP, c.type)(name, c.options)
        lanes[name] = Lane.from_config(c, connector)
    return lanes


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:16])
    return await handler(request)


def create_app(config: Config, *, clock: Clock | None = None, store: Store | None = None,
               run_dispatcher: bool = True) -> web.Application:
    clock = clock or SystemClock()
    store = store or open_store(config.storage.url, config.storage.busy_timeout,
                                config.storage.max_pending_writes,
                                settings=config.storage)
    metrics = Metrics()
    pipeline = Pipeline(config, build_sources(config), store, clock, metrics)
    dispatcher = Dispatcher(store, build_lanes(config), clock, metrics,
                            poll_interval=config.dispatch.poll_interval,
                            lease=config.dispatch.lease,
                            batch_size=config.dispatch.batch_size)
    syncer = Syncer(store, dispatcher.lanes,
                    {n: c.sync_interval for n, c in config.connectors.items()}, clock, metrics)
    store.on_enqueue = dispatcher.wake
    store.resolver = make_resolver(config)
    store.suppressor = suppressor_for(config)

    app = web.Application(middlewares=[context_middleware, problem_middleware],
                          client_max_size=config.server.max_body_bytes)
    app[state.CONFIG] = config
    app[state.STORE] = store
    app[state.CLOCK] = clock
    app[state.METRICS] = metrics
    app[state.PIPELINE] = pipeline
    app[state.DISPATCHER] = dispatcher
    app[state.SYNCER] = syncer
    app[state.PROBES] = ProbeLog()  # unknown-source probes, logged rate-limited

    def publish(new: Config) -> None:
        # Handlers read the config per request from app[CONFIG]; a reload replaces it
        # there, one assignment. aiohttp warns on changing a started app's state; this
        # key is meant to change (see baton.reload).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            app[state.CONFIG] = new

    app[state.RELOADER] = Reloader(config, pipeline=pipeline, dispatcher=dispatcher,
                                   syncer=syncer, store=store, metrics=metrics, clock=clock,
                                   publish=publish)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store.open(owner=True)  # SQLite: refuses when another process owns the file
        recovered = await store.recover(clock.now())
        if recovered:
            log.info("took back deliveries claimed before a restart", count=recovered)
        async with aiohttp.ClientSession(
                headers={"User-Agent": f"baton/{__version__}"}) as http:
            dispatcher.http = syncer.http = http
            tasks = []
            stop_syncing = asyncio.Event()
            if run_dispatcher:
                tasks.append(asyncio.create_task(dispatcher.run(), name="baton-dispatcher"))
                # Even with no polling connector: a reload may add one.
                tasks.append(asyncio.create_task(syncer.run(stop_syncing),
                                                 name="baton-sync"))
            log.info("baton started", sources=sorted(config.sources),
                     connectors=sorted(config.connectors))
            try:
                yield
            finally:
                # One budget for the whole shutdown: what open requests used of it is not
                # given again to deliveries in flight.
                deadline = shutdown_deadline[0] if shutdown_deadline else (
                    time.monotonic() + config.server.shutdown_grace)
                stop_syncing.set()
                await dispatcher.stop(max(0.0, deadline - time.monotonic()))
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                store.close()
                log.info("baton stopped")

    shutdown_deadline: list[float] = []  # set once shutdown begins (app state is frozen)

    async def shutdown_started(app: web.Application) -> None:
        shutdown_deadline.append(time.monotonic() + config.server.shutdown_grace)

    app.on_shutdown.append(shutdown_started)
    app.cleanup_ctx.append(lifecycle)
    # After ``lifecycle``: pruning starts once the store is open and stops before it closes.
    app.cleanup_ctx.append(Pruner(store, config.retention, clock, metrics)
                           .context(enabled=run_dispatcher))
    r = app.router
    r.add_post("/v1/ingest/{source}", ingest_api.ingest)
    r.add_put("/v1/ingest/{source}", ingest_api.ingest)  # Source.methods: Grafana's PUT
    # PagerDuty's clients post to <base>/v2/enqueue (see api/pagerduty.py).
    r.add_post("/v1/ingest/{source}/v2/enqueue", pagerduty.enqueue)
    r.add_post("/v2/enqueue", pagerduty.enqueue_by_key)
    r.add_get("/v1/incidents", manage.list_incidents)
    r.add_get("/v1/incidents/{id}", manage.get_incident)
    r.add_post("/v1/incidents/{id}/acknowledge", manage.acknowledge)
    r.add_post("/v1/incidents/{id}/unacknowledge", manage.unacknowledge)
    r.add_post("/v1/incidents/{id}/escalate", manage.escalate)
    r.add_post("/v1/incidents/{id}/resolve", manage.resolve)
    r.add_post("/v1/incidents/{id}/notes", manage.add_note)
    r.add_post("/v1/silences", silences.create)
    r.add_get("/v1/silences", silences.listing)
    r.add_get("/v1/silences/{id}", silences.get)
    r.add_delete("/v1/silences/{id}", silences.expire)
    r.add_get("/v1/deliveries", manage.list_deliveries)
    r.add_post("/v1/deliveries/{id}/retry", manage.retry_delivery)
    r.add_get("/v1/reports/response", reports.response)
    r.add_get("/v1/reports/recurring", reports.recurring)
    r.add_get("/v1/schedules/{name}/oncall", schedules.oncall)
    r.add_post("/v1/callbacks/{connector}", callbacks.callback)
    r.add_post("/-/reload", reload_api.reload)
    r.add_get("/healthz", ops.healthz)
    r.add_get("/readyz", ops.readyz)
    r.add_get("/metrics", ops.metrics)
    r.add_get("/openapi.json", ops.openapi)
    mount_ui(app)  # the web console at /ui/: a sub-app whose middleware authenticates
    return app
