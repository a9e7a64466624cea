"""What the servicenow connector promises beyond the generic contract: one incident record
per Baton incident found again by its correlation id (no duplicate after a lost response),
later actions on the recorded sys_id, the bodies the Table API documents, a fake strict
enough to trust, and callbacks from the shipped business rule."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.servicenow import ServiceNowConnector
from fakes import CHUNK, INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import servicenow as fake

from baton import schema
from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import Notification, Outcome
from baton.plugin import CallbackEvent
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
CORRELATION = f"baton-{INCIDENT_ID}"
SCRIPT = Path(__file__).parents[2] / "examples" / "servicenow-business-rule.js"


async def start_fake(aiohttp_server: Server, lose_first_create: bool = False
                     ) -> tuple[FakeState, fake.Incidents, str]:
    state = FakeState()
    app = fake.make_app(state)
    if lose_first_create:
        lost: list[bool] = []

        @web.middleware
        async def drop(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            if request.method == "POST" and not lost:
                lost.append(True)  # the record exists; its answer never arrives
                assert request.transport is not None
                request.transport.close()
            return response

        app.middlewares.append(drop)
    server = await aiohttp_server(app)
    return state, app[fake.INCIDENTS], str(server.make_url("")).rstrip("/")


def connector(base: str = "http://127.0.0.1:9", **extra: Any) -> ServiceNowConnector:
    return ServiceNowConnector("sn", fake.config(base) | extra)


async def send(conn: ServiceNowConnector, *notifications: Notification) -> list[Outcome]:
    async with aiohttp.ClientSession() as http:
        return [await conn.send(n, http) for n in notifications]


def with_ref(incident: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The incident as the dispatcher hands it over after recording the reference."""
    assert outcome.external_ref is not None
    return incident | {"external_refs": [outcome.external_ref.to_dict()]}


