"""``POST /v1/callbacks/{connector}`` end to end, through PagerDuty's v3 webhooks: a signed
event changes the incident once, a bad signature changes nothing, a replay changes nothing
twice, and the change is told to the other connectors but never echoed to PagerDuty."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import PROBLEM, ClientFactory, Gateway, ServerFactory, Sink, config_dict, start_gateway

from baton.clock import FakeClock

SECRET = "s3cr3t-pd-webhook-do-not-leak"
OLD_SECRET = "s3cr3t-pd-webhook-old-do-not-leak"
ROUTING_KEY = "R" * 32


class PagerDuty:
    """Just enough of the Events API for the outbound side: record and answer 202."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def enqueue(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.json_response({"status": "success", "dedup_key": "x"}, status=202)


def sign(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest()
                    for s in secrets)


def webhook(event_type: str, incident_id: str, event_id: str = "01EVENT",
            agent_type: str = "user_reference", **data: Any) -> bytes:
    incident = {"id": "PGR0VU2", "type": "incident", "number": 2,
                "incident_key": f"baton-{incident_id}", "status": event_type.split(".")[1],
                "title": "problem", "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"}
    # As PagerDuty documents it: a note's data names the incident only by reference
    # (id, summary, links), without the incident_key that would identify Baton's incident.
    reference = {k: incident[k] for k in ("id", "type", "html_url")} | {
        "type": "incident_reference", "summary": "problem"}
    payload = ({"incident": reference, "content": data.pop("content", ""),
                "type": "incident_note"} if event_type == "incident.annotated" else incident)
    return json.dumps({"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": "2026-11-30T08:00:00.000Z",
        "agent": {"id": "PLH1HKV", "type": agent_type, "summary": "Tenex Engineer",
                  "html_url": "https://acme.pagerduty.com/users/PLH1HKV"},
        "client": None, "data": {**payload, **data}}}).encode()


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, receiver: Sink,
             tmp_path: Path, clock: FakeClock) -> tuple[Gateway, PagerDuty]:
    pd = PagerDuty()
    app = web.Application()
    app.router.add_post("/v2/enqueue", pd.enqueue)
    server = await aiohttp_server(app)
    data = config_dict(tmp_path, receiver.url)
    data["connectors"]["pager"] = {
        "type": "pagerduty", "routing_key": {"env": "PD_KEY"},
        "url": str(server.make_url("/v2/enqueue")),
        "webhook_secrets": [{"env": "PD_HOOK"}, {"env": "PD_HOOK_OLD"}]}
    data["policies"]["notify"]["levels"][0]["notify"] = ["hook", "pager"]
    gateway = await start_gateway(aiohttp_client, data, tmp_path, clock=clock, environ={
        "PD_KEY": ROUTING_KEY, "PD_HOOK": SECRET, "PD_HOOK_OLD": OLD_SECRET})
    return gateway, pd


async def opened(gw: Gateway) -> str:
    incident_id: str = (await gw.ingest({"dedup_key": "disk", "summary": "disk full"}))[
        "incidents"][0]
    await gw.pump()
    return incident_id


async def opened_another(gw: Gateway) -> str:
    incident_id: str = (await gw.ingest({"dedup_key": "cpu", "summary": "cpu hot"}))[
        "incidents"][0]
    await gw.pump()
    return incident_id


async def call(gw: Gateway, body: bytes, signature: str | None, status: int = 200,
               connector: str = "pager") -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    resp = await gw.client.post(f"/v1/callbacks/{connector}", data=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    assert SECRET not in text and OLD_SECRET not in text
    if status != 200:
        assert resp.content_type == PROBLEM
    return json.loads(text)  # type: ignore[no-any-return]


async def test_a_signed_acknowledge_acknowledges_and_tells_only_the_others(
        gw: tuple[Gateway, PagerDuty], receiver: Sink) -> None:
    g, pd = gw
    incident_id = await opened(g)
    body = webhook("incident.acknowledged", incident_id)
    result = await call(g, body, sign(body, SECRET))
    assert result == {"events": 1, "applied": 1, "unchanged": 0, "replayed": 0,
                      "unknown": 0, "incidents": [incident_id]}
    doc = await g.incident(incident_id)
    assert (doc["status"], doc["acknowledged_by"]) == (
        "acknowledged", "Tenex Engineer (pagerduty)")
    ack = [e for e in doc["timeline"] if e["type"] == "acknowledged"]
    assert [e["detail"] for e in ack] == [{"via": "callback:pager", "event_id": "01EVENT"}]
    await g.pump()
    assert [a for _, c, a in receiver.actions] == ["trigger", "acknowledge"]
    # PagerDuty got the trigger only: the acknowledge came from there.
    assert [e["event_action"] for e in pd.events] == ["trigger"]


async def test_a_replay_changes_nothing_twice(gw: tuple[Gateway, PagerDuty],
                                              receiver: Sink) -> None:
    g, _ = gw
    incident_id = await opened(g)
    body = webhook("incident.resolved", incident_id, event_id="01RES")
    assert (await call(g, body, sign(body, SECRET)))["applied"] == 1
    before = await g.incident(incident_id)
    again = await call(g, body, sign(body, SECRET))
    assert (again["applied"], again["replayed"]) == (0, 1)
    assert (await g.incident(incident_id))["timeline"] == before["timeline"]
    await g.pump()
    assert [a for _, c, a in receiver.actions] == ["trigger", "resolve"]


async def test_an_echo_under_a_new_event_id_is_unchanged(gw: tuple[Gateway, PagerDuty],
                                                         receiver: Sink) -> None:
    """Resolved in Baton, told to PagerDuty, which reports the resolve back: no second
    resolve anywhere."""
    g, pd = gw
    incident_id = await opened(g)
    await g.post(f"/v1/incidents/{incident_id}/resolve", {"by": "alice"}, 200)
    await g.pump()
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
    for event_id, agent in (("01ECHO1", "user_reference"), ("01ECHO2", "service_reference")):
        body = webhook("incident.resolved", incident_id, event_id=event_id, agent_type=agent)
        result = await call(g, body, sign(body, SECRET))
        assert result["applied"] == 0
    doc = await g.incident(incident_id)
    assert [e["type"] for e in doc["timeline"]].count("resolved") == 1
    assert doc["resolved_by"] == "alice"
    await g.pump()
    assert [a for _, c, a in receiver.actions] == ["trigger", "resolve"]
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]


