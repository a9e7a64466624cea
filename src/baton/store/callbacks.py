"""Applying what humans did at a vendor (callbacks, sync) to incidents.

Three guards make a callback loop impossible and a replay harmless:
- each (connector, event id) is applied once: its row in ``callback_events`` is written in
  the same transaction as the change, so a replayed request finds it and does nothing;
- state changes are idempotent: acknowledging an acknowledged (or resolved) incident, or
  resolving a resolved one, is recorded as ``unchanged`` and tells nobody;
- the connector the change came from is not told about it (it knows), so Baton never
  echoes a vendor's change back to that vendor.
Connectors add a fourth in ``callback``: they drop what Baton itself wrote there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..lifecycle import Lifecycle
from ..plugin import CallbackEvent
from .repo import Repo
from .tx import Tx


@dataclass
class CallbackResult:
    """What became of each event, by outcome: applied, unchanged, replayed, unknown."""

    counts: dict[str, int] = field(default_factory=lambda: {
        "applied": 0, "unchanged": 0, "replayed": 0, "unknown": 0})
    incidents: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.counts, "incidents": list(dict.fromkeys(self.incidents))}


def find_incident(db: Repo, connector: str, event: CallbackEvent) -> dict[str, Any] | None:
    tx = db.tx
    found = None
    if event.incident_id:
        found = tx.one("SELECT id FROM incidents WHERE id = ?", (event.incident_id,))
    if found is None and event.external_id:
        # A recurrence may share its predecessor's ticket: the open incident wins.
        found = tx.one("SELECT i.id FROM external_refs r JOIN incidents i "
                       "ON i.id = r.incident_id WHERE r.connector = ? AND r.ref_id = ? "
                       "ORDER BY CASE WHEN i.status = 'resolved' THEN 1 ELSE 0 END, "
                       "i.id DESC", (connector, event.external_id))
    if found is None:
        return None
    # Its state is decided on the row as the last change committed it: on PostgreSQL a
    # callback and an API acknowledge at once take turns (the second is ``unchanged``).
    return db.incident(found["id"])


def _apply_one(lc: Lifecycle, db: Repo, connector: str, event: CallbackEvent,
               inc: dict[str, Any], now: float) -> str:
    detail = {"via": f"callback:{connector}", "event_id": event.event_id}
    status = inc["status"]
    if event.action == "acknowledge":
        if status != "triggered":
            return "unchanged"
        lc.acknowledge(db, inc["id"], event.actor, None, now, detail, origin=connector)
    elif event.action == "resolve":
        if status == "resolved":
            return "unchanged"
        lc.resolve(db, inc["id"], event.actor, None, now, detail, origin=connector)
    else:
        if not (event.text or "").strip():
            return "unchanged"
        lc.add_note(db, inc["id"], event.actor, str(event.text), now, detail,
                    origin=connector)
    return "applied"


def apply(lc: Lifecycle, db: Repo, connector: str, events: Sequence[CallbackEvent],
          now: float) -> CallbackResult:
    tx = db.tx
    result = CallbackResult()
    for event in events:
        seen = tx.one("SELECT 1 AS x FROM callback_events WHERE connector = ? "
                      "AND event_id = ?", (connector, event.event_id))
        if seen is not None:
            result.counts["replayed"] += 1
            continue
        inc = find_incident(db, connector, event)
        outcome = ("unknown" if inc is None
                   else _apply_one(lc, db, connector, event, inc, now))
        tx.insert("callback_events", {
            "connector": connector, "event_id": event.event_id, "received_at": now,
            "incident_id": inc["id"] if inc else None, "result": outcome})
        result.counts[outcome] += 1
        if inc is not None:
            result.incidents.append(inc["id"])
    return result


def open_refs(tx: Tx, connector: str, after: str, limit: int) -> list[dict[str, Any]]:
    """External references of this connector on open incidents, in incident id order from
    ``after`` (a keyset page), for pollers."""
    return tx.all("SELECT r.incident_id, r.ref_id, r.url FROM external_refs r "
                  "JOIN incidents i ON i.id = r.incident_id WHERE r.connector = ? "
                  "AND i.open_key IS NOT NULL AND r.incident_id > ? "
                  "ORDER BY r.incident_id LIMIT ?", (connector, after, limit))
