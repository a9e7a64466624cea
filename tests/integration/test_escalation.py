"""Escalation against a fake clock, in process: levels over time, repeat, acknowledge,
unacknowledge, resolve, manual escalate, reminders, ack timeout, schedules, snapshot
isolation across a config reload, and timers that came due while nothing ran.

Time only moves when a test moves the fake clock; dispatcher cycles then fire the timers
due and send what they enqueued, waiting for the attempts. The webhook sink records
the fake time of each request, so the tests assert *when* each level was sent, to the
second, not only that it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import (
    PROBLEM,
    ClientFactory,
    Gateway,
    Received,
    Sink,
    alert,
    config_dict,
    db_rows,
    start_gateway,
)

from baton.clock import FakeClock
from baton.store.views import ts

M = 60.0
BOB = {"email": "bob@example.com", "phone": "+15550101"}
PEOPLE = {
    "alice": {"email": "alice@example.com", "phone": "+15550100"},
    "bob": BOB,
    "carol": {"email": "carol@example.com", "slack": "U0CAROL"},
    "dave": {"email": "dave@example.com"},
}


def hook_level(after: str | None = "10m", **extra: Any) -> dict[str, Any]:
    level: dict[str, Any] = {"notify": ["hook"], **extra}
    if after:
        level["escalate_after"] = after
    return level


def pager_level(to: str = "person:bob", after: str | None = "5m") -> dict[str, Any]:
    level: dict[str, Any] = {"notify": [{"connector": "pager", "to": to}]}
    if after:
        level["escalate_after"] = after
    return level


def esc_config(tmp_path: Path, url: str, *levels: dict[str, Any], repeat: int = 1,
               **policy: Any) -> dict[str, Any]:
    """Connectors ``hook`` and ``pager`` (both webhooks to the sink), people, and policy
    ``notify`` with ``levels`` (default: hook after 10m, pager to bob after 5m)."""
    data = config_dict(tmp_path, url)
    data["connectors"]["pager"] = {"type": "webhook", "url": url,
                                   "backoff": {"initial": "1s", "max": "1s"}}
    data["people"] = PEOPLE
    data["teams"] = {"leads": {"members": ["carol", "dave"]}}
    data["policies"] = {"notify": {"levels": list(levels or (hook_level(), pager_level())),
                                   "repeat": repeat, **policy}}
    return data


def bob_target() -> dict[str, Any]:
    return {"connector": "pager", "to": "person:bob", "params": {}, "person": "bob",
            "contacts": BOB}


HOOK: dict[str, Any] = {"connector": "hook", "to": None, "params": {}}


# --- fixtures and small helpers ------------------------------------------------------------

async def gateway(aiohttp_client: ClientFactory, data: dict[str, Any], tmp_path: Path,
                  clock: FakeClock) -> Gateway:
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock)


class Timeline:
    """Opens incidents and walks the fake clock, offsets in seconds from ``t0``."""

    def __init__(self, gw: Gateway, sink: Sink) -> None:
        self.gw = gw
        self.sink = sink
        self.t0 = gw.clock.now()

    async def open(self, key: str = "k") -> str:
        answer = await self.gw.ingest(alert(key))
        await self.settle()
        return str(answer["incidents"][0])

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        """A management call now, then whatever it enqueued is sent (at the same time)."""
        doc = await self.gw.post(path, body, status)
        await self.settle()
        return doc

    async def settle(self) -> None:
        """Dispatcher cycles at this instant until nothing more starts: deliveries of one
        (incident, connector) go one after the other, each cycle sends the next."""
        for _ in range(50):
            if not await self.gw.pump():
                return
        raise AssertionError("still sending after 50 cycles")

    async def to(self, offset: float) -> None:
        """Move the clock to ``t0 + offset`` (never back), fire what is due, send it."""
        delta = self.t0 + offset - self.gw.clock.now()
        assert delta >= 0, f"the clock cannot go back to t+{offset:g}s"
        self.gw.clock.advance(delta)
        await self.settle()

    async def walk(self, until: float, every: float = M) -> None:
        """A dispatcher cycle every ``every`` seconds up to ``t0 + until``: a timer that
        fired early would show up at the first cycle after its (wrong) time."""
        now = self.gw.clock.now() - self.t0
        while now + every <= until:
            now += every
            await self.to(now)
        if now < until:
            await self.to(until)

    def sent(self, since: int = 0, updates: bool = False) -> list[tuple[float, str, str, str]]:
        """(seconds after t0, connector, action, idempotency key) of each request (the key
        as the body carries it; the header percent-encodes the "." of ``L2.0``). The
        ``update`` an escalation sends to those already told is left out unless asked
        for: these tests are about who is paged when (see the update test)."""
        return [(r.at - self.t0, r.connector, r.action,
                 r.doc["notification"]["idempotency_key"]) for r in self.received(updates)
                ][since:]

    def received(self, updates: bool = False) -> list[Received]:
        return [r for r in self.sink.received if updates or r.action != "update"]

    def at(self, offset: float) -> str | None:
        return ts(self.t0 + offset)

    async def escalation(self, incident_id: str) -> dict[str, Any]:
        doc = await self.gw.incident(incident_id)
        esc: dict[str, Any] = doc["escalation"]
        return esc

    async def entries(self, incident_id: str, *types: str) -> list[dict[str, Any]]:
        doc = await self.gw.incident(incident_id)
        return [e for e in doc["timeline"] if e["type"] in types]

    def pending_timers(self, incident_id: str) -> list[tuple[str, float, int, int]]:
        return [(r["kind"], r["due_at"] - self.t0, r["level"], r["loop_no"])
                for r in db_rows(self.gw.tmp_path, "SELECT * FROM timers WHERE incident_id = ? "
                                 "AND state = 'pending' ORDER BY due_at", (incident_id,))]


def key(inc: str, *parts: str) -> str:
    return "/".join((inc, *parts))


def updates_at(tl: Timeline, offset: float) -> list[tuple[str, str]]:
    """(connector, idempotency key) of the updates sent at ``t0 + offset``. At a step
    that names a target already told (a repeat), that target gets this one update (the
    escalation), not an update and a second trigger: one message per person per step."""
    return sorted((c, k) for t, c, a, k in tl.sent(updates=True)
                  if a == "update" and t == offset)


# --- level progression and repeat --------------------------------------------------------

async def test_levels_progress_repeat_once_then_stay(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    assert tl.sent() == [(0, "hook", "trigger", key(inc, "hook", "trigger"))]
    assert await tl.escalation(inc) == {"policy": "notify", "level": 1, "loops": 0,
                                        "next_at": tl.at(600)}
    assert tl.pending_timers(inc) == [("escalate", 600, 1, 0)]
    routed = await tl.entries(inc, "routed")
    assert routed[0]["detail"] == {"route": "all", "policy": "notify", "level": 1,
                                   "targets": [HOOK], "escalate_at": tl.at(600)}

    await tl.walk(599)  # a cycle every minute, then at t+9m59s: nothing yet
    assert len(tl.sent()) == 1
    assert (await tl.escalation(inc))["level"] == 1

    await tl.to(600)
    l2 = key(inc, "pager", "trigger", "person:bob", "L2.0")
    assert tl.sent(1) == [(600, "pager", "trigger", l2)]
    assert await tl.escalation(inc) == {"policy": "notify", "level": 2, "loops": 0,
                                        "next_at": tl.at(900)}
    (row,) = [d for d in gw.deliveries(inc) if d["idempotency_key"] == l2]
    assert json.loads(row["target"]) == bob_target()  # bob's contacts from people:
    # ... and the receiver is told who to reach, in the notification it gets.
    assert receiver.received[-1].doc["notification"]["target"] == bob_target()

    await tl.walk(1500)
    assert tl.sent(2) == []  # the repeat pages nobody new ...
    assert updates_at(tl, 900) == [  # ... it reaches those told once each, as an update
        ("hook", key(inc, "hook", "update", "L1.1")),
        ("pager", key(inc, "pager", "update", "person:bob", "L1.1"))]
    assert updates_at(tl, 1500) == [
        ("hook", key(inc, "hook", "update", "L2.1")),
        ("pager", key(inc, "pager", "update", "person:bob", "L2.1"))]
    assert await tl.escalation(inc) == {"policy": "notify", "level": 2, "loops": 1,
                                        "next_at": None}
    assert tl.pending_timers(inc) == []

    await tl.walk(3600)  # repeat used up: it stays at the last level
    assert len(tl.sent(updates=True)) == 7  # 2 triggers, 1 escalation update, 4 repeat
    escalated = await tl.entries(inc, "escalated")
    assert escalated == [
        {"at": tl.at(600), "type": "escalated", "actor": "baton",
         "detail": {"from": {"level": 1, "loop": 0}, "to": {"level": 2, "loop": 0},
                    "reason": "not acknowledged within 10m", "targets": [bob_target()]}},
        {"at": tl.at(900), "type": "escalated", "actor": "baton",
         "detail": {"from": {"level": 2, "loop": 0}, "to": {"level": 1, "loop": 1},
                    "reason": "not acknowledged within 5m",
                    "targets": [{**HOOK, "action": "update"}]}},
        {"at": tl.at(1500), "type": "escalated", "actor": "baton",
         "detail": {"from": {"level": 1, "loop": 1}, "to": {"level": 2, "loop": 1},
                    "reason": "not acknowledged within 10m",
                    "targets": [{**bob_target(), "action": "update"}]}},
    ]
    assert (await gw.incident(inc))["status"] == "triggered"


async def test_without_repeat_the_last_level_is_final(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, repeat=0)
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.walk(3600, every=5 * M)
    assert [(t, c) for t, c, _a, _k in tl.sent()] == [(0, "hook"), (600, "pager")]
    assert await tl.escalation(inc) == {"policy": "notify", "level": 2, "loops": 0,
                                        "next_at": None}


async def test_incidents_escalate_independently(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    first = await tl.open("a")
    await tl.to(4 * M)
    second = await tl.open("b")
    await tl.walk(15 * M)
    assert [(t, i, c) for (t, c, _a, _k), i in
            zip(tl.sent(), [r.incident_id for r in tl.received()], strict=True)] == [
        (0, first, "hook"), (240, second, "hook"), (600, first, "pager"),
        (840, second, "pager")]
    assert updates_at(tl, 900) == [  # first's repeat reaches those already told
        ("hook", key(first, "hook", "update", "L1.1")),
        ("pager", key(first, "pager", "update", "person:bob", "L1.1"))]


# --- acknowledge, resolve, unacknowledge ---------------------------------------------------

async def test_acknowledge_stops_escalation(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(5 * M)
    doc = await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    assert doc["escalation"] == {"policy": "notify", "level": 1, "loops": 0, "next_at": None}
    assert tl.sent(1) == [(300, "hook", "acknowledge", key(inc, "hook", "acknowledge"))]
    assert tl.pending_timers(inc) == []

    await tl.walk(2 * 3600, every=5 * M)
    assert len(tl.sent()) == 2
    assert await tl.entries(inc, "escalated") == []
    assert (await gw.incident(inc))["status"] == "acknowledged"


async def test_acknowledge_after_an_escalation_tells_both_levels(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(10 * M)
    await tl.to(12 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "bob"}, 200)
    assert sorted(tl.sent(2)) == [
        (720, "hook", "acknowledge", key(inc, "hook", "acknowledge")),
        (720, "pager", "acknowledge", key(inc, "pager", "acknowledge", "person:bob")),
    ]
    await tl.walk(3600, every=5 * M)  # t+15m would have been level 1 again
    assert len(tl.sent()) == 4
    assert await tl.escalation(inc) == {"policy": "notify", "level": 2, "loops": 0,
                                        "next_at": None}


async def test_resolve_tells_every_notified_connector_and_stops_timers(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(10 * M)
    await tl.to(11 * M)
    doc = await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "carol"}, 200)
    assert (doc["status"], doc["escalation"]["next_at"]) == ("resolved", None)
    assert sorted(tl.sent(2)) == [
        (660, "hook", "resolve", key(inc, "hook", "resolve")),
        (660, "pager", "resolve", key(inc, "pager", "resolve", "person:bob")),
    ]
    assert tl.pending_timers(inc) == []
    states = {r["state"] for r in db_rows(tmp_path, "SELECT state FROM timers WHERE "
                                          "incident_id = ?", (inc,))}
    assert states == {"fired", "cancelled"}
    await tl.walk(3600, every=5 * M)
    assert [(t, c, a) for t, c, a, _k in tl.sent()][:2] == [
        (0, "hook", "trigger"), (600, "pager", "trigger")]
    assert len(tl.sent()) == 4  # nothing after the resolve


async def test_resolve_before_escalation_tells_only_level_one(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(M)
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "carol"}, 200)
    await tl.walk(3600, every=5 * M)
    assert tl.sent() == [(0, "hook", "trigger", key(inc, "hook", "trigger")),
                         (60, "hook", "resolve", key(inc, "hook", "resolve"))]


async def test_resolved_by_the_source_stops_escalation(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open("k")
    await tl.to(10 * M)
    await tl.to(13 * M)
    await gw.ingest(alert("k", status="resolved"))
    await tl.settle()
    await tl.walk(3600, every=5 * M)
    assert [(t, c, a) for t, c, a, _k in tl.sent()][2:] in (
        [(780, "hook", "resolve"), (780, "pager", "resolve")],
        [(780, "pager", "resolve"), (780, "hook", "resolve")])
    assert tl.pending_timers(inc) == []


async def test_unacknowledge_resumes_with_a_fresh_wait(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(2 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await tl.walk(20 * M)
    assert [(t, a) for t, _c, a, _k in tl.sent()] == [(0, "trigger"), (120, "acknowledge")]

    doc = await tl.post(f"/v1/incidents/{inc}/unacknowledge",
                        {"by": "alice", "note": "handing back"}, 200)
    assert (doc["status"], doc["acknowledged_at"], doc["acknowledged_by"]) == (
        "triggered", None, None)
    assert doc["escalation"] == {"policy": "notify", "level": 1, "loops": 0,
                                 "next_at": tl.at(30 * M)}
    assert doc["timeline"][-1] == {"at": tl.at(20 * M), "type": "unacknowledged",
                                   "actor": "alice", "detail": {"note": "handing back"}}
    assert tl.pending_timers(inc) == [("escalate", 30 * M, 1, 0)]
    await tl.walk(30 * M - 1)
    assert len(tl.sent()) == 2
    await tl.to(30 * M)
    assert tl.sent(2) == [(1800, "pager", "trigger",
                           key(inc, "pager", "trigger", "person:bob", "L2.0"))]
    (esc,) = await tl.entries(inc, "escalated")
    assert (esc["at"], esc["detail"]["reason"]) == (tl.at(1800), "not acknowledged within 10m")


async def test_unacknowledge_is_409_unless_acknowledged(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    problem = await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 409)
    assert problem["status"] == 409 and "triggered" in problem["detail"]
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "alice"}, 200)
    problem = await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 409)
    assert "resolved" in problem["detail"]
    await gw.post("/v1/incidents/01JD0000000000000000000000/unacknowledge",
                  {"by": "alice"}, 404)
    await tl.post(f"/v1/incidents/{inc}/unacknowledge", {}, 400)
    assert (await gw.incident(inc))["status"] == "resolved"


# --- manual escalate -----------------------------------------------------------------------

async def test_manual_escalate_moves_on_now_and_restarts_the_clock(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(M)
    doc = await tl.post(f"/v1/incidents/{inc}/escalate",
                        {"by": "alice", "reason": "needs the db team"})
    assert doc["escalation"] == {"policy": "notify", "level": 2, "loops": 0,
                                 "next_at": tl.at(60 + 300)}
    assert doc["timeline"][-1] == {
        "at": tl.at(60), "type": "escalated", "actor": "alice",
        "detail": {"from": {"level": 1, "loop": 0}, "to": {"level": 2, "loop": 0},
                   "reason": "needs the db team", "targets": [bob_target()]}}
    assert tl.sent(1) == [(60, "pager", "trigger",
                           key(inc, "pager", "trigger", "person:bob", "L2.0"))]
    assert tl.pending_timers(inc) == [("escalate", 360, 2, 0)]

    # the next level comes 5m after the manual escalate; the old t+10m timer is gone
    await tl.walk(6 * M - 1)
    assert len(tl.sent()) == 2
    await tl.to(6 * M)
    assert tl.sent(2) == []
    assert ("hook", key(inc, "hook", "update", "L1.1")) in updates_at(tl, 360)
    await tl.walk(16 * M - 1)
    assert len(tl.sent()) == 2
    await tl.to(16 * M)
    assert ("pager", key(inc, "pager", "update", "person:bob", "L2.1")) in updates_at(tl, 960)
    pager_triggers = [k for _t, c, a, k in tl.sent() if (c, a) == ("pager", "trigger")]
    assert len(pager_triggers) == len(set(pager_triggers)) == 1

    # last level, repeat used: nowhere to go
    problem = await tl.post(f"/v1/incidents/{inc}/escalate",
                            {"by": "alice", "reason": "more"}, 409)
    assert problem["status"] == 409 and "last level" in problem["detail"]
    reasons = [(e["actor"], e["detail"]["reason"])
               for e in await tl.entries(inc, "escalated")]
    assert reasons == [("alice", "needs the db team"),
                       ("baton", "not acknowledged within 5m"),
                       ("baton", "not acknowledged within 10m")]


async def test_manual_escalate_at_the_last_level_wraps_while_repeat_lasts(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    body = {"by": "ops", "reason": "nobody answers"}
    levels = []
    for _ in range(3):
        doc = await tl.post(f"/v1/incidents/{inc}/escalate", body, 200)
        levels.append((doc["escalation"]["level"], doc["escalation"]["loops"]))
    assert levels == [(2, 0), (1, 1), (2, 1)]
    await tl.post(f"/v1/incidents/{inc}/escalate", body, 409)
    keys = [k for _t, _c, _a, k in tl.sent(updates=True)]
    assert sorted(keys) == sorted([
        key(inc, "hook", "trigger"),
        key(inc, "hook", "update", "L2.0"),
        key(inc, "pager", "trigger", "person:bob", "L2.0"),
        key(inc, "hook", "update", "L1.1"),  # the repeat: one message each, no new page
        key(inc, "pager", "update", "person:bob", "L1.1"),
        key(inc, "hook", "update", "L2.1"),
        key(inc, "pager", "update", "person:bob", "L2.1")])


async def test_manual_escalate_is_409_for_resolved_and_400_without_reason(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    problem = await tl.post(f"/v1/incidents/{inc}/escalate", {"by": "alice"}, 400)
    assert "reason: required" in problem["errors"]
    await tl.post(f"/v1/incidents/{inc}/escalate", {"by": "alice", "reason": " "}, 400)
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "alice"}, 200)
    resp = await gw.client.post(f"/v1/incidents/{inc}/escalate",
                                json={"by": "alice", "reason": "late"})
    assert (resp.status, resp.content_type) == (409, PROBLEM)
    assert "resolved" in (await resp.json())["detail"]
    await gw.post("/v1/incidents/01JD0000000000000000000000/escalate",
                  {"by": "a", "reason": "b"}, 404)
    await gw.pump()
    assert [(c, a) for _t, c, a, _k in tl.sent()] == [("hook", "trigger"), ("hook", "resolve")]
    assert await tl.entries(inc, "escalated") == []


async def test_manual_escalate_while_acknowledged_notifies_but_keeps_the_clock_stopped(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await tl.to(M)
    doc = await tl.post(f"/v1/incidents/{inc}/escalate",
                        {"by": "alice", "reason": "need a second pair of eyes"}, 200)
    assert (doc["status"], doc["escalation"]["level"], doc["escalation"]["next_at"]) == (
        "acknowledged", 2, None)
    await tl.walk(3600, every=5 * M)
    assert [(t, c, a) for t, c, a, _k in tl.sent()] == [
        (0, "hook", "trigger"), (0, "hook", "acknowledge"), (60, "pager", "trigger")]
    assert tl.pending_timers(inc) == []


# --- reminders and acknowledgement timeout ---------------------------------------------------

async def test_reminders_repeat_a_level_until_it_escalates(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, hook_level("10m", remind_every="3m"),
                      pager_level(), repeat=0)
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.walk(30 * M)
    assert tl.sent() == [
        (0, "hook", "trigger", key(inc, "hook", "trigger")),
        (180, "hook", "trigger", key(inc, "hook", "trigger", "L1.0.r1")),
        (360, "hook", "trigger", key(inc, "hook", "trigger", "L1.0.r2")),
        (540, "hook", "trigger", key(inc, "hook", "trigger", "L1.0.r3")),
        (600, "pager", "trigger", key(inc, "pager", "trigger", "person:bob", "L2.0")),
    ]
    reminded = await tl.entries(inc, "reminded")
    assert [(e["at"], e["actor"], e["detail"]) for e in reminded] == [
        (tl.at(t), "baton", {"level": 1, "loop": 0, "reminder": n, "targets": [HOOK]})
        for n, t in ((1, 180), (2, 360), (3, 540))]


async def test_no_reminder_after_acknowledge(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, hook_level("10m", remind_every="3m"),
                      pager_level(), repeat=0)
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.walk(4 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await tl.walk(30 * M)
    assert [(t, a) for t, _c, a, _k in tl.sent()] == [
        (0, "trigger"), (180, "trigger"), (240, "acknowledge")]
    assert tl.pending_timers(inc) == []


async def test_reminders_after_an_unacknowledge_are_sent_too(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    """Each reminder is a delivery of its own: the ones after an unacknowledge (or an
    acknowledgement that timed out) do not reuse the keys of the ones before it."""
    data = esc_config(tmp_path, receiver.url, hook_level("10m", remind_every="3m"),
                      pager_level(), repeat=0, ack_timeout="5m")
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.walk(4 * M)  # reminder 1 at t+3m
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"})
    await tl.to(5 * M)
    await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"})
    await tl.walk(8 * M)  # reminder 2 at t+8m, 3m after the unacknowledge
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"})
    await tl.walk(17 * M)  # the acknowledgement lapses at t+13m: reminder 3 at t+16m
    triggers = [(t, k) for t, c, a, k in tl.sent() if (c, a) == ("hook", "trigger")]
    assert triggers == [
        (0, key(inc, "hook", "trigger")),
        (180, key(inc, "hook", "trigger", "L1.0.r1")),
        (480, key(inc, "hook", "trigger", "L1.0.r2")),
        (960, key(inc, "hook", "trigger", "L1.0.r3")),
    ]
    reminded = await tl.entries(inc, "reminded")
    assert [(e["at"], e["detail"]["reminder"]) for e in reminded] == [
        (tl.at(180), 1), (tl.at(480), 2), (tl.at(960), 3)]
    delivered = [d["idempotency_key"] for d in gw.deliveries(inc) if d["action"] == "trigger"]
    assert len(delivered) == 4
    await tl.walk(23 * M)  # level 2: 10m after the lapse at t+13m
    assert tl.sent()[-1] == (1380, "pager", "trigger",
                             key(inc, "pager", "trigger", "person:bob", "L2.0"))


async def test_reminders_on_the_last_level_keep_going(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    """A final level without escalate_after reminds until somebody acknowledges."""
    data = esc_config(tmp_path, receiver.url, hook_level(None, remind_every="20m"), repeat=0)
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.walk(65 * M, every=5 * M)
    assert [t for t, _c, _a, _k in tl.sent()] == [0, 1200, 2400, 3600]
    assert (await tl.escalation(inc))["next_at"] is None
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "a"}, 200)
    await tl.walk(3 * 3600, every=10 * M)
    assert [a for _t, _c, a, _k in tl.sent()][4:] == ["resolve"]


async def test_ack_timeout_lapses_the_acknowledgement_and_escalation_resumes(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, ack_timeout="30m")
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    assert tl.pending_timers(inc) == [("ack_timeout", 1860, 1, 0)]
    await tl.walk(31 * M - 1)
    assert (await gw.incident(inc))["status"] == "acknowledged"

    await tl.to(31 * M)
    doc = await gw.incident(inc)
    assert (doc["status"], doc["acknowledged_by"]) == ("triggered", None)
    assert doc["escalation"] == {"policy": "notify", "level": 1, "loops": 0,
                                 "next_at": tl.at(41 * M)}
    (lapsed,) = await tl.entries(inc, "unacknowledged")
    assert lapsed == {"at": tl.at(31 * M), "type": "unacknowledged", "actor": "baton",
                      "detail": {"reason": "acknowledgement timed out after 30m"}}
    await tl.walk(41 * M)
    assert [(t, c, a) for t, c, a, _k in tl.sent()] == [
        (0, "hook", "trigger"), (60, "hook", "acknowledge"), (2460, "pager", "trigger")]


async def test_ack_timeout_counts_from_the_latest_acknowledge(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, ack_timeout="30m")
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await tl.to(5 * M)
    await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 200)
    assert tl.pending_timers(inc) == [("escalate", 15 * M, 1, 0)]  # no lapse left armed
    await tl.to(8 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "bob"}, 200)
    await tl.walk(38 * M - 1)  # the first acknowledge's lapse (t+31m) is gone
    assert (await gw.incident(inc))["status"] == "acknowledged"
    assert await tl.entries(inc, "unacknowledged") == [
        {"at": tl.at(5 * M), "type": "unacknowledged", "actor": "alice", "detail": {}}]
    await tl.to(38 * M)
    assert (await gw.incident(inc))["status"] == "triggered"
    # an incident resolved while acknowledged does not come back
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "bob"}, 200)
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "bob"}, 200)
    await tl.walk(3 * 3600, every=10 * M)
    assert (await gw.incident(inc))["status"] == "resolved"
    assert tl.pending_timers(inc) == []


# --- who: schedules and teams, resolved at the moment of notifying ---------------------------

SCHEDULE = {"primary": {"timezone": "Europe/Berlin", "layers": [
    {"rotation": "daily", "handoff": "09:00", "members": ["alice", "bob"],
     "start": "2025-12-31"}]}}
# 2025-12-31 09:00 Berlin (08:00Z): alice; 2026-01-01 09:00 Berlin (08:00Z): bob.
BEFORE_HANDOFF = 1_767_225_600.0 + 7 * 3600 + 55 * 60  # 2026-01-01T07:55:00Z


def person(connector: str, to: str, who: str) -> dict[str, Any]:
    return {"connector": connector, "to": to, "params": {}, "person": who,
            "contacts": PEOPLE[who]}


async def test_schedule_target_resolves_whoever_is_on_call_when_notified(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    clock = FakeClock(BEFORE_HANDOFF)
    receiver.clock = clock
    data = esc_config(tmp_path, receiver.url, pager_level("schedule:primary", "10m"),
                      {"notify": [{"connector": "hook", "to": "team:leads"}],
                       "escalate_after": "10m"}, repeat=1)
    data["schedules"] = SCHEDULE
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    (routed,) = await tl.entries(inc, "routed")
    assert routed["detail"]["targets"] == [person("pager", "schedule:primary", "alice")]
    await tl.walk(20 * M)  # the handoff to bob is at t+5m
    assert tl.sent() == [
        (0, "pager", "trigger", key(inc, "pager", "trigger", "schedule:primary", "alice")),
        (600, "hook", "trigger", key(inc, "hook", "trigger", "team:leads", "carol", "L2.0")),
        (600, "hook", "trigger", key(inc, "hook", "trigger", "team:leads", "dave", "L2.0")),
        (1200, "pager", "trigger",
         key(inc, "pager", "trigger", "schedule:primary", "bob", "L1.1")),
    ]
    escalated = await tl.entries(inc, "escalated")
    assert [e["detail"]["targets"] for e in escalated] == [
        [person("hook", "team:leads", "carol"), person("hook", "team:leads", "dave")],
        [person("pager", "schedule:primary", "bob")],
    ]
    oncall = await gw.get("/v1/schedules/primary/oncall")
    assert oncall["person"] == "bob"

    # resolve reaches every person that was paged, each once
    await tl.post(f"/v1/incidents/{inc}/resolve", {"by": "bob"}, 200)
    assert sorted(k for _t, _c, a, k in tl.sent(4) if a == "resolve") == sorted([
        key(inc, "pager", "resolve", "schedule:primary", "alice"),
        key(inc, "pager", "resolve", "schedule:primary", "bob"),
        key(inc, "hook", "resolve", "team:leads", "carol"),
        key(inc, "hook", "resolve", "team:leads", "dave"),
    ])


async def test_schedule_with_nobody_on_call_is_recorded_as_nobody(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    """Before the layer's first handoff nobody is on call: the timeline says so and
    nothing is sent; the next level still comes on time."""
    clock = FakeClock(1_767_225_600.0 - 2 * 86400)  # 2025-12-30: before the start date
    receiver.clock = clock
    data = esc_config(tmp_path, receiver.url, pager_level("schedule:primary", "10m"),
                      hook_level(None), repeat=0)
    data["schedules"] = SCHEDULE
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    (routed,) = await tl.entries(inc, "routed")
    assert routed["detail"]["targets"] == [
        {"connector": "pager", "to": "schedule:primary", "params": {}, "person": None,
         "reason": "nobody on call"}]
    assert tl.sent() == []
    await tl.walk(10 * M)
    assert tl.sent() == [(600, "hook", "trigger", key(inc, "hook", "trigger", "L2.0"))]


# --- the policy is frozen into the incident ---------------------------------------------------

async def test_a_config_reload_does_not_change_a_running_escalation(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    config_a = esc_config(tmp_path, receiver.url)  # hook 10m, then bob
    gw_a = await gateway(aiohttp_client, config_a, tmp_path, clock)
    tl = Timeline(gw_a, receiver)
    old = await tl.open("old")
    await gw_a.client.close()  # the gateway stops; the database stays

    config_b = esc_config(tmp_path, receiver.url, hook_level("1m"),
                          pager_level("person:carol", None), repeat=0)
    gw_b = await gateway(aiohttp_client, config_b, tmp_path, clock)
    tl.gw = gw_b
    await tl.to(30)
    new = await tl.open("new")
    await tl.walk(15 * M, every=30)
    sent = [(t, r.incident_id, c, k) for (t, c, _a, k), r in
            zip(tl.sent(), tl.received(), strict=True)]
    assert sent == [
        (0, old, "hook", key(old, "hook", "trigger")),
        (30, new, "hook", key(new, "hook", "trigger")),
        (90, new, "pager", key(new, "pager", "trigger", "person:carol", "L2.0")),
        (600, old, "pager", key(old, "pager", "trigger", "person:bob", "L2.0")),
    ]
    # A's repeat (the frozen policy's, config B has none) reaches those it told
    assert updates_at(tl, 900) == [("hook", key(old, "hook", "update", "L1.1")),
                                   ("pager", key(old, "pager", "update", "person:bob", "L1.1"))]
    assert [e["detail"]["reason"] for e in await tl.entries(old, "escalated")] == [
        "not acknowledged within 10m", "not acknowledged within 5m"]
    assert [e["detail"]["reason"] for e in await tl.entries(new, "escalated")] == [
        "not acknowledged within 1m"]
    assert (await tl.escalation(new))["next_at"] is None


async def test_timers_due_while_nothing_ran_fire_once_on_start(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url)
    gw_a = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw_a, receiver)
    inc = await tl.open()
    await gw_a.client.close()
    clock.advance(15 * M)  # down from t+0 to t+15m: the t+10m escalation is 5m overdue

    gw_b = await gateway(aiohttp_client, data, tmp_path, clock)
    tl.gw = gw_b
    assert await gw_b.dispatcher.fire_timers() == 1
    assert await gw_b.dispatcher.fire_timers() == 0
    await gw_b.pump()
    await gw_b.pump()
    assert tl.sent() == [
        (0, "hook", "trigger", key(inc, "hook", "trigger")),
        (900, "pager", "trigger", key(inc, "pager", "trigger", "person:bob", "L2.0"))]
    (esc,) = await tl.entries(inc, "escalated")
    assert esc == {"at": tl.at(900), "type": "escalated", "actor": "baton",
                   "detail": {"from": {"level": 1, "loop": 0}, "to": {"level": 2, "loop": 0},
                              "reason": "not acknowledged within 10m",
                              "targets": [bob_target()], "late_by_seconds": 300.0}}
    # the next wait counts from when it fired, so people get their full 5 minutes
    assert (await tl.escalation(inc))["next_at"] == tl.at(1200)
    fired = db_rows(tmp_path, "SELECT due_at, fired_at FROM timers WHERE incident_id = ? "
                    "AND state = 'fired'", (inc,))
    assert [(r["due_at"] - tl.t0, r["fired_at"] - tl.t0) for r in fired] == [(600, 900)]
    await tl.walk(20 * M)
    assert [t for t, _c, _a, _k in tl.sent()] == [0, 900]
    assert [c for c, _k in updates_at(tl, 1200)] == ["hook", "pager"]  # the repeat
    (_, on_time) = await tl.entries(inc, "escalated")
    assert "late_by_seconds" not in on_time["detail"]


async def test_a_second_acknowledge_reaches_the_connectors_too(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(1 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await tl.to(2 * M)
    await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 200)
    await tl.to(3 * M)
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "bob"}, 200)
    await tl.walk(4 * M)
    assert [(t, a, k) for t, _c, a, k in tl.sent()] == [
        (0, "trigger", key(inc, "hook", "trigger")),
        (60, "acknowledge", key(inc, "hook", "acknowledge")),
        (180, "acknowledge", key(inc, "hook", "acknowledge", "2"))]


async def test_after_downtime_an_overdue_reminder_yields_to_the_overdue_escalation(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url, hook_level("10m", remind_every="3m"),
                      pager_level(after=None), repeat=0)
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    # Nothing runs between t+0 and t+12m (the gateway was down): at t+12m the reminder
    # due at t+3m and the escalation due at t+10m are both overdue. Only the escalation
    # is sent: reminding level 1 in the instant level 2 is paged would be noise.
    await tl.to(12 * M)
    assert [(t, c, a) for t, c, a, _k in tl.sent()] == [
        (0, "hook", "trigger"), (720, "pager", "trigger")]
    assert await tl.entries(inc, "reminded") == []
    await tl.walk(30 * M)
    assert len(tl.sent()) == 2  # level 2 has no reminders and is the last level


async def test_a_person_gone_from_the_config_is_shown_not_silently_skipped(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    config_a = esc_config(tmp_path, receiver.url)  # hook 10m, then pager to bob
    gw_a = await gateway(aiohttp_client, config_a, tmp_path, clock)
    tl = Timeline(gw_a, receiver)
    inc = await tl.open()
    await gw_a.client.close()
    # Bob left: the new config no longer has him (nor a policy naming him), but the
    # running incident's frozen policy still escalates to him.
    config_b = esc_config(tmp_path, receiver.url, hook_level(None))
    config_b["people"] = {k: v for k, v in PEOPLE.items() if k != "bob"}
    gw_b = await gateway(aiohttp_client, config_b, tmp_path, clock)
    tl.gw = gw_b
    await tl.to(10 * M)
    assert [(t, c) for t, c, _a, _k in tl.sent()] == [(0, "hook")]  # nobody paged
    (esc,) = await tl.entries(inc, "escalated")
    assert esc["detail"]["targets"] == [
        {"connector": "pager", "to": "person:bob", "params": {}, "person": None,
         "reason": "not in the current config (people/teams)"}]


# --- updates to those already told -------------------------------------------------------

async def test_an_escalation_updates_those_already_told_before_the_next_level(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.to(10 * M)
    assert tl.sent(updates=True) == [
        (0, "hook", "trigger", key(inc, "hook", "trigger")),
        (600, "hook", "update", key(inc, "hook", "update", "L2.0")),
        (600, "pager", "trigger", key(inc, "pager", "trigger", "person:bob", "L2.0"))]
    update = next(r for r in receiver.received if r.action == "update")
    assert update.doc["escalation"]["level"] == 2  # the document says what changed
    # The wrap-around to level 1 updates both connectors told so far, once each.
    await tl.to(15 * M)
    assert sorted(s for s in tl.sent(3, updates=True) if s[2] == "update") == [
        (900, "hook", "update", key(inc, "hook", "update", "L1.1")),
        (900, "pager", "update", key(inc, "pager", "update", "person:bob", "L1.1"))]


async def test_a_new_alert_in_the_group_updates_once_but_not_with_the_first(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = esc_config(tmp_path, receiver.url)
    data["routes"][0]["group_by"] = ["service"]
    gw = await gateway(aiohttp_client, data, tmp_path, clock)
    tl = Timeline(gw, receiver)
    first = await gw.ingest([alert("a", service="db"), alert("b", service="db")])
    await tl.settle()
    inc = first["incidents"][0]
    assert [s[2] for s in tl.sent(updates=True)] == ["trigger"]  # b came with a
    clock.advance(30)
    await gw.ingest(alert("c", service="db"))
    await gw.ingest(alert("c", service="db"))  # a repeat is no news
    await tl.settle()
    assert tl.sent(1, updates=True) == [
        (30, "hook", "update", key(inc, "hook", "update", "alert", "app", "c"))]


async def test_unacknowledge_tells_those_told_of_the_acknowledgement(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, esc_config(tmp_path, receiver.url), tmp_path, clock)
    tl = Timeline(gw, receiver)
    inc = await tl.open()
    await tl.post(f"/v1/incidents/{inc}/acknowledge", {"by": "bob"}, 200)
    await tl.to(60)
    await tl.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "bob"}, 200)
    updates = [s for s in tl.sent(updates=True) if s[2] == "update"]
    assert updates == [(60, "hook", "update", key(inc, "hook", "update", "unack1"))]
    doc = next(r.doc for r in receiver.received if r.action == "update")
    assert (doc["status"], doc["acknowledged_by"]) == ("triggered", None)