@pytest.mark.parametrize("signature", [
    None, "", "v1=", "v1=" + "0" * 64, "v0=abc",
    "v1=" + hmac.new(b"wrong", b"x", hashlib.sha256).hexdigest()])
async def test_a_bad_or_missing_signature_is_401_and_changes_nothing(
        gw: tuple[Gateway, PagerDuty], signature: str | None) -> None:
    g, _ = gw
    incident_id = await opened(g)
    before = await g.incident(incident_id)
    body = webhook("incident.acknowledged", incident_id)
    resp = await call(g, body, signature, status=401)
    assert resp["status"] == 401
    after = await g.incident(incident_id)
    assert after["status"] == "triggered" and after["timeline"] == before["timeline"]
    # The refused event id was not spent: the genuine request still applies.
    assert (await call(g, body, sign(body, SECRET)))["applied"] == 1


async def test_a_tampered_body_is_401(gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    incident_id = await opened(g)
    body = webhook("incident.acknowledged", incident_id)
    signature = sign(body, SECRET)
    await call(g, body.replace(b"Tenex", b"Mallory"), signature, status=401)
    assert (await g.incident(incident_id))["status"] == "triggered"


async def test_rotation_any_configured_secret_and_any_signature(
        gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    first, second = await opened(g), await opened_another(g)
    body = webhook("incident.acknowledged", first, event_id="01A1")
    assert (await call(g, body, sign(body, OLD_SECRET)))["applied"] == 1
    body2 = webhook("incident.acknowledged", second, event_id="01A2")
    # PagerDuty mid-rotation: one signature per secret it holds, one unknown to us.
    assert (await call(g, body2, sign(body2, "retired", SECRET)))["applied"] == 1
    for incident_id in (first, second):
        doc = await g.incident(incident_id)
        assert (doc["status"], doc["acknowledged_by"]) == (
            "acknowledged", "Tenex Engineer (pagerduty)")


async def test_a_note_as_pagerduty_sends_it_is_verified_and_ignored(
        gw: tuple[Gateway, PagerDuty], receiver: Sink) -> None:
    """PagerDuty's incident.annotated carries no incident_key, so the note cannot be tied
    to Baton's incident: accepted (no retries from PagerDuty), nothing changes."""
    g, _ = gw
    incident_id = await opened(g)
    before = await g.incident(incident_id)
    body = webhook("incident.annotated", incident_id, event_id="01N", content="rolled back")
    assert (await call(g, body, sign(body, SECRET)))["events"] == 0
    assert (await g.incident(incident_id))["timeline"] == before["timeline"]
    await call(g, body, "v1=" + "0" * 64, status=401)


async def test_events_about_other_incidents_are_counted_not_applied(
        gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    await opened(g)
    body = webhook("incident.acknowledged", "01NOSUCHINCIDENT0000000000")
    assert (await call(g, body, sign(body, SECRET)))["unknown"] == 1
    foreign = json.loads(webhook("incident.acknowledged", "x"))
    foreign["event"]["data"]["incident_key"] = "from-another-tool"
    raw = json.dumps(foreign).encode()
    assert (await call(g, raw, sign(raw, SECRET)))["events"] == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event": {}}',
                                  b'{"event": {"id": "x", "event_type": 1, "data": {}}}'])
async def test_a_body_of_the_wrong_shape_is_400(gw: tuple[Gateway, PagerDuty],
                                                 body: bytes) -> None:
    g, _ = gw
    resp = await call(g, body, sign(body, SECRET), status=400)
    assert resp["status"] == 400


async def test_unknown_connector_and_one_without_callbacks_are_404(
        gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    body = b"{}"
    assert "no connector" in (await call(g, body, None, 404, "nope"))["detail"]
    assert "takes no callbacks" in (await call(g, body, None, 404, "hook"))["detail"]


async def test_callback_metrics_count_results(gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    incident_id = await opened(g)
    body = webhook("incident.acknowledged", incident_id)
    await call(g, body, sign(body, SECRET))
    await call(g, body, sign(body, SECRET))
    await call(g, body, "v1=00", status=401)
    text = await (await g.client.get("/metrics")).text()
    for result in ("applied", "replayed", "auth"):
        assert f'baton_callbacks_total{{connector="pager",result="{result}"}} 1.0' in text


async def test_a_signed_body_with_an_unpaired_surrogate_is_400_not_500(
        gw: tuple[Gateway, PagerDuty]) -> None:
    g, _ = gw
    incident_id = await opened(g)
    body = webhook("incident.acknowledged", incident_id).replace(
        b"Tenex Engineer", b"Tenex \\ud800 Engineer")
    resp = await call(g, body, sign(body, SECRET), status=400)
    assert "surrogate" in resp["detail"]
    assert (await g.incident(incident_id))["status"] == "triggered"
