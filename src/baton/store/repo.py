"""The rows behind an incident, read and written inside one transaction.

``Repo`` is the persistence half of the incident lifecycle: ``baton.lifecycle`` decides
what happens to an incident and calls these methods to record it. Nothing here decides:
each method is one query (or a short, fixed sequence of them) over ``Tx``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..ids import new_id
from ..records import TargetSpec
from .ddl import index_key
from .tx import Tx

AlertKey = tuple[str, str, str]  # (incident id, source, dedup key)
TIMER_KINDS = ("escalate", "remind", "ack_timeout", "unsuppress")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


class Repo:
    def __init__(self, tx: Tx, skip_locked: bool = False) -> None:
        self.tx = tx
        self.skip_locked = skip_locked

    # --- inbound ---------------------------------------------------------------------
    def take_message(self, source: str, message_id: str, now: float) -> bool:
        """Record a signed request's message id; False when it was taken before (its row
        commits with that request's effects)."""
        return self.tx.insert("inbound_messages", {
            "source": source, "message_id": message_id, "received_at": now},
            on_conflict_nothing=True) > 0

    def add_event(self, source: str, body: str, alert_count: int, now: float) -> str:
        event_id = new_id(now)
        self.tx.insert("events", {"id": event_id, "source": source, "received_at": now,
                                  "alert_count": alert_count, "body": body})
        return event_id

    def enqueued_count(self) -> int:
        """Outbox rows added in this transaction so far."""
        return self.tx.enqueued

    # --- incidents -------------------------------------------------------------------
    def incident(self, incident_id: str, lock: bool = True) -> dict[str, Any] | None:
        # On PostgreSQL, changes to one incident from several replicas (or connections)
        # take turns: each decides on the row as the previous one committed it, and the
        # MAX(seq) of its deliveries is read by one transaction at a time (SQLite has one
        # writer).
        tail = " FOR UPDATE" if lock and self.tx.dialect == "postgresql" else ""
        return self.tx.one("SELECT * FROM incidents WHERE id = ?" + tail,  # noqa: S608
                           (incident_id,))

    def _lock(self, of: str = "") -> str:
        # PostgreSQL: ingest decides on these rows (acknowledge, join, close), so they are
        # locked, and a row a concurrent resolve closed meanwhile is re-checked against
        # ``open_key`` when the lock is granted and drops out instead of being revived.
        if self.tx.dialect != "postgresql":
            return ""
        return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"

    def holding(self, source: str, dedup_key: str) -> list[dict[str, Any]]:
        """The open incidents holding an alert (same source, same dedup key)."""
        return self.tx.all("SELECT i.* FROM alerts a JOIN incidents i "  # noqa: S608
                           "ON i.id = a.incident_id WHERE a.dedup_key = ? AND a.source = ? "
                           "AND i.open_key IS NOT NULL ORDER BY i.id" + self._lock("i"),
                           (dedup_key, source))

    def open_with_key(self, key: str) -> dict[str, Any] | None:
        return self.tx.one("SELECT * FROM incidents WHERE open_key = ?"  # noqa: S608
                           + self._lock(), (key,))

    def latest_with_key(self, key: str) -> str | None:
        row = self.tx.one("SELECT id FROM incidents WHERE incident_key = ? "
                          "ORDER BY created_at DESC LIMIT 1", (key,))
        return str(row["id"]) if row else None

    def insert_incident(self, row: Mapping[str, Any]) -> None:
        self.tx.insert("incidents", dict(row))

    def set(self, incident_id: str, **fields: Any) -> None:
        """Set columns of the incident row (names come from the lifecycle, never input)."""
        cols = ", ".join(f"{name} = ?" for name in fields)
        self.tx.run(f"UPDATE incidents SET {cols} WHERE id = ?",  # noqa: S608
                    (*fields.values(), incident_id))

    def count_event(self, incident_id: str, now: float, severity: str) -> None:
        self.tx.run("UPDATE incidents SET event_count = event_count + 1, last_seen_at = ?, "
                    "updated_at = ?, severity = ? WHERE id = ?",
                    (now, now, severity, incident_id))

    # --- alerts ----------------------------------------------------------------------
    def alert(self, incident_id: str, source: str, dedup_key: str) -> dict[str, Any] | None:
        return self.tx.one("SELECT status, severity FROM alerts WHERE incident_id = ? "
                           "AND source = ? AND dedup_key = ?", (incident_id, source, dedup_key))

    def insert_alert(self, key: AlertKey, status: str, severity: str, doc: Mapping[str, Any],
                     now: float) -> None:
        incident_id, source, dedup_key = key
        self.tx.insert("alerts", {"incident_id": incident_id, "source": source,
                                  "dedup_key": dedup_key, "status": status,
                                  "severity": severity, "doc": dumps(doc),
                                  "first_seen_at": now, "last_seen_at": now, "event_count": 1})

    def update_alert(self, key: AlertKey, status: str, severity: str, doc: Mapping[str, Any],
                     now: float) -> None:
        self.tx.run("UPDATE alerts SET status = ?, severity = ?, doc = ?, last_seen_at = ?, "
                    "event_count = event_count + 1 WHERE incident_id = ? AND source = ? "
                    "AND dedup_key = ?", (status, severity, dumps(doc), now, *key))

    def firing_severities(self, incident_id: str) -> list[str]:
        return [str(r["severity"]) for r in self.tx.all(
            "SELECT severity FROM alerts WHERE incident_id = ? AND status = 'firing'",
            (incident_id,))]

    # --- the label index of firing alerts ----------------------------------------------
    def index_labels(self, key: AlertKey, labels: Mapping[str, str]) -> None:
        self.unindex_labels(key[0], key[1], key[2])
        for name, value in labels.items():
            self.tx.insert("alert_labels", {"incident_id": key[0], "source": key[1],
                                            "dedup_key": key[2], "name": name,
                                            "value": value, "nkey": index_key(name),
                                            "vkey": index_key(value)})

    def unindex_labels(self, incident_id: str, source: str | None = None,
                       dedup_key: str | None = None) -> None:
        if source is None:
            self.tx.run("DELETE FROM alert_labels WHERE incident_id = ?", (incident_id,))
        else:
            self.tx.run("DELETE FROM alert_labels WHERE incident_id = ? AND source = ? "
                        "AND dedup_key = ?", (incident_id, source, dedup_key))

    def firing_labels(self, incident_id: str) -> dict[AlertKey, dict[str, str]]:
        """The match labels of the incident's firing alerts, in alert order."""
        out: dict[AlertKey, dict[str, str]] = {}
        for r in self.tx.all("SELECT source, dedup_key, name, value FROM alert_labels "
                             "WHERE incident_id = ? ORDER BY source, dedup_key",
                             (incident_id,)):
            out.setdefault((incident_id, r["source"], r["dedup_key"]), {})[r["name"]] = r["value"]
        return out

    def labels_of(self, key: AlertKey) -> dict[str, str]:
        return {r["name"]: r["value"] for r in self.tx.all(
            "SELECT name, value FROM alert_labels WHERE incident_id = ? AND source = ? "
            "AND dedup_key = ?", key)}

    def firing_with(self, pairs: Sequence[tuple[str, str]], page: int = 200
                    ) -> Iterator[AlertKey]:
        """The firing alerts of open incidents that have every (name, value) of ``pairs``
        (all of them when ``pairs`` is empty), a page at a time: each page is one indexed
        lookup per pair."""
        if pairs:
            sql = " INTERSECT ".join(
                "SELECT incident_id, source, dedup_key FROM alert_labels "
                "WHERE nkey = ? AND vkey = ?" for _ in pairs)
            params: list[Any] = [index_key(v) for pair in pairs for v in pair]
        else:
            sql = "SELECT DISTINCT incident_id, source, dedup_key FROM alert_labels"
            params = []
        offset = 0
        while True:
            # Only alerts of incidents still open: the index is emptied when one closes,
            # and this keeps a row a race left behind from inhibiting anything.
            rows = self.tx.all(
                "SELECT c.incident_id, c.source, c.dedup_key "  # noqa: S608
                f"FROM ({sql}) AS c JOIN incidents i ON i.id = c.incident_id "
                "WHERE i.open_key IS NOT NULL ORDER BY 1, 2, 3 LIMIT ? OFFSET ?",
                [*params, page, offset])
            for r in rows:
                yield (r["incident_id"], r["source"], r["dedup_key"])
            if len(rows) < page:
                return
            offset += page

    # --- timeline --------------------------------------------------------------------
    def timeline(self, incident_id: str, at: float, type_: str, actor: str,
                 detail: dict[str, Any]) -> None:
        self.tx.timeline(incident_id, at, type_, actor, detail)

    def count_entries(self, incident_id: str, type_: str) -> int:
        row = self.tx.one("SELECT COUNT(*) AS n FROM timeline WHERE incident_id = ? "
                          "AND type = ?", (incident_id, type_))
        return int(row["n"]) if row else 0

    # --- deliveries ------------------------------------------------------------------
    def enqueue(self, incident_id: str, target: TargetSpec, action: str, now: float,
                key: str) -> bool:
        """Add one outbox row; a key already used makes it a no-op."""
        seq_row = self.tx.one("SELECT MAX(seq) AS m FROM deliveries WHERE incident_id = ? "
                              "AND connector = ?", (incident_id, target.connector))
        seq = int(seq_row["m"]) + 1 if seq_row and seq_row["m"] is not None else 1
        inserted = self.tx.insert("deliveries", {
            "id": new_id(now), "incident_id": incident_id, "connector": target.connector,
            "action": action, "seq": seq, "idempotency_key": key,
            "target": dumps(target.to_dict()), "state": "pending", "attempts": 0,
            "created_at": now, "next_attempt_at": now,
        }, on_conflict_nothing=True) > 0
        self.tx.enqueued += int(inserted)
        return inserted

    def update_pending(self, incident_id: str, target: TargetSpec) -> bool:
        """An update to this target is waiting (not yet claimed): it will carry whatever
        the incident is when it is sent."""
        # Locked on PostgreSQL: a claim taking it meanwhile (its document built before
        # this change commits) makes it in_flight, and then a new update is queued.
        return self.tx.one("SELECT 1 AS x FROM deliveries WHERE incident_id = ? AND "  # noqa: S608
                           "connector = ? AND action = 'update' AND state = 'pending' "
                           "AND target = ? LIMIT 1" + self._lock(),
                           (incident_id, target.connector,
                            dumps(target.to_dict()))) is not None

    def supersede_updates(self, incident_id: str, target: TargetSpec, by: str) -> int:
        """Updates to this target not yet claimed will not be sent: ``by`` (an acknowledge
        or resolve) carries the newer state."""
        return self.tx.run("UPDATE deliveries SET state = 'superseded', next_attempt_at = NULL, "
                           "last_error = ? WHERE incident_id = ? AND connector = ? AND "
                           "action = 'update' AND state = 'pending' AND target = ?",
                           (f"superseded by {by}", incident_id, target.connector,
                            dumps(target.to_dict())))

    def triggered_targets(self, incident_id: str) -> list[TargetSpec]:
        """Targets sent a trigger for this incident (in any state but given up), in order."""
        return [TargetSpec.from_dict(json.loads(r["target"])) for r in self.tx.all(
            "SELECT target FROM deliveries WHERE incident_id = ? AND action = 'trigger' "
            "AND state != 'dead' ORDER BY seq", (incident_id,))]

    # --- timers ----------------------------------------------------------------------
    def arm(self, incident_id: str, kind: str, due: float, level: int, loop: int,
            now: float, seq: int = 0) -> None:
        self.tx.insert("timers", {"id": new_id(now), "incident_id": incident_id, "kind": kind,
                                  "due_at": due, "state": "pending", "level": level,
                                  "loop_no": loop, "seq": seq, "created_at": now})

    def cancel(self, incident_id: str, kinds: Sequence[str] = TIMER_KINDS) -> None:
        marks = ", ".join("?" for _ in kinds)
        self.tx.run(f"UPDATE timers SET state = 'cancelled' WHERE incident_id = ? "  # noqa: S608
                    f"AND state = 'pending' AND kind IN ({marks})", (incident_id, *kinds))

    def last_reminder(self, incident_id: str, level: int, loop: int) -> int:
        row = self.tx.one("SELECT MAX(seq) AS m FROM timers WHERE incident_id = ? AND "
                          "kind = 'remind' AND state = 'fired' AND level = ? AND loop_no = ?",
                          (incident_id, level, loop))
        return int(row["m"]) if row and row["m"] is not None else 0

    def escalation_due(self, incident_id: str, now: float) -> bool:
        return self.tx.one("SELECT 1 AS due FROM timers WHERE incident_id = ? AND "
                           "kind = 'escalate' AND state = 'pending' AND due_at <= ?",
                           (incident_id, now)) is not None

    def due_timers(self, now: float, limit: int) -> list[dict[str, Any]]:
        # PostgreSQL: the timer and its incident are locked together, and a timer whose
        # incident another transaction is changing (an acknowledge cancelling this very
        # timer) is left for the next poll instead of waited for, so firing never
        # deadlocks with such a change.
        if self.skip_locked:
            return self.tx.all(
                "SELECT t.* FROM timers t JOIN incidents i ON i.id = t.incident_id "
                "WHERE t.state = 'pending' AND t.due_at <= ? ORDER BY t.due_at, t.id "
                "LIMIT ? FOR UPDATE OF t, i SKIP LOCKED", (now, limit))
        return self.tx.all("SELECT * FROM timers WHERE state = 'pending' AND due_at <= ? "
                           "ORDER BY due_at, id LIMIT ?", (now, limit))

    def fire(self, timer_id: str, now: float) -> bool:
        """Mark a timer fired; False when something else already did."""
        return self.tx.run("UPDATE timers SET state = 'fired', fired_at = ? WHERE id = ? "
                           "AND state = 'pending'", (now, timer_id)) == 1

    def next_due(self) -> float | None:
        row = self.tx.one("SELECT MIN(due_at) AS t FROM timers WHERE state = 'pending'")
        return float(row["t"]) if row and row["t"] is not None else None

    # --- suppression -----------------------------------------------------------------
    def active_silences(self, now: float) -> list[dict[str, Any]]:
        return self.tx.all("SELECT id, matchers, ends_at FROM silences WHERE ends_at > ? "
                           "AND starts_at <= ? ORDER BY id", (now, now))

    def set_holds(self, incident_id: str, holders: Sequence[str]) -> None:
        self.tx.run("DELETE FROM holds WHERE incident_id = ?", (incident_id,))
        for holder in dict.fromkeys(holders):
            self.tx.insert("holds", {"incident_id": incident_id, "holder": holder})

    def recheck_held_by(self, holder: str, now: float) -> int:
        """A recheck due ``now`` for every incident ``holder`` holds. A new timer rather
        than moving the pending one forward: a concurrent transaction may be replacing
        that one (PostgreSQL), and a move would then find nothing to move. A spare
        recheck is harmless: it finds the incident lifted, or holds it quietly."""
        return self.tx.run(
            "INSERT INTO timers (id, incident_id, kind, due_at, state, level, loop_no, seq, "
            "created_at) SELECT ? || h.incident_id, h.incident_id, 'unsuppress', ?, "
            "'pending', 0, 0, 0, ? FROM holds h WHERE h.holder = ?",
            (new_id(now) + ":", now, now, holder))
