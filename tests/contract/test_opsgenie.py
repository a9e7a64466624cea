"""What the opsgenie connector promises beyond the generic contract: one alert per incident
addressed by its alias through its whole life, the EU/US base URL, the request body it
creates (priority, truncation, details), and that the fake is strict enough to trust."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.opsgenie import OpsgenieConnector
from fakes import INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import opsgenie as fake

from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
ALIAS = f"baton-{INCIDENT_ID}"


async def start_fake(aiohttp_server: Server) -> tuple[FakeState, fake.Alerts, str]:
    state = FakeState()
    app = fake.make_app(state)
    server = await aiohttp_server(app)
    return state, app[fake.ALERTS], str(server.make_url("")).rstrip("/")


async def send(config: dict[str, Any], notification: Notification) -> Outcome:
    async with aiohttp.ClientSession() as http:
        return await OpsgenieConnector("og", config).send(notification, http)


def connector(**config: Any) -> OpsgenieConnector:
    return OpsgenieConnector("og", {"api_key": Secret(fake.API_KEY), **config})


async def test_create_acknowledge_close_by_the_same_alias(aiohttp_server: Server) -> None:
    state, alerts, base = await start_fake(aiohttp_server)
    for action in ("trigger", "acknowledge", "note", "resolve"):
        outcome = await send(fake.config(base), sample_notification("og", action))
        assert outcome.kind == "ok", outcome
        assert outcome.external_ref == ExternalRef("og", ALIAS, None)
    assert [(a.action, a.keys) for a in state.accepted] == [
        ("trigger", (ALIAS,)), ("acknowledge", (ALIAS,)), ("note", (ALIAS,)),
        ("resolve", (ALIAS,))]
    assert alerts.by_alias == {ALIAS: "closed"} and alerts.lost == []
    assert state.rejected == []
    close = state.accepted[-1].seen
    assert close.path == f"/v2/alerts/{ALIAS}/close"
    assert close.query == {"identifierType": "alias"}
    assert json.loads(close.body) == {"user": "alice", "source": "baton",
                                      "note": "Resolved in Baton."}


def test_region_picks_the_base_url() -> None:
    assert connector().endpoint("trigger", "a") == "https://api.opsgenie.com/v2/alerts"
    eu = connector(region="eu")
    assert eu.endpoint("trigger", "a") == "https://api.eu.opsgenie.com/v2/alerts"
    assert eu.endpoint("resolve", "baton-x") == (
        "https://api.eu.opsgenie.com/v2/alerts/baton-x/close?identifierType=alias")
    assert eu.endpoint("acknowledge", "a/b").startswith(
        "https://api.eu.opsgenie.com/v2/alerts/a%2Fb/acknowledge?")
    override = connector(region="eu", url="http://127.0.0.1:8080/")
    assert override.endpoint("note", "x") == (
        "http://127.0.0.1:8080/v2/alerts/x/notes?identifierType=alias")
    with pytest.raises(ConfigError):
        connector(url="ftp://example.com")


@pytest.mark.parametrize(("severity", "priority"), [
    ("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P5")])
def test_priority_follows_severity(severity: str, priority: str) -> None:
    incident = sample_incident() | {"severity": severity}
    body = connector().create_body(sample_notification("og", incident=incident))
    assert body["priority"] == priority
    assert body["details"]["severity"] == severity


def test_create_body() -> None:
    note = dataclasses.replace(sample_notification("og"), target={
        "connector": "og", "to": "person:alice", "person": "alice",
        "contacts": {"email": "alice@example.com"}})
    body = connector(tags=["production"], responders=[{"type": "team", "name": "ops"}]
                     ).create_body(note)
    assert body["message"] == "High error rate on checkout"
    assert body["alias"] == ALIAS and body["entity"] == "checkout"
    assert body["source"] == "baton" and body["tags"] == ["production", "baton"]
    assert body["responders"] == [{"type": "team", "name": "ops"}]
    assert "High error rate on checkout: 5xx ratio above 5% for 10m" in body["description"]
    assert body["details"] == {
        "incident_id": INCIDENT_ID, "key": "checkout/HighErrorRate", "severity": "critical",
        "escalation_level": "1", "target_person": "alice",
        "contact_email": "alice@example.com"}


async def test_long_title_is_truncated_and_accepted(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {"title": "x" * 400}
    outcome = await send(fake.config(base), sample_notification("og", incident=incident))
    assert outcome.kind == "ok", outcome
    message = json.loads(state.accepted[0].seen.body)["message"]
    assert len(message) == 130 and message.endswith("…")


async def create_body(aiohttp_server: Server, config: dict[str, Any] | None = None,
                      **incident: Any) -> dict[str, Any]:
    """The create request the fake accepted for the sample incident changed by ``incident``."""
    state, _, base = await start_fake(aiohttp_server)
    doc = sample_incident() | incident
    outcome = await send({**fake.config(base), **(config or {})},
                         sample_notification("og", incident=doc))
    assert outcome.kind == "ok", (outcome, state.rejected)
    body: dict[str, Any] = json.loads(state.accepted[0].seen.body)
    return body


async def test_message_is_one_line(aiohttp_server: Server) -> None:
    body = await create_body(aiohttp_server,
                             title="Disk full\non db-1\r\n\tand   db-2")
    assert body["message"] == "Disk full on db-1 and db-2"


async def test_markup_in_the_title_shows_as_text(aiohttp_server: Server) -> None:
    # Opsgenie renders HTML in the message ("Alerts and Alert Fields") and the
    # description: sent escaped, a title's tags read as the characters they are.
    title = "<b>x</b> & <script>alert(1)</script>"
    alert = {**sample_incident()["alerts"][0], "summary": title, "description": "a\n<i>b</i>"}
    body = await create_body(aiohttp_server, title=title, alerts=[alert])
    escaped = "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
    assert body["message"] == escaped
    # The description is shown as HTML too: escaped the same way, its lines kept.
    assert body["description"].endswith(f"\n- {escaped}: a\n&lt;i&gt;b&lt;/i&gt;")


async def test_message_limit_counts_the_escaped_text_and_keeps_entities_whole(
        aiohttp_server: Server) -> None:
    body = await create_body(aiohttp_server, title="x" * 126 + "<" * 10)
    message = body["message"]
    assert message == "x" * 126 + "…"  # "&lt;" would make 131: left out whole, not cut


async def test_entity_is_clipped_to_512(aiohttp_server: Server) -> None:
    body = await create_body(aiohttp_server, service="svc\n" + "s" * 700)
    assert len(body["entity"]) == 512 and body["entity"].startswith("svc ss")
    assert body["entity"].endswith("…")


async def test_tags_and_details_stay_within_opsgenies_limits(
        aiohttp_server: Server) -> None:
    # Config validation already caps tags (19 of 50); the connector holds even so.
    tags = [f"tag-{i}-" + "t" * 60 for i in range(30)]
    state, _, base = await start_fake(aiohttp_server)
    conn = OpsgenieConnector("og", {**fake.config(base), "tags": tags})
    note = dataclasses.replace(
        sample_notification("og"), target={"connector": "og", "to": "person:alice",
                                           "person": "alice", "contacts": {
                                               f"k{i}": "v" * 900 for i in range(12)}})
    async with aiohttp.ClientSession() as http:
        assert (await conn.send(note, http)).kind == "ok", state.rejected
    body = json.loads(state.accepted[0].seen.body)
    assert len(body["tags"]) == 20 and body["tags"][-1] == "baton"
    assert all(len(t) <= 50 for t in body["tags"])
    assert sum(len(k) + len(v) for k, v in body["details"].items()) <= 8000
    assert body["details"]["incident_id"] == INCIDENT_ID  # Baton's own keys come first


async def test_note_sends_the_last_timeline_note_or_a_generic_text(
        aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["timeline"] = [*incident["timeline"], {
        "at": "2024-11-20T08:20:00.000Z", "type": "note", "actor": "bob",
        "detail": {"text": "rolling back", "note_id": "n1"}}]
    bare = {k: v for k, v in incident.items() if k != "timeline"}
    for doc in (sample_incident(), incident, bare):
        assert (await send(fake.config(base), sample_notification("og", "trigger"))).kind == "ok"
        assert (await send(fake.config(base), sample_notification(
            "og", "note", incident=doc))).kind == "ok"
    notes = [json.loads(a.seen.body) for a in state.accepted if a.action == "note"]
    assert [(n["user"], n["note"]) for n in notes] == [
        ("baton", "Incident updated in Baton."), ("bob", "rolling back"),
        ("baton", "Incident updated in Baton.")]


async def test_422_is_permanent_and_shows_no_secret(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {"title": ""}
    incident["alerts"] = []
    incident["key"] = ""  # nothing left to make a message from: the fake says 422
    outcome = await send(fake.config(base), sample_notification("og", incident=incident))
    assert (outcome.kind, outcome.status) == ("permanent", 422), outcome
    assert "message is required" in outcome.detail
    assert fake.API_KEY not in outcome.detail + repr(outcome)
    assert state.rejected == [(422, "Request body is not processable. Please check the "
                                     "errors.")]


async def test_wrong_key_is_refused_permanently(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    config = fake.config(base) | {"api_key": Secret("wrong-key")}
    outcome = await send(config, sample_notification("og"))
    assert (outcome.kind, outcome.status) == ("permanent", 401)
    assert "Could not authenticate" in outcome.detail and "wrong-key" not in outcome.detail
    assert state.accepted == []


async def test_scripted_failure_is_classified(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    state.script(Reply(429, {"Retry-After": "12"}))
    outcome = await send(fake.config(base), sample_notification("og"))
    assert (outcome.kind, outcome.retry_after) == ("retryable", 12.0)
    assert outcome.external_ref is None


async def test_action_on_an_unknown_alias_is_lost_not_accepted(aiohttp_server: Server) -> None:
    state, alerts, base = await start_fake(aiohttp_server)
    outcome = await send(fake.config(base), sample_notification("og", "resolve"))
    assert outcome.kind == "ok"  # Opsgenie answers 202 and drops it later
    assert state.accepted == [] and alerts.lost == [("close", ALIAS)]


# --- callbacks from an Opsgenie Webhook integration -------------------------------------

TOKEN = "s3cr3t-og-callback-do-not-leak"


def og_webhook(action: str, alias: str = ALIAS, source: str = "", **alert: Any) -> bytes:
    """The shape of Opsgenie's documented alert action data for the Webhook integration."""
    return json.dumps({
        "source": {"name": source, "type": "web"},
        "alert": {"updatedAt": 1420452224764002246, "tags": ["baton"],
                  "message": "High error rate on checkout", "username": "fili@example.com",
                  "alertId": "052652ac-5d1c-464a-812a-7dd18bbfba8c", "source": "baton",
                  "alias": alias, "tinyId": "23", "createdAt": 1420452191104,
                  "userId": "daed1180-0ce8-438b-8f8e-57e1a5920a2d", "entity": "", **alert},
        "action": action, "integrationId": "37c8f316-17c6-49d7-899b-9c7e540c048d",
        "integrationName": "baton-callbacks"}).encode()


