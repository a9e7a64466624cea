"""What the pagerduty connector promises beyond the generic contract: one dedup_key for the
incident's whole life, the event it sends, notes skipped, 400s permanent and scrubbed, and a
fake strict enough to trust."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.pagerduty import PagerDutyConnector
from fakes import INCIDENT_ID, FakeState, sample_incident, sample_notification
from fakes import pagerduty as fake

from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
DEDUP_KEY = f"baton-{INCIDENT_ID}"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "connectors"


async def start_fake(aiohttp_server: Server) -> tuple[FakeState, str]:
    state = FakeState()
    server = await aiohttp_server(fake.make_app(state))
    return state, str(server.make_url("")).rstrip("/")


async def send(config: dict[str, Any], *notifications: Notification) -> list[Outcome]:
    connector = PagerDutyConnector("pd", config)
    async with aiohttp.ClientSession() as http:
        return [await connector.send(n, http) for n in notifications]


def events(state: FakeState) -> list[dict[str, Any]]:
    return [json.loads(a.seen.body) for a in state.accepted]


async def test_one_dedup_key_through_the_incidents_life(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    actions = ("trigger", "update", "acknowledge", "resolve")
    outcomes = await send(fake.config(base), *(sample_notification("pd", a) for a in actions))
    assert [o.kind for o in outcomes] == ["ok"] * 4, state.rejected
    assert [a.action for a in state.accepted] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {a.keys for a in state.accepted} == {(DEDUP_KEY,)}
    assert all(o.external_ref == ExternalRef("pd", DEDUP_KEY, None) for o in outcomes)
    acknowledge = events(state)[2]
    assert set(acknowledge) == {"routing_key", "event_action", "dedup_key"}


async def test_trigger_payload(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["title"] = "x" * 1500
    incident["alerts"][0]["links"] = [{"href": "https://grafana.example/d/1", "text": "Panel"}]
    note = dataclasses.replace(sample_notification("pd", incident=incident),
                               target={"connector": "pd", "to": "person:alice",
                                       "person": "alice", "contacts": {}})
    [outcome] = await send(fake.config(base), note)
    assert outcome.kind == "ok" and outcome.status == 202, state.rejected
    [event] = events(state)
    assert event["routing_key"] == fake.ROUTING_KEY and event["event_action"] == "trigger"
    payload = event["payload"]
    assert payload["summary"] == "x" * 1023 + "…"  # cut to 1024, the cut marked
    assert payload["severity"] == "critical" and payload["source"] == "baton"
    assert payload["group"] == "checkout" and payload["class"] == "HighErrorRate"
    assert payload["timestamp"] == incident["created_at"]
    assert payload["custom_details"] == {
        "incident_id": INCIDENT_ID, "key": "checkout/HighErrorRate",
        "labels": incident["labels"], "escalation_level": 1, "target": "alice"}
    assert event["links"] == [{"href": "https://grafana.example/d/1", "text": "Panel"}]


async def test_source_from_config_then_alert_resource(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["alerts"][0]["resource"] = "db-1.example"
    note = sample_notification("pd", incident=incident)
    await send(fake.config(base), note)
    await send({**fake.config(base), "source": "prod-cluster"}, note)
    assert [e["payload"]["source"] for e in events(state)] == ["db-1.example", "prod-cluster"]


async def test_summary_and_payload_fields_are_one_line(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["title"] = "Disk full\non db-1\r\n\tand   db-2"
    incident["service"] = "check\nout"
    incident["alerts"][0] |= {"resource": "db-1\n.example", "component": "  disk\t/var "}
    [outcome] = await send(fake.config(base), sample_notification("pd", incident=incident))
    assert outcome.kind == "ok", state.rejected
    payload = events(state)[0]["payload"]
    assert payload["summary"] == "Disk full on db-1 and db-2"
    assert (payload["source"], payload["component"], payload["group"]) == (
        "db-1 .example", "disk /var", "check out")


async def test_summary_of_emoji_is_cut_to_1024_characters(aiohttp_server: Server) -> None:
    # PagerDuty counts characters: 1024 emoji fit, as the 1024-character limit says.
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {"title": "🔥" * 2000}
    [outcome] = await send(fake.config(base), sample_notification("pd", incident=incident))
    assert outcome.kind == "ok", state.rejected
    assert events(state)[0]["payload"]["summary"] == "🔥" * 1023 + "…"


async def test_an_event_stays_within_512_kb(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["labels"] = {f"label_{i:04d}": "v" * 1000 for i in range(1000)}  # ~1 MB
    [outcome] = await send(fake.config(base), sample_notification("pd", incident=incident))
    assert outcome.kind == "ok", state.rejected
    sent = state.accepted[0].seen.body
    details = json.loads(sent)["payload"]["custom_details"]
    assert len(sent) <= 512 * 1024
    assert len(details["labels"]) + details["labels_omitted"] == 1000
    assert len(details["labels"]) > 400  # only what does not fit is left out


async def test_note_makes_no_request(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    [outcome] = await send(fake.config(base), sample_notification("pd", "note"))
    assert outcome.kind == "ok" and "no notes" in outcome.detail
    assert state.requests == []


async def test_invalid_event_is_permanent_and_scrubbed(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    wrong = "s3cr3t-other-key-do-not-leak-32c"
    [outcome] = await send({**fake.config(base), "routing_key": Secret(wrong)},
                           sample_notification("pd"))
    assert (outcome.kind, outcome.status) == ("permanent", 400)
    assert "invalid event" in outcome.detail and outcome.external_ref is None
    assert wrong not in outcome.detail and wrong not in repr(outcome)
    assert fake.ROUTING_KEY not in outcome.detail and state.accepted == []


async def test_echoed_routing_key_is_scrubbed(aiohttp_server: Server) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=400, text=(await request.read()).decode())

    app = web.Application()
    app.router.add_post("/v2/enqueue", echo)
    server = await aiohttp_server(app)
    [outcome] = await send(fake.config(str(server.make_url("")).rstrip("/")),
                           sample_notification("pd"))
    assert outcome.kind == "permanent" and "***" in outcome.detail
    assert fake.ROUTING_KEY not in outcome.detail


@pytest.mark.parametrize("key", ["", "too-short-s3cr3t", "x" * 33])
def test_routing_key_must_have_32_characters(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PagerDutyConnector("pd", {"routing_key": Secret(key)})
    assert caught.value.problems[0].startswith("connectors.pd.routing_key: ")
    assert key not in str(caught.value) or not key


async def test_fake_is_strict(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    good = {"routing_key": fake.ROUTING_KEY, "event_action": "trigger", "dedup_key": "k",
            "payload": {"summary": "s", "source": "h", "severity": "error"}}
    payload = good["payload"]
    cases: list[tuple[Any, int]] = [
        (good, 202),
        ({**good, "routing_key": "x" * 31}, 400),
        ({**good, "routing_key": "y" * 32}, 400),
        ({**good, "event_action": "escalate"}, 400),
        ({**good, "payload": {**payload, "severity": "fatal"}}, 400),  # type: ignore[dict-item]
        ({**good, "payload": {**payload, "summary": "s" * 1025}}, 400),  # type: ignore[dict-item]
        ({**good, "payload": {"summary": "s", "severity": "error"}}, 400),
        ({"routing_key": fake.ROUTING_KEY, "event_action": "resolve"}, 400),
        ({"routing_key": fake.ROUTING_KEY, "event_action": "resolve", "dedup_key": "k"}, 202),
    ]
    async with aiohttp.ClientSession() as http:
        for event, expected in cases:
            async with http.post(f"{base}{fake.PATH}", json=event) as resp:
                assert resp.status == expected, (event, await resp.text())
                if expected == 400:
                    assert (await resp.json())["status"] == "invalid event"
        async with http.post(f"{base}{fake.PATH}", data=json.dumps(good),
                             headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 400
    assert len(state.accepted) == 2 and len(state.rejected) == len(cases) - 1


def _signed_note(incident: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"event": {
        "id": "01NOTE", "event_type": "incident.annotated", "resource_type": "incident",
        "occurred_at": "2026-11-30T08:00:00.000Z",
        "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "Tenex Engineer"},
        "client": {"name": "PagerDuty"},
        "data": {"incident": incident, "id": "P2LA89X", "content": "rolled back",
                 "trimmed": False, "type": "incident_note"}}}).encode()
    digest = hmac.new(fake.WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={digest}"}


def test_a_note_as_pagerduty_documents_it_yields_no_event() -> None:
    """PagerDuty's v3 docs give incident.annotated's data.incident as an
    incident_reference (html_url, id, self, summary, type): no incident_key, so nothing
    says which Baton incident the note is on. It is accepted and dropped, not an error,
    and the schema says so rather than promising notes."""
    conn = PagerDutyConnector("pd", fake.config("http://127.0.0.1:9"))
    reference = {"html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "id": "PGR0VU2",
                 "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                 "summary": "A little bump in the road", "type": "incident_reference"}
    body, headers = _signed_note(reference)
    assert conn.callback(body, headers, 0.0) == []
    # Should PagerDuty send the key after all, the note is applied.
    body, headers = _signed_note({**reference, "incident_key": f"baton-{INCIDENT_ID}"})
    [note] = conn.callback(body, headers, 0.0)
    assert (note.action, note.incident_id, note.text) == ("note", INCIDENT_ID, "rolled back")
    schema = json.loads((SCHEMAS / "pagerduty.schema.json").read_text("utf-8"))
    described = schema["properties"]["webhook_secrets"]["description"]
    assert "incident_key" in described and "ignored" in described
