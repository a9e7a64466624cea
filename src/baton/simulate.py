"""``baton simulate``: what Baton would do with a payload, without doing any of it.

Parses the payload with the named source, routes each alert, says what would suppress it
with the gateway's own ``Suppressor`` (the route's time intervals, the config's silences
and those given with ``--silences``, inhibition by the payload's own firing alerts) and
prints the escalation timeline if nobody acknowledges:
who is notified through which connector at t+0, t+10m, ..., with whoever is on call at
each of those moments. Nothing is sent and no store is opened, so teams can run it in CI
to test their routing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from . import escalation as esc
from .config import Config
from .duration import format_duration
from .ingest import Planner, suppressor_for
from .limits import bounded
from .matcher import parse_matcher
from .model import Alert, iso, parse_iso
from .plugin import SOURCE_GROUP, load
from .records import RoutedAlert, TargetSpec
from .suppression import ConfigSilence, MemoryReads
from .targets import make_resolver


def _silences(given: Sequence[Mapping[str, Any]]) -> list[ConfigSilence]:
    """Silences given with ``--silences`` (e.g. the body of ``GET /v1/silences``)."""
    out = []
    for s in given:
        start = parse_iso(s.get("starts_at")) or datetime.min.replace(tzinfo=UTC)
        end = parse_iso(s.get("ends_at")) or datetime.max.replace(tzinfo=UTC)
        out.append(ConfigSilence(str(s.get("id", "?")), tuple(
            parse_matcher(m) for m in s.get("matchers") or []),
            start.timestamp() if start.year > 1 else float("-inf"),
            end.timestamp() if end.year < 9999 else float("inf")))
    return out


def _escalation(config: Config, ra: RoutedAlert, at: float) -> list[dict[str, Any]]:
    resolve = make_resolver(config)
    snap = ra.policy_snapshot or {}
    out = []
    told: set[tuple[str, str | None, str | None]] = set()
    for offset, step in esc.plan(snap):
        targets = []
        for raw in esc.level_of(snap, step)["notify"]:
            target = TargetSpec.from_dict(raw)
            concrete = resolve(target, at + offset)
            for t in concrete:
                # As the gateway does: one message per person per step, so a target told
                # at an earlier step gets the escalation's update, not a second trigger.
                who = (t.connector, t.to, t.person)
                targets.append({**t.to_dict(), **({"action": "update"} if who in told
                                                  else {})})
                told.add(who)
            if not concrete:
                targets.append({**target.to_dict(), "person": None})
        out.append({"offset_seconds": offset, "at": iso(datetime.fromtimestamp(
            at + offset, UTC)), "level": step.level, "loop": step.loop, "targets": targets})
    return out


def simulate(config: Config, source: str, payload: Any, at: float,
             silences: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The dry-run report as data (what ``--json`` prints). Raises PayloadError."""
    src = config.sources[source]
    adapter = load(SOURCE_GROUP, src.type)(source, src.options)
    planner = Planner(config)
    suppressor = suppressor_for(config, _silences(silences))
    # Bounded as ingest bounds them, so the dry run refuses what the gateway would.
    alerts: list[Alert] = planner.inhibitors_first(planner.label(source, bounded(
        adapter.parse(payload, {})), adapter.severity_label))
    # The payload's own firing alerts are what could inhibit, as if they were stored.
    firing = {("payload", a.source_name, a.dedup_key): a.match_labels()
              for a in alerts if a.status == "firing"}
    reads = MemoryReads(firing)
    report: list[dict[str, Any]] = []
    for alert in alerts:
        key = ("payload", alert.source_name, alert.dedup_key)
        incidents = []
        for ra in planner.route(alert, at):
            item: dict[str, Any] = {"key": ra.key, "route": ra.route, "policy": ra.policy,
                                    "suppressed": None, "escalation": []}
            hold = suppressor.check(reads, ra.route, {key: alert.match_labels()}, at)
            if hold is not None:
                item["suppressed"] = {k: v for k, v in hold.reason.items()
                                      if k not in ("route", "by_incident")}
            if alert.status == "firing" and ra.policy_snapshot and not item["suppressed"]:
                item["escalation"] = _escalation(config, ra, at)
            incidents.append(item)
        report.append({"alert": alert.to_dict(), "acknowledge": alert.acknowledge,
                       "incidents": incidents})
    return {"source": source, "at": iso(datetime.fromtimestamp(at, UTC)),
            "alerts": report}


def _who(t: Mapping[str, Any]) -> str:
    update = " (update: told before)" if t.get("action") == "update" else ""
    return _target(t) + update


def _target(t: Mapping[str, Any]) -> str:
    if t.get("to") is None:
        return str(t["connector"])
    person = t.get("person")
    contact = ", ".join(f"{k}={v}" for k, v in (t.get("contacts") or {}).items())
    who = "nobody on call" if person is None else person + (f" [{contact}]" if contact
                                                            else "")
    return f"{t['connector']} -> {who} ({t['to']})"


def render(report: Mapping[str, Any]) -> str:
    lines = [f"source {report['source']}, at {report['at']}: "
             f"{len(report['alerts'])} alert(s) parsed"]
    for n, item in enumerate(report["alerts"], 1):
        a = item["alert"]
        status = "acknowledge" if item["acknowledge"] else a["status"]
        lines.append(f"\n[{n}] {a['summary']!r}  dedup_key={a['dedup_key']} "
                     f"status={status} severity={a['severity']}")
        lines.append(f"    labels: {json.dumps(a['labels'], sort_keys=True)}")
        for inc in item["incidents"]:
            route = inc["route"] or "(no route matched: stored, notifies nobody)"
            lines.append(f"    route: {route}  policy: {inc['policy']}  "
                         f"incident key: {inc['key']}")
            if inc["suppressed"]:
                why = {k: v for k, v in inc["suppressed"].items() if k != "reason"}
                lines.append(f"    suppressed ({inc['suppressed']['reason']}): "
                             f"{json.dumps(why)} -- stored, notifies nobody")
            if a["status"] == "resolved":
                lines.append("    resolves the open incident holding this alert, if any")
            for step in inc["escalation"]:
                tag = f"t+{format_duration(step['offset_seconds'])}"
                loop = f" (repeat {step['loop']})" if step["loop"] else ""
                who = "; ".join(_who(t) for t in step["targets"])
                lines.append(f"      {tag:<9} level {step['level']}{loop}: {who}  "
                             f"[{step['at']}]")
            if inc["escalation"]:
                lines.append("      (each step only if nobody acknowledged before it)")
    return "\n".join(lines)