def with_token(**config: Any) -> OpsgenieConnector:
    return connector(callback_token=Secret(TOKEN), **config)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(("action", "ours"), [
    ("Acknowledge", "acknowledge"), ("Close", "resolve"), ("AddNote", "note")])
def test_callback_actions_become_events(action: str, ours: str) -> None:
    (event,) = with_token().callback(og_webhook(action, note="looking"), AUTH, 0.0)
    assert (event.action, event.incident_id, event.actor) == (
        ours, INCIDENT_ID, "fili@example.com (opsgenie)")
    assert event.text == ("looking" if ours == "note" else None)
    assert event.event_id.startswith("052652ac-5d1c-464a-812a-7dd18bbfba8c/")


def test_callback_skips_baton_echoes_other_aliases_and_other_actions() -> None:
    c = with_token()
    assert c.callback(og_webhook("Close", source="baton"), AUTH, 0.0) == []
    assert c.callback(og_webhook("Close", alias="from-grafana"), AUTH, 0.0) == []
    assert c.callback(og_webhook("Create"), AUTH, 0.0) == []


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}])
def test_callback_without_the_token_is_refused(headers: dict[str, str]) -> None:
    from baton.errors import AuthError
    with pytest.raises(AuthError) as caught:
        with_token().callback(og_webhook("Close"), headers, 0.0)
    assert TOKEN not in str(caught.value)


