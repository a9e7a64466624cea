"""A big group stays cheap to keep in step: updates coalesce (at most one waiting per
target, built from the incident when it is sent), an acknowledge or resolve supersedes
the waiting update, and a notification carries a bounded alert list. Before, each alert
joining a group queued its own full-document update per target, one after another, so a
resolve waited behind thousands of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, Sink, alert, config_dict, start_gateway

from baton.clock import FakeClock
from baton.store.views import NOTIFICATION_ALERTS


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path, receiver.url)
    data["routes"] = [{"name": "all", "policy": "notify", "group_by": ["service"]}]
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock)


async def settle(gw: Gateway, limit: int = 50) -> int:
    """Dispatcher cycles until nothing more starts; returns how many sent something."""
    for n in range(limit):
        if not await gw.pump():
            return n
    raise AssertionError(f"still sending after {limit} cycles")


async def open_group(gw: Gateway, clock: FakeClock) -> str:
    answer = await gw.ingest(alert("a0", service="db"))
    await settle(gw)
    clock.advance(1)  # alerts joining later are news for the targets
    return str(answer["incidents"][0])


async def join(gw: Gateway, start: int, count: int, per_request: int = 100) -> None:
    for first in range(start, start + count, per_request):
        await gw.ingest([alert(f"a{n}", service="db")
                         for n in range(first, min(start + count, first + per_request))])


def actions(receiver: Sink, incident_id: str) -> list[str]:
    return [r.action for r in receiver.received if r.incident_id == incident_id]


async def test_two_thousand_joining_alerts_do_not_hold_up_the_resolve(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_group(gw, clock)
    await join(gw, 1, 2000)
    updates = [d for d in gw.deliveries(inc) if d["action"] == "update"]
    assert len(updates) == 1  # one waiting update, not one per alert
    await gw.post(f"/v1/incidents/{inc}/resolve", {"by": "alice"}, 200)
    assert await settle(gw) == 1  # the resolve goes out at the next cycle
    assert actions(receiver, inc) == ["trigger", "resolve"]
    (superseded,) = [d for d in gw.deliveries(inc) if d["action"] == "update"]
    assert (superseded["state"], superseded["last_error"]) == (
        "superseded", "superseded by resolve")
    doc = await gw.get("/v1/deliveries?state=superseded")
    assert [d["id"] for d in doc["deliveries"]] == [superseded["id"]]


async def test_updates_follow_the_dispatcher_not_the_alerts(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_group(gw, clock)
    for round_ in range(5):  # 5 cycles, 400 alerts joining in each
        await join(gw, 1 + round_ * 400, 400)
        await settle(gw)
    assert actions(receiver, inc) == ["trigger"] + ["update"] * 5
    last = receiver.received[-1].doc
    # The newest state, bounded: the first 100 alerts and how many were left out.
    assert len(last["alerts"]) == NOTIFICATION_ALERTS
    assert last["truncated_alerts"] == 2001 - NOTIFICATION_ALERTS
    full = await gw.incident(inc)
    assert len(full["alerts"]) == 2001 and "truncated_alerts" not in full


async def test_an_acknowledge_supersedes_the_waiting_update(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_group(gw, clock)
    await join(gw, 1, 3)
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await settle(gw)
    assert actions(receiver, inc) == ["trigger", "acknowledge"]
    states: dict[str, Any] = {d["action"]: d["state"] for d in gw.deliveries(inc)}
    assert states == {"trigger": "delivered", "update": "superseded",
                      "acknowledge": "delivered"}
    # A later change is an update again (nothing waits now).
    await join(gw, 4, 1)
    await settle(gw)
    assert actions(receiver, inc) == ["trigger", "acknowledge", "update"]


async def test_firing_alerts_come_first_in_a_truncated_list(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_group(gw, clock)
    await join(gw, 1, 150)
    await gw.ingest([alert(f"a{n}", service="db", status="resolved") for n in range(100)])
    await settle(gw)
    assert actions(receiver, inc) == ["trigger", "update"]
    last = receiver.received[-1].doc
    assert last["truncated_alerts"] == 51
    assert [a["status"] for a in last["alerts"]] == ["firing"] * 51 + ["resolved"] * 49
