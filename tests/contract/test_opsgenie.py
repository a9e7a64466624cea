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
