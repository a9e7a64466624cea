"""Silences: matcher sets that mute notifications for a time, created through the API/CLI.

A silenced alert is still stored and visible; it only notifies nobody, and its incident's
timeline names the silence. Expiring a silence ends it now (as Alertmanager does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import limits
from ..errors import Conflict, NotFound
from ..ids import new_id
from .tx import Tx
from .views import ts


def state_of(row: Mapping[str, Any], now: float) -> str:
    if row["ends_at"] <= now:
        return "expired"
    return "active" if row["starts_at"] <= now else "pending"


def doc(row: Mapping[str, Any], now: float) -> dict[str, Any]:
    return {"id": row["id"], "matchers": json.loads(row["matchers"]),
            "starts_at": ts(row["starts_at"]), "ends_at": ts(row["ends_at"]),
            "created_by": row["created_by"], "comment": row["comment"],
            "created_at": ts(row["created_at"]), "expired_by": row["expired_by"],
            "state": state_of(row, now), "origin": "api"}


def create(tx: Tx, matchers: Sequence[str], starts_at: float, ends_at: float, by: str,
           comment: str, now: float) -> str:
    # Counted in the writing transaction, so concurrent requests cannot pass the bound
    # together. Config silences do not count: they are the operator's own.
    row = tx.one("SELECT COUNT(*) AS n FROM silences WHERE ends_at > ?", (now,))
    count = int(row["n"]) if row else 0
    if count >= limits.MAX_SILENCES:
        raise Conflict(f"{count} silences are active or pending, at most "
                       f"{limits.MAX_SILENCES}: expire some, or widen one's matchers")
    silence_id = new_id(now)
    tx.insert("silences", {"id": silence_id, "matchers": json.dumps(list(matchers)),
                           "starts_at": starts_at, "ends_at": ends_at, "created_by": by,
                           "comment": comment, "created_at": now})
    return silence_id


def expire(tx: Tx, silence_id: str, by: str, now: float) -> None:
    row = tx.one("SELECT ends_at FROM silences WHERE id = ?", (silence_id,))
    if row is None:
        raise NotFound(f"silence {silence_id} not found")
    if row["ends_at"] <= now:
        raise Conflict(f"silence {silence_id} has already expired")
    tx.run("UPDATE silences SET ends_at = ?, expired_by = ? WHERE id = ?",
           (now, by, silence_id))


def get(tx: Tx, silence_id: str) -> dict[str, Any] | None:
    return tx.one("SELECT * FROM silences WHERE id = ?", (silence_id,))


def listing(tx: Tx, state: str | None, now: float, limit: int) -> list[dict[str, Any]]:
    where, params = "", []
    if state == "active":
        where, params = "WHERE starts_at <= ? AND ends_at > ?", [now, now]
    elif state == "pending":
        where, params = "WHERE starts_at > ?", [now]
    elif state == "expired":
        where, params = "WHERE ends_at <= ?", [now]
    return tx.all(f"SELECT * FROM silences {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
                  [*params, limit])
