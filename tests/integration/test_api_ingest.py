"""POST /v1/ingest/{source} end to end, in process: dedup, grouping, resolve, recurrence,
routing, source auth and labels, and the documents the API and the webhook hand out."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PROBLEM,
    ClientFactory,
    Gateway,
    Sink,
    alert,
    config_dict,
    schema_problems,
    start_gateway,
    table_counts,
)

from baton.clock import FakeClock
from baton.store.views import ts

ENV = {"SRC_TOKEN": "s3cr3t-src-token", "SRC_PASS": "s3cr3t-src-pass"}
PD_TRIGGER = {"routing_key": "r" * 32, "dedup_key": "srv01/disk", "event_action": "trigger",
              "payload": {"summary": "Disk full on srv01", "source": "srv01",
                          "severity": "error", "group": "storage"}}


def ingest_config(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    data["sources"].update({
        "labelled": {"type": "generic", "auth": {"type": "none"},
                     "labels": {"team": "payments", "environment": "prod"}},
        "pd": {"type": "pagerduty-events", "auth": {"type": "none"}},
        "secure": {"type": "generic", "auth": {"type": "bearer", "token": {"env": "SRC_TOKEN"}}},
        "basic": {"type": "generic", "auth": {"type": "basic", "username": "prom",
                                              "password": {"env": "SRC_PASS"}}},
    })
    data["connectors"]["chat"] = dict(data["connectors"]["hook"])
    data["routes"] = [
        {"name": "db", "matchers": ['service="db"'], "policy": "both",
         "group_by": ["service", "alertname"]},
        {"name": "audit", "matchers": ['team="audit"'], "policy": "notify", "continue": True},
        {"name": "default", "matchers": ['environment!="lab"'], "policy": "notify"},
    ]
    data["policies"]["both"] = {"levels": [{"notify": ["hook", "chat"]}]}
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, ingest_config(tmp_path, receiver.url), tmp_path,
                               clock=clock, environ=ENV)


async def one(gw: Gateway, body: Any, source: str = "app") -> str:
    answer = await gw.ingest(body, source)
    assert len(answer["incidents"]) == 1, answer
    return str(answer["incidents"][0])


async def test_accepted_body_names_the_incidents(gw: Gateway) -> None:
    answer = await gw.ingest([alert("a"), alert("b"), alert("a")])
    assert set(answer) == {"accepted", "incidents"}
    assert answer["accepted"] == 3
    listed = (await gw.get("/v1/incidents"))["incidents"]
    # "a" twice in one body is one incident; ids in first-seen order.
    assert answer["incidents"] == [i["id"] for i in reversed(listed)]
    assert len(answer["incidents"]) == 2


async def test_dedup_counts_raises_severity_and_never_lowers_it(gw: Gateway,
                                                                clock: FakeClock) -> None:
    first = await one(gw, alert("k", severity="warning"))
    clock.advance(60)
    assert await one(gw, alert("k", severity="critical")) == first
    doc = await gw.incident(first)
    assert (doc["event_count"], doc["severity"]) == (2, "critical")
    assert doc["last_seen_at"] == ts(clock.now())
    assert doc["created_at"] == ts(clock.now() - 60)
    clock.advance(60)
    assert await one(gw, alert("k", severity="info")) == first
    doc = await gw.incident(first)
    assert (doc["event_count"], doc["severity"]) == (3, "critical")
    assert doc["last_seen_at"] == ts(clock.now())
    assert len(doc["alerts"]) == 1 and doc["alerts"][0]["severity"] == "info"
    assert [(e["type"], e["detail"]) for e in doc["timeline"]] == [
        ("received", {"dedup_key": "k", "severity": "warning", "summary": "problem k"}),
        ("routed", {"route": "default", "policy": "notify", "level": 1,
                    "targets": [{"connector": "hook", "to": None, "params": {}}]}),
        ("deduplicated", {"dedup_key": "k", "event_count": 2,
                          "severity": {"from": "warning", "to": "critical"}}),
        ("deduplicated", {"dedup_key": "k", "event_count": 3}),
    ]
    # One trigger, not three: a duplicate is not news for the receiver.
    assert [d["action"] for d in gw.deliveries(first)] == ["trigger"]


async def test_resolving_every_alert_resolves_and_tells_each_notified_connector(
        gw: Gateway, receiver: Sink) -> None:
    group = {"service": "db", "labels": {"alertname": "DiskFull"}}
    inc = await one(gw, [alert("d1", **group), alert("d2", **group)])
    assert await gw.pump() == 2
    assert sorted(receiver.actions) == [(inc, "chat", "trigger"), (inc, "hook", "trigger")]

    assert await one(gw, alert("d1", status="resolved", **group)) == inc
    doc = await gw.incident(inc)
    assert doc["status"] == "triggered"  # d2 still fires
    assert doc["timeline"][-1]["detail"] == {"dedup_key": "d1", "status": "resolved",
                                             "still_firing": 1}
    assert await gw.pump() == 0

    assert await one(gw, alert("d2", status="resolved", **group)) == inc
    doc = await gw.incident(inc)
    assert (doc["status"], doc["resolved_by"]) == ("resolved", "source:app")
    assert doc["timeline"][-1] == {"at": doc["resolved_at"], "type": "resolved",
                                   "actor": "source:app",
                                   "detail": {"reason": "all alerts resolved"}}
    assert await gw.pump() == 2
    assert sorted(receiver.actions[2:]) == [(inc, "chat", "resolve"), (inc, "hook", "resolve")]
    assert {r.doc["status"] for r in receiver.received[2:]} == {"resolved"}


async def test_resolve_goes_only_to_connectors_that_got_the_trigger(gw: Gateway,
                                                                   receiver: Sink) -> None:
    inc = await one(gw, alert("solo"))
    await gw.pump()
    await one(gw, alert("solo", status="resolved"))
    await gw.pump()
    assert receiver.actions == [(inc, "hook", "trigger"), (inc, "hook", "resolve")]


async def test_resolve_of_an_unknown_alert_opens_nothing(gw: Gateway, tmp_path: Path) -> None:
    answer = await gw.ingest(alert("never-fired", status="resolved"))
    assert answer == {"accepted": 1, "incidents": []}
    assert table_counts(tmp_path) == {"events": 1, "incidents": 0, "alerts": 0,
                                      "timeline": 0, "deliveries": 0}


async def test_firing_after_resolution_opens_a_recurrence(gw: Gateway) -> None:
    first = await one(gw, alert("flappy"))
    await one(gw, alert("flappy", status="resolved"))
    second = await one(gw, alert("flappy"))
    assert second != first
    doc = await gw.incident(second)
    assert (doc["status"], doc["recurrence_of"], doc["event_count"]) == (
        "triggered", first, 1)
    assert doc["timeline"][0]["detail"]["recurrence_of"] == first
    assert (await gw.incident(first))["status"] == "resolved"
    assert (await gw.incident(first))["recurrence_of"] is None


async def test_matcher_route_groups_and_catch_all_takes_the_rest(gw: Gateway) -> None:
    db1 = await one(gw, alert("x1", service="db", labels={"alertname": "Slow"}))
    db2 = await one(gw, alert("x2", service="db", labels={"alertname": "Slow"}))
    other = await one(gw, alert("x3", service="db", labels={"alertname": "Down"}))
    web = await one(gw, alert("x4", service="web", labels={"alertname": "Slow"}))
    assert db1 == db2 and len({db1, other, web}) == 3
    docs = {i: await gw.incident(i) for i in (db1, other, web)}
    assert docs[db1]["key"] == 'db|{alertname="Slow",service="db"}'
    assert (docs[db1]["route"], docs[db1]["escalation"]["policy"]) == ("db", "both")
    assert [a["dedup_key"] for a in docs[db1]["alerts"]] == ["x1", "x2"]
    assert docs[other]["key"] == 'db|{alertname="Down",service="db"}'
    assert (docs[web]["key"], docs[web]["route"]) == ("default|app/x4", "default")


async def test_continue_puts_the_alert_into_one_incident_per_matched_route(
        gw: Gateway, receiver: Sink) -> None:
    answer = await gw.ingest(alert("aud", labels={"team": "audit"}))
    assert answer["accepted"] == 1 and len(answer["incidents"]) == 2
    docs = [await gw.incident(i) for i in answer["incidents"]]
    assert [(d["route"], d["key"]) for d in docs] == [("audit", "audit|app/aud"),
                                                      ("default", "default|app/aud")]
    await gw.pump()
    assert sorted(receiver.actions) == sorted((i, "hook", "trigger") for i in answer["incidents"])
    # db comes first and has no continue: the search ends there, audit is never tried.
    answer = await gw.ingest(alert("aud-db", service="db", labels={"team": "audit"}))
    routes = [(await gw.incident(i))["route"] for i in answer["incidents"]]
    assert routes == ["db"]


async def test_unrouted_alert_is_stored_and_sent_nowhere(gw: Gateway, receiver: Sink) -> None:
    inc = await one(gw, alert("lab-1", environment="lab"))
    doc = await gw.incident(inc)
    assert (doc["route"], doc["escalation"]["policy"], doc["key"]) == (
        None, None, "unrouted|app/lab-1")
    assert [(e["type"], e["actor"], e["detail"]) for e in doc["timeline"]] == [
        ("received", "source:app", {"dedup_key": "lab-1", "severity": "warning",
                                    "summary": "problem lab-1"}),
        ("unrouted", "baton", {"reason": "no route matched"}),
    ]
    assert doc["deliveries"] == []
    assert await gw.pump() == 0 and receiver.received == []


async def test_pagerduty_acknowledge_acknowledges_the_open_incident(gw: Gateway,
                                                                   receiver: Sink) -> None:
    answer = await gw.ingest(PD_TRIGGER, "pd")
    assert answer["dedup_key"] == "srv01/disk"
    (inc,) = answer["incidents"]
    await gw.pump()
    ack = {k: PD_TRIGGER[k] for k in ("routing_key", "dedup_key")} | {
        "event_action": "acknowledge"}
    answer = await gw.ingest(ack, "pd")
    assert answer["incidents"] == [inc]
    doc = await gw.incident(inc)
    assert (doc["status"], doc["acknowledged_by"]) == ("acknowledged", "source:pd")
    assert doc["event_count"] == 1  # an acknowledgement is not another occurrence
    assert doc["timeline"][-1]["type"] == "acknowledged"
    await gw.pump()
    assert receiver.actions == [(inc, "hook", "trigger"), (inc, "hook", "acknowledge")]
    # An acknowledge for a problem nobody reported opens nothing.
    answer = await gw.ingest(ack | {"dedup_key": "never-triggered"}, "pd")
    assert (answer["accepted"], answer["incidents"]) == (1, [])
    assert len((await gw.get("/v1/incidents"))["incidents"]) == 1


async def test_pagerduty_acknowledge_and_resolve_find_a_grouped_incident(
        gw: Gateway, receiver: Sink) -> None:
    """PagerDuty's acknowledge and resolve carry only the dedup key: no payload, so none of
    the labels (service, alertname, severity) that routed and grouped the trigger."""
    trigger = json.loads(json.dumps(PD_TRIGGER))
    trigger["payload"]["group"] = "db"
    (inc,) = (await gw.ingest(trigger, "pd"))["incidents"]
    assert (await gw.incident(inc))["route"] == "db"
    keys = {k: trigger[k] for k in ("routing_key", "dedup_key")}
    assert (await gw.ingest(keys | {"event_action": "acknowledge"}, "pd"))["incidents"] == [inc]
    assert (await gw.incident(inc))["status"] == "acknowledged"
    assert (await gw.ingest(keys | {"event_action": "resolve"}, "pd"))["incidents"] == [inc]
    assert (await gw.incident(inc))["status"] == "resolved"
    assert len((await gw.get("/v1/incidents"))["incidents"]) == 1


async def test_source_labels_are_defaults_the_alert_can_override(gw: Gateway) -> None:
    plain = await one(gw, alert("l1"), "labelled")
    own = await one(gw, alert("l2", labels={"team": "search"}), "labelled")
    assert (await gw.incident(plain))["alerts"][0]["labels"] == {
        "team": "payments", "environment": "prod"}
    assert (await gw.incident(own))["alerts"][0]["labels"] == {
        "team": "search", "environment": "prod"}
    # Other sources do not get them.
    bare = await one(gw, alert("l3"))
    assert (await gw.incident(bare))["alerts"][0]["labels"] == {}


async def test_source_labels_take_part_in_routing(gw: Gateway) -> None:
    answer = await gw.ingest(alert("l4", labels={"team": "audit"}), "labelled")
    assert [(await gw.incident(i))["route"] for i in answer["incidents"]] == [
        "audit", "default"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("source", "authorization", "status"), [
    ("secure", "Bearer s3cr3t-src-token", 202),
    ("secure", "Bearer wrong", 401),
    ("secure", "bearer  s3cr3t-src-token", 202),
    ("secure", basic("prom", "s3cr3t-src-token"), 401),
    ("secure", None, 401),
    ("basic", basic("prom", "s3cr3t-src-pass"), 202),
    ("basic", basic("prom", "wrong"), 401),
    ("basic", basic("other", "s3cr3t-src-pass"), 401),
    ("basic", "Basic not-base64!", 401),
    ("basic", "Bearer s3cr3t-src-pass", 401),
    ("basic", None, 401),
])
async def test_source_auth(gw: Gateway, tmp_path: Path, source: str,
                           authorization: str | None, status: int) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    resp = await gw.client.post(f"/v1/ingest/{source}", json=alert("auth"), headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    counts = table_counts(tmp_path)
    if status == 202:
        assert (counts["events"], counts["incidents"]) == (1, 1)
        return
    assert resp.content_type == PROBLEM
    # The challenge names the scheme the source expects.
    assert resp.headers["WWW-Authenticate"] == (
        'Basic realm="baton", charset="UTF-8"' if source == "basic" else 'Bearer realm="baton"')
    body = json.loads(text)
    assert (body["status"], body["title"]) == (401, "Unauthorized")
    assert "s3cr3t" not in text
    assert set(counts.values()) == {0}


async def test_unknown_source_is_404(gw: Gateway, tmp_path: Path) -> None:
    resp = await gw.client.post("/v1/ingest/nope", json=alert("x"))
    assert resp.status == 404 and resp.content_type == PROBLEM
    assert json.loads(await resp.text()) == {
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": "no source named 'nope' is configured"}
    assert set(table_counts(tmp_path).values()) == {0}


async def test_every_incident_document_validates(gw: Gateway, receiver: Sink) -> None:
    group = {"service": "db", "labels": {"alertname": "DiskFull"}}
    await gw.ingest([alert("v1", **group), alert("v2", description="d", impact="all",
                                                  links=[{"href": "http://x/1"}],
                                                  started_at="2026-01-01T00:00:00Z")])
    await gw.ingest(alert("v3", environment="lab"))
    await gw.ingest(PD_TRIGGER, "pd")
    await gw.pump()
    await gw.ingest(alert("v1", status="resolved", **group))
    await gw.pump()
    listed = await gw.get("/v1/incidents")
    assert len(listed["incidents"]) == 4 and listed["next_cursor"] is None
    for doc in listed["incidents"]:
        assert schema_problems(doc) == []
        assert "alerts" not in doc and "timeline" not in doc
        full = await gw.incident(doc["id"])  # validates
        assert {k: v for k, v in full.items()
                if k not in ("alerts", "deliveries", "timeline")} == doc
    assert len(receiver.received) == 6  # each validated by the receiver fixture


async def test_resolve_closes_every_incident_the_alert_was_routed_into(gw: Gateway) -> None:
    answer = await gw.ingest(alert("both", labels={"team": "audit"}))
    assert len(answer["incidents"]) == 2
    # The resolve no longer carries the label that routed it twice.
    resolved = await gw.ingest(alert("both", status="resolved"))
    assert resolved["incidents"] == answer["incidents"]
    for inc in answer["incidents"]:
        doc = await gw.incident(inc)
        assert (doc["status"], doc["event_count"]) == ("resolved", 2)
    # Another source's alert with the same dedup key is a different alert.
    other = await gw.ingest(alert("both"), "labelled")
    assert (await gw.ingest(alert("both", status="resolved")))["incidents"] == []
    assert (await gw.incident(other["incidents"][0]))["status"] == "triggered"


async def test_an_open_incident_holds_its_alert_whatever_route_its_labels_take_now(
        gw: Gateway) -> None:
    """The same alert whose labels now match another route (service changed to "db")
    still deduplicates into the incident that holds it, instead of opening a second."""
    first = await one(gw, alert("moving", severity="warning"))
    assert (await gw.incident(first))["route"] == "default"
    assert await one(gw, alert("moving", service="db", labels={"alertname": "X"})) == first
    assert len((await gw.get("/v1/incidents"))["incidents"]) == 1
    doc = await gw.incident(first)
    assert doc["event_count"] == 2 and doc["timeline"][-1]["type"] == "deduplicated"
    # Once it is resolved, the next firing is routed afresh: now to the db route.
    await one(gw, alert("moving", status="resolved"))
    again = await one(gw, alert("moving", service="db", labels={"alertname": "X"}))
    assert again != first
    doc = await gw.incident(again)
    assert (doc["route"], doc["recurrence_of"]) == ("db", None)


async def test_same_dedup_key_from_two_sources_is_two_alerts(gw: Gateway) -> None:
    a = await one(gw, alert("shared"), source="app")
    b = await one(gw, alert("shared"), source="labelled")
    assert a != b
    # Resolving it at one source leaves the other source's incident open.
    await one(gw, alert("shared", status="resolved"), source="app")
    assert (await gw.incident(a))["status"] == "resolved"
    assert (await gw.incident(b))["status"] == "triggered"


async def test_grouped_incident_severity_is_the_highest_of_its_firing_alerts(
        gw: Gateway) -> None:
    group = {"service": "db", "labels": {"alertname": "Slow"}}
    inc = await one(gw, alert("g-warn", severity="warning", **group))
    assert await one(gw, alert("g-crit", severity="critical", **group)) == inc
    assert (await gw.incident(inc))["severity"] == "critical"
    # The critical alert resolves: the warning still fires, so the incident is a warning.
    assert await one(gw, alert("g-crit", status="resolved", **group)) == inc
    doc = await gw.incident(inc)
    assert (doc["status"], doc["severity"]) == ("triggered", "warning")
    assert doc["timeline"][-1]["detail"]["severity"] == {"from": "critical", "to": "warning"}
    # The last one resolves: the incident keeps the severity it had.
    assert await one(gw, alert("g-warn", status="resolved", **group)) == inc
    doc = await gw.incident(inc)
    assert (doc["status"], doc["severity"]) == ("resolved", "warning")
