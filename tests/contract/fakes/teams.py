"""A strict Teams Workflows webhook trigger, the vendor behind the ``teams`` connector.

Written from the Workflows documentation ("When a Teams webhook request is received"):
``POST .../workflows/<id>/triggers/manual/paths/invoke?api-version=1&sp=...&sv=1.0&sig=``;
without ``sig`` 401 ``DirectApiAuthorizationRequired``, with a wrong one 401
``DirectApiInvalidAuthorizationSignature``; an unknown workflow 404; the body must be a JSON
message activity (``type: message``, ``attachments`` with ``contentType
application/vnd.microsoft.card.adaptive`` and the card in ``content``) or 400
``TriggerInputSchemaMismatch``; errors are ``{"error": {"code", "message"}}``; success is
202 with an empty body.

Stricter than the service on one point, deliberately: a card Teams cannot render (no
``type: AdaptiveCard``, a version above 1.5, a body element without a type, a fact or an
OpenUrl action missing its fields) is accepted by the real trigger and then fails in the
flow run; here it is refused with 400 at once, so a test sees it.

Accepted requests are recorded with the Baton action and the key from the card's footer
(``Baton · <action> · <idempotency key>``): keys ``(idempotency key,)``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState

WORKFLOW = "3f2b7c0e5d9a4e1fb6c8a2d4e6f80123"
PATH = f"/powerautomate/automations/direct/workflows/{WORKFLOW}/triggers/manual/paths/invoke"
SIG = "s3cr3t-TEAMS-sig-do-not-leak_Q2xvdWQ"
QUERY = f"api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"})
ACTIONS = frozenset({"trigger", "update", "acknowledge", "resolve", "note"})
FOOTER = re.compile(r"^Baton · (?P<action>[a-z]+) · (?P<key>\S+)$")

# The signature is part of a Secret URL, but on its own it is a credential as well.
SENSITIVE = (SIG,)


def config(base_url: str) -> dict[str, Any]:
    return {"webhook_url": Secret(f"{base_url}{PATH}?{QUERY}", "env:TEAMS_WEBHOOK_URL"),
            "incident_url": "https://oncall.example.com/incidents/{id}"}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_post("/powerautomate/automations/direct/workflows/{workflow}/triggers/"
                        "manual/paths/invoke", _invoke)
    return app


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


def _refuse(state: FakeState, status: int, code: str, message: str) -> web.Response:
    state.rejected.append((status, f"{code}: {message}"))
    return _error(status, code, message)


def element_problem(element: Any, where: str) -> str | None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return f"{where} has no type"
    kind = element["type"]
    if kind == "TextBlock" and not isinstance(element.get("text"), str):
        return f"{where}: a TextBlock needs text"
    if kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not all(
                isinstance(f, dict) and isinstance(f.get("title"), str)
                and isinstance(f.get("value"), str) for f in facts):
            return f"{where}: facts need a string title and value"
    if kind == "Action.OpenUrl" and not re.match(r"^https?://\S+$", str(element.get("url"))):
        return f"{where}: Action.OpenUrl needs an absolute url"
    return None


def card_problem(card: Any) -> str | None:
    """Why Teams could not render this card, or None."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return "content is not an AdaptiveCard"
    if card.get("version") not in VERSIONS:
        return f"card version {card.get('version')!r} is not one Teams renders (1.0-1.5)"
    body = card.get("body")
    if not isinstance(body, list) or not body:
        return "card body must be a non-empty array"
    actions = card.get("actions", [])
    if not isinstance(actions, list):
        return "card actions must be an array"
    for i, element in enumerate(body):
        if problem := element_problem(element, f"body[{i}]"):
            return problem
    for i, action in enumerate(actions):
        if problem := element_problem(action, f"actions[{i}]"):
            return problem
    return None


def message_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return "body must be a message activity (type: message)"
    attachments = doc.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty array"
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_TYPE:
            return f"each attachment needs contentType {CARD_TYPE}"
        if problem := card_problem(attachment.get("content")):
            return problem
    return None


def footer(card: dict[str, Any]) -> tuple[str, str] | None:
    """(action, idempotency key) from the connector's footer TextBlock."""
    for element in card["body"]:
        if element.get("id") == "baton-footer":
            match = FOOTER.match(element.get("text", ""))
            if match and match["action"] in ACTIONS:
                return match["action"], match["key"]
    return None


async def _invoke(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    if "sig" not in request.query:
        return _refuse(state, 401, "DirectApiAuthorizationRequired",
                       "The request must be authenticated only by Shared Access scheme.")
    if request.query["sig"] != SIG or request.query.get("sp") != "/triggers/manual/run":
        return _refuse(state, 401, "DirectApiInvalidAuthorizationSignature",
                       "The provided authorization signature is invalid.")
    if request.match_info["workflow"] != WORKFLOW:
        return _refuse(state, 404, "WorkflowNotFound", "The workflow could not be found.")
    try:
        doc = json.loads(seen.body) if request.content_type == "application/json" else None
    except ValueError:
        doc = None
    if (problem := message_problem(doc)) or not isinstance(doc, dict):
        return _refuse(state, 400, "TriggerInputSchemaMismatch", str(problem))
    marks = footer(doc["attachments"][0]["content"])
    if marks is None:
        return _refuse(state, 400, "TriggerInputSchemaMismatch",
                       "no Baton footer (test aid: the fake needs it to name the action)")

    reply = await state.next_reply()
    status = reply.status if reply else 202
    headers = dict(reply.headers) if reply else {}
    if not 200 <= status < 300:
        return _error(status, "ScriptedFailure",
                      reply.message if reply else "scripted failure", headers)
    state.accept(marks[0], (marks[1],), seen)
    return web.Response(status=status, headers=headers)
