"""A strict Zendesk Support Tickets API, the vendor behind the ``zendesk`` connector.

Written from the Tickets API reference: Basic ``<email>/token:<api_token>`` or 401
(``{"error": "Couldn't authenticate you"}``); writes need a JSON body wrapped in
``{"ticket": {...}}`` (415 for another content type, 400 without the wrapper); a new ticket
needs a comment body (422 ``RecordInvalid``, "Description: cannot be blank"); priority,
status and type must be Zendesk's values (422); a closed ticket cannot be updated (422,
"Status: closed prevents ticket update"); an unknown ticket is 404 ``RecordNotFound``.
``GET /api/v2/tickets.json?external_id=`` lists the tickets with that external id.
``via_followup_source_id`` only takes effect for a closed source ticket, as in Zendesk.

Scripted replies apply to writes (POST, PUT), the calls that perform a Baton action; the
lookups answer normally, so the suite's status table speaks about the action itself.
Accepted actions: POST -> ``trigger`` with keys ``(external_id,)``; a PUT that sets an
``external_id`` (a reopen on recurrence) -> ``trigger`` with that id; otherwise status
``solved`` -> ``resolve``, ``open`` -> ``acknowledge``, a bare comment -> ``note``, keys
``(ticket id,)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Seen, chunked_json

EMAIL = "baton@acme.example"
API_TOKEN = "s3cr3t-ZD-api-token-do-not-leak"
WEBHOOK_SECRET = "s3cr3t-ZD-webhook-signing-secret-do-not-leak"
PRIORITIES = frozenset({"urgent", "high", "normal", "low"})
STATUSES = frozenset({"new", "open", "pending", "hold", "solved", "closed"})
TYPES = frozenset({"problem", "incident", "question", "task"})
FIELDS = frozenset({"subject", "comment", "priority", "type", "external_id", "tags",
                    "group_id", "assignee_id", "status", "via_followup_source_id"})


@dataclass
class Tickets:
    """The fake's tickets: id -> ticket; comments per ticket id."""

    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, **ticket: Any) -> dict[str, Any]:
        """A ticket as if made earlier (tests use it to set up recurrences)."""
        ticket_id = 35436 + len(self.by_id)
        record = {"status": "new", "priority": "normal", "external_id": None, "tags": [],
                  **ticket, "id": ticket_id}
        self.by_id[ticket_id] = record
        self.comments[ticket_id] = []
        return record


TICKETS = web.AppKey("tickets", Tickets)


def config(base_url: str) -> dict[str, Any]:
    return {
        "url": base_url,
        "email": EMAIL,
        "api_token": Secret(API_TOKEN, "env:ZENDESK_API_TOKEN"),
        "priority_map": {"warning": "low"},
        "group_id": 360001234567,
        "tags": ["production"],
        "webhook_secret": Secret(WEBHOOK_SECRET, "env:ZENDESK_WEBHOOK_SECRET"),
    }


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[TICKETS] = Tickets()
    app.router.add_get("/api/v2/tickets.json", _list)
    app.router.add_post("/api/v2/tickets.json", _create)
    app.router.add_get("/api/v2/tickets/{id:[0-9]+}.json", _show)
    app.router.add_put("/api/v2/tickets/{id:[0-9]+}.json", _update)
    return app


def _refuse(state: FakeState, status: int, error: str, description: str = "",
            details: dict[str, Any] | None = None) -> web.Response:
    state.rejected.append((status, description or error))
    body: dict[str, Any] = {"error": error}
    if description:
        body["description"] = description
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def _invalid(state: FakeState, name: str, message: str) -> web.Response:
    return _refuse(state, 422, "RecordInvalid", "Record validation errors",
                   {name: [{"description": message, "error": "InvalidValue"}]})


def _checks(request: web.Request, seen: Seen, write: bool
            ) -> tuple[int, str, dict[str, Any]]:
    """(status, error, ticket): status 0 when the request is acceptable."""
    basic = base64.b64encode(f"{EMAIL}/token:{API_TOKEN}".encode()).decode()
    if request.headers.get("Authorization") != f"Basic {basic}":
        return 401, "Couldn't authenticate you", {}
    if not write:
        return 0, "", {}
    if request.content_type != "application/json":
        return 415, "Unsupported Media Type", {}
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return 400, "Unprocessable Entity: body is not valid JSON", {}
    ticket = doc.get("ticket") if isinstance(doc, dict) else None
    if not isinstance(ticket, dict):
        return 400, "ParameterMissing: ticket", {}
    return 0, "", ticket


