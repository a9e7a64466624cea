"""A thin, dialect-neutral wrapper over a DB-API connection used inside one transaction.

All SQL in the store is written once with ``?`` placeholders; PostgreSQL's driver wants
``%s``, which ``Tx`` rewrites. That is the only dialect difference the queries have.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..ids import new_id


class Tx:
    def __init__(self, conn: Any, paramstyle: str = "qmark") -> None:
        self.conn = conn
        self._pyformat = paramstyle != "qmark"
        self.dialect = "sqlite" if paramstyle == "qmark" else "postgresql"
        self.float_type = "REAL" if paramstyle == "qmark" else "DOUBLE PRECISION"
        self.enqueued = 0  # outbox rows added in this transaction: the dispatcher is woken

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pyformat else sql

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        return int(cur.rowcount)

    def insert(self, table: str, row: dict[str, Any], on_conflict_nothing: bool = False) -> int:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        tail = " ON CONFLICT DO NOTHING" if on_conflict_nothing else ""
        return self.run(f"INSERT INTO {table} ({cols}) VALUES ({marks}){tail}",  # noqa: S608
                        list(row.values()))

    def timeline(self, incident_id: str, at: float, type_: str, actor: str,
                 detail: dict[str, Any]) -> None:
        self.insert("timeline", {
            "id": new_id(at), "incident_id": incident_id, "at": at, "type": type_,
            "actor": actor, "detail": json.dumps(detail, separators=(",", ":"), default=str),
        })
