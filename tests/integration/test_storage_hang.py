"""A PostgreSQL that hangs (TCP alive, no answers; a proxy the test controls holds every
byte): requests get 503 + Retry-After within the storage deadline instead of waiting with
their bodies in memory, /readyz fails within its own deadline, and once the database
answers again everything recovers with every 202 stored exactly once. And the
dispatcher's writes keep a connection of their own while request writes take the rest."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers import PROBLEM, ClientFactory, Hold, alert, config_dict, start_gateway
from pg import Proxy, pg_schema, pg_url, rows  # noqa: F401

from baton.api.ops import READY_TIMEOUT
from baton.clock import FakeClock
from baton.store import open_store

pytestmark = pytest.mark.integration

DEADLINE = 2.0  # storage.operation_timeout below


async def test_a_hung_database_answers_503_in_time_and_loses_nothing(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
        pg_schema: str) -> None:  # noqa: F811
    with Proxy() as proxy:
        data = config_dict(tmp_path)
        data["storage"] = {"url": proxy.url(pg_schema), "operation_timeout": "2s",
                           "max_queue_age": "1s"}
        gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
        assert await gw.get("/readyz") == {"status": "ready"}
        await gw.ingest(alert("before"))

        proxy.hang()
        started = time.monotonic()
        # More requests than the engine has writer connections: some hang mid-transaction,
        # the rest wait in the queue; none may wait past the deadline.
        answers = await asyncio.wait_for(asyncio.gather(*(
            gw.client.post("/v1/ingest/app", json=alert(f"during-{n}")) for n in range(8))),
            DEADLINE + 10)
        took = time.monotonic() - started
        assert took < DEADLINE + 3, f"{took:.1f}s"  # loose: the deadline plus slack
        assert {(r.status, r.content_type) for r in answers} == {(503, PROBLEM)}
        assert all(int(r.headers["Retry-After"]) > 0 for r in answers)
        details = [(await r.json())["detail"] for r in answers]
        # Queued, held mid-transaction, or still connecting: none had begun to commit.
        assert not any("may still commit" in d for d in details), details

        started = time.monotonic()
        resp = await asyncio.wait_for(gw.client.get("/readyz"), READY_TIMEOUT + 10)
        assert (resp.status, resp.content_type) == (503, PROBLEM), await resp.text()
        assert time.monotonic() - started < READY_TIMEOUT + 1.5

        proxy.resume()
        for _ in range(100):  # the held transactions roll back; the connections recover
            if (await gw.client.get("/readyz")).status == 200:
                break
            await asyncio.sleep(0.1)
        assert await gw.get("/readyz") == {"status": "ready"}
        # Told "nothing was stored", so nothing was: the held writes rolled back.
        stored = rows(pg_schema, "SELECT dedup_key FROM alerts")
        assert sorted(r["dedup_key"] for r in stored) == ["before"]
        # The senders retry; each alert is stored once.
        for n in range(8):
            await gw.ingest(alert(f"during-{n}"))
        stored = rows(pg_schema, "SELECT dedup_key, COUNT(*) AS n FROM alerts "
                                 "GROUP BY dedup_key")
        assert {r["dedup_key"]: r["n"] for r in stored} == {
            "before": 1, **{f"during-{n}": 1 for n in range(8)}}
        events = rows(pg_schema, "SELECT COUNT(*) AS n FROM events")
        assert events[0]["n"] == 9



async def test_dispatcher_writes_have_a_connection_of_their_own(
        pg_url: str) -> None:  # noqa: F811
    """Every request writer busy (an ingest storm): claims and timers still run."""
    store = open_store(pg_url)
    store.open()
    try:
        holds = [Hold() for _ in range(4)]  # the engine's request writers
        held = [asyncio.create_task(store.engine.write(h)) for h in holds]
        for h in holds:
            assert await asyncio.to_thread(h.inside.wait, 5)
        now = time.time()
        assert await asyncio.wait_for(store.claim("hook", 10, now, 60, "w"), 3) == []
        assert await asyncio.wait_for(store.fire_timers(now), 3) == 0
        for h in holds:
            h.release.set()
        await asyncio.gather(*held)
    finally:
        store.close()
