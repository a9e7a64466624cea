"""The management API on incidents: acknowledge, resolve, notes, listing, and its tokens."""

from __future__ import annotations

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
)

from baton.clock import FakeClock
from baton.store.views import ts

OPS_TOKEN = "s3cr3t-ops-token"
ENV = {"OPS_TOKEN": OPS_TOKEN, "CI_TOKEN": "s3cr3t-ci-token"}


def incidents_config(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    # "lab" alerts match no route: an incident nobody was notified about.
    data["routes"] = [{"name": "all", "matchers": ['environment!="lab"'], "policy": "notify"}]
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, incidents_config(tmp_path, receiver.url),
                               tmp_path, clock=clock)


async def open_incident(gw: Gateway, key: str = "k", **fields: Any) -> str:
    answer = await gw.ingest(alert(key, **fields))
    return str(answer["incidents"][0])


def actions(gw: Gateway, incident_id: str) -> list[tuple[str, str, str]]:
    return [(d["action"], d["state"], d["idempotency_key"]) for d in gw.deliveries(incident_id)]


async def test_acknowledge_records_who_and_tells_notified_connectors(
        gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_incident(gw)
    await gw.pump()
    clock.advance(90)
    doc = await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice", "note": "on it"},
                        200)
    assert schema_problems(doc) == []
    assert (doc["status"], doc["acknowledged_by"], doc["acknowledged_at"]) == (
        "acknowledged", "alice", ts(clock.now()))
    assert doc["timeline"][-1] == {"at": ts(clock.now()), "type": "acknowledged",
                                   "actor": "alice", "detail": {"note": "on it"}}
    assert actions(gw, inc) == [("trigger", "delivered", f"{inc}/hook/trigger"),
                                ("acknowledge", "pending", f"{inc}/hook/acknowledge")]
    assert await gw.pump() == 1
    assert receiver.actions == [(inc, "hook", "trigger"), (inc, "hook", "acknowledge")]
    assert receiver.received[-1].doc["status"] == "acknowledged"

    again = await gw.client.post(f"/v1/incidents/{inc}/acknowledge", json={"by": "bob"})
    assert again.status == 409 and again.content_type == PROBLEM
    assert json.loads(await again.text()) == {
        "type": "about:blank", "title": "Conflict", "status": 409,
        "detail": f"incident {inc} is already acknowledged"}
    assert (await gw.incident(inc))["acknowledged_by"] == "alice"
    assert len(gw.deliveries(inc)) == 2


async def test_acknowledge_without_note_and_without_notified_connectors(gw: Gateway) -> None:
    inc = await open_incident(gw, "lab-1", environment="lab")
    doc = await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    assert doc["timeline"][-1]["detail"] == {}
    assert doc["deliveries"] == []


async def test_acknowledge_queues_behind_an_undelivered_trigger(gw: Gateway,
                                                                receiver: Sink) -> None:
    inc = await open_incident(gw)
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    assert await gw.pump() == 1  # the trigger only: the acknowledge waits its turn
    assert await gw.pump() == 1
    assert [a for _, _, a in receiver.actions] == ["trigger", "acknowledge"]


async def test_resolve_then_conflicts(gw: Gateway, receiver: Sink, clock: FakeClock) -> None:
    inc = await open_incident(gw)
    await gw.pump()
    await gw.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    clock.advance(60)
    doc = await gw.post(f"/v1/incidents/{inc}/resolve", {"by": "bob", "note": "fixed"}, 200)
    assert (doc["status"], doc["resolved_by"], doc["resolved_at"]) == (
        "resolved", "bob", ts(clock.now()))
    assert [(e["type"], e["actor"], e["detail"]) for e in doc["timeline"]][-2:] == [
        ("acknowledged", "alice", {}), ("resolved", "bob", {"note": "fixed"})]
    await gw.pump()
    await gw.pump()
    assert [a for _, _, a in receiver.actions] == ["trigger", "acknowledge", "resolve"]

    for verb, detail in (("resolve", "is already resolved"), ("acknowledge", "is resolved")):
        resp = await gw.client.post(f"/v1/incidents/{inc}/{verb}", json={"by": "carol"})
        assert resp.status == 409
        assert json.loads(await resp.text())["detail"] == f"incident {inc} {detail}"
    doc = await gw.incident(inc)
    assert (doc["resolved_by"], doc["acknowledged_by"]) == ("bob", "alice")
    assert [e["type"] for e in doc["timeline"]] == [
        "received", "routed", "notified", "acknowledged", "resolved", "notified", "notified"]
    assert [e["detail"]["action"] for e in doc["timeline"] if e["type"] == "notified"] == [
        "trigger", "acknowledge", "resolve"]


