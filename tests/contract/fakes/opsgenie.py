"""A strict Opsgenie Alert API v2, the vendor behind the ``opsgenie`` connector.

Written from the Alert API reference: ``Authorization: GenieKey <key>`` or 401 ("Could not
authenticate"), a JSON body (415 otherwise), create needs ``message`` (at most 130 chars)
and rejects an oversized alias/description/entity, more than 20 tags or one over 50
characters, details over 8000 characters in all, or an unknown priority with 422; acknowledge,
close and notes need ``identifierType=alias`` here (the connector always addresses by
alias; Opsgenie would read a bare alias as an alert id and lose the request) and notes
need a ``note``. Opsgenie works asynchronously: a valid request gets 202 even for an alias
that has no alert, and the request is then lost, so the fake answers 202 too but records
the alias in ``ALERTS``' ``lost`` list instead of accepting an action.

Accepted actions, in Baton's terms: create -> ``trigger``, acknowledge -> ``acknowledge``,
close -> ``resolve``, notes -> ``note``; the keys are ``(alias,)``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Seen

API_KEY = "s3cr3t-OG-genie-key-do-not-leak"
CALLBACK_TOKEN = "s3cr3t-OG-callback-token-do-not-leak"
PRIORITIES = frozenset({"P1", "P2", "P3", "P4", "P5"})
LIMITS = {"message": 130, "alias": 512, "description": 15000, "entity": 512,
          "source": 100, "user": 100, "note": 25000}
ACTIONS = {"acknowledge": "acknowledge", "close": "resolve", "notes": "note"}
TAGS, TAG_CHARS, DETAILS_CHARS = 20, 50, 8000


@dataclass
class Alerts:
    """The fake's alert store: alias -> "open" | "acknowledged" | "closed"."""

    by_alias: dict[str, str] = field(default_factory=dict)
    lost: list[tuple[str, str]] = field(default_factory=list)  # (operation, identifier)


ALERTS = web.AppKey("alerts", Alerts)


def config(base_url: str) -> dict[str, Any]:
    return {
        "api_key": Secret(API_KEY, "env:OPSGENIE_API_KEY"),
        "url": base_url,
        "responders": [{"type": "team", "name": "ops"}],
        "tags": ["production"],
        "callback_token": Secret(CALLBACK_TOKEN, "env:OPSGENIE_CALLBACK_TOKEN"),
    }


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """What an Opsgenie Webhook integration posts when a responder acts on the alert."""
    og_action = {"acknowledge": "Acknowledge", "resolve": "Close"}.get(action)
    if og_action is None:
        return None
    body = json.dumps({
        "source": {"name": "", "type": "web"},
        "alert": {"alertId": event_id, "alias": external_id or f"baton-{incident_id}",
                  "message": "problem", "username": "fili@example.com",
                  "updatedAt": int(now * 1e9), "tinyId": "23"},
        "action": og_action, "integrationName": "baton-callbacks"}).encode()
    token = "not-the-token" if forged else CALLBACK_TOKEN
    return body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[ALERTS] = Alerts()
    app.router.add_post("/v2/alerts", _create)
    app.router.add_post("/v2/alerts/{identifier}/{op:acknowledge|close|notes}", _act)
    return app


def _answer(status: int, message: str, headers: dict[str, str] | None = None,
            **extra: Any) -> web.Response:
    body = {"message": message, **extra, "took": 0.01, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status, headers=headers)


def _refuse(state: FakeState, status: int, message: str, **extra: Any) -> web.Response:
    state.rejected.append((status, message))
    return _answer(status, message, **extra)


def _accepted(status: int, headers: dict[str, str]) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    body = {"result": "Request will be processed", "took": 0.1,
            "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status, headers=headers)


def _checks(request: web.Request, seen: Seen) -> tuple[int, str, dict[str, Any]]:
    """(status, message, body): status 0 when the request is acceptable."""
    if request.headers.get("Authorization") != f"GenieKey {API_KEY}":
        return 401, "Could not authenticate", {}
    if request.content_type != "application/json":
        return 415, "Content-Type must be application/json", {}
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return 400, "Request body is not valid JSON", {}
    if not isinstance(doc, dict):
        return 422, "Request body is not processable. Please check the errors.", {}
    return 0, "", doc


def _problems(doc: dict[str, Any], required: tuple[str, ...]) -> dict[str, str]:
    errors = {k: f"{k} is required" for k in required if not doc.get(k)}
    for key, limit in LIMITS.items():
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors[key] = f"{key} must be a string of at most {limit} characters"
    if "priority" in doc and doc["priority"] not in PRIORITIES:
        errors["priority"] = "priority must be one of P1, P2, P3, P4, P5"
    details = doc.get("details", {})
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        errors["details"] = "details must map strings to strings"
    elif sum(len(k) + len(v) for k, v in details.items()) > DETAILS_CHARS:
        errors["details"] = f"details must be at most {DETAILS_CHARS} characters in total"
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or len(tags) > TAGS or not all(
            isinstance(t, str) and len(t) <= TAG_CHARS for t in tags):
        errors["tags"] = f"at most {TAGS} tags of at most {TAG_CHARS} characters"
    return errors


async def _scripted(state: FakeState) -> tuple[int, dict[str, str]] | web.Response:
    reply = await state.next_reply()
    status = reply.status if reply else 202
    headers = dict(reply.headers) if reply else {}
    if not 200 <= status < 300:
        return _answer(status, reply.message if reply else "scripted failure", headers)
    return status, headers


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, doc = _checks(request, seen)
    if status:
        return _refuse(state, status, message)
    if errors := _problems(doc, ("message",)):
        return _refuse(state, 422, "Request body is not processable. Please check the errors.",
                       errors=errors)
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    alias = doc.get("alias") or doc["message"]  # Opsgenie defaults the alias to the message
    alerts = request.app[ALERTS]
    if alerts.by_alias.get(alias) in (None, "closed"):
        alerts.by_alias[alias] = "open"  # else: deduplicated into the open alert
    state.accept("trigger", (alias,), seen)
    return _accepted(*scripted)


async def _act(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, doc = _checks(request, seen)
    if status:
        return _refuse(state, status, message)
    op, identifier = request.match_info["op"], request.match_info["identifier"]
    if request.query.get("identifierType") != "alias":
        return _refuse(state, 422, "identifierType=alias is required by this fake")
    if errors := _problems(doc, ("note",) if op == "notes" else ()):
        return _refuse(state, 422, "Request body is not processable. Please check the errors.",
                       errors=errors)
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    alerts = request.app[ALERTS]
    current = alerts.by_alias.get(identifier)
    if current is None or (current == "closed" and op != "notes"):
        alerts.lost.append((op, identifier))  # 202 all the same: processed asynchronously
        return _accepted(*scripted)
    if op == "acknowledge":
        alerts.by_alias[identifier] = "acknowledged"
    elif op == "close":
        alerts.by_alias[identifier] = "closed"
    state.accept(ACTIONS[op], (identifier,), seen)
    return _accepted(*scripted)
