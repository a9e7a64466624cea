"""From a parsed request body to committed incidents: adapt, label, route, store.

HTTP concerns (auth, size, content type) stay in ``api.ingest``; this module is what a
test, a replay tool or ``baton simulate`` can drive without a server.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from .clock import Clock
from .config import Config, Policy
from .errors import NotFound
from .limits import bounded
from .matcher import matches_all
from .metrics import Metrics
from .model import Alert
from .plugin import Source
from .routing import Router, group_key
from .storable import storable
from .store import IngestResult, RoutedAlert, Store, TargetSpec
from .suppression import ConfigSilence, Muting, Suppressor

log = structlog.get_logger("baton.ingest")
# Alerts stored per write transaction. One 4,500-alert body in one transaction held the
# SQLite writer 5.7 s while single alerts waited behind it; in chunks, other writes run
# between them (README: Overload).
CHUNK_ALERTS = 200


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    """The policy as plain data, frozen into an incident when it opens."""
    return {
        "name": policy.name,
        "repeat": policy.repeat,
        "ack_timeout": policy.ack_timeout,
        "levels": [
            {"escalate_after": level.escalate_after,
             "remind_every": level.remind_every,
             "notify": [TargetSpec(t.connector, t.to, dict(t.params)).to_dict()
                        for t in level.notify]}
            for level in policy.levels
        ],
    }


def suppressor_for(config: Config, extra_silences: Sequence[ConfigSilence] = ()
                   ) -> Suppressor:
    """What suppresses notifications under ``config``: its inhibition rules, its silences
    (with ``extra_silences``, e.g. ``baton simulate --silences``) and its routes' time
    intervals, by route name."""
    routes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    stack = list(config.routes)
    while stack:
        route = stack.pop()
        routes[route.name] = (route.mute_time_intervals, route.active_time_intervals)
        stack.extend(route.routes)
    return Suppressor(config.inhibit_rules, (*config.silences, *extra_silences),
                      Muting(routes, config.time_intervals))


class Planner:
    """The decisions about alerts that need only the config: labels, routes, policy
    snapshots, muting. Shared by ingest and ``baton simulate``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.router = Router(config.routes)

    def route(self, alert: Alert, now: float) -> list[RoutedAlert]:
        """The incidents this alert belongs to (one per matched route), each with its
        policy snapshot."""
        labels = alert.match_labels()
        matches = self.router.match(labels)
        # A dedup key is only unique within its source: "disk-full" from two tools is two
        # problems. (Label-based group_by keys deliberately group across sources.)
        ident = f"{alert.source_name}/{alert.dedup_key}"
        if not matches:
            return [RoutedAlert(alert, f"unrouted|{ident}", None, None, None)]
        out = []
        for m in matches:
            policy = self.config.policies.get(m.policy) if m.policy else None
            out.append(RoutedAlert(
                alert=alert, key=group_key(m, labels, ident), route=m.name,
                policy=m.policy, policy_snapshot=policy_snapshot(policy) if policy else None))
        return out

    def inhibitors_first(self, alerts: list[Alert]) -> list[Alert]:
        """Alerts that can inhibit others are stored first, so a batch carrying NodeDown
        and its node's warnings mutes the warnings whatever the order in the body."""
        rules = self.config.inhibit_rules
        if not rules:
            return alerts
        return sorted(alerts, key=lambda a: not any(
            matches_all(r.source, a.match_labels()) for r in rules))

    def label(self, source_name: str, alerts: list[Alert],
              severity_label: str | None = None) -> list[Alert]:
        """Apply the source's settings: drop or downgrade no-data and test signals as
        configured, override severities by ``severity_map`` (reading the sender's value
        from ``severity_label``), fill ``defaults`` and add ``labels``. What the alert
        itself says wins over defaults and labels."""
        cfg = self.config.sources[source_name]
        out = []
        for a in alerts:
            changes: dict[str, Any] = {}
            handling = {"no_data": cfg.no_data, "test": cfg.test}.get(a.condition, "firing")
            if handling == "ignore":
                continue
            if handling == "info":
                changes["severity"] = "info"
            elif severity_label and cfg.severity_map:
                original = a.labels.get(severity_label)
                if original is not None and original in cfg.severity_map:
                    changes["severity"] = cfg.severity_map[original]
            for key, value in cfg.defaults.items():
                if getattr(a, key) is None:
                    changes[key] = value
            if cfg.labels:
                changes["labels"] = {**cfg.labels, **a.labels}
            out.append(dataclasses.replace(a, **changes) if changes else a)
        return out


class Pipeline:
    def __init__(self, config: Config, sources: Mapping[str, Source], store: Store,
                 clock: Clock, metrics: Metrics) -> None:
        self.config = config
        self.sources = dict(sources)
        self.planner = Planner(config)
        self.store = store
        self.clock = clock
        self.metrics = metrics

    async def ingest(self, source_name: str, body: str, alerts: list[Alert],
                     message_id: str | None = None) -> IngestResult:
        plan, source = self.planner, self.sources.get(source_name)
        if source is None:  # removed by a reload while its request was being read
            raise NotFound(f"no source named {source_name!r} is configured")
        # Before anything reads them: both engines must store the same text (NUL).
        body, alerts = storable(body), storable(alerts)
        # Before anything is stored or matched: an alert past a bound refuses the batch.
        alerts = bounded(alerts)
        alerts = plan.inhibitors_first(plan.label(
            source_name, alerts, source.severity_label))
        now = self.clock.now()
        per_alert = [plan.route(a, now) for a in alerts]
        result = await self._store(source_name, body, per_alert, now, message_id)
        if result.replayed:
            return result
        self.metrics.ingested.labels(source_name).inc(len(alerts))
        if result.deduplicated:
            self.metrics.deduplicated.labels(source_name).inc(result.deduplicated)
        if result.opened:
            self.metrics.incidents_opened.labels(source_name).inc(result.opened)
        return result

    async def _store(self, source_name: str, body: str, per_alert: list[list[RoutedAlert]],
                     now: float, message_id: str | None) -> IngestResult:
        """Store the alerts in transactions of at most CHUNK_ALERTS alerts, in order (so
        inhibitors still come first), answering only after all committed. A chunk that
        fails fails the request (503): the sender's retry finds the chunks before it
        stored and lands on their incidents by dedup key, so nothing is lost or opened
        twice. The message id is taken with the last chunk, so that retry is not
        mistaken for a replay; a replay of a stored message is recognised before the
        first. The body is stored with the first chunk; later ones point to it."""
        flat = [ra for copies in per_alert for ra in copies]
        if len(per_alert) <= CHUNK_ALERTS:
            return await self.store.ingest(source_name, body, flat, now, message_id)
        if message_id is not None and await self.store.message_seen(source_name, message_id):
            return IngestResult("", (), 0, 0, 0, 0, replayed=True)
        parts = [per_alert[i:i + CHUNK_ALERTS]
                 for i in range(0, len(per_alert), CHUNK_ALERTS)]
        done: list[IngestResult] = []
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            text = body if not done else json.dumps({"part_of": done[0].event_id})
            res = await self.store.ingest(source_name, text, [ra for c in part for ra in c],
                                          now, message_id if last else None)
            if res.replayed:  # a concurrent copy of this message finished first
                return res
            done.append(res)
        ids = dict.fromkeys(i for r in done for i in r.incident_ids)
        return IngestResult(done[0].event_id, tuple(ids), sum(r.opened for r in done),
                            sum(r.deduplicated for r in done),
                            sum(r.resolved for r in done), sum(r.deliveries for r in done))