async def test_notes_are_on_the_timeline_and_sent_once_each(gw: Gateway,
                                                            receiver: Sink) -> None:
    inc = await open_incident(gw)
    await gw.pump()
    first = await gw.post(f"/v1/incidents/{inc}/notes",
                          {"by": "carol", "text": "restarted the db"}, 201)
    second = await gw.post(f"/v1/incidents/{inc}/notes", {"by": "carol", "text": "again"}, 201)
    assert schema_problems(second) == []
    notes = [e for e in second["timeline"] if e["type"] == "note"]
    assert [(e["actor"], e["detail"]["text"]) for e in notes] == [
        ("carol", "restarted the db"), ("carol", "again")]
    assert notes == [e for e in first["timeline"] if e["type"] == "note"] + notes[1:]
    ids = [e["detail"]["note_id"] for e in notes]
    assert sorted(d["idempotency_key"] for d in gw.deliveries(inc)
                  if d["action"] == "note") == sorted(f"{inc}/hook/note/{i}" for i in ids)
    assert await gw.pump() == 1 and await gw.pump() == 1
    assert [a for _, _, a in receiver.actions] == ["trigger", "note", "note"]
    assert (await gw.incident(inc))["status"] == "triggered"  # a note changes no state


@pytest.mark.parametrize("path", ["", "/acknowledge", "/resolve", "/notes"])
async def test_unknown_incident_is_404(gw: Gateway, path: str) -> None:
    url = f"/v1/incidents/01AAAAAAAAAAAAAAAAAAAAAAAA{path}"
    body = {"by": "alice", "text": "x"} if path == "/notes" else {"by": "alice"}
    resp = await (gw.client.post(url, json=body) if path else gw.client.get(url))
    assert resp.status == 404 and resp.content_type == PROBLEM
    assert json.loads(await resp.text()) == {
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": "incident 01AAAAAAAAAAAAAAAAAAAAAAAA not found"}


@pytest.mark.parametrize(("path", "body", "detail", "errors"), [
    ("acknowledge", {}, "invalid request body", ["by: required"]),
    ("acknowledge", {"by": "a", "extra": 1}, "invalid request body", ["extra: unknown field"]),
    ("acknowledge", {"by": " "}, "invalid request body", ["by: must be a non-empty string"]),
    ("acknowledge", {"by": "a", "note": 5}, "invalid request body",
     ["note: must be a non-empty string"]),
    ("resolve", {"note": "x", "who": "a"}, "invalid request body",
     ["by: required", "who: unknown field"]),
    ("resolve", ["by", "a"], "body must be a JSON object", []),
    ("notes", {"by": "a"}, "invalid request body", ["text: required"]),
    ("notes", {"by": "a", "text": "t", "note": "n"}, "invalid request body",
     ["note: unknown field"]),
    ("notes", "just text", "body must be a JSON object", []),
])
async def test_bad_bodies_are_400_and_change_nothing(gw: Gateway, path: str, body: Any,
                                                     detail: str, errors: list[str]) -> None:
    inc = await open_incident(gw)
    before = await gw.incident(inc)
    resp = await gw.client.post(f"/v1/incidents/{inc}/{path}", json=body)
    assert resp.status == 400 and resp.content_type == PROBLEM
    assert json.loads(await resp.text()) == {
        "type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail,
        "errors": errors}
    assert await gw.incident(inc) == before


@pytest.mark.parametrize(("data", "ctype", "status"), [
    (b'{"by": "a"', "application/json", 400),
    (b"by=a", "application/x-www-form-urlencoded", 415),
    (b'{"by": "a"}', "text/plain", 415),
])
async def test_body_that_is_not_json_changes_nothing(gw: Gateway, data: bytes, ctype: str,
                                                     status: int) -> None:
    inc = await open_incident(gw)
    resp = await gw.client.post(f"/v1/incidents/{inc}/acknowledge", data=data,
                                headers={"Content-Type": ctype})
    assert resp.status == status and resp.content_type == PROBLEM
    assert (await gw.incident(inc))["status"] == "triggered"


async def test_list_newest_first_with_filters(gw: Gateway, clock: FakeClock) -> None:
    ids = []
    for n, service in enumerate(["db", "web", "db", "web"]):
        ids.append(await open_incident(gw, f"k{n}", service=service))
        clock.advance(1)
    await gw.post(f"/v1/incidents/{ids[0]}/acknowledge", {"by": "a"}, 200)
    await gw.post(f"/v1/incidents/{ids[1]}/resolve", {"by": "a"}, 200)

    async def listed(query: str) -> list[str]:
        page = await gw.get(f"/v1/incidents{query}")
        assert page["next_cursor"] is None
        for doc in page["incidents"]:
            assert schema_problems(doc) == []
        return [d["id"] for d in page["incidents"]]

    assert await listed("") == ids[::-1]
    assert await listed("?status=triggered") == [ids[3], ids[2]]
    assert await listed("?status=acknowledged") == [ids[0]]
    assert await listed("?status=resolved") == [ids[1]]
    assert await listed("?service=db") == [ids[2], ids[0]]
    assert await listed("?service=web&status=triggered") == [ids[3]]
    assert await listed("?service=nope") == []


async def test_empty_query_parameters_mean_unset(gw: Gateway) -> None:
    """As the contract writes the endpoint: ``?status=&service=&limit=&cursor=``."""
    ids = (await gw.ingest([alert("e1"), alert("e2")]))["incidents"]
    page = await gw.get("/v1/incidents?status=&service=&limit=&cursor=")
    assert ([d["id"] for d in page["incidents"]], page["next_cursor"]) == (ids[::-1], None)
    page = await gw.get("/v1/deliveries?state=&connector=&limit=&cursor=")
    assert len(page["deliveries"]) == 2


@pytest.mark.parametrize("query", ["?status=open", "?limit=0", "?limit=501", "?limit=x"])
async def test_bad_list_queries_are_400(gw: Gateway, query: str) -> None:
    resp = await gw.client.get(f"/v1/incidents{query}")
    assert resp.status == 400 and resp.content_type == PROBLEM
    assert json.loads(await resp.text())["errors"] == [query[1:].partition("=")[0]]


async def test_cursor_pagination_covers_everything_once(gw: Gateway) -> None:
    answer = await gw.ingest([alert(f"p{n}") for n in range(7)])
    created = answer["incidents"]
    seen: list[str] = []
    pages = []
    cursor = None
    while True:
        page = await gw.get(f"/v1/incidents?limit=3{f'&cursor={cursor}' if cursor else ''}")
        pages.append(len(page["incidents"]))
        seen += [d["id"] for d in page["incidents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [3, 3, 1]
    assert seen == created[::-1]
    # A page that ends exactly at the last item has no next cursor.
    page = await gw.get("/v1/incidents?limit=7")
    assert (len(page["incidents"]), page["next_cursor"]) == (7, None)
    page = await gw.get("/v1/incidents?limit=6")
    assert page["next_cursor"] == created[1]


# --- management API tokens --------------------------------------------------------------

@pytest.fixture
async def locked(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
                 tmp_path: Path) -> Gateway:
    data = incidents_config(tmp_path, receiver.url)
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "OPS_TOKEN"}},
                              {"name": "ci", "token": {"env": "CI_TOKEN"}}]}
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock, environ=ENV)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {OPS_TOKEN}",
                                           f"Bearer {OPS_TOKEN}x"])
