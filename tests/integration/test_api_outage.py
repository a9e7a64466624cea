"""A receiver that is down, slow or refusing: backoff on the fake clock, Retry-After, order
per (incident, connector), dead letters and their replay (API and CLI), timeouts,
idempotency keys, the concurrency limit and the circuit breaker, all through real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
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

from baton import cli
from baton.clock import FakeClock
from baton.store.views import ts

ERROR_503 = 'HTTP 503: {"status": 503}'


async def gateway(aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
                  clock: FakeClock, breaker_threshold: int | None = 1000,
                  **hook: Any) -> Gateway:
    data = config_dict(tmp_path, receiver.url)
    data["connectors"]["hook"].update(hook)
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock,
                               breaker_threshold=breaker_threshold)


def only(gw: Gateway) -> dict[str, Any]:
    (row,) = gw.deliveries()
    return row


async def test_backoff_then_retry_after_then_delivered(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock,
                       backoff={"initial": "10s", "max": "40s"})
    receiver.script(Reply(503), Reply(503), Reply(503),
                    Reply(429, {"Retry-After": "120"}), Reply(200))
    (inc,) = (await gw.ingest(alert("db-down")))["incidents"]
    t0 = clock.now()
    assert await gw.pump() == 1
    scheduled = [t0]
    while only(gw)["state"] == "pending":
        row = only(gw)
        due = row["next_attempt_at"]
        wait = due - clock.now()
        attempt = row["attempts"]
        if attempt <= 3:  # after 503 number n: full jitter within initial * 2^(n-1)
            assert 0 <= wait <= 10 * 2 ** (attempt - 1)
        else:  # after the 429: exactly the vendor's Retry-After
            assert wait == 120
        if wait > 0:
            clock.t = due - 0.001
            assert await gw.pump() == 0, "attempted before next_attempt_at"
        assert len(receiver.received) == attempt
        clock.t = due
        assert await gw.pump() == 1
        scheduled.append(due)
    assert [r.at for r in receiver.received] == scheduled
    assert [r.attempt for r in receiver.received] == [1, 2, 3, 4, 5]
    assert {r.idempotency_key for r in receiver.received} == {f"{inc}/hook/trigger"}
    row = only(gw)
    assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == (
        "delivered", 5, 200, None)
    assert row["delivered_at"] == clock.now()

    timeline = (await gw.incident(inc))["timeline"]
    assert [e["type"] for e in timeline] == ["received", "routed"] + [
        "delivery_failed"] * 4 + ["notified"]
    failed = [e["detail"] for e in timeline if e["type"] == "delivery_failed"]
    assert [(d["attempt"], d["status"], d["retry_at"]) for d in failed] == [
        (n + 1, s, ts(t)) for n, (s, t) in enumerate(zip([503, 503, 503, 429], scheduled[1:],
                                                         strict=True))]
    assert failed[0] == {"connector": "hook", "action": "trigger",
                         "delivery_id": row["id"], "attempt": 1, "status": 503,
                         "error": ERROR_503, "retry_at": ts(scheduled[1])}
    assert timeline[-1]["detail"] == {"connector": "hook", "action": "trigger",
                                      "delivery_id": row["id"], "attempt": 5, "status": 200}


async def test_retry_after_is_capped_by_max_retry_after(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, max_retry_after="60s")
    receiver.script(Reply(503, {"Retry-After": "100000"}))
    await gw.ingest(alert("k"))
    await gw.pump()
    assert only(gw)["next_attempt_at"] == clock.now() + 60
    clock.advance(59.999)
    assert await gw.pump() == 0
    clock.advance(0.001)
    assert await gw.pump() == 1
    assert only(gw)["state"] == "delivered"


async def test_resolve_waits_for_its_trigger(aiohttp_client: ClientFactory, receiver: Sink,
                                             tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock)
    receiver.script(Reply(503), Reply(503))
    (inc,) = (await gw.ingest(alert("k")))["incidents"]
    assert await gw.pump() == 1
    await gw.ingest(alert("k", status="resolved"))
    trigger, resolve = gw.deliveries(inc)
    assert (trigger["action"], resolve["action"]) == ("trigger", "resolve")
    assert resolve["next_attempt_at"] <= clock.now()  # due, yet blocked by the trigger
    assert await gw.pump() == 0
    for _ in range(2):
        clock.t = gw.deliveries(inc)[0]["next_attempt_at"]
        assert await gw.pump() == 1
    assert await gw.pump() == 1
    assert [(r.action, r.attempt) for r in receiver.received] == [
        ("trigger", 1), ("trigger", 2), ("trigger", 3), ("resolve", 1)]
    assert [d["state"] for d in gw.deliveries(inc)] == ["delivered", "delivered"]


async def test_permanent_failure_dead_letters_and_replay_delivers(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock)
    receiver.script(Reply(400))
    (inc,) = (await gw.ingest(alert("k")))["incidents"]
    assert await gw.pump() == 1
    row = only(gw)
    assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == (
        "dead", 1, 400, 'permanent: HTTP 400: {"status": 400}')
    doc = await gw.incident(inc)
    assert doc["timeline"][-1]["type"] == "delivery_dead"
    assert doc["timeline"][-1]["detail"] == {
        "connector": "hook", "action": "trigger", "delivery_id": row["id"], "attempt": 1,
        "status": 400, "error": 'permanent: HTTP 400: {"status": 400}'}
    dead = await gw.get("/v1/deliveries?state=dead")
    assert [d["id"] for d in dead["deliveries"]] == [row["id"]]
    assert dead["deliveries"][0]["next_attempt_at"] is None
    clock.advance(86400)
    assert await gw.pump() == 0  # dead stays dead until replayed

    replayed = await gw.post(f"/v1/deliveries/{row['id']}/retry", None, 202)
    assert (replayed["state"], replayed["attempts"], replayed["last_error"]) == (
        "pending", 0, None)
    assert (await gw.incident(inc))["timeline"][-1] == {
        "at": ts(clock.now()),
        "type": "delivery_retried", "actor": "api",
        "detail": {"connector": "hook", "action": "trigger", "delivery_id": row["id"]}}
    assert await gw.pump() == 1
    assert (only(gw)["state"], only(gw)["attempts"]) == ("delivered", 1)
    assert [(r.attempt, r.idempotency_key) for r in receiver.received] == [
        (1, f"{inc}/hook/trigger"), (1, f"{inc}/hook/trigger")]

    for target, status in ((row["id"], 409), ("01AAAAAAAAAAAAAAAAAAAAAAAA", 404)):
        resp = await gw.client.post(f"/v1/deliveries/{target}/retry")
        assert (resp.status, resp.content_type) == (status, PROBLEM)
    body = json.loads(await (await gw.client.post(f"/v1/deliveries/{row['id']}/retry")).text())
    assert body["detail"] == f"delivery {row['id']} is delivered, only dead ones are replayed"


async def test_a_target_whose_trigger_was_given_up_is_not_told_the_rest(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    """Nothing was opened there, so acknowledge and resolve would only dead-letter too."""
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock)
    receiver.script(Reply(400))
    (inc,) = (await gw.ingest(alert("k")))["incidents"]
    await gw.pump()
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await gw.post(f"/v1/incidents/{inc}/resolve", {"by": "alice"}, 200)
    assert await gw.pump() == 0
    assert [(d["action"], d["state"]) for d in gw.deliveries(inc)] == [("trigger", "dead")]


async def test_max_attempts_dead_letters(aiohttp_client: ClientFactory, receiver: Sink,
                                         tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, max_attempts=3)
    receiver.default = Reply(503)
    (inc,) = (await gw.ingest(alert("k")))["incidents"]
    states = []
    for _ in range(3):
        clock.t = only(gw)["next_attempt_at"]
        assert await gw.pump() == 1
        states.append((only(gw)["state"], only(gw)["attempts"]))
    assert states == [("pending", 1), ("pending", 2), ("dead", 3)]
    assert only(gw)["last_error"] == f"gave up after 3 attempts: {ERROR_503}"
    clock.advance(3600)
    assert await gw.pump() == 0 and len(receiver.received) == 3
    types = [e["type"] for e in (await gw.incident(inc))["timeline"]]
    assert types[2:] == ["delivery_failed", "delivery_failed", "delivery_dead"]


async def test_max_age_dead_letters(aiohttp_client: ClientFactory, receiver: Sink,
                                    tmp_path: Path, clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, max_age="30s")
    receiver.script(Reply(503, {"Retry-After": "10"}), Reply(503, {"Retry-After": "25"}))
    await gw.ingest(alert("k"))
    await gw.pump()
    assert (only(gw)["state"], only(gw)["next_attempt_at"]) == ("pending", clock.now() + 10)
    clock.advance(10)
    await gw.pump()  # the next attempt would be at +35 s, past the 30 s max_age
    row = only(gw)
    assert (row["state"], row["attempts"]) == ("dead", 2)
    assert row["last_error"] == f"gave up: next attempt would pass max_age: {ERROR_503}"


async def test_dlq_list_and_replay_from_the_command_line(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock(time.time())
    receiver.clock = clock
    data = config_dict(tmp_path, receiver.url)
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(data))

    async def baton(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, ["dlq", "--config", str(path), *argv])
        return code, capsys.readouterr().out

    assert await baton("list") == (0, "no dead-lettered deliveries\n")
    receiver.script(Reply(400), Reply(410))
    answer = await gw.ingest([alert("a"), alert("b")])
    assert await gw.pump() == 2
    dead = gw.deliveries()
    code, out = await baton("list")
    assert code == 0
    assert sorted(out.splitlines()) == sorted(
        f"{d['id']}  hook             trigger     incident={d['incident_id']} attempts=1 "
        f"error={d['last_error']}" for d in dead)
    assert {d["last_error"] for d in dead} == {'permanent: HTTP 400: {"status": 400}',
                                               'permanent: HTTP 410: {"status": 410}'}
    code, out = await baton("list", "--json")
    assert sorted(d["id"] for d in json.loads(out)) == sorted(d["id"] for d in dead)

    code, out = await baton("replay", "--all")
    assert (code, sorted(out.splitlines())) == (0, sorted(f"replaying {d['id']}" for d in dead))
    assert [d["state"] for d in gw.deliveries()] == ["pending", "pending"]
    assert await baton("replay", "--all") == (0, "no dead-lettered deliveries to replay\n")
    clock.t = time.time() + 1  # the CLI schedules on the real clock
    assert await gw.pump() == 2
    assert [d["state"] for d in gw.deliveries()] == ["delivered", "delivered"]
    assert sorted(r.incident_id for r in receiver.received[2:]) == sorted(answer["incidents"])
    for inc in answer["incidents"]:
        entries = [(e["type"], e["actor"]) for e in (await gw.incident(inc))["timeline"]]
        assert entries[-3:] == [("delivery_dead", "connector:hook"), ("delivery_retried", "cli"),
                                ("notified", "connector:hook")]


async def test_a_hanging_receiver_times_out_and_the_retry_keeps_the_key(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, timeout=0.2)
    receiver.script(Reply(hold=True))
    (inc,) = (await gw.ingest(alert("slow")))["incidents"]
    started = time.monotonic()
    assert await gw.pump() == 1
    assert time.monotonic() - started < 5
    row = only(gw)
    assert (row["state"], row["last_status"], row["last_error"]) == (
        "pending", None, "timed out after 0.2s")
    clock.t = row["next_attempt_at"]
    assert await gw.pump() == 1
    assert only(gw)["state"] == "delivered"
    assert [(r.attempt, r.idempotency_key) for r in receiver.received] == [
        (1, f"{inc}/hook/trigger"), (2, f"{inc}/hook/trigger")]
    failed = [e for e in (await gw.incident(inc))["timeline"] if e["type"] == "delivery_failed"]
    assert [e["detail"]["error"] for e in failed] == ["timed out after 0.2s"]
    assert "status" not in failed[0]["detail"]


async def test_concurrency_limits_attempts_in_flight(aiohttp_client: ClientFactory,
                                                    receiver: Sink, tmp_path: Path,
                                                    clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, concurrency=2)
    receiver.default = Reply(hold=True)
    await gw.ingest([alert(f"c{n}") for n in range(5)])
    assert await gw.dispatcher.run_once() == 2
    for _ in range(500):  # the two requests reach the receiver (real I/O, bounded wait)
        if receiver.inflight == 2:
            break
        await asyncio.sleep(0.01)
    assert receiver.inflight == 2
    assert await gw.dispatcher.run_once() == 0  # no free slot: nothing more is claimed
    assert [d["state"] for d in gw.deliveries()].count("in_flight") == 2
    receiver.default = Reply(200)
    receiver.gate.set()
    await gw.dispatcher.idle()
    assert [await gw.pump(), await gw.pump(), await gw.pump()] == [2, 1, 0]
    assert receiver.max_inflight == 2
    assert len(receiver.received) == 5
    assert {d["state"] for d in gw.deliveries()} == {"delivered"}


async def test_circuit_breaker_pauses_a_failing_connector(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        clock: FakeClock) -> None:
    gw = await gateway(aiohttp_client, receiver, tmp_path, clock, breaker_threshold=None,
                       concurrency=10)
    receiver.default = Reply(503, {"Retry-After": "1"})
    await gw.ingest([alert(f"b{n}") for n in range(7)])
    assert await gw.pump() == 7  # seven failures in one cycle: the fifth opened it
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'baton_connector_circuit_open{connector="hook"} 1.0' in metrics
    clock.advance(29.999)  # every delivery is due again after 1 s, yet the circuit is open
    assert await gw.pump() == 0
    assert len(receiver.received) == 7
    clock.advance(0.001)
    receiver.default = Reply(200)
    assert await gw.pump() == 1  # half-open: one probe
    assert await gw.pump() == 6  # it succeeded: closed, the rest go
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'baton_connector_circuit_open{connector="hook"} 0.0' in metrics
    assert {d["state"] for d in gw.deliveries()} == {"delivered"}
