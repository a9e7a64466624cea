"""Suppression over an incident's whole life, not only when it opens: a silence created
while an incident escalates stops its next step and its reminders; a silence that ends
(by time or expired through the API), an active interval that opens, a mute interval
that closes and an inhibitor that resolves each lift what they held within one
dispatcher cycle, without the source sending again. And one message per person per step.

The fake clock starts Thursday 2026-01-01 00:00 UTC; a ``walk`` runs a dispatcher cycle
every minute, so a step that came early or late would show at the cycle after its time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, Sink, alert, config_dict, start_gateway

from baton.clock import FakeClock
from baton.store.views import ts

M = 60.0


def config(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    data["connectors"]["pager"] = {"type": "webhook", "url": url,
                                   "backoff": {"initial": "1s", "max": "1s"}}
    data["people"] = {"bob": {"email": "bob@example.com", "phone": "+15550101"}}
    data["time_intervals"] = [{"name": "night", "time_intervals": [
        {"times": [{"start_time": "00:00", "end_time": "06:00"}]}]}]
    data["inhibit_rules"] = [{"source_matchers": ['alertname="NodeDown"'],
                              "target_matchers": ['severity="warning"'],
                              "equal": ["instance"]}]
    data["routes"] = [
        {"name": "quiet-nights", "matchers": ['team="batch"'], "policy": "notify",
         "mute_time_intervals": ["night"]},
        {"name": "all", "policy": "notify"}]
    data["policies"] = {"notify": {"levels": [
        {"notify": ["hook"], "escalate_after": "10m", "remind_every": "3m"},
        {"notify": [{"connector": "pager", "to": "person:bob"}]}]}}
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, config(tmp_path, receiver.url), tmp_path,
                               clock=clock)


class Walk:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.t0 = gw.clock.now()

    async def settle(self) -> None:
        for _ in range(50):
            if not await self.gw.pump():
                return
        raise AssertionError("still sending after 50 cycles")

    async def to(self, offset: float, every: float = M) -> None:
        now = self.gw.clock.now() - self.t0
        while now < offset:
            step = min(every, offset - now)
            self.gw.clock.advance(step)
            now += step
            await self.settle()


def sent(receiver: Sink, t0: float, since: float = 0.0) -> list[tuple[float, str, str]]:
    return [(r.at - t0, r.connector, r.action) for r in receiver.received
            if r.at - t0 >= since]


async def open_one(gw: Gateway, body: Any) -> str:
    answer = await gw.ingest(body)
    (incident_id,) = answer["incidents"]
    return str(incident_id)


async def silence(gw: Gateway, matchers: list[str], duration: str) -> str:
    doc = await gw.post("/v1/silences", {"matchers": matchers, "duration": duration,
                                         "created_by": "alice", "comment": "db failover"}, 201)
    return str(doc["id"])


def types(doc: dict[str, Any]) -> list[str]:
    return [e["type"] for e in doc["timeline"]]


async def test_a_silence_created_mid_escalation_stops_the_next_step_and_reminders(
        gw: Gateway, receiver: Sink) -> None:
    walk = Walk(gw)
    inc = await open_one(gw, alert("db1", service="db"))
    await walk.settle()
    assert sent(receiver, walk.t0) == [(0, "hook", "trigger")]
    await walk.to(1 * M)
    sid = await silence(gw, ['service="db"'], "2h")
    await walk.to(119 * M)  # reminders were due at 3m, 6m, 9m; level 2 at 10m
    assert sent(receiver, walk.t0) == [(0, "hook", "trigger")]
    doc = await gw.incident(inc)
    assert doc["suppressed"] == {"reason": "silenced", "silence_id": sid}
    (held,) = [e for e in doc["timeline"] if e["type"] == "suppressed"]
    assert held["at"] == ts(walk.t0 + 3 * M)  # the first notification moment after it
    assert held["detail"] == {"reason": "silenced", "silence_id": sid, "level": 1,
                              "loop": 0, "until": ts(walk.t0 + 121 * M)}
    assert doc["escalation"]["level"] == 1 and doc["escalation"]["next_at"] is None

    # The silence ends at 2h01m: level 1 hears once that it is back (it was told
    # before), and its wait starts again: reminder at +3m, level 2 at +10m.
    await walk.to(121 * M)
    assert sent(receiver, walk.t0, 120 * M) == [(121 * M, "hook", "update")]
    doc = await gw.incident(inc)
    assert doc["suppressed"] is None
    lifted = doc["timeline"][[e["type"] for e in doc["timeline"]].index("unsuppressed")]
    assert lifted["at"] == ts(walk.t0 + 121 * M)
    assert lifted["detail"]["after"] == {"reason": "silenced", "silence_id": sid}
    assert lifted["detail"]["escalate_at"] == ts(walk.t0 + 131 * M)
    await walk.to(131 * M)
    assert sent(receiver, walk.t0, 122 * M) == [
        (124 * M, "hook", "trigger"), (127 * M, "hook", "trigger"),
        (130 * M, "hook", "trigger"),  # reminders
        (131 * M, "hook", "update"), (131 * M, "pager", "trigger")]  # level 2


async def test_a_silence_ending_by_time_notifies_at_its_end(gw: Gateway,
                                                             receiver: Sink) -> None:
    walk = Walk(gw)
    sid = await silence(gw, ['service="db"'], "30m")
    inc = await open_one(gw, alert("db1", service="db"))
    await walk.to(29 * M)
    assert sent(receiver, walk.t0) == []
    await walk.to(30 * M)
    assert sent(receiver, walk.t0) == [(30 * M, "hook", "trigger")]
    doc = await gw.incident(inc)
    assert types(doc)[-3:] == ["unsuppressed", "routed", "notified"]
    assert doc["timeline"][-2]["detail"]["after"] == {"reason": "silenced",
                                                      "silence_id": sid}
    assert doc["escalation"]["next_at"] == ts(walk.t0 + 40 * M)


async def test_expiring_a_silence_notifies_at_the_next_cycle(gw: Gateway,
                                                             receiver: Sink) -> None:
    walk = Walk(gw)
    sid = await silence(gw, ['service="db"'], "4h")
    inc = await open_one(gw, alert("db1", service="db"))
    await walk.to(10 * M)
    assert sent(receiver, walk.t0) == []
    resp = await gw.client.delete(f"/v1/silences/{sid}")
    assert resp.status == 200
    await walk.settle()  # one dispatcher cycle, no time passing
    assert sent(receiver, walk.t0) == [(10 * M, "hook", "trigger")]
    assert (await gw.incident(inc))["suppressed"] is None
    await walk.to(60 * M)  # and exactly once
    assert len([r for r in receiver.received
                if r.doc["notification"]["idempotency_key"] == f"{inc}/hook/trigger"]) == 1


async def test_a_mute_interval_closing_lifts_its_incidents(gw: Gateway, receiver: Sink,
                                                           clock: FakeClock) -> None:
    walk = Walk(gw)
    clock.advance(2 * 3600)  # 02:00, inside "night"
    walk.t0 = clock.now()
    inc = await open_one(gw, alert("b1", labels={"team": "batch"}))
    doc = await gw.incident(inc)
    assert doc["suppressed"] == {"reason": "muted", "route": "quiet-nights",
                                 "detail": 'mute_time_intervals "night"'}
    assert doc["timeline"][-1]["detail"]["until"] == ts(walk.t0 + 4 * 3600)  # 06:00
    await walk.to(4 * 3600 - 1, every=10 * M)
    assert sent(receiver, walk.t0) == []
    await walk.to(4 * 3600)
    assert sent(receiver, walk.t0) == [(4 * 3600, "hook", "trigger")]


async def test_an_inhibitor_resolving_lifts_what_it_inhibited(gw: Gateway,
                                                              receiver: Sink) -> None:
    walk = Walk(gw)
    answer = await gw.ingest([
        alert("down", severity="critical", labels={"alertname": "NodeDown",
                                                   "instance": "n1"}),
        alert("w1", severity="warning", labels={"alertname": "DiskSlow", "instance": "n1"})])
    down, warn = answer["incidents"]
    await walk.settle()
    assert [r.incident_id for r in receiver.received] == [down]
    assert (await gw.incident(warn))["suppressed"]["by_incident"] == down
    await walk.to(2 * M)
    await gw.ingest(alert("down", status="resolved"))
    await walk.settle()  # the next cycle, no time passing
    triggers = [(r.incident_id, r.action) for r in receiver.received]
    assert (warn, "trigger") in triggers
    doc = await gw.incident(warn)
    assert doc["suppressed"] is None
    assert doc["timeline"][-2]["detail"]["after"]["reason"] == "inhibited"


async def test_an_inhibitor_resolved_by_hand_lifts_too_and_a_new_one_holds_on(
        gw: Gateway, receiver: Sink) -> None:
    walk = Walk(gw)
    answer = await gw.ingest([
        alert("down1", severity="critical", labels={"alertname": "NodeDown",
                                                    "instance": "n1"}),
        alert("down2", severity="critical", labels={"alertname": "NodeDown",
                                                    "instance": "n1", "via": "ping"}),
        alert("w1", severity="warning", labels={"alertname": "DiskSlow", "instance": "n1"})])
    down1, down2, warn = answer["incidents"]
    await walk.settle()
    first = (await gw.incident(warn))["suppressed"]["by_incident"]
    other = down2 if first == down1 else down1
    await gw.post(f"/v1/incidents/{first}/resolve", {"by": "alice"}, 200)
    await walk.settle()
    doc = await gw.incident(warn)
    assert doc["suppressed"]["by_incident"] == other  # still held, by the other one
    assert warn not in [r.incident_id for r in receiver.received]
    await gw.post(f"/v1/incidents/{other}/resolve", {"by": "alice"}, 200)
    await walk.settle()
    assert (warn, "trigger") in [(r.incident_id, r.action) for r in receiver.received]


async def test_an_acknowledged_incident_is_not_paged_when_its_silence_ends(
        gw: Gateway, receiver: Sink) -> None:
    walk = Walk(gw)
    await silence(gw, ['service="db"'], "30m")
    inc = await open_one(gw, alert("db1", service="db"))
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await walk.to(40 * M)
    assert sent(receiver, walk.t0) == []
    doc = await gw.incident(inc)
    assert doc["suppressed"] is None and types(doc)[-1] == "unsuppressed"
    # When the acknowledgement is withdrawn, it starts notifying: nothing holds it now.
    await gw.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 200)
    await walk.to(50 * M)
    assert ("hook", "trigger") in [(c, a) for _t, c, a in sent(receiver, walk.t0)]


async def test_a_person_at_two_levels_gets_one_message_per_step(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = config(tmp_path, receiver.url)
    bob = {"connector": "pager", "to": "person:bob"}
    data["policies"] = {"notify": {"levels": [
        {"notify": [bob], "escalate_after": "10m"},
        {"notify": [bob, "hook"]}]}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    walk = Walk(gw)
    inc = await open_one(gw, alert("x1"))
    await walk.to(10 * M)
    at_level_2 = sorted((c, a) for t, c, a in sent(receiver, walk.t0) if t == 10 * M)
    assert at_level_2 == [("hook", "trigger"), ("pager", "update")]  # bob: one message
    doc = await gw.incident(inc)
    (escalated,) = [e for e in doc["timeline"] if e["type"] == "escalated"]
    assert [t.get("action", "trigger") for t in escalated["detail"]["targets"]] == [
        "update", "trigger"]


async def test_held_at_open_acknowledged_lifted_then_unacknowledged_pages_level_1(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = config_dict(tmp_path, receiver.url)
    data["routes"] = [{"name": "all", "policy": "notify"}]
    data["policies"] = {"notify": {"levels": [{"notify": ["hook"]}]}}  # one level
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    walk = Walk(gw)
    await silence(gw, ['service="db"'], "30m")
    inc = await open_one(gw, alert("db1", service="db"))
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    await walk.to(40 * M)       # silence over; lifted while acknowledged
    await gw.post(f"/v1/incidents/{inc}/unacknowledge", {"by": "alice"}, 200)
    await walk.to(24 * 60 * M, every=30 * M)
    doc = await gw.incident(inc)
    assert doc["status"] == "triggered" and doc["suppressed"] is None
    # Triggered and no longer suppressed: level 1 must hear of it (it never did).
    assert ("hook", "trigger") in [(c, a) for _t, c, a in sent(receiver, walk.t0)], \
        [e["type"] for e in doc["timeline"]]


async def test_a_group_held_for_two_reasons_lifts_when_the_first_ends(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = config_dict(tmp_path, receiver.url)
    data["inhibit_rules"] = [{"source_matchers": ['alertname="NodeDown"'],
                              "target_matchers": ['severity="warning"'],
                              "equal": ["instance"]}]
    data["routes"] = [{"name": "grp", "matchers": ['service="db"'], "policy": "notify",
                       "group_by": ["service"]},
                      {"name": "all", "policy": "notify"}]
    data["policies"] = {"notify": {"levels": [{"notify": ["hook"]}]}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    walk = Walk(gw)
    # the inhibitor, in its own incident (route "all")
    await gw.ingest(alert("down", severity="critical",
                          labels={"alertname": "NodeDown", "instance": "n1"}))
    await walk.settle()
    before = len(receiver.received)
    await silence(gw, ['alertname="DbSlow"'], "30m")
    inc = await open_one(gw, [
        alert("a", service="db", labels={"alertname": "DbSlow"}),            # silenced
        alert("b", service="db", severity="warning",
              labels={"alertname": "DiskSlow", "instance": "n1"})])          # inhibited
    await walk.settle()
    assert (await gw.incident(inc))["suppressed"] is not None
    await walk.to(31 * M)  # the silence ended at 30m: "a" may notify now
    got = [r for r in receiver.received[before:] if r.incident_id == inc]
    # "a" is free when its silence ends: the hold's end is the earliest alert's, not
    # "none" because "b"'s inhibition has no end of its own.
    assert got, "still held after the silence ended"


async def test_an_escalation_made_while_held_is_kept_when_the_hold_lifts(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = config_dict(tmp_path, receiver.url)
    data["connectors"]["pager"] = {"type": "webhook", "url": receiver.url}
    data["routes"] = [{"name": "all", "policy": "notify"}]
    data["policies"] = {"notify": {"levels": [
        {"notify": ["hook"], "escalate_after": "10m"}, {"notify": ["pager"]}]}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    walk = Walk(gw)
    await silence(gw, ['service="db"'], "30m")
    inc = await open_one(gw, alert("db1", service="db"))
    await gw.post(f"/v1/incidents/{inc}/escalate", {"by": "alice", "reason": "now"}, 200)
    await walk.to(5 * M)
    assert (await gw.incident(inc))["escalation"]["level"] == 2
    await walk.to(31 * M)  # the silence ends
    doc = await gw.incident(inc)
    # Level 2 was notified by hand: the lift goes on from there, not from level 1.
    assert doc["escalation"]["level"] == 2, [e["type"] for e in doc["timeline"]]