def _problems(ticket: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) of the first invalid field, or None."""
    if unknown := sorted(set(ticket) - FIELDS):
        return unknown[0], f"fake: unknown ticket field {unknown[0]}"
    for name, allowed in (("priority", PRIORITIES), ("status", STATUSES), ("type", TYPES)):
        if name in ticket and ticket[name] not in allowed:
            return name, f"{name.capitalize()}: is not valid"
    comment = ticket.get("comment")
    if comment is not None and (not isinstance(comment, dict) or not isinstance(
            comment.get("body"), str) or not isinstance(comment.get("public", True), bool)):
        return "comment", "Comment: must have a string body and a boolean public"
    if "external_id" in ticket and not isinstance(ticket["external_id"], str):
        return "external_id", "External id: must be a string"
    tags = ticket.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "tags", "Tags: must be a list of strings"
    return None


async def _scripted(state: FakeState) -> tuple[int, dict[str, str]] | web.Response:
    reply = await state.next_reply()
    headers = dict(reply.headers) if reply else {}
    if reply and not 200 <= reply.status < 300:
        return web.json_response({"error": reply.message}, status=reply.status,
                                 headers=headers)
    return (reply.status if reply else 0), headers


def _answer(ticket: dict[str, Any], status: int, headers: dict[str, str]) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.json_response({"ticket": ticket, "audit": {"events": []}}, status=status,
                             headers=headers)


async def _list(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, error, _ = _checks(request, seen, write=False)
    if status:
        return _refuse(state, status, error)
    found = [t for t in request.app[TICKETS].by_id.values()
             if "external_id" not in request.query
             or t.get("external_id") == request.query["external_id"]]
    return await chunked_json(request, {"tickets": found, "next_page": None,
                                        "previous_page": None, "count": len(found)})


async def _show(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, error, _ = _checks(request, seen, write=False)
    if status:
        return _refuse(state, status, error)
    record = request.app[TICKETS].by_id.get(int(request.match_info["id"]))
    if record is None:
        return _refuse(state, 404, "RecordNotFound", "Not found")
    return await chunked_json(request, {"ticket": record})


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, error, ticket = _checks(request, seen, write=True)
    if status:
        return _refuse(state, status, error)
    if problem := _problems(ticket):
        return _invalid(state, *problem)
    comment = ticket.pop("comment", None)
    if not comment or not comment.get("body", "").strip():
        return _invalid(state, "description", "Description: cannot be blank")
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    tickets = request.app[TICKETS]
    source = tickets.by_id.get(ticket.pop("via_followup_source_id", None) or 0)
    if source is not None and source["status"] != "closed":
        source = None  # Zendesk: the parameter has no effect unless the source is closed
    record = tickets.add(**ticket, followup_source_id=source["id"] if source else None)
    tickets.comments[record["id"]].append(comment)
    state.accept("trigger", (str(ticket.get("external_id") or ""),), seen)
    return _answer(record, scripted[0] or 201, scripted[1])


async def _update(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, error, ticket = _checks(request, seen, write=True)
    if status:
        return _refuse(state, status, error)
    tickets = request.app[TICKETS]
    ticket_id = int(request.match_info["id"])
    record = tickets.by_id.get(ticket_id)
    if record is None:
        return _refuse(state, 404, "RecordNotFound", "Not found")
    if problem := _problems(ticket):
        return _invalid(state, *problem)
    if record["status"] == "closed":
        return _invalid(state, "status", "Status: closed prevents ticket update")
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    if comment := ticket.pop("comment", None):
        tickets.comments[ticket_id].append(comment)
    record.update(ticket)
    if "external_id" in ticket:
        state.accept("trigger", (ticket["external_id"],), seen)
    else:
        action = {"solved": "resolve", "open": "acknowledge"}.get(ticket.get("status", ""),
                                                                 "note")
        state.accept(action, (str(ticket_id),), seen)
    return _answer(record, scripted[0] or 200, scripted[1])


# Zendesk signs a timestamp; Baton refuses one further than this from now.
STALE = 300.0


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """What the trigger in examples/zendesk-webhook.md posts when an agent changes Baton's
    ticket, signed as Zendesk signs webhooks (base64 HMAC-SHA256 of timestamp + body)."""
    event = {"acknowledge": "acknowledged", "resolve": "solved"}.get(action)
    if event is None or external_id is None:
        return None
    body = json.dumps({
        "event": event, "ticket_id": external_id, "external_id": f"baton-{incident_id}",
        "updated_at": event_id, "actor_email": "agent@acme.example",
        "actor_name": "Agent Smith"}).encode()
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = b"not-the-secret" if forged else WEBHOOK_SECRET.encode()
    signature = base64.b64encode(hmac.new(key, stamp.encode() + body,
                                          hashlib.sha256).digest()).decode()
    return body, {"Content-Type": "application/json",
                  "X-Zendesk-Webhook-Signature": signature,
                  "X-Zendesk-Webhook-Signature-Timestamp": stamp}
