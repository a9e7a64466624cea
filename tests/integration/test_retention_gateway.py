"""A real ``baton serve`` on SQLite with retention in seconds, under churn: incidents are
opened and resolved round after round, and the rows and the database file stay bounded
instead of growing with every round.

Each round opens ``PER_ROUND`` incidents (2 KB descriptions, so pages fill) and resolves
them, then waits until the sink got their triggers and resolves. With every horizon at
1 s and a round every ``PACE`` seconds or more, the gateway holds a second or two of
churn; without pruning it would hold all of it. About 15 s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from procs import Baton, WebhookSink, baton_config, http, query, wait_until, write_yaml

pytestmark = pytest.mark.integration

ROUNDS = 80
PER_ROUND = 20
HORIZON = "1s"
# Rounds start at least this far apart. The horizons are real seconds in a real process,
# so real time has to pass; pacing makes "a few seconds of churn" a small share of the
# run on a fast machine too (a slow one only paces itself).
PACE = 0.15


def sizes(db: Path) -> tuple[int, int]:
    """(main file, WAL file) in bytes."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0


def rows(db: Path) -> dict[str, int]:
    return {t: int(query(db, f"SELECT COUNT(*) FROM {t}")[0][0])
            for t in ("events", "incidents", "timeline", "deliveries")}


def churn(baton: Baton, sink: WebhookSink, token: str, n: int) -> None:
    alerts: list[dict[str, Any]] = [
        {"dedup_key": f"churn-{n}-{i}", "summary": f"churn {n}/{i}", "severity": "warning",
         "description": "d" * 2000} for i in range(PER_ROUND)]
    for status in ("firing", "resolved"):
        body = [{**a, "status": status} for a in alerts]
        answer = http("POST", baton.url("/v1/ingest/gen"), body, token)
        assert answer.status == 202, answer.body
    expected = 2 * PER_ROUND * (n + 1)  # a trigger and a resolve per incident so far
    wait_until(lambda: len(sink.received) >= expected, 30.0,
               f"round {n}'s notifications at the sink")


def test_rows_and_file_size_stay_bounded_under_churn(tmp_path: Path, token: str,
                                                     sink: WebhookSink) -> None:
    db = tmp_path / "churn.db"
    config = baton_config(db, sink.url)
    config["retention"] = {"raw_events": HORIZON, "resolved_incidents": HORIZON,
                           "replay_ids": HORIZON, "interval": "250ms", "batch_size": 200}
    workdir = tmp_path / "baton"
    workdir.mkdir()
    baton = Baton(workdir, write_yaml(workdir / "baton.yaml", config), db,
                  env={"PROM_TOKEN": token})
    baton.start()
    try:
        seen: list[tuple[int, int, dict[str, int]]] = []
        start = time.monotonic()
        for n in range(ROUNDS):
            time.sleep(max(0.0, start + n * PACE - time.monotonic()))
            churn(baton, sink, token, n)
            seen.append((*sizes(db), rows(db)))
        half, last = seen[ROUNDS // 2 - 1], seen[-1]
        print("\nround  db bytes  wal bytes  incidents  events")
        for n, (main, wal, r) in enumerate(seen):
            if n % 5 == 4:
                print(f"{n + 1:>5} {main:>9} {wal:>10} {r['incidents']:>10} {r['events']:>7}")
        opened = ROUNDS * PER_ROUND
        # Rows: a few seconds' worth, far below everything ever opened.
        assert last[2]["incidents"] < opened / 4, seen
        assert last[2]["events"] < 2 * opened / 4, seen
        # The file: no larger after the second half of the run than after the first
        # (a margin for a page cache's worth of fluctuation), though twice the data went
        # through it. The WAL is reused after each checkpoint, so it is bounded too.
        # The file follows the rows alive at once, not the rows ever written: on a busy
        # machine pruning lags and more rows can be alive at a time in the second half,
        # so the bound scales with that peak (the leak this catches grows with the total).
        margin = 256 * 1024
        first, second = seen[:ROUNDS // 2], seen[ROUNDS // 2:]
        peak = max(1.0, max(r["incidents"] for *_, r in second)
                   / max(1, max(r["incidents"] for *_, r in first)))
        assert last[0] <= max(m for m, *_ in first) * peak * 1.25 + margin, seen
        assert last[1] <= max(half[1], 4 * 1024 * 1024) * 1.25 + margin, seen
        # And pruning took old rows while they were young enough to still be counted:
        # eventually every resolved incident goes.
        wait_until(lambda: rows(db)["incidents"] == 0, 20.0, "the last incidents pruned",
                   interval=0.25)
        metrics = http("GET", baton.url("/metrics")).body
        assert 'baton_pruned_rows_total{table="incidents"}' in str(metrics)
        assert "baton_database_size_bytes" in str(metrics)
    finally:
        baton.stop(grace=5.0)