async def test_lifecycle_on_one_record(aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    conn = connector(base)
    [created] = await send(conn, sample_notification("sn", "trigger"))
    assert created.kind == "ok" and created.status == 201, created
    assert created.external_ref is not None
    sys_id = created.external_ref.id
    assert created.external_ref.url == (
        f"{base}/nav_to.do?uri=incident.do%3Fsys_id%3D{sys_id}")
    noted = sample_incident()
    noted["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                              "actor": "bob", "detail": {"text": "rolling back"}})
    acked = sample_incident("acknowledged") | {"acknowledged_by": "carol"}
    later = [sample_notification("sn", "update", incident=with_ref(sample_incident(), created)),
             sample_notification("sn", "acknowledge", incident=with_ref(acked, created)),
             sample_notification("sn", "note", incident=with_ref(noted, created)),
             sample_notification("sn", "resolve",
                                 incident=with_ref(sample_incident("resolved"), created))]
    outcomes = await send(conn, *later)
    assert all(o.kind == "ok" and o.external_ref == created.external_ref for o in outcomes)
    assert [(a.action, a.keys) for a in state.accepted] == [
        ("trigger", (CORRELATION,)), ("note", (sys_id,)), ("note", (sys_id,)),
        ("note", (sys_id,)), ("resolve", (sys_id,))]
    # Every later action went straight to the recorded sys_id, without a search; resolve
    # reads the state first.
    record_path = f"/api/now/table/incident/{sys_id}"
    assert [(r.method, r.path) for r in state.requests] == [
        ("GET", "/api/now/table/incident"), ("POST", "/api/now/table/incident"),
        *[("PATCH", record_path)] * 3, ("GET", record_path), ("PATCH", record_path)]
    record = incidents.by_sys_id[sys_id]
    assert (record["state"], record["close_code"], record["close_notes"]) == (
        "6", "Solution provided", "Resolved in Baton by alice.")
    assert incidents.work_notes[sys_id] == [
        "[Baton] Incident updated in Baton: status triggered, escalation level 1, "
        "1 alert event(s).",
        "[Baton] Acknowledged in Baton by carol.",
        "[Baton] Note from bob: rolling back",
        "[Baton] Resolved in Baton by alice."]
    assert state.rejected == []


async def test_a_multi_line_title_is_one_line_and_code_tags_stay_text(
        aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    conn = connector(base)
    title = "Disk full\non db-1\r\n\tand   db-2 " + "ü" * 200
    doc = sample_incident() | {"title": title}
    [created] = await send(conn, sample_notification("sn", incident=doc))
    assert created.kind == "ok" and created.external_ref is not None
    sys_id = created.external_ref.id
    short = incidents.by_sys_id[sys_id]["short_description"]
    assert short.startswith("Disk full on db-1 and db-2 üü") and len(short) == 160
    noted = doc | {"timeline": [*doc["timeline"], {
        "at": "2024-11-20T08:20:00.000Z", "type": "note", "actor": "bob",
        "detail": {"text": "[code]<img src=x onerror=alert(1)>[/CODE]"}}]}
    await send(conn, sample_notification("sn", "note", incident=with_ref(noted, created)))
    # ServiceNow renders [code]...[/code] in journal fields as HTML: the tags arrive
    # broken by a zero-width space and show as the text they are.
    assert incidents.work_notes[sys_id][-1] == (
        "[Baton] Note from bob: [\u200bcode]<img src=x onerror=alert(1)>[\u200b/CODE]")
    assert state.rejected == []


async def test_no_second_record_after_a_lost_response(aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server, lose_first_create=True)
    conn = connector(base)
    first = sample_notification("sn", "trigger")
    lost, retried = await send(conn, first, dataclasses.replace(first, attempt=2))
    assert lost.kind == "retryable" and lost.external_ref is None, lost
    assert retried.kind == "ok" and retried.external_ref is not None, retried
    [(sys_id, record)] = incidents.by_sys_id.items()
    assert retried.external_ref.id == sys_id and record["correlation_id"] == CORRELATION
    assert [a.action for a in state.accepted] == ["trigger"]
    search = state.requests[-1]
    assert search.method == "GET" and search.query == {
        "sysparm_query": f"correlation_id={CORRELATION}",
        "sysparm_fields": "sys_id,number,state,correlation_id", "sysparm_limit": "1"}


async def test_create_body_and_headers_follow_the_table_api(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    conn = connector(base, caller_id="abel.tuter", category="software",
                     severity_map={"critical": {"urgency": 1, "impact": 2}})
    [outcome] = await send(conn, sample_notification("sn"))
    assert outcome.kind == "ok", outcome
    post = state.accepted[0].seen
    assert post.query == {"sysparm_fields": "sys_id,number,state,correlation_id"}
    assert post.headers["Accept"] == "application/json"
    assert post.headers["Content-Type"] == "application/json"
    user = base64.b64encode(f"{fake.USERNAME}:{fake.PASSWORD}".encode()).decode()
    assert post.headers["Authorization"] == f"Basic {user}"
    assert json.loads(post.body) == {
        "short_description": "High error rate on checkout",
        "description": f"Baton incident {INCIDENT_ID} (triggered, critical)\n"
                       "Service: checkout\n"
                       "- High error rate on checkout: 5xx ratio above 5% for 10m",
        "urgency": "1", "impact": "2",
        "correlation_id": CORRELATION, "correlation_display": "Baton",
        "caller_id": "abel.tuter", "assignment_group": "287ebd7da9fe198100f92cc8d1d2154e",
        "category": "software"}


@pytest.mark.parametrize(("severity", "urgency", "impact"), [
    ("critical", "1", "1"), ("error", "1", "2"), ("warning", "2", "2"), ("info", "3", "3")])
def test_default_urgency_and_impact(severity: str, urgency: str, impact: str) -> None:
    incident = sample_incident() | {"severity": severity, "title": "t" * 300}
    body = connector().create_body(sample_notification("sn", incident=incident))
    assert (body["urgency"], body["impact"]) == (urgency, impact)
    assert len(body["short_description"]) == 160


async def test_bearer_token_and_close_code_are_configurable(aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    config = {k: v for k, v in fake.config(base).items() if k != "password"}
    conn = ServiceNowConnector("sn", config | {"token": Secret(fake.TOKEN),
                                               "close_code": "Workaround provided"})
    [created] = await send(conn, sample_notification("sn"))
    [resolved] = await send(conn, sample_notification(
        "sn", "resolve", incident=with_ref(sample_incident("resolved"), created)))
    assert resolved.kind == "ok", resolved
    assert state.requests[0].headers["Authorization"] == f"Bearer {fake.TOKEN}"
    [record] = incidents.by_sys_id.values()
    assert record["close_code"] == "Workaround provided"


async def test_actions_without_a_recorded_ref_search_by_correlation_id(
        aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    conn = connector(base)
    state.script(Reply(204))  # created, but the answer carries no record
    [created] = await send(conn, sample_notification("sn"))
    assert (created.kind, created.status, created.external_ref) == ("ok", 204, None)
    [resolved] = await send(conn, sample_notification("sn", "resolve"))
    [sys_id] = incidents.by_sys_id
    assert resolved.kind == "ok" and resolved.external_ref is not None
    assert resolved.external_ref.id == sys_id
    assert incidents.by_sys_id[sys_id]["state"] == "6"


async def test_resolve_keeps_a_resolution_made_in_servicenow(aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    conn = connector(base)
    [created] = await send(conn, sample_notification("sn"))
    assert created.external_ref is not None
    record = incidents.by_sys_id[created.external_ref.id]
    record.update(state="7", close_code="Resolved by caller", close_notes="fixed it")
    resolved = with_ref(sample_incident("resolved"), created)
    [outcome] = await send(conn, sample_notification("sn", "resolve", incident=resolved))
    assert outcome.kind == "ok" and outcome.external_ref == created.external_ref, outcome
    assert (record["close_code"], record["close_notes"]) == ("Resolved by caller", "fixed it")
    assert [a.action for a in state.accepted] == ["trigger"]


async def test_a_search_answer_that_is_not_a_result_is_retried(
        aiohttp_server: Server) -> None:
    async def hibernating(request: web.Request) -> web.Response:
        return web.Response(text="<html>Your instance is hibernating</html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/now/table/incident", hibernating)
    server = await aiohttp_server(app)
    [outcome] = await send(connector(str(server.make_url("")).rstrip("/")),
                           sample_notification("sn"))
    assert (outcome.kind, outcome.status) == ("retryable", 200), outcome


async def test_a_search_that_ignored_the_query_finds_nothing(aiohttp_server: Server) -> None:
    created: list[Any] = []

    async def search(request: web.Request) -> web.Response:  # the condition was dropped
        return web.json_response({"result": [
            {"sys_id": "a" * 32, "number": "INC0000001", "state": "1", "correlation_id": ""}]})

    async def create(request: web.Request) -> web.Response:
        created.append(await request.json())
        return web.json_response({"result": {"sys_id": "b" * 32, "number": "INC0000002"}},
                                 status=201)

    app = web.Application()
    app.router.add_get("/api/now/table/incident", search)
    app.router.add_post("/api/now/table/incident", create)
    server = await aiohttp_server(app)
    [outcome] = await send(connector(str(server.make_url("")).rstrip("/")),
                           sample_notification("sn"))
    assert outcome.kind == "ok" and outcome.external_ref is not None, outcome
    assert outcome.external_ref.id == "b" * 32 and len(created) == 1


async def test_resolve_with_nothing_to_resolve_is_permanent(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    [outcome] = await send(connector(base), sample_notification("sn", "resolve"))
    assert (outcome.kind, outcome.status) == ("permanent", 404), outcome
    assert state.accepted == []


async def test_a_deleted_record_is_a_permanent_404(aiohttp_server: Server) -> None:
    _, _, base = await start_fake(aiohttp_server)
    gone = sample_incident() | {"external_refs": [
        {"connector": "sn", "id": "0" * 32, "url": None}]}
    [outcome] = await send(connector(base), sample_notification("sn", "note", incident=gone))
    assert (outcome.kind, outcome.status) == ("permanent", 404), outcome
    assert "No Record found" in outcome.detail


async def test_wrong_password_is_refused_and_not_shown(aiohttp_server: Server) -> None:
    state, incidents, base = await start_fake(aiohttp_server)
    conn = connector(base, password=Secret("wrong-password-value"))
    [outcome] = await send(conn, sample_notification("sn"))
    assert (outcome.kind, outcome.status) == ("permanent", 401), outcome
    assert "User Not Authenticated" in outcome.detail
    assert "wrong-password-value" not in repr(outcome) and not incidents.by_sys_id
    assert state.rejected == [(401, "User Not Authenticated")]


async def test_the_fake_refuses_what_servicenow_refuses(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    auth = connector(base)._auth
    url = f"{base}/api/now/table/incident"
    async with aiohttp.ClientSession() as http:
        async def post(body: Any, **headers: str) -> tuple[int, Any]:
            async with http.post(url, data=json.dumps(body), headers={
                    "Authorization": auth, "Content-Type": "application/json",
                    **headers}) as resp:
                return resp.status, await resp.json()

        assert await post({"short_description": "x"}, Authorization="Basic eDp5") == (
            401, {"error": {"message": "User Not Authenticated", "detail": ""},
                  "status": "failure"})
        assert (await post({"short_description": "x"}, **{"Content-Type": "text/plain"})
                )[0] == 415
        assert (await post({"short_description": "x"}, Accept="application/xml"))[0] == 406
        assert (await post({"short_desc": "x"}))[0] == 400  # unknown column
        assert (await post({"state": "6", "close_notes": "done"}))[0] == 403  # no close code
        assert (await post({"urgency": "12"}))[0] == 400
    assert state.accepted == []


def test_config_needs_exactly_one_credential() -> None:
    base = {"instance_url": "https://acme.service-now.com", "username": "baton"}
    file = "connectors/servicenow.schema.json"
    assert schema.problems(file, base | {"token": {"env": "T"}}) == []
    assert schema.problems(file, base)
    assert schema.problems(file, base | {"token": {"env": "T"}, "password": {"env": "P"}})
    with pytest.raises(ConfigError):
        connector(token=Secret("t"))
    config = {k: v for k, v in fake.config("http://x").items() if k != "password"}
    with pytest.raises(ConfigError):
        ServiceNowConnector("sn", config)
    with pytest.raises(ConfigError):
        connector("ftp://example.com")


# -- callbacks ---------------------------------------------------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()
                                                         ).decode()}


GOOD = basic("servicenow", fake.CALLBACK_PASSWORD)


def body(**fields: Any) -> bytes:
    doc = {"sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0010001",
           "state": "6", "previous_state": "2", "correlation_id": CORRELATION,
           "sys_updated_on": "2024-11-20 08:40:00", "sys_updated_by": "abel.tuter",
           "work_notes": ""} | fields
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_resolved_state_resolves_the_baton_incident() -> None:
    events = connector().callback(body(), GOOD, 0.0)
    assert events == [CallbackEvent(
        "resolve", "9d385017c611228701d22104cc95c371@2024-11-20 08:40:00/resolve",
        "abel.tuter (servicenow)", incident_id=INCIDENT_ID)]
    closed = connector().callback(body(state="7", previous_state="6"), GOOD, 0.0)
    assert [e.action for e in closed] == ["resolve"]


def test_bearer_in_progress_and_work_note() -> None:
    headers = {"Authorization": f"Bearer {fake.CALLBACK_TOKEN}"}
    events = connector().callback(body(state="2", previous_state="1",
                                       work_notes="looking into it"), headers, 0.0)
    assert [(e.action, e.text, e.incident_id) for e in events] == [
        ("note", "looking into it", INCIDENT_ID), ("acknowledge", None, INCIDENT_ID)]
    assert len({e.event_id for e in events}) == 2


def test_mod_count_tells_updates_of_the_same_second_apart() -> None:
    one = connector().callback(body(sys_mod_count="4"), GOOD, 0.0)
    two = connector().callback(body(sys_mod_count="5"), GOOD, 0.0)
    assert one[0].event_id.endswith("#4/resolve") and one[0].event_id != two[0].event_id


def test_unchanged_state_and_foreign_records() -> None:
    assert connector().callback(body(previous_state="6"), GOOD, 0.0) == []
    [event] = connector().callback(body(correlation_id="", previous_state=None), GOOD, 0.0)
    assert (event.incident_id, event.external_id) == (
        None, "9d385017c611228701d22104cc95c371")


def test_baton_own_changes_are_skipped() -> None:
    assert connector().callback(body(sys_updated_by=fake.USERNAME), GOOD, 0.0) == []
    echoed = body(previous_state="6", work_notes="[Baton] Resolved in Baton by alice.")
    assert connector().callback(echoed, GOOD, 0.0) == []


@pytest.mark.parametrize("headers", [
    {}, basic("servicenow", "wrong"), basic("someone", fake.CALLBACK_PASSWORD),
    {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!notbase64"},
    {"Authorization": fake.CALLBACK_TOKEN}])
def test_bad_credentials_raise_auth_error(headers: dict[str, str]) -> None:
    with pytest.raises(AuthError) as caught:
        connector().callback(body(), headers, 0.0)
    assert fake.CALLBACK_PASSWORD not in str(caught.value)


def test_callbacks_need_configured_credentials() -> None:
    config = {k: v for k, v in fake.config("http://x").items() if not k.startswith("callback")}
    with pytest.raises(AuthError):
        ServiceNowConnector("sn", config).callback(body(), GOOD, 0.0)


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", body(sys_id=...), body(state=6), body(work_notes=["x"]),
    body(sys_updated_by="")])
def test_wrong_shape_raises_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        connector().callback(payload, GOOD, 0.0)


def test_the_shipped_business_rule_sends_what_the_callback_reads() -> None:
    script = SCRIPT.read_text()
    for name in ("sys_id", "number", "state", "previous_state", "correlation_id",
                 "sys_updated_on", "sys_updated_by", "work_notes"):
        assert f"    {name}: " in script, name
    assert "setBasicAuth" in script and "application/json" in script


async def test_a_search_answer_in_many_chunks_is_read_whole(aiohttp_server: Server) -> None:
    """An instance that ignores sysparm_fields (an ACL or a scripted REST override) answers
    with the whole record, a long description included, in several chunks; reading only
    the first made the retry "not a Table API result" until dead-lettered."""
    state = FakeState()
    app = fake.make_app(state)

    @web.middleware
    async def all_fields(request: web.Request, handler: Any) -> web.StreamResponse:
        query = {k: v for k, v in request.query.items() if k != "sysparm_fields"}
        response: web.StreamResponse = await handler(
            request.clone(rel_url=request.rel_url.with_query(query)))
        return response

    app.middlewares.append(all_fields)
    server = await aiohttp_server(app)
    incidents = app[fake.INCIDENTS]
    conn = connector(str(server.make_url("")).rstrip("/"))
    first = sample_notification("sn", "trigger")
    [created] = await send(conn, first)
    assert created.kind == "ok" and created.external_ref is not None, created
    [record] = incidents.by_sys_id.values()
    record["description"] = "x" * (6 * CHUNK)
    [retried] = await send(conn, dataclasses.replace(first, attempt=2))
    assert retried.kind == "ok" and retried.external_ref == created.external_ref, retried
    assert len(incidents.by_sys_id) == 1 and [a.action for a in state.accepted] == [
        "trigger"]
