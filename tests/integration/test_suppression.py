"""Silences, muted routes (time intervals) and inhibition: each with a case that must
notify and one that must not. The fake clock starts Thursday 2026-01-01 00:00 UTC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    ClientFactory,
    Gateway,
    Sink,
    alert,
    config_dict,
    start_gateway,
)

from baton.clock import FakeClock
from baton.store.views import ts

HOUR = 3600.0


def suppression_config(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    data["time_intervals"] = [{"name": "business-hours", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00",
                                                   "end_time": "17:00"}]}]}]
    data["inhibit_rules"] = [{"source_matchers": ['alertname="NodeDown"'],
                              "target_matchers": ['severity="warning"'],
                              "equal": ["instance"]}]
    data["routes"] = [
        {"name": "tickets", "matchers": ['team="tickets"'], "policy": "notify",
         "active_time_intervals": ["business-hours"]},
        {"name": "all", "policy": "notify"},
    ]
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, suppression_config(tmp_path, receiver.url),
                               tmp_path, clock=clock)


async def one(gw: Gateway, body: Any) -> str:
    answer = await gw.ingest(body)
    assert len(answer["incidents"]) == 1, answer
    return str(answer["incidents"][0])


async def silence(gw: Gateway, matchers: list[str], duration: str = "1h") -> dict[str, Any]:
    doc: dict[str, Any] = await gw.post("/v1/silences", {
        "matchers": matchers, "duration": duration, "created_by": "alice",
        "comment": "maintenance"}, 201)
    return doc


async def test_a_silenced_alert_is_stored_but_notifies_nobody(gw: Gateway, receiver: Sink,
                                                              clock: FakeClock) -> None:
    s = await silence(gw, ['service="db"'])
    assert (s["state"], s["matchers"], s["created_by"]) == ("active", ['service="db"'],
                                                            "alice")
    assert s["ends_at"] == ts(clock.now() + HOUR)
    muted = await one(gw, alert("db1", service="db"))
    loud = await one(gw, alert("web1", service="web"))
    assert await gw.pump() == 1
    assert receiver.actions == [(loud, "hook", "trigger")]
    doc = await gw.incident(muted)
    assert doc["suppressed"] == {"reason": "silenced", "silence_id": s["id"]}
    assert [e["type"] for e in doc["timeline"]] == ["received", "suppressed"]
    assert doc["timeline"][-1]["detail"]["silence_id"] == s["id"]
    assert gw.deliveries(muted) == []
    assert (await gw.incident(loud))["suppressed"] is None


async def test_when_the_silence_ends_the_next_event_notifies(gw: Gateway, receiver: Sink,
                                                            clock: FakeClock) -> None:
    s = await silence(gw, ['service="db"'], "30m")
    inc = await one(gw, alert("db1", service="db"))
    clock.advance(10 * 60)
    assert await one(gw, alert("db1", service="db")) == inc  # still silenced
    assert await gw.pump() == 0
    clock.advance(21 * 60)  # past ends_at
    assert (await gw.get(f"/v1/silences/{s['id']}"))["state"] == "expired"
    assert await one(gw, alert("db1", service="db")) == inc
    assert await gw.pump() == 1
    assert receiver.actions == [(inc, "hook", "trigger")]
    doc = await gw.incident(inc)
    assert doc["suppressed"] is None
    assert doc["timeline"][-2]["type"] == "routed"
    assert doc["timeline"][-2]["detail"]["after"]["silence_id"] == s["id"]


async def test_expiring_a_silence_through_the_api(gw: Gateway, clock: FakeClock) -> None:
    s = await silence(gw, ['service="db"'])
    resp = await gw.client.delete(f"/v1/silences/{s['id']}")
    doc = await resp.json()
    assert resp.status == 200 and doc["state"] == "expired" and doc["expired_by"] == "api"
    assert doc["ends_at"] == ts(clock.now())
    resp = await gw.client.delete(f"/v1/silences/{s['id']}")
    assert resp.status == 409
    active = (await gw.get("/v1/silences?state=active"))["silences"]
    assert active == []
    await one(gw, alert("db1", service="db"))
    assert await gw.pump() == 1  # no longer silenced


@pytest.mark.parametrize(("body", "problem"), [
    ({"matchers": [], "duration": "1h", "created_by": "a"}, "matchers: a non-empty list"),
    ({"matchers": ['x=~".*"'], "duration": "1h", "created_by": "a"},
     "would mute every alert"),
    ({"matchers": ['x=~"("'], "duration": "1h", "created_by": "a"}, "matchers[0]:"),
    ({"matchers": ['x="y"'], "created_by": "a"}, "ends_at: give ends_at or duration"),
    ({"matchers": ['x="y"'], "duration": "1h"}, "created_by: required"),
    ({"matchers": ['x="y"'], "duration": "1h", "created_by": "a", "x": 1},
     "x: unknown field"),
    ({"matchers": ['x="y"'], "ends_at": "2025-01-01T00:00:00Z", "created_by": "a"},
     "must be after starts_at and in the future"),
])
async def test_bad_silences_are_400_and_store_nothing(gw: Gateway, body: dict[str, Any],
                                                      problem: str) -> None:
    resp = await gw.client.post("/v1/silences", json=body)
    doc = await resp.json(content_type=None)
    assert resp.status == 400, doc
    assert any(problem in e for e in doc["errors"]), doc
    assert (await gw.get("/v1/silences"))["silences"] == []


async def test_a_route_outside_its_active_time_interval_notifies_nobody(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    night = await one(gw, alert("t1", labels={"team": "tickets"}))  # Thu 00:00
    assert await gw.pump() == 0
    doc = await gw.incident(night)
    assert doc["suppressed"] == {"reason": "muted", "route": "tickets",
                                 "detail": 'outside active_time_intervals "business-hours"'}
    # The window opens at 09:00, so that is when the hold can end by itself.
    assert doc["timeline"][-1]["detail"]["until"] == ts(clock.now() + 9 * HOUR)
    clock.advance(9 * HOUR - 1)
    assert await gw.pump() == 0  # 08:59:59: still outside
    clock.advance(1)  # Thu 09:00: inside business hours, without any new event
    assert await gw.pump() == 1
    assert receiver.actions == [(night, "hook", "trigger")]
    doc = await gw.incident(night)
    assert doc["suppressed"] is None
    assert [e["type"] for e in doc["timeline"]][-3:] == ["unsuppressed", "routed", "notified"]
    day = await one(gw, alert("t2", labels={"team": "tickets"}))
    assert await gw.pump() == 1
    assert receiver.actions[-1] == (day, "hook", "trigger")


async def test_node_down_inhibits_the_warnings_of_that_node_only(gw: Gateway,
                                                                receiver: Sink) -> None:
    # In one body, the warning first: the inhibiting alert is still taken into account.
    answer = await gw.ingest([
        alert("w1", severity="warning", labels={"alertname": "DiskSlow", "instance": "n1"}),
        alert("down", severity="critical", labels={"alertname": "NodeDown",
                                                   "instance": "n1"}),
        alert("w2", severity="warning", labels={"alertname": "DiskSlow", "instance": "n2"}),
    ])
    assert answer["accepted"] == 3
    docs = {d["alerts"][0]["dedup_key"]: d for d in
            [await gw.incident(i) for i in answer["incidents"]]}
    assert docs["w1"]["suppressed"]["reason"] == "inhibited"
    assert docs["w1"]["suppressed"]["by_incident"] == docs["down"]["id"]
    assert docs["w2"]["suppressed"] is None
    assert docs["down"]["suppressed"] is None
    assert await gw.pump() == 2
    assert sorted(i for i, _, _ in receiver.actions) == sorted(
        [docs["down"]["id"], docs["w2"]["id"]])


async def test_a_resolved_node_down_no_longer_inhibits(gw: Gateway, receiver: Sink) -> None:
    down = await one(gw, alert("down", labels={"alertname": "NodeDown", "instance": "n1"}))
    await one(gw, alert("down", status="resolved"))
    assert (await gw.incident(down))["status"] == "resolved"
    w = await one(gw, alert("w1", severity="warning", labels={"alertname": "DiskSlow",
                                                              "instance": "n1"}))
    assert (await gw.incident(w))["suppressed"] is None
