"""Rows to the documents of incident.schema.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .. import SCHEMA_VERSION
from ..model import iso
from .tx import Tx

# Lists are summaries (issue 10, finding 9: megabyte labels made a list page of 52 MB,
# encoded on the event loop). In a list, label names and values and the title are cut to
# LIST_TEXT_CHARS (ending in "…"), and a page ends early, with a next_cursor, once its
# encoding passes LIST_PAGE_BYTES. GET /v1/incidents/{id} keeps everything.
LIST_TEXT_CHARS = 256
LIST_PAGE_BYTES = 1024 * 1024


def _cut(text: str) -> str:
    return text if len(text) <= LIST_TEXT_CHARS else text[:LIST_TEXT_CHARS - 1] + "…"


def _summary(doc: dict[str, Any], raw_labels: str) -> dict[str, Any]:
    """A list entry: long texts cut. Rows whose labels are short (nearly all) are left
    as they are without looking at each label."""
    if len(raw_labels) > LIST_TEXT_CHARS:
        doc["labels"] = {_cut(k): _cut(v) for k, v in doc["labels"].items()}
    doc["title"] = _cut(doc["title"])
    return doc


def ts(value: float | None) -> str | None:
    return iso(datetime.fromtimestamp(value, UTC)) if value is not None else None


def delivery_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "incident_id": row["incident_id"], "connector": row["connector"],
        "action": row["action"], "idempotency_key": row["idempotency_key"],
        "state": row["state"], "attempts": row["attempts"],
        "created_at": ts(row["created_at"]),
        "next_attempt_at": ts(row["next_attempt_at"]) if row["state"] == "pending" else None,
        "delivered_at": ts(row["delivered_at"]), "last_error": row["last_error"],
        "last_status": row["last_status"],
        "external_ref": json.loads(row["external_ref"]) if row["external_ref"] else None,
    }


# The alerts a notification carries at most: a group of thousands would make every body
# megabytes (Alertmanager's webhook truncates the same way, with ``truncatedAlerts``).
NOTIFICATION_ALERTS = 100


def incident_doc(tx: Tx, row: dict[str, Any], *, alerts: bool = True,
                 deliveries: bool = False, timeline: bool = False,
                 max_alerts: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "id": row["id"], "key": row["incident_key"],
        "status": row["status"], "severity": row["severity"], "title": row["title"],
        "service": row["service"], "labels": json.loads(row["labels"]), "route": row["route"],
        "created_at": ts(row["created_at"]), "updated_at": ts(row["updated_at"]),
        "last_seen_at": ts(row["last_seen_at"]),
        "acknowledged_at": ts(row["acknowledged_at"]), "acknowledged_by": row["acknowledged_by"],
        "resolved_at": ts(row["resolved_at"]), "resolved_by": row["resolved_by"],
        "escalation": {"policy": row["policy"], "level": row["level"],
                       "next_at": ts(row["next_at"]), "loops": row["loops"]},
        "external_refs": [
            {"connector": r["connector"], "id": r["ref_id"], "url": r["url"]}
            for r in tx.all("SELECT connector, ref_id, url FROM external_refs "
                            "WHERE incident_id = ? ORDER BY connector", (row["id"],))
        ],
        "event_count": row["event_count"], "recurrence_of": row["recurrence_of"],
        "suppressed": json.loads(row["suppressed"]) if row["suppressed"] else None,
    }
    if alerts:
        # Firing ones first: a truncated list keeps what is still wrong.
        limit = "" if max_alerts is None else f" LIMIT {int(max_alerts)}"
        doc["alerts"] = [json.loads(r["doc"]) for r in tx.all(
            "SELECT doc FROM alerts WHERE incident_id = ? ORDER BY "  # noqa: S608
            "CASE WHEN status = 'firing' THEN 0 ELSE 1 END, first_seen_at, dedup_key"
            + limit, (row["id"],))]
        if max_alerts is not None and len(doc["alerts"]) == max_alerts:
            total = tx.one("SELECT COUNT(*) AS n FROM alerts WHERE incident_id = ?",
                           (row["id"],))
            left_out = int(total["n"]) - max_alerts if total else 0
            if left_out > 0:
                doc["truncated_alerts"] = left_out
    if deliveries:
        doc["deliveries"] = [delivery_doc(r) for r in tx.all(
            "SELECT * FROM deliveries WHERE incident_id = ? ORDER BY connector, seq",
            (row["id"],))]
    if timeline:
        doc["timeline"] = [
            {"at": ts(r["at"]), "type": r["type"], "actor": r["actor"],
             "detail": json.loads(r["detail"])}
            for r in tx.all("SELECT at, type, actor, detail FROM timeline "
                            "WHERE incident_id = ? ORDER BY id", (row["id"],))
        ]
    return doc


def note_entries(tx: Tx, incident_id: str, note_id: str) -> list[dict[str, Any]]:
    """The timeline entry of one note, as a one-entry timeline: what a ``note`` delivery
    carries, so the connector sends that note (the last note may be a later one)."""
    out = []
    for r in tx.all("SELECT at, type, actor, detail FROM timeline WHERE incident_id = ? "
                    "AND type = 'note' ORDER BY id", (incident_id,)):
        detail = json.loads(r["detail"])
        if detail.get("note_id") == note_id:
            out.append({"at": ts(r["at"]), "type": "note", "actor": r["actor"],
                        "detail": detail})
    return out


def get_incident(tx: Tx, incident_id: str, *, alerts: bool = True,
                 deliveries: bool = False, timeline: bool = False,
                 max_alerts: int | None = None) -> dict[str, Any] | None:
    row = tx.one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
    return incident_doc(tx, row, alerts=alerts, deliveries=deliveries, timeline=timeline,
                        max_alerts=max_alerts) if row else None


def _page(tx: Tx, table: str, filters: dict[str, str | None], limit: int,
          cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Rows newest first, ``limit`` of them after ``cursor`` (the last id of the previous
    page: ids sort by time), and the cursor of the next page."""
    where = [f"{column} = ?" for column, value in filters.items() if value]
    params: list[Any] = [value for value in filters.values() if value]
    if cursor:
        where.append("id < ?")
        params.append(cursor)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = tx.all(f"SELECT * FROM {table} {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
                  [*params, limit + 1])
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def list_incidents(tx: Tx, status: str | None, service: str | None, limit: int,
                   cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    rows, next_cursor = _page(tx, "incidents", {"status": status, "service": service},
                              limit, cursor)
    docs: list[dict[str, Any]] = []
    size = 0
    for r in rows:
        doc = _summary(incident_doc(tx, r, alerts=False), r["labels"])
        # Measured here, in the store's thread, so the handler's encoding stays small.
        size += len(json.dumps(doc)) + 2
        if docs and size > LIST_PAGE_BYTES:
            return docs, docs[-1]["id"]  # the rest on the next page
        docs.append(doc)
    return docs, next_cursor


def list_deliveries(tx: Tx, state: str | None, connector: str | None, limit: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    rows, next_cursor = _page(tx, "deliveries", {"state": state, "connector": connector},
                              limit, cursor)
    return [delivery_doc(r) for r in rows], next_cursor


def incident_stats(tx: Tx) -> tuple[dict[str, int], str]:
    counts: dict[str, int] = {}
    newest = 0.0
    for r in tx.all("SELECT status, COUNT(*) AS n, MAX(updated_at) AS u FROM incidents "
                    "GROUP BY status"):
        counts[r["status"]] = int(r["n"])
        newest = max(newest, float(r["u"] or 0.0))
    # Timeline ids are ULIDs, in order: the newest moves with every action, delivery
    # outcome and note, on any incident.
    last = tx.one("SELECT MAX(id) AS id FROM timeline")
    event = last["id"] if last else None
    return counts, f"{sum(counts.values())}:{newest!r}:{event}:{sorted(counts.items())}"
