"""The outbox: claiming due deliveries with a lease, and recording each attempt.

Claims are portable SQL. On PostgreSQL the candidate SELECT gets ``FOR UPDATE SKIP
LOCKED`` so replicas never claim the same row; on SQLite the single writer serialises
claims. A claim is a lease: if the claiming process dies, the row becomes claimable again
when ``lease_until`` passes, which is what makes delivery at-least-once.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import Conflict, NotFound
from ..records import ClaimedDelivery, DeliveryOutcome
from .tx import Tx
from .views import ts

_COLUMNS = ("SELECT d.id, d.incident_id, d.connector, d.action, d.idempotency_key, "
            "d.attempts, d.created_at, d.target FROM deliveries d ")

# Two queries rather than one with an OR: each walks the (connector, state,
# next_attempt_at) index in order and stops at the limit, so a claim costs the same with
# 100 or 100,000 deliveries waiting (with the OR, SQLite sorted the whole backlog first).
#
# Claims whose lease ran out: their worker died or hung; they were due when claimed.
_EXPIRED = _COLUMNS + """
WHERE d.connector = ? AND d.state = 'in_flight' AND d.lease_until < ?
LIMIT ?"""

# Due pending rows. Earlier undelivered rows of the same (incident, connector) block later
# ones: a resolve never overtakes its trigger. Dead rows do not block (never to be sent).
_PENDING = _COLUMNS + (  # noqa: S608 - constant SQL
    """
WHERE d.connector = ? AND d.state = 'pending' AND d.next_attempt_at <= ?
  AND NOT EXISTS (
    SELECT 1 FROM deliveries e
    WHERE e.incident_id = d.incident_id AND e.connector = d.connector AND e.seq < d.seq
      AND e.state IN ('pending', 'in_flight'))
ORDER BY d.next_attempt_at
LIMIT ?""")


def claim(tx: Tx, connector: str, limit: int, now: float, lease: float, worker: str,
          skip_locked: bool = False) -> list[ClaimedDelivery]:
    lock = " FOR UPDATE OF d SKIP LOCKED" if skip_locked else ""
    rows = tx.all(_EXPIRED + lock, (connector, now, limit))
    if len(rows) < limit:
        rows += tx.all(_PENDING + lock, (connector, now, limit - len(rows)))
    out = []
    for r in rows:
        tx.run("UPDATE deliveries SET state = 'in_flight', lease_until = ?, claimed_by = ?, "
               "attempts = attempts + 1 WHERE id = ?", (now + lease, worker, r["id"]))
        out.append(ClaimedDelivery(
            id=r["id"], incident_id=r["incident_id"], connector=r["connector"],
            action=r["action"], idempotency_key=r["idempotency_key"],
            attempts=int(r["attempts"]) + 1, created_at=float(r["created_at"]),
            target=json.loads(r["target"])))
    return out


def finish(tx: Tx, o: DeliveryOutcome, worker: str) -> bool:
    """Record one attempt's result. Returns False when our lease was lost (another worker
    reclaimed the row after it expired): then the other worker's result stands."""
    # Locked on PostgreSQL: a replica reclaiming the expired lease meanwhile commits
    # first, and then this sees its claim instead of overwriting it.
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    row = tx.one("SELECT * FROM deliveries WHERE id = ?" + lock,  # noqa: S608
                 (o.delivery_id,))
    if row is None or row["state"] != "in_flight" or row["claimed_by"] != worker:
        return False
    ref = json.dumps(dict(o.external_ref)) if o.external_ref else row["external_ref"]
    tx.run("UPDATE deliveries SET state = ?, next_attempt_at = ?, lease_until = NULL, "
           "claimed_by = NULL, delivered_at = ?, last_error = ?, last_status = ?, "
           "external_ref = ? WHERE id = ?",
           (o.state, o.next_attempt_at, o.at if o.state == "delivered" else None,
            o.error, o.status, ref, o.delivery_id))
    actor = f"connector:{row['connector']}"
    detail: dict[str, Any] = {"connector": row["connector"], "action": row["action"],
                              "delivery_id": row["id"], "attempt": row["attempts"]}
    if o.status is not None:
        detail["status"] = o.status
    if o.state == "delivered":
        if o.external_ref:
            detail["external_ref"] = dict(o.external_ref)
            tx.run("DELETE FROM external_refs WHERE incident_id = ? AND connector = ?",
                   (row["incident_id"], row["connector"]))
            tx.insert("external_refs", {"incident_id": row["incident_id"],
                                        "connector": row["connector"],
                                        "ref_id": str(o.external_ref.get("id")),
                                        "url": o.external_ref.get("url")})
        tx.timeline(row["incident_id"], o.at, "notified", actor, detail)
    elif o.state == "pending":
        detail.update(error=o.error, retry_at=ts(o.next_attempt_at))
        tx.timeline(row["incident_id"], o.at, "delivery_failed", actor, detail)
    else:
        detail["error"] = o.error
        tx.timeline(row["incident_id"], o.at, "delivery_dead", actor, detail)
    return True


