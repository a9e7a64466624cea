"""Overload on the SQLite store: ingest is shed early with 503 + Retry-After when queued
writes grow old or big (the queue's age on a fake clock, no sleeping), the dispatcher's
writes pass an ingest storm, a big batch lets single alerts through between its chunks,
and /readyz fails when the database's disk is full."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PROBLEM,
    ClientFactory,
    Gateway,
    Hold,
    alert,
    config_dict,
    db_rows,
    start_gateway,
)

from baton import signing
from baton.clock import FakeClock
from baton.ingest import CHUNK_ALERTS
from baton.store.sqlite import SQLiteEngine

pytestmark = pytest.mark.integration



async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):  # bounded: 5 s of real I/O at most
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def hold_writer(gw: Gateway) -> tuple[Hold, asyncio.Task[Any]]:
    hold = Hold()
    task = asyncio.create_task(gw.store.engine.write(hold))
    await until(hold.inside.is_set, "the writer to be held")
    return hold, task


def engine(gw: Gateway) -> SQLiteEngine:
    e = gw.store.engine
    assert isinstance(e, SQLiteEngine)
    return e


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
                  **storage: Any) -> Gateway:
    data = config_dict(tmp_path)
    data["storage"].update(storage)
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock)


def post(gw: Gateway, body: Any) -> asyncio.Task[Any]:
    async def go() -> tuple[int, str]:
        resp = await gw.client.post("/v1/ingest/app", json=body)
        return resp.status, await resp.text()
    return asyncio.create_task(go())


async def test_ingest_is_shed_while_queued_writes_are_old(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, tmp_path, clock, max_queue_age="2s")
    ticks = [1000.0]
    engine(gw).backlog.clock = lambda: ticks[0]
    hold, held = await hold_writer(gw)
    queued = [post(gw, alert(f"q{n}")) for n in range(3)]
    await until(lambda: len(engine(gw).backlog) == 3, "three queued writes")

    ticks[0] += 1.9  # young enough: still queued, not shed
    young = post(gw, alert("young"))
    await until(lambda: len(engine(gw).backlog) == 4, "the fourth queued write")
    ticks[0] += 0.1  # the oldest has waited 2 s: new ingest is refused at once
    resp = await gw.client.post("/v1/ingest/app", json=alert("shed"))
    assert (resp.status, resp.content_type) == (503, PROBLEM)
    assert int(resp.headers["Retry-After"]) >= 1
    assert "overloaded" in (await resp.json())["detail"]

    hold.release.set()
    await held
    assert [(await t)[0] for t in (*queued, young)] == [202] * 4  # queued ones are kept
    await gw.ingest(alert("after"))  # the queue drained: accepted again
    titles = {i["title"] for i in (await gw.get("/v1/incidents"))["incidents"]}
    assert titles == {f"problem {k}" for k in ("q0", "q1", "q2", "young", "after")}


async def test_ingest_is_shed_before_reading_when_queued_bodies_pass_the_budget(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, tmp_path, clock, max_pending_bytes=4096)
    hold, held = await hold_writer(gw)
    big = alert("big", description="x" * 3000)
    first = post(gw, big)
    await until(lambda: len(engine(gw).backlog) == 1, "the first body queued")
    assert engine(gw).backlog.bytes >= 3000
    body = json.dumps(alert("b2", description="y" * 3000))
    resp = await gw.client.post("/v1/ingest/app", data=body,
                                headers={"Content-Type": "application/json"})
    assert (resp.status, resp.content_type) == (503, PROBLEM)
    assert int(resp.headers["Retry-After"]) >= 1
    hold.release.set()
    await held
    assert (await first)[0] == 202
    assert engine(gw).backlog.bytes == 0


async def test_dispatcher_writes_pass_an_ingest_storm(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, tmp_path, clock)
    await gw.ingest(alert("paging"))
    hold, held = await hold_writer(gw)
    storm = [post(gw, alert(f"storm-{n}")) for n in range(40)]
    await until(lambda: engine(gw)._writes.qsize() == 40, "the storm to queue")
    finished: list[str] = []

    def track(name: str, aw: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(aw)
        task.add_done_callback(lambda _t: finished.append(name))
        return task

    tasks = [track(f"ingest-{n}", t) for n, t in enumerate(storm)]
    claim = track("claim", gw.store.claim("hook", 10, clock.now(), 60, "w"))
    timers = track("timers", gw.store.fire_timers(clock.now()))
    lane = getattr(engine(gw), "_priority", None)  # None: an engine without one
    await until(lambda: lane is None or lane.qsize() == 2, "both in the priority lane")
    hold.release.set()
    await held
    await asyncio.gather(*tasks, claim, timers)
    assert [c.incident["title"] for c in claim.result()] == ["problem paging"]
    # Both ran before any of the 40 ingests queued ahead of them.
    assert set(finished[:2]) == {"claim", "timers"}, finished[:5]


async def test_readyz_fails_when_the_database_disk_is_full(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    gw = await gateway(aiohttp_client, tmp_path, clock)
    assert await gw.get("/readyz") == {"status": "ready"}
    real = os.statvfs

    def full(path: Any) -> os.statvfs_result:  # the file system reports no free block
        st = real(path)
        return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, 0, 0, st.f_files,
                                  st.f_ffree, st.f_favail, st.f_flag, st.f_namemax))

    monkeypatch.setattr(os, "statvfs", full)
    resp = await gw.client.get("/readyz")
    assert (resp.status, resp.content_type) == (503, PROBLEM)
    assert "disk is full" in (await resp.json())["detail"]
    monkeypatch.setattr(os, "statvfs", real)
    assert await gw.get("/readyz") == {"status": "ready"}


async def test_a_big_batch_does_not_hold_out_single_alerts(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, tmp_path, clock)
    batch = [alert(f"bulk-{n}") for n in range(5 * CHUNK_ALERTS)]
    hold, held = await hold_writer(gw)
    finished: list[str] = []
    big = post(gw, batch)
    big.add_done_callback(lambda _t: finished.append("big"))
    await until(lambda: engine(gw)._writes.qsize() == 1, "the batch to queue")
    single = post(gw, alert("single"))
    single.add_done_callback(lambda _t: finished.append("single"))
    await until(lambda: engine(gw)._writes.qsize() == 2, "the single alert to queue")
    hold.release.set()
    await held
    assert [(await t)[0] for t in (big, single)] == [202, 202]
    # The single alert committed with the batch's first chunk, not after its last.
    assert finished == ["single", "big"]
    answer = json.loads((await big)[1])
    assert (answer["accepted"], len(answer["incidents"])) == (5 * CHUNK_ALERTS,
                                                             5 * CHUNK_ALERTS)
    events = db_rows(tmp_path, "SELECT body FROM events ORDER BY id")
    assert len(events) == 1 + 5  # the single alert, the batch's body and four pointers
    # Sent again (a sender that missed the 202): deduplicated, nothing opened twice.
    again = json.loads((await post(gw, batch))[1])
    assert sorted(again["incidents"]) == sorted(answer["incidents"])
    count = db_rows(tmp_path, "SELECT COUNT(*) AS n FROM incidents")
    assert count[0]["n"] == 5 * CHUNK_ALERTS + 1


async def test_a_redelivered_big_signed_batch_is_a_replay(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> None:
    """The message id is taken with the last chunk and checked before the first."""
    secret = "whsec_" + base64.b64encode(b"overload-test-key-24-bytes").decode()
    data = config_dict(tmp_path)
    data["sources"]["app"]["auth"] = {"type": "standard-webhooks",
                                      "secret": {"env": "SW_SECRET"}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock,
                             environ={"SW_SECRET": secret})
    body = json.dumps([alert(f"bulk-{n}") for n in range(2 * CHUNK_ALERTS + 1)]).encode()
    headers = {"Content-Type": "application/json", **signing.headers(
        signing.decode_secret(secret), "msg_big", int(clock.now()), body)}
    answers = []
    for _ in range(2):
        resp = await gw.client.post("/v1/ingest/app", data=body, headers=headers)
        assert resp.status == 202
        answers.append(await resp.json())
    assert answers[0]["accepted"] == 2 * CHUNK_ALERTS + 1
    assert answers[1] == {"accepted": 0, "incidents": [], "replayed": True}
    assert db_rows(tmp_path, "SELECT COUNT(*) AS n FROM events")[0]["n"] == 3
    assert db_rows(tmp_path, "SELECT MAX(event_count) AS n FROM incidents")[0]["n"] == 1


async def test_concurrent_probes_share_one_readiness_write(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever can reach /readyz cannot queue writes on the dispatcher's lane: probes
    that come while a check is under way share it (64 at once made 64 writes before)."""
    gw = await gateway(aiohttp_client, tmp_path, clock)
    engine = gw.store.engine
    real = engine.write
    priority_writes = 0

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal priority_writes
        priority_writes += bool(kwargs.get("priority"))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(engine, "write", counting)
    answers = await asyncio.gather(*(gw.client.get("/readyz") for _ in range(64)))
    assert [r.status for r in answers] == [200] * 64
    assert 1 <= priority_writes <= 4  # the waves that found no check under way
