"""Replicas sharing one PostgreSQL database: every delivery made once though both
dispatchers claim at the same time, every escalation timer fired once though both poll,
and the claim of a replica that hangs or dies taken over when its lease runs out."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PROBLEM,
    ClientFactory,
    Gateway,
    Reply,
    Sink,
    alert,
    config_dict,
    start_gateway,
)
from pg import Proxy, pg_schema, pg_url, rows  # noqa: F401
from procs import Baton, WebhookSink, baton_config, http, wait_until, write_yaml

from baton.clock import FakeClock

pytestmark = pytest.mark.integration


def replica_config(tmp_path: Path, url: str, hook_url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, hook_url)
    data["storage"]["url"] = url
    data["policies"]["notify"]["levels"] = [{"notify": ["hook"], "escalate_after": "10m"},
                                            {"notify": ["hook"]}]
    return data


async def two_replicas(aiohttp_client: ClientFactory, data: dict[str, Any], tmp_path: Path,
                       clock: FakeClock) -> tuple[Gateway, Gateway]:
    a = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    b = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    a.dispatcher.worker, b.dispatcher.worker = "replica-a", "replica-b"
    return a, b


async def deliver_all(replicas: tuple[Gateway, ...], sink: Sink,
                      expected: int) -> Counter[str]:
    """Both dispatchers claim and send at the same time, cycle after cycle, until the
    outbox is empty. Returns how many attempts each replica started."""
    started: Counter[str] = Counter()
    for _ in range(500):
        counts = await asyncio.gather(*(g.pump() for g in replicas))
        for g, n in zip(replicas, counts, strict=True):
            started[g.dispatcher.worker] += n
        depth = await replicas[0].store.depth()
        if depth["pending"] == depth["in_flight"] == 0:
            break
    assert len(sink.received) == expected, f"{len(sink.received)} != {expected}"
    return started


async def test_two_replicas_deliver_each_notification_once_and_fire_each_timer_once(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock, tmp_path: Path,
        pg_url: str, pg_schema: str) -> None:  # noqa: F811
    a, b = await two_replicas(aiohttp_client, replica_config(tmp_path, pg_url, receiver.url),
                              tmp_path, clock)
    answers = await asyncio.gather(*[(a if n % 2 else b).ingest(alert(f"k{n}"))
                                     for n in range(200)])
    incident_ids = {i for ans in answers for i in ans["incidents"]}
    assert len(incident_ids) == 200

    started = await deliver_all((a, b), receiver, 200)
    assert started["replica-a"] > 0 and started["replica-b"] > 0, started
    keys = [r.idempotency_key for r in receiver.received]
    assert len(set(keys)) == 200
    assert {r.incident_id for r in receiver.received} == incident_ids
    assert {r.attempt for r in receiver.received} == {1}

    # Ten minutes later nobody has acknowledged: both replicas poll the timers at once.
    clock.advance(600.5)
    fired = 0
    for _ in range(3):
        fired += sum(await asyncio.gather(a.dispatcher.fire_timers(),
                                          b.dispatcher.fire_timers()))
    assert fired == 200
    escalated = rows(pg_schema, "SELECT incident_id, COUNT(*) AS n FROM timeline "
                     "WHERE type = 'escalated' GROUP BY incident_id")
    assert {r["incident_id"] for r in escalated} == incident_ids
    assert {r["n"] for r in escalated} == {1}

    # Each escalation tells the notified hook once (an update; hook is level 2's target
    # too, so that update is its one message of the step), whichever replica sent it.
    await deliver_all((a, b), receiver, 400)
    assert len({r.idempotency_key for r in receiver.received}) == 400
    per_incident: dict[str, list[str]] = defaultdict(list)
    for r in receiver.received:
        per_incident[r.incident_id].append(r.action)
    assert all(v == ["trigger", "update"] for v in per_incident.values())
    assert (await a.store.depth())["delivered"] == 400
    doc = await b.incident(sorted(incident_ids)[0])
    assert doc["escalation"]["level"] == 2


async def test_a_lost_replicas_claim_is_delivered_by_the_other_with_the_same_key(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock, tmp_path: Path,
        pg_url: str) -> None:  # noqa: F811
    a, b = await two_replicas(aiohttp_client, replica_config(tmp_path, pg_url, receiver.url),
                              tmp_path, clock)
    (incident_id,) = (await a.ingest(alert("lost")))["incidents"]
    receiver.script(Reply(hold=True))  # replica A's attempt hangs: A is lost mid-delivery
    assert await a.dispatcher.run_once() == 1
    for _ in range(500):
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    assert len(receiver.received) == 1
    assert await b.pump() == 0  # A's lease holds

    lease = max(a.dispatcher.lease, a.dispatcher.lanes["hook"].timeout * 2 + 5)
    clock.advance(lease + 1)
    assert await b.pump() == 1  # the lease ran out: B claims it and delivers
    first, second = receiver.received
    assert first.idempotency_key == second.idempotency_key
    assert (first.attempt, second.attempt) == (1, 2)

    receiver.gate.set()  # A comes back and finishes late: B's result stands
    await a.dispatcher.idle()
    (delivery,) = (await a.incident(incident_id))["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    timeline = await b.timeline(incident_id)
    assert timeline.count(("notified", "connector:hook")) == 1
    assert await a.pump() == await b.pump() == 0
    assert len(receiver.received) == 2


async def test_readyz_answers_from_postgresql(aiohttp_client: ClientFactory, tmp_path: Path,
                                              clock: FakeClock, pg_url: str) -> None:  # noqa: F811
    gw = await start_gateway(aiohttp_client, replica_config(tmp_path, pg_url,
                                                            "http://127.0.0.1:9/hook"),
                             tmp_path, clock=clock)
    assert await gw.get("/readyz") == {"status": "ready"}
    gw.store.close()
    resp = await gw.client.get("/readyz")
    assert resp.status == 503 and int(resp.headers["Retry-After"]) > 0


def test_baton_serve_replicas_share_one_database(tmp_path: Path, sink: WebhookSink,
                                                 token: str, pg_url: str) -> None:  # noqa: F811
    """Two ``baton serve`` processes on one schema: ready, ingesting, each alert sent once."""
    data = baton_config(tmp_path / "unused.db", sink.url)
    data["storage"]["url"] = pg_url
    replicas = []
    try:
        for n in range(2):
            workdir = tmp_path / f"replica{n}"
            workdir.mkdir()
            path = write_yaml(workdir / "baton.yaml", data)
            replica = Baton(workdir, path, tmp_path / "unused.db", env={"PROM_TOKEN": token})
            replicas.append(replica)
            replica.start()  # waits for /readyz: storage reachable
        for n in range(40):
            answer = http("POST", replicas[n % 2].url("/v1/ingest/gen"),
                          alert(f"serve-{n}"), token)
            assert answer.status == 202, answer.body
        wait_until(lambda: len(sink.received) >= 40, 30, "40 deliveries",
                   detail=lambda: "\n".join(r.log_tail() for r in replicas))
        keys = [r.headers.get("Idempotency-Key") for r in sink.received]
        assert len(keys) == len(set(keys)) == 40
        for replica in replicas:
            assert replica.get("/readyz") == {"status": "ready"}
            assert {d["state"] for d in replica.deliveries()} == {"delivered"}
        listed = replicas[1].incidents()
        assert len(listed) == 40
    finally:
        for replica in replicas:
            replica.stop(grace=5.0)


async def test_acknowledging_on_one_replica_while_the_other_fires_the_timers(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock, tmp_path: Path,
        pg_url: str, pg_schema: str) -> None:  # noqa: F811
    a, b = await two_replicas(aiohttp_client, replica_config(tmp_path, pg_url, receiver.url),
                              tmp_path, clock)
    ids = [(await a.ingest(alert(f"race{n}")))["incidents"][0] for n in range(20)]
    await deliver_all((a, b), receiver, 20)
    clock.advance(600.5)
    acks = [a.client.post(f"/v1/incidents/{i}/acknowledge", json={"by": "alice"})
            for i in ids]
    fired, *answers = await asyncio.gather(b.dispatcher.fire_timers(), *acks)
    assert [r.status for r in answers] == [200] * 20
    fired += await b.dispatcher.fire_timers()  # what was left for the next poll
    # Each incident either escalated before it was acknowledged, or its timer was
    # cancelled by the acknowledge: never escalated (and re-armed) after it.
    timers = rows(pg_schema, "SELECT state, COUNT(*) AS n FROM timers GROUP BY state")
    by_state = {r["state"]: r["n"] for r in timers}
    assert by_state.get("pending", 0) == 0
    assert (by_state.get("fired", 0), by_state.get("cancelled", 0)) == (fired, 20 - fired)
    incidents = rows(pg_schema, "SELECT status, next_at FROM incidents")
    assert {(r["status"], r["next_at"]) for r in incidents} == {("acknowledged", None)}


async def test_the_api_answers_503_while_the_database_is_unreachable(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
        pg_schema: str) -> None:  # noqa: F811
    with Proxy() as proxy:
        gw = await start_gateway(aiohttp_client, replica_config(
            tmp_path, proxy.url(pg_schema), "http://127.0.0.1:9/hook"), tmp_path, clock=clock)
        assert await gw.get("/readyz") == {"status": "ready"}
        await gw.ingest(alert("before"))
        proxy.cut()  # the database goes away (a failover, a partition)
        for call in (lambda: gw.client.get("/readyz"),
                     lambda: gw.client.post("/v1/ingest/app", json=alert("during")),
                     lambda: gw.client.get("/v1/incidents")):
            resp = await asyncio.wait_for(call(), 10)
            assert (resp.status, resp.content_type) == (503, PROBLEM), await resp.text()
            assert int(resp.headers["Retry-After"]) > 0
        proxy.restore()  # back: new connections, no restart of Baton
        assert await gw.get("/readyz") == {"status": "ready"}
        await gw.ingest(alert("after"))
        listed = await gw.get("/v1/incidents")
        assert sorted(i["title"] for i in listed["incidents"]) == ["problem after",
                                                                   "problem before"]