def test_callback_tokens_rotate() -> None:
    c = connector(callback_token=[Secret("old-token"), Secret(TOKEN)])
    for token in ("old-token", TOKEN):
        assert c.callback(og_webhook("Close"), {"Authorization": f"Bearer {token}"}, 0.0)


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"action": "Close"}',
                                  b'{"action": "Close", "alert": {"alias": "baton-x"}}'])
def test_callback_of_the_wrong_shape_is_a_payload_error(body: bytes) -> None:
    from baton.errors import PayloadError
    with pytest.raises(PayloadError):
        with_token().callback(body, AUTH, 0.0)


def test_without_a_token_the_connector_takes_no_callbacks() -> None:
    assert connector().accepts_callbacks is False
    assert with_token().accepts_callbacks is True


async def test_update_is_a_note_on_the_same_alert(aiohttp_server: Server) -> None:
    state, alerts, base = await start_fake(aiohttp_server)
    assert (await send(fake.config(base), sample_notification("og", "trigger"))).kind == "ok"
    incident = sample_incident() | {"escalation": {"policy": "p", "level": 2, "loops": 0,
                                                   "next_at": None}}
    outcome = await send(fake.config(base), sample_notification("og", "update",
                                                                incident=incident))
    assert outcome.kind == "ok" and outcome.external_ref == ExternalRef("og", ALIAS, None)
    assert [(a.action, a.keys) for a in state.accepted] == [
        ("trigger", (ALIAS,)), ("note", (ALIAS,))]
    note = json.loads(state.accepted[-1].seen.body)["note"]
    assert note.startswith("Updated in Baton: escalation level 2, 1 alert(s) firing")
    assert "High error rate on checkout" in note
    assert alerts.by_alias == {ALIAS: "open"}