def release(tx: Tx, ids: list[str], worker: str, now: float) -> int:
    """Give claimed rows back without counting the attempt (graceful shutdown)."""
    n = 0
    for delivery_id in ids:
        n += tx.run("UPDATE deliveries SET state = 'pending', lease_until = NULL, "
                    "claimed_by = NULL, attempts = attempts - 1, next_attempt_at = ? "
                    "WHERE id = ? AND state = 'in_flight' AND claimed_by = ?",
                    (now, delivery_id, worker))
    return n


def release_all(tx: Tx, now: float) -> int:
    """After a crash of the only process that can open this store (SQLite), its claims
    can be taken back at once instead of waiting for their leases to run out."""
    return tx.run("UPDATE deliveries SET state = 'pending', lease_until = NULL, "
                  "claimed_by = NULL, next_attempt_at = ? WHERE state = 'in_flight'", (now,))


def retry(tx: Tx, delivery_id: str, by: str, now: float) -> None:
    """Replay a dead-lettered delivery: back to pending, due now, attempts counted anew."""
    row = tx.one("SELECT incident_id, connector, action, state FROM deliveries WHERE id = ?",
                 (delivery_id,))
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if row["state"] != "dead":
        raise Conflict(f"delivery {delivery_id} is {row['state']}, only dead ones are replayed")
    tx.run("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, "
           "created_at = ?, last_error = NULL WHERE id = ?", (now, now, delivery_id))
    tx.timeline(row["incident_id"], now, "delivery_retried", by,
                {"connector": row["connector"], "action": row["action"],
                 "delivery_id": delivery_id})
    tx.enqueued += 1


def abandon(tx: Tx, connector: str, reason: str, now: float) -> int:
    """Dead-letter what waits for ``connector``, which is no longer configured (removed by
    a reload): pending rows, and claims whose lease ran out (their worker is gone). A
    claim still under lease is being sent and finishes first. Replayable as any dead
    letter once the connector is back."""
    rows = tx.all("SELECT id, incident_id, action, attempts FROM deliveries "
                  "WHERE connector = ? AND (state = 'pending' OR (state = 'in_flight' "
                  "AND lease_until < ?)) ORDER BY seq", (connector, now))
    for r in rows:
        tx.run("UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, "
               "lease_until = NULL, claimed_by = NULL, last_error = ? WHERE id = ?",
               (reason, r["id"]))
        tx.timeline(r["incident_id"], now, "delivery_dead", "baton:reload",
                    {"connector": connector, "action": r["action"], "delivery_id": r["id"],
                     "attempt": r["attempts"], "error": reason})
    return len(rows)


def waiting(tx: Tx, connector: str) -> int:
    """Rows of ``connector`` not yet delivered or given up (``abandon`` asks first, so an
    idle sweep costs a read, not a write)."""
    row = tx.one("SELECT COUNT(*) AS n FROM deliveries WHERE connector = ? "
                 "AND state IN ('pending', 'in_flight')", (connector,))
    return int(row["n"]) if row else 0


def dead_ids(tx: Tx) -> list[str]:
    return [r["id"] for r in tx.all("SELECT id FROM deliveries WHERE state = 'dead' "
                                    "ORDER BY id")]


def depth(tx: Tx) -> dict[str, int]:
    rows = tx.all("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
    out = {"pending": 0, "in_flight": 0, "delivered": 0, "dead": 0, "superseded": 0}
    out.update({r["state"]: int(r["n"]) for r in rows})
    return out


def next_due(tx: Tx) -> float | None:
    row = tx.one("SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'")
    return float(row["t"]) if row and row["t"] is not None else None
