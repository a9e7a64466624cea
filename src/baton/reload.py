"""Hot reload: ``SIGHUP`` and ``POST /-/reload`` re-read the config the gateway started with.

As in Alertmanager, the new config is loaded and checked in full first (what ``baton
check-config`` checks, and every source and connector built, so a bad connector option
fails here and not at the first delivery). A bad one changes nothing: the running config
stays, the problems are logged and returned, and ``baton_config_last_reload_successful``
drops to 0. A good one is swapped in one step of the event loop (no ``await`` between the
assignments), so a request or a dispatch cycle sees the old config or the new, never a mix.

What changes live: sources, connectors, routes, inhibit rules, config silences, time
intervals, people, teams, schedules, policies, API tokens, ``dispatch``. What needs a
restart (``RESTART_ONLY``): the listener, storage, logging, retention; a reload that
changes one of them is refused, naming the key, so what runs is always either the file or
the last good one and never half of each.

Deliveries: the dispatcher's lanes are replaced by name. An attempt under way keeps the
lane (and connector instance) it started with and finishes; what is claimed next goes to
the new instance. Storage stops a delivery from being claimed twice (an in-flight row is
skipped and holds back later rows of its incident), and the old and new lane share their
in-flight set and rate-limit window, so limits hold across the swap. A connector whose
config did not change keeps its instance and breaker. A removed connector's waiting
deliveries are dead-lettered with the reason, now and whenever more come for it (frozen
policies and resolves still name it); ``baton dlq`` or the API replays them once it is
configured again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from .clock import Clock
from .config import Config, config_warnings, load_config, open_api_refusal
from .dispatch import Dispatcher, Lane
from .errors import ConfigError
from .ingest import Pipeline, Planner, suppressor_for
from .metrics import Metrics
from .plugin import CONNECTOR_GROUP, SOURCE_GROUP, Connector, Source, load
from .store import Store
from .sync import Syncer
from .targets import make_resolver

log = structlog.get_logger("baton.reload")

# Config sections that are bound at start (the socket, the database, the log pipeline,
# the pruner's schedule).
RESTART_ONLY = ("server", "storage", "logging", "retention")


def removed_reason(name: str) -> str:
    return f"connector {name} removed from config by reload"


def restart_problems(running: Config, new: Config) -> list[str]:
    """One problem per key that differs where only a restart applies it. Values are not
    quoted: ``storage.url`` may carry a password."""
    problems = []
    for section in RESTART_ONLY:
        old_part, new_part = getattr(running, section), getattr(new, section)
        for f in dataclasses.fields(old_part):
            if getattr(old_part, f.name) != getattr(new_part, f.name):
                problems.append(f"{section}.{f.name}: cannot change without a restart "
                                "(the running value stays; restart baton to apply it)")
    return problems


def build_plugins(config: Config) -> tuple[dict[str, Source], dict[str, Connector],
                                           list[str]]:
    """Every source and connector of ``config`` built, or the problems building them."""
    problems: list[str] = []
    sources: dict[str, Source] = {}
    connectors: dict[str, Connector] = {}
    for name, s in config.sources.items():
        try:
            sources[name] = load(SOURCE_GROUP, s.type)(name, s.options)
        except ConfigError as e:
            problems += e.problems
        except Exception as e:  # a plugin bug: its message may quote a secret
            problems.append(f"sources.{name}: cannot be built ({e.__class__.__name__})")
    for name, c in config.connectors.items():
        try:
            connectors[name] = load(CONNECTOR_GROUP, c.type)(name, c.options)
        except ConfigError as e:
            problems += e.problems
        except Exception as e:
            problems.append(f"connectors.{name}: cannot be built ({e.__class__.__name__})")
    return sources, connectors, problems


def merge_lanes(running: Config, new: Config, lanes: Mapping[str, Lane],
                connectors: Mapping[str, Connector]) -> dict[str, Lane]:
    """The lanes under ``new``: an unchanged connector keeps its lane; a changed one gets a
    new lane sharing the old one's in-flight set and rate-limit window."""
    out: dict[str, Lane] = {}
    for name, c in new.connectors.items():
        old = lanes.get(name)
        if old is not None and running.connectors.get(name) == c:
            out[name] = old
            continue
        lane = Lane.from_config(c, connectors[name])
        if old is not None:
            lane.inflight, lane.started = old.inflight, old.started
        out[name] = lane
    return out


