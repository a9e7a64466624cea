"""Reports over stored incidents: response times by service, and recurring problems.

Portable SQL only (``?`` placeholders, standard aggregates, a correlated subquery): counts
and sums are aggregated by the database; medians are taken in Python over the durations of
the window, which the caller bounds (``since`` is at most a year).

An incident belongs to the window it was *created* in. Time to acknowledge runs to its
first acknowledgement on the timeline, so an acknowledgement that lapsed or was withdrawn
still counts (somebody responded then); the ``acknowledged_at`` column holds only the
latest one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .tx import Tx
from .views import ts

NO_SERVICE = "(none)"

# One row per incident created in [start, end]; the first acknowledgement comes from the
# timeline (indexed by incident), since unacknowledge clears the incident's column.
_WINDOW = (
    "SELECT COALESCE(i.service, '" + NO_SERVICE + "') AS service, i.created_at, "  # noqa: S608
    "i.resolved_at, i.level, i.loops, i.suppressed, "
    "(SELECT MIN(t.at) FROM timeline t WHERE t.incident_id = i.id "
    "AND t.type = 'acknowledged') AS first_ack "
    "FROM incidents i WHERE i.created_at >= ? AND i.created_at <= ?")

# Escalated past level 1: escalation only moves forward, so level > 1 or a repeat loop
# (back at level 1 with loops > 0) means at least one ``escalated`` timeline entry.
_BY_SERVICE = (
    "SELECT w.service, COUNT(*) AS incidents, COUNT(w.first_ack) AS acknowledged, "
    "SUM(w.first_ack - w.created_at) AS ack_seconds, "
    "SUM(CASE WHEN w.resolved_at IS NOT NULL THEN 1 ELSE 0 END) AS resolved, "
    "SUM(w.resolved_at - w.created_at) AS resolve_seconds, "
    "SUM(CASE WHEN w.level > 1 OR w.loops > 0 THEN 1 ELSE 0 END) AS escalated, "
    "SUM(CASE WHEN w.suppressed IS NOT NULL THEN 1 ELSE 0 END) AS suppressed "
    "FROM (" + _WINDOW + ") w GROUP BY w.service")

_DURATIONS = (
    "SELECT w.service, w.first_ack - w.created_at AS ack, "  # noqa: S608
    "w.resolved_at - w.created_at AS res FROM (" + _WINDOW + ") w "
    "WHERE w.first_ack IS NOT NULL OR w.resolved_at IS NOT NULL")

# Keys with at least one recurrence (an incident opened again after an earlier one of the
# same key was resolved) among the incidents created in the window.
_RECURRING = (
    "SELECT i.incident_key AS problem_key, COUNT(*) AS incidents, "
    "SUM(CASE WHEN i.recurrence_of IS NOT NULL THEN 1 ELSE 0 END) AS recurrences, "
    "MIN(i.created_at) AS first_seen, MAX(i.last_seen_at) AS last_seen, "
    "SUM(i.event_count) AS events "
    "FROM incidents i WHERE i.created_at >= ? AND i.created_at <= ? "
    "GROUP BY i.incident_key "
    "HAVING SUM(CASE WHEN i.recurrence_of IS NOT NULL THEN 1 ELSE 0 END) > 0 "
    "ORDER BY COUNT(*) DESC, MAX(i.last_seen_at) DESC, i.incident_key LIMIT ?")

_LATEST = ("SELECT id, title, service, status FROM incidents WHERE incident_key = ? "
           "AND created_at <= ? ORDER BY created_at DESC, id DESC LIMIT 1")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _stats(row: dict[str, Any], acks: Sequence[float],
           resolves: Sequence[float]) -> dict[str, Any]:
    n, acked, resolved = int(row["incidents"]), int(row["acknowledged"]), int(row["resolved"])
    escalated = int(row["escalated"] or 0)
    return {
        "incidents": n,
        "acknowledged": acked,
        "resolved": resolved,
        "mtta_seconds": {
            "mean": _seconds(row["ack_seconds"] / acked) if acked else None,
            "median": _seconds(statistics.median(acks)) if acks else None},
        "mttr_seconds": {
            "mean": _seconds(row["resolve_seconds"] / resolved) if resolved else None,
            "median": _seconds(statistics.median(resolves)) if resolves else None},
        "escalated": escalated,
        "escalation_rate": round(escalated / n, 4) if n else None,
        "suppressed": int(row["suppressed"] or 0),
    }


def response(tx: Tx, start: float, end: float) -> dict[str, Any]:
    """``overall`` and ``services`` (most incidents first) for incidents created in
    [start, end]."""
    groups = tx.all(_BY_SERVICE, (start, end))
    acks: dict[str, list[float]] = {}
    resolves: dict[str, list[float]] = {}
    for r in tx.all(_DURATIONS, (start, end)):
        if r["ack"] is not None:
            acks.setdefault(r["service"], []).append(float(r["ack"]))
        if r["res"] is not None:
            resolves.setdefault(r["service"], []).append(float(r["res"]))
    total: dict[str, Any] = {k: 0 for k in ("incidents", "acknowledged", "resolved",
                                            "escalated", "suppressed")}
    total["ack_seconds"] = sum(float(g["ack_seconds"] or 0) for g in groups)
    total["resolve_seconds"] = sum(float(g["resolve_seconds"] or 0) for g in groups)
    for g in groups:
        for k in ("incidents", "acknowledged", "resolved", "escalated", "suppressed"):
            total[k] += int(g[k] or 0)
    services = [{"service": g["service"],
                 **_stats(g, acks.get(g["service"], ()), resolves.get(g["service"], ()))}
                for g in groups]
    services.sort(key=lambda s: (-s["incidents"], s["service"]))
    overall = _stats(total, [d for v in acks.values() for d in v],
                     [d for v in resolves.values() for d in v])
    return {"overall": overall, "services": services}


def recurring(tx: Tx, start: float, end: float, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` keys that recurred most among incidents created in [start, end]."""
    problems = []
    for r in tx.all(_RECURRING, (start, end, limit)):
        latest = tx.one(_LATEST, (r["problem_key"], end)) or {}
        problems.append({
            "key": r["problem_key"], "incidents": int(r["incidents"]),
            "recurrences": int(r["recurrences"]), "events": int(r["events"]),
            "first_seen": ts(r["first_seen"]), "last_seen": ts(r["last_seen"]),
            "title": latest.get("title"), "service": latest.get("service"),
            "latest_incident": latest.get("id"), "latest_status": latest.get("status"),
        })
    return problems
