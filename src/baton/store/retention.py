"""Deleting stored rows past a cutoff, in batches the caller sizes.

Storage only carries out deletes: which cutoffs apply, how large a batch is, how many
batches a round runs and when space is handed back are ``baton.retention``'s decisions.
Each function here runs inside one write transaction and deletes at most ``limit`` rows,
so the single SQLite writer (or a PostgreSQL row lock) is never held for long.

What is never deleted, whatever the cutoff: an incident that is not resolved (or still
holds its ``open_key``), anything that belongs to one, and an incident with a delivery
still pending or in flight, with everything of it. Dead-lettered deliveries go with their
incident: past the horizon there is nothing left worth replaying, and keeping them would
let one rejecting vendor grow the database without bound.

Other rows refer to pruned ones only loosely: a newer incident's ``recurrence_of`` may name
a pruned incident (it stays as a bare id), and nothing refers to ``events`` at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tx import Tx

# Rows that belong to an incident (column ``incident_id``), in the order a pruned
# incident is taken apart; the incident's own row goes last, so a half-pruned incident is
# still found, and finished, by the next batch.
CHILDREN = ("timeline", "alerts", "deliveries", "timers", "external_refs", "callback_events",
            "alert_labels", "holds")
TABLES = ("events", "incidents", *CHILDREN, "inbound_messages")
# Each table's primary key: batches delete ``WHERE (key) IN (SELECT key ... LIMIT n)``,
# the portable form of "the first n rows" (no rowid on PostgreSQL, no DELETE ... LIMIT).
_KEYS = {"events": "id", "incidents": "id", "timeline": "id",
         "alerts": "incident_id, source, dedup_key", "deliveries": "id", "timers": "id",
         "external_refs": "incident_id, connector", "callback_events": "connector, event_id",
         "inbound_messages": "source, message_id",
         "alert_labels": "incident_id, source, dedup_key, name", "holds": "incident_id, holder"}

# Resolved before the cutoff, and nothing of it still to be sent.
_ELIGIBLE = """
FROM incidents i
WHERE i.status = 'resolved' AND i.open_key IS NULL AND i.resolved_at < ?
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.incident_id = i.id
                  AND d.state IN ('pending', 'in_flight'))"""
# Callback ledger rows of an incident that is still open stay while it is open.
_NOT_OPEN = """NOT EXISTS (SELECT 1 FROM incidents o WHERE o.id = c.incident_id
                  AND (o.status != 'resolved' OR o.open_key IS NOT NULL))"""


@dataclass(frozen=True)
class Cutoffs:
    """Epoch seconds: rows older than these may go."""

    raw_events: float
    resolved_incidents: float
    replay_ids: float


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _delete_first(tx: Tx, table: str, where: str, params: tuple[object, ...], limit: int,
                  skip_locked: bool, alias: str = "c") -> int:
    """Delete up to ``limit`` rows of ``table`` matching ``where`` (over alias ``alias``)."""
    key = _KEYS[table]
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""  # replicas take turns
    return tx.run(f"DELETE FROM {table} WHERE ({key}) IN ("  # noqa: S608 - constant names
                  f"SELECT {key} FROM {table} {alias} WHERE {where} LIMIT ?{lock})",
                  (*params, limit))


def prune_events(tx: Tx, cutoff: float, limit: int, skip_locked: bool) -> dict[str, int]:
    """Request bodies received before ``cutoff``."""
    return {"events": _delete_first(tx, "events", "c.received_at < ?", (cutoff,), limit,
                                    skip_locked)}


def prune_replay_ids(tx: Tx, cutoff: float, limit: int, skip_locked: bool) -> dict[str, int]:
    """Inbound message ids and callback event ids taken before ``cutoff`` (those of an
    open incident stay)."""
    n = _delete_first(tx, "inbound_messages", "c.received_at < ?", (cutoff,), limit,
                      skip_locked)
    m = _delete_first(tx, "callback_events", f"c.received_at < ? AND {_NOT_OPEN}",
                      (cutoff,), limit - n, skip_locked) if n < limit else 0
    return {"inbound_messages": n, "callback_events": m}


def prune_incidents(tx: Tx, cutoff: float, limit: int, skip_locked: bool) -> dict[str, int]:
    """Incidents resolved before ``cutoff`` with all their rows: as many whole incidents
    as fit in ``limit`` rows, or, when the first one alone is larger, up to ``limit`` of
    its rows (the rest in later batches)."""
    lock = " FOR UPDATE OF i SKIP LOCKED" if skip_locked else ""
    # Locked on PostgreSQL: a note added meanwhile (which locks the incident first) waits,
    # then finds no incident, instead of leaving a row behind the delete.
    ids = [r["id"] for r in tx.all(
        f"SELECT i.id {_ELIGIBLE} ORDER BY i.resolved_at LIMIT ?{lock}",
        (cutoff, limit))]
    counts = dict.fromkeys(("incidents", *CHILDREN), 0)
    if not ids:
        return counts
    sizes = {i: 1 for i in ids}  # the incident's own row
    for table in CHILDREN:
        for r in tx.all(f"SELECT incident_id, COUNT(*) AS n FROM {table} "  # noqa: S608
                        f"WHERE incident_id IN ({_marks(len(ids))}) GROUP BY incident_id",
                        ids):
            sizes[r["incident_id"]] += int(r["n"])
    if sizes[ids[0]] > limit:
        left = limit
        for table in CHILDREN:
            if left:
                counts[table] = _delete_first(tx, table, "c.incident_id = ?", (ids[0],),
                                              left, False)
                left -= counts[table]
        return counts
    chosen, total = [], 0
    for i in ids:
        if total + sizes[i] > limit:
            break
        chosen.append(i)
        total += sizes[i]
    marks = _marks(len(chosen))
    for table in CHILDREN:
        counts[table] = tx.run(f"DELETE FROM {table} WHERE incident_id IN ({marks})",  # noqa: S608
                               chosen)
    counts["incidents"] = tx.run(f"DELETE FROM incidents WHERE id IN ({marks})",  # noqa: S608
                                 chosen)
    return counts


def prunable(tx: Tx, c: Cutoffs) -> dict[str, int]:
    """What pruning at these cutoffs would delete now, per table (a dry run)."""
    def count(sql: str, params: tuple[object, ...]) -> int:
        row = tx.one(sql, params)
        return int(row["n"]) if row else 0

    eligible = f"SELECT i.id {_ELIGIBLE}"
    out = {"events": count("SELECT COUNT(*) AS n FROM events WHERE received_at < ?",
                           (c.raw_events,)),
           "incidents": count(f"SELECT COUNT(*) AS n {_ELIGIBLE}",
                              (c.resolved_incidents,))}
    for table in (t for t in CHILDREN if t != "callback_events"):
        out[table] = count(f"SELECT COUNT(*) AS n FROM {table} "  # noqa: S608
                           f"WHERE incident_id IN ({eligible})", (c.resolved_incidents,))
    out["callback_events"] = count(
        f"SELECT COUNT(*) AS n FROM callback_events c WHERE c.incident_id IN "  # noqa: S608
        f"({eligible}) OR (c.received_at < ? AND {_NOT_OPEN})",
        (c.resolved_incidents, c.replay_ids))
    out["inbound_messages"] = count(
        "SELECT COUNT(*) AS n FROM inbound_messages WHERE received_at < ?", (c.replay_ids,))
    return out


def reclaim(tx: Tx, pages: int, slack: float = 0.0) -> int:
    """Hand up to ``pages`` free SQLite pages back to the file system, keeping ``slack``
    (a fraction of the file) free for new rows; returns how many went.

    Only a database created with ``auto_vacuum = INCREMENTAL`` can (see sqlite.py); in
    any other, and on PostgreSQL (whose autovacuum reuses the space), this does nothing.
    Python's sqlite3 steps a statement that returns no rows once, and each step of
    ``incremental_vacuum`` frees one page: hence one statement per page."""
    if tx.dialect != "sqlite" or _pragma(tx, "auto_vacuum") != 2:
        return 0
    spare = _pragma(tx, "freelist_count") - int(_pragma(tx, "page_count") * slack)
    freed = max(0, min(pages, spare))
    for _ in range(freed):
        tx.run("PRAGMA incremental_vacuum(1)")
    return freed


def _pragma(tx: Tx, name: str) -> int:
    row = tx.one(f"PRAGMA {name}")
    return int(next(iter(row.values()))) if row else 0


def database_size(tx: Tx) -> int:
    """Bytes the database takes: SQLite's pages (free ones included, as the file holds
    them), or PostgreSQL's tables with their indexes and TOAST in the current schema."""
    if tx.dialect == "sqlite":
        return _pragma(tx, "page_count") * _pragma(tx, "page_size")
    row = tx.one("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS n "
                 "FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
                 "WHERE s.nspname = current_schema() AND c.relkind = 'r'")
    return int(row["n"]) if row else 0
