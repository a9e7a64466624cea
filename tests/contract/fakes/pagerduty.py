"""A strict PagerDuty Events API v2 (``POST /v2/enqueue``), the vendor behind ``pagerduty``.

Written from PagerDuty's Events API v2 reference: the body must be JSON; ``routing_key`` is
the 32-character integration key (here: the configured one); ``event_action`` is trigger,
acknowledge or resolve; a trigger needs ``payload.summary`` (at most 1024 characters),
``payload.source`` and a known ``payload.severity``; acknowledge and resolve need a
``dedup_key``. Anything else is 400 ``invalid event``. Accepted events answer 202 with the
dedup key and are recorded with the event action and the key ``(dedup_key,)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState

PATH = "/v2/enqueue"
ROUTING_KEY = "s3cr3t-pd-routing-do-not-leak-32"  # 32 characters, as PagerDuty's are
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
_ERRORS = {429: {"status": "throttle event",
                 "message": "Requests for this service are arriving too quickly."}}


WEBHOOK_SECRET = "s3cr3t-pd-webhook-do-not-leak"


def config(base_url: str) -> dict[str, Any]:
    return {"routing_key": Secret(ROUTING_KEY, "env:PD_ROUTING_KEY"), "url": base_url + PATH,
            "webhook_secrets": [Secret(WEBHOOK_SECRET, "env:PD_WEBHOOK_SECRET")]}


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """A v3 webhook as PagerDuty sends it when a responder acts on Baton's incident."""
    event_type = {"acknowledge": "incident.acknowledged", "resolve": "incident.resolved"}
    if action not in event_type:
        return None
    body = json.dumps({"event": {
        "id": event_id, "event_type": event_type[action], "resource_type": "incident",
        "occurred_at": "2026-11-30T08:00:00.000Z",
        "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "Tenex Engineer"},
        "data": {"id": "PGR0VU2", "type": "incident", "number": 2,
                 "incident_key": external_id or f"baton-{incident_id}",
                 "status": event_type[action].split(".")[1], "title": "problem"}}}).encode()
    key = b"not-the-secret" if forged else WEBHOOK_SECRET.encode()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature":
                  "v1=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_post(PATH, _enqueue)
    return app


def _invalid(state: FakeState, problem: str) -> web.Response:
    """PagerDuty's answer to a bad event; the reason is recorded for the tests."""
    state.rejected.append((400, problem))
    return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                              "errors": [problem]}, status=400)


def _problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "Event must be a JSON object"
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        return "'routing_key' must be a 32 character string"
    if key != ROUTING_KEY:
        return "'routing_key' is not an integration key of this account"
    action = event.get("event_action")
    if action not in ACTIONS:
        return "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        return "'dedup_key' must be a string of at most 255 characters"
    if action != "trigger":
        return None if dedup_key else f"'dedup_key' is required for {action} events"
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return "'payload' is missing or not an object"
    for field in ("summary", "source"):
        if not isinstance(payload.get(field), str) or not payload[field]:
            return f"'payload.{field}' is missing or blank"
    if len(payload["summary"]) > 1024:
        return "'payload.summary' must be at most 1024 characters"
    if payload.get("severity") not in SEVERITIES:
        return "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
    return None


async def _enqueue(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    if request.content_type != "application/json":
        return _invalid(state, "Content-Type must be application/json")
    try:
        event = json.loads(seen.body)
    except ValueError:
        return _invalid(state, "Body is not valid JSON")
    if problem := _problem(event):
        return _invalid(state, problem)

    reply = await state.next_reply()
    status = reply.status if reply else 202
    headers = dict(reply.headers) if reply else {}
    if not 200 <= status < 300:
        body = _ERRORS.get(status, {"status": "error", "message": HTTPStatus(status).phrase})
        if reply is not None and reply.message != "scripted failure":
            body = {**body, "errors": [reply.message]}
        return web.json_response(body, status=status, headers=headers)
    # Without a dedup_key PagerDuty makes one up; Baton always sends its own.
    dedup_key = event.get("dedup_key") or "generated-by-fake"
    state.accept(event["event_action"], (dedup_key,), seen)
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.json_response({"status": "success", "message": "Event processed",
                              "dedup_key": dedup_key}, status=status, headers=headers)
