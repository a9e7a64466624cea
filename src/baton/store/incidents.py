"""Incident state changes, each run inside one transaction (``Tx``).

Every change writes the incident row, its timeline and its outbox rows (deliveries)
together, so what a sender was told was accepted is either entirely stored or not at all.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from .. import escalation as esc
from ..errors import Conflict, NotFound
from ..ids import new_id
from ..model import SEVERITY_RANK, Alert, higher_severity
from . import escalations as _e
from .records import IngestResult, Resolver, RoutedAlert, TargetSpec, unresolved
from .tx import Tx
from .views import ts

# Decides, inside the transaction, whether a new incident notifies nobody and why.
Suppress = Callable[[Tx, RoutedAlert, float], dict[str, Any] | None]


def no_suppression(tx: Tx, ra: RoutedAlert, now: float) -> dict[str, Any] | None:
    return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def enqueue(tx: Tx, incident_id: str, target: TargetSpec, action: str, now: float,
            discriminator: str = "") -> bool:
    """Add one outbox row. The idempotency key is stable per (incident, connector, action,
    target), so enqueueing the same thing twice is a no-op and a retry at the vendor carries
    the same key as the first attempt."""
    parts = [incident_id, target.connector, action]
    if target.to:
        parts.append(target.to)
    if target.person and target.to != f"person:{target.person}":
        parts.append(target.person)
    if discriminator:
        parts.append(discriminator)
    key = "/".join(parts)
    seq_row = tx.one("SELECT MAX(seq) AS m FROM deliveries WHERE incident_id = ? "
                     "AND connector = ?", (incident_id, target.connector))
    seq = int(seq_row["m"]) + 1 if seq_row and seq_row["m"] is not None else 1
    inserted = tx.insert("deliveries", {
        "id": new_id(now), "incident_id": incident_id, "connector": target.connector,
        "action": action, "seq": seq, "idempotency_key": key,
        "target": _dumps(target.to_dict()), "state": "pending", "attempts": 0,
        "created_at": now, "next_attempt_at": now,
    }, on_conflict_nothing=True) > 0
    tx.enqueued += int(inserted)
    return inserted


def notified_targets(tx: Tx, incident_id: str) -> list[TargetSpec]:
    """Targets that were sent a trigger for this incident (in any state but given up),
    the ones to tell about acknowledge, resolve and notes."""
    rows = tx.all("SELECT target FROM deliveries WHERE incident_id = ? AND action = 'trigger' "
                  "AND state != 'dead' ORDER BY seq", (incident_id,))
    seen: dict[str, TargetSpec] = {}
    for row in rows:
        spec = TargetSpec.from_dict(json.loads(row["target"]))
        seen.setdefault(f"{spec.connector}|{spec.to}|{spec.person}", spec)
    return list(seen.values())


def _fan_out(tx: Tx, incident_id: str, action: str, now: float, discriminator: str = "",
             origin: str | None = None) -> int:
    """Tell every notified target, except the connector the change came from: it knows
    already, and telling it would echo the change back (a callback loop)."""
    return sum(enqueue(tx, incident_id, t, action, now, discriminator)
               for t in notified_targets(tx, incident_id) if t.connector != origin)


def _open_incident(tx: Tx, ra: RoutedAlert, now: float, resolve: Resolver,
                   suppress: Suppress) -> str:
    a = ra.alert
    previous = tx.one("SELECT id FROM incidents WHERE incident_key = ? "
                      "ORDER BY created_at DESC LIMIT 1", (ra.key,))
    incident_id = new_id(now)
    tx.insert("incidents", {
        "id": incident_id, "incident_key": ra.key, "open_key": ra.key, "status": "triggered",
        "severity": a.severity, "title": a.summary or a.dedup_key, "service": a.service,
        "labels": _dumps(dict(a.labels)), "route": ra.route, "created_at": now,
        "updated_at": now, "last_seen_at": now, "policy": ra.policy,
        "policy_snapshot": _dumps(ra.policy_snapshot) if ra.policy_snapshot else None,
        "level": 1, "next_at": None, "loops": 0, "event_count": 1,
        "recurrence_of": previous["id"] if previous else None,
    })
    _put_alert(tx, incident_id, a, now, None)
    actor = f"source:{a.source_name}"
    detail: dict[str, Any] = {"dedup_key": a.dedup_key, "severity": a.severity,
                              "summary": a.summary}
    if previous:
        detail["recurrence_of"] = previous["id"]
    tx.timeline(incident_id, now, "received", actor, detail)
    if ra.route is None or not ra.policy_snapshot:
        tx.timeline(incident_id, now, "unrouted", "baton",
                    {"reason": "no route matched"} if ra.route is None else
                    {"reason": "the route has no policy", "route": ra.route})
        return incident_id
    why = suppress(tx, ra, now)
    if why is not None:
        tx.run("UPDATE incidents SET suppressed = ? WHERE id = ?", (_dumps(why), incident_id))
        tx.timeline(incident_id, now, "suppressed", "baton", why)
        return incident_id
    _start(tx, incident_id, ra, now, resolve, {})
    return incident_id


def _start(tx: Tx, incident_id: str, ra: RoutedAlert, now: float, resolve: Resolver,
           extra: dict[str, Any]) -> None:
    """Notify the first level now and arm its timers."""
    snap = dict(ra.policy_snapshot or {})
    first = esc.Step(1, 0)
    targets = _e.notify_step(tx, incident_id, snap, first, now, resolve, discriminator="")
    next_at = _e.arm_step(tx, incident_id, snap, first, now)
    routed = {"route": ra.route, "policy": ra.policy, "level": 1, "targets": targets, **extra}
    if next_at is not None:
        routed["escalate_at"] = ts(next_at)
    tx.timeline(incident_id, now, "routed", "baton", routed)


def _resume_if_unsuppressed(tx: Tx, inc: dict[str, Any], ra: RoutedAlert, now: float,
                            resolve: Resolver, suppress: Suppress) -> None:
    """A further firing event for a suppressed incident: if what suppressed it is over
    (the silence expired, the mute window ended, the inhibiting alert resolved), the
    incident starts notifying now."""
    if suppress(tx, ra, now) is not None:
        return
    row = _row(tx, inc["id"])
    tx.run("UPDATE incidents SET suppressed = NULL WHERE id = ?", (inc["id"],))
    snapshot_ra = dataclasses.replace(ra, route=row["route"], policy=row["policy"],
                                      policy_snapshot=_e.snapshot(row))
    _start(tx, inc["id"], snapshot_ra, now, resolve,
           {"after": json.loads(row["suppressed"])})


def _put_alert(tx: Tx, incident_id: str, a: Alert, now: float,
               existing: dict[str, Any] | None) -> None:
    """Insert or update the alert row. Its ``severity`` column is the highest severity the
    alert has had while firing (the document keeps the latest event as sent), so a flapping
    severity never lowers an incident while the alert that raised it still fires."""
    doc = _dumps(a.to_dict())
    if existing is None:
        tx.insert("alerts", {"incident_id": incident_id, "source": a.source_name,
                             "dedup_key": a.dedup_key,
                             "status": a.status, "severity": a.severity, "doc": doc,
                             "first_seen_at": now, "last_seen_at": now, "event_count": 1})
        return
    severity: str = a.severity
    if a.status == "firing" and existing["status"] == "firing":
        severity = higher_severity(existing["severity"], a.severity)
    tx.run("UPDATE alerts SET status = ?, severity = ?, doc = ?, last_seen_at = ?, "
           "event_count = event_count + 1 WHERE incident_id = ? AND source = ? "
           "AND dedup_key = ?",
           (a.status, severity, doc, now, incident_id, a.source_name, a.dedup_key))


def _severity(tx: Tx, incident_id: str, current: str) -> str:
    """The incident's severity: the highest of its firing alerts (unchanged when none
    fires, so a resolved incident keeps the severity it had)."""
    rows = tx.all("SELECT severity FROM alerts WHERE incident_id = ? AND status = 'firing'",
                  (incident_id,))
    if not rows:
        return current
    return str(max((r["severity"] for r in rows), key=lambda sev: SEVERITY_RANK[sev]))


def _update_open(tx: Tx, inc: dict[str, Any], ra: RoutedAlert, now: float) -> str:
    """A further event for an open incident: firing dedups, resolved may close it."""
    a = ra.alert
    incident_id = inc["id"]
    existing = tx.one("SELECT status, severity FROM alerts WHERE incident_id = ? "
                      "AND source = ? AND dedup_key = ?",
                      (incident_id, a.source_name, a.dedup_key))
    if existing is None and a.status == "resolved":
        return "ignored"  # a resolve for an alert this incident never had
    _put_alert(tx, incident_id, a, now, existing)
    actor = f"source:{a.source_name}"
    severity = _severity(tx, incident_id, inc["severity"])
    tx.run("UPDATE incidents SET event_count = event_count + 1, last_seen_at = ?, "
           "updated_at = ?, severity = ? WHERE id = ?", (now, now, severity, incident_id))
    detail: dict[str, Any] = {"dedup_key": a.dedup_key}
    if a.status == "firing":
        detail["event_count"] = inc["event_count"] + 1
    if severity != inc["severity"]:
        detail["severity"] = {"from": inc["severity"], "to": severity}
    if a.status == "firing":
        kind = "deduplicated" if existing is not None else "received"
        tx.timeline(incident_id, now, kind, actor, detail)
        if existing is None and _opened_before(tx, incident_id, now):
            # A new alert in the group: its tickets and pages change. Not for alerts
            # that arrive with the one that opened it: the trigger carries them.
            _fan_out(tx, incident_id, "update", now, f"alert/{a.source_name}/{a.dedup_key}")
        return "deduplicated" if existing is not None else "grouped"
    still = tx.one("SELECT COUNT(*) AS n FROM alerts WHERE incident_id = ? AND "
                   "status = 'firing'", (incident_id,))
    if still and still["n"] > 0:
        tx.timeline(incident_id, now, "received", actor,
                    {**detail, "status": "resolved", "still_firing": still["n"]})
        return "partially_resolved"
    _close(tx, incident_id, actor, now, {"reason": "all alerts resolved"})
    return "resolved"


def _opened_before(tx: Tx, incident_id: str, now: float) -> bool:
    row = tx.one("SELECT created_at FROM incidents WHERE id = ?", (incident_id,))
    return row is not None and float(row["created_at"]) < now


def _close(tx: Tx, incident_id: str, actor: str, now: float, detail: dict[str, Any],
           origin: str | None = None) -> None:
    _e.cancel(tx, incident_id)
    tx.run("UPDATE incidents SET status = 'resolved', open_key = NULL, resolved_at = ?, "
           "resolved_by = ?, updated_at = ?, next_at = NULL WHERE id = ?",
           (now, actor, now, incident_id))
    tx.timeline(incident_id, now, "resolved", actor, detail)
    _fan_out(tx, incident_id, "resolve", now, origin=origin)


def _holding(tx: Tx, a: Alert) -> list[dict[str, Any]]:
    """The open incidents holding alert ``a`` (same source, same dedup key)."""
    return tx.all("SELECT i.id, i.severity, i.event_count, i.status, i.suppressed "
                  "FROM alerts a "
                  "JOIN incidents i ON i.id = a.incident_id WHERE a.dedup_key = ? "
                  "AND a.source = ? AND i.open_key IS NOT NULL ORDER BY i.id",
                  (a.dedup_key, a.source_name))


def _per_alert(routed: Sequence[RoutedAlert]) -> list[list[RoutedAlert]]:
    """The routed copies of each alert (one per matched route), alerts in request order."""
    groups: dict[int, list[RoutedAlert]] = {}
    for ra in routed:
        groups.setdefault(id(ra.alert), []).append(ra)
    return list(groups.values())


def ingest(tx: Tx, source: str, body: str, routed: Sequence[RoutedAlert],
           now: float, resolve: Resolver = unresolved,
           suppress: Suppress = no_suppression, message_id: str | None = None
           ) -> IngestResult:
    if message_id is not None and not tx.insert("inbound_messages", {
            "source": source, "message_id": message_id, "received_at": now},
            on_conflict_nothing=True):
        # A redelivery of a message already taken (its row commits with its effects).
        return IngestResult("", (), 0, 0, 0, 0, replayed=True)
    event_id = new_id(now)
    tx.insert("events", {"id": event_id, "source": source, "received_at": now,
                         "alert_count": len(_per_alert(routed)), "body": body})
    ids: list[str] = []
    counts = {"opened": 0, "deduplicated": 0, "resolved": 0}
    for copies in _per_alert(routed):
        a = copies[0].alert
        held = _holding(tx, a)
        if held:
            # While an open incident holds this alert, every event for it goes there,
            # whatever route its labels would take now: a resolve or acknowledge may come
            # without the labels that routed the trigger (PagerDuty sends no payload with
            # them), and a changed severity must update the incident, not open another.
            for inc in held:
                ids.append(inc["id"])
                if a.acknowledge:
                    if inc["status"] == "triggered":
                        _acknowledge(tx, inc["id"], f"source:{a.source_name}", None, now)
                    continue
                outcome = _update_open(tx, inc, copies[0], now)
                counts["deduplicated"] += outcome == "deduplicated"
                counts["resolved"] += outcome == "resolved"
                if a.status == "firing" and inc["suppressed"] is not None:
                    _resume_if_unsuppressed(tx, inc, copies[0], now, resolve, suppress)
            continue
        if a.acknowledge or a.status == "resolved":
            continue  # nothing open holds it: already resolved, or never seen
        for ra in copies:
            group = tx.one("SELECT id, severity, event_count, status, suppressed "
                           "FROM incidents WHERE open_key = ?", (ra.key,))
            if group is None:
                ids.append(_open_incident(tx, ra, now, resolve, suppress))
                counts["opened"] += 1
            else:  # a new alert joining an open group
                _update_open(tx, group, ra, now)
                ids.append(group["id"])
    return IngestResult(event_id, tuple(dict.fromkeys(ids)), counts["opened"],
                        counts["deduplicated"], counts["resolved"], tx.enqueued)


def _acknowledge(tx: Tx, incident_id: str, by: str, note: str | None, now: float,
                 detail: dict[str, Any] | None = None, origin: str | None = None) -> None:
    tx.run("UPDATE incidents SET status = 'acknowledged', acknowledged_at = ?, "
           "acknowledged_by = ?, updated_at = ? WHERE id = ?", (now, by, now, incident_id))
    tx.timeline(incident_id, now, "acknowledged", by,
                {**(detail or {}), **({"note": note} if note else {})})
    _e.on_acknowledged(tx, _row(tx, incident_id), now)
    # An incident can be acknowledged again after an unacknowledge or a lapse; each time
    # is news for the connectors, so later ones get their own idempotency key.
    n = tx.one("SELECT COUNT(*) AS n FROM timeline WHERE incident_id = ? "
               "AND type = 'acknowledged'", (incident_id,))
    count = int(n["n"]) if n else 1
    _fan_out(tx, incident_id, "acknowledge", now, "" if count == 1 else str(count), origin)


def _row(tx: Tx, incident_id: str) -> dict[str, Any]:
    # On PostgreSQL, changes to one incident from several replicas (or connections) take
    # turns: each decides on the row as the previous one committed it, and the MAX(seq)
    # of its deliveries is read by one transaction at a time (SQLite has one writer).
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    inc = tx.one("SELECT * FROM incidents WHERE id = ?" + lock,  # noqa: S608
                 (incident_id,))
    if inc is None:
        raise NotFound(f"incident {incident_id} not found")
    return inc


def acknowledge(tx: Tx, incident_id: str, by: str, note: str | None, now: float) -> None:
    inc = _row(tx, incident_id)
    if inc["status"] == "resolved":
        raise Conflict(f"incident {incident_id} is resolved")
    if inc["status"] == "acknowledged":
        raise Conflict(f"incident {incident_id} is already acknowledged")
    _acknowledge(tx, incident_id, by, note, now)


def unacknowledge(tx: Tx, incident_id: str, by: str, note: str | None, now: float) -> None:
    inc = _row(tx, incident_id)
    if inc["status"] != "acknowledged":
        raise Conflict(f"incident {incident_id} is {inc['status']}, not acknowledged")
    _e.unacknowledge(tx, inc, now, by, {"note": note} if note else {})


def escalate(tx: Tx, incident_id: str, by: str, reason: str, now: float,
             resolve: Resolver) -> None:
    inc = _row(tx, incident_id)
    if inc["status"] == "resolved":
        raise Conflict(f"incident {incident_id} is resolved")
    _e.escalate(tx, inc, now, by, reason, resolve)


def resolve(tx: Tx, incident_id: str, by: str, note: str | None, now: float) -> None:
    inc = _row(tx, incident_id)
    if inc["status"] == "resolved":
        raise Conflict(f"incident {incident_id} is already resolved")
    _close(tx, incident_id, by, now, {"note": note} if note else {})


def add_note(tx: Tx, incident_id: str, by: str, text: str, now: float,
             detail: dict[str, Any] | None = None, origin: str | None = None) -> None:
    _row(tx, incident_id)
    note_id = new_id(now)
    tx.timeline(incident_id, now, "note", by,
                {**(detail or {}), "text": text, "note_id": note_id})
    tx.run("UPDATE incidents SET updated_at = ? WHERE id = ?", (now, incident_id))
    _fan_out(tx, incident_id, "note", now, discriminator=note_id, origin=origin)