async def test_without_the_right_token_nothing_changes(locked: Gateway,
                                                       authorization: str | None) -> None:
    inc = await open_incident(locked)  # ingest has its own (source) auth
    headers = {"Authorization": authorization} if authorization else {}
    calls = [("GET", "/v1/incidents", None), ("GET", f"/v1/incidents/{inc}", None),
             ("POST", f"/v1/incidents/{inc}/acknowledge", {"by": "mallory"}),
             ("POST", f"/v1/incidents/{inc}/resolve", {"by": "mallory"}),
             ("POST", f"/v1/incidents/{inc}/notes", {"by": "mallory", "text": "hi"}),
             ("GET", "/v1/deliveries", None)]
    for method, url, body in calls:
        resp = await locked.client.request(method, url, json=body, headers=headers)
        text = await resp.text()
        assert (resp.status, resp.content_type) == (401, PROBLEM), (url, text)
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="baton"'
        assert "s3cr3t" not in text
    locked.headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    doc = await locked.incident(inc)
    assert doc["status"] == "triggered"
    assert [e["type"] for e in doc["timeline"]] == ["received", "routed"]


async def test_the_token_name_qualifies_the_actor(locked: Gateway) -> None:
    inc = await open_incident(locked)
    locked.headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    doc = await locked.post(f"/v1/incidents/{inc}/acknowledge", {"by": "alice"}, 200)
    assert doc["acknowledged_by"] == "alice (token:ops)"
    locked.headers = {"Authorization": "Bearer s3cr3t-ci-token"}
    doc = await locked.post(f"/v1/incidents/{inc}/notes", {"by": "deploy-bot", "text": "x"},
                            201)
    assert [(e["type"], e["actor"]) for e in doc["timeline"]][-2:] == [
        ("acknowledged", "alice (token:ops)"), ("note", "deploy-bot (token:ci)")]
    listed = await locked.get("/v1/incidents")
    assert [d["id"] for d in listed["incidents"]] == [inc]