class Reloader:
    """Owns the running config after start; ``reload`` swaps it for the file's."""

    def __init__(self, config: Config, *, pipeline: Pipeline, dispatcher: Dispatcher,
                 syncer: Syncer, store: Store, metrics: Metrics, clock: Clock,
                 publish: Callable[[Config], None]) -> None:
        self.config = config
        self.pipeline, self.dispatcher, self.syncer = pipeline, dispatcher, syncer
        self.store, self.metrics, self.clock = store, metrics, clock
        self.publish = publish  # makes the config the one request handlers read
        # ``baton serve --listen`` overrides the file; the open-API rule needs the real one.
        self.listen = config.server.listen
        self._lock = asyncio.Lock()  # one reload at a time; a second waits its turn
        self._tasks: set[asyncio.Task[Any]] = set()
        metrics.reload_successful.set(1)
        metrics.reload_success_time.set(clock.now())

    def hangup(self) -> None:
        """The ``SIGHUP`` handler: reload in the background; the outcome is logged."""
        task = asyncio.get_running_loop().create_task(self._hangup())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hangup(self) -> None:
        try:
            await self.reload()
        except ConfigError:
            pass  # logged by ``reload``
        except Exception:
            log.exception("config reload failed")

    async def reload(self) -> dict[str, Any]:
        """Load, check and apply the config file; a summary of what changed. Raises
        ``ConfigError`` with every problem, having changed nothing."""
        async with self._lock:
            try:
                new, sources, connectors = self._check()
            except ConfigError as e:
                self.metrics.reload_successful.set(0)
                log.error("config reload failed; the running config stays",
                          path=str(self.config.path), problems=e.problems)
                raise
            summary = self._apply(new, sources, connectors)
            self.metrics.reload_successful.set(1)
            self.metrics.reload_success_time.set(self.clock.now())
            log.info("config reloaded", path=str(new.path), **summary)
            for warning in config_warnings(self._listening(new)):
                log.warning("config warning", warning=warning)  # as check-config prints
        # After the swap, outside the lock: a storage hiccup here is retried by the
        # dispatcher's sweep, and must not report the reload as failed.
        try:
            await self.dispatcher.abandon_removed()
        except Exception:
            log.exception("could not dead-letter deliveries of removed connectors yet")
        return summary

    def _check(self) -> tuple[Config, dict[str, Source], dict[str, Connector]]:
        new = load_config(self.config.path)
        problems = restart_problems(self.config, new)
        refusal = open_api_refusal(self._listening(new))
        if refusal is not None:
            problems.append(refusal)
        sources, connectors, built = build_plugins(new)
        problems += built
        if problems:
            raise ConfigError(problems)
        return new, sources, connectors

    def _listening(self, config: Config) -> Config:
        return dataclasses.replace(config, server=dataclasses.replace(
            config.server, listen=self.listen))

    def _apply(self, new: Config, sources: dict[str, Source],
               connectors: dict[str, Connector]) -> dict[str, Any]:
        """The swap. Synchronous on purpose: nothing else runs until it is done."""
        old, d = self.config, self.dispatcher
        before = d.lanes
        lanes = merge_lanes(old, new, before, connectors)
        gone = sorted(set(old.connectors) - set(new.connectors))
        d.lanes = lanes
        for name in new.connectors:
            d.removed.pop(name, None)  # back in config: its replays are sent again
        d.removed.update({name: removed_reason(name) for name in gone})
        d.poll_interval, d.lease = new.dispatch.poll_interval, new.dispatch.lease
        d.batch_size = new.dispatch.batch_size
        for name, lane in lanes.items():
            if lane is not before.get(name):  # a new breaker, closed
                self.metrics.circuit_open.labels(name).set(0)
        self.syncer.lanes = {n: lane for n, lane in lanes.items() if lane.connector.polls}
        self.syncer.intervals = {n: c.sync_interval for n, c in new.connectors.items()}
        self.store.resolver = make_resolver(new)
        self.store.suppressor = suppressor_for(new)
        p = self.pipeline
        p.config, p.sources, p.planner = new, sources, Planner(new)
        self.publish(new)
        self.config = new
        d.wake()  # pending work for new or changed connectors: claim it now
        return {
            "connectors_added": sorted(set(new.connectors) - set(old.connectors)),
            "connectors_removed": gone,
            "connectors_changed": sorted(n for n in set(old.connectors) & set(new.connectors)
                                         if old.connectors[n] != new.connectors[n]),
            "sources_added": sorted(set(new.sources) - set(old.sources)),
            "sources_removed": sorted(set(old.sources) - set(new.sources)),
        }
