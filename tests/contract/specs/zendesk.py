"""Zendesk Tickets API, checked against the Tickets OpenAPI document derived from
Zendesk's published one (``zendesk/tickets-openapi-original.yml``).

That file's ``components`` are incomplete: the operations' request bodies
(``TicketCreateRequest``, ``TicketUpdateRequest``) and the ``TicketId`` parameter point at
schemas it does not hold, so ``openapi-core`` cannot load it. What it does describe is
checked from it directly: the path (Zendesk serves each path with or without ``.json``;
Baton uses ``.json`` as Zendesk's own examples do) must be one of its templates with the
method, and every query parameter must be one the operation declares (``external_id``
on ``ListTickets``).

What it leaves out, from Zendesk's Tickets API reference (developer.zendesk.com/
api-reference/ticketing/tickets/tickets/ and ticket_comments/): a ticket id in the path
is an integer; a write wraps the ticket in ``{"ticket": {...}}``; a new ticket needs a
comment; the ticket properties Baton sets have the reference's types and values
(priority urgent/high/normal/low, status new/open/pending/hold/solved/closed, type
problem/incident/question/task, tags strings, ids integers), a comment is ``body`` (plain
text) or ``html_body`` with a boolean ``public``. The reference documents no length for
subject or comment; a ticket holds at most 5000 comments, which no single request nears.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fakes import Seen
from jsonschema import Draft202012Validator

from . import VENDOR_SPECS
from ._openapi import header, json_body, schema_problems

_ID = {"type": "integer"}
TICKET = {
    "type": "object",
    "properties": {
        "subject": {"type": "string"},
        "comment": {
            "type": "object",
            "properties": {"body": {"type": "string", "minLength": 1},
                           "html_body": {"type": "string", "minLength": 1},
                           "public": {"type": "boolean"}},
            "anyOf": [{"required": ["body"]}, {"required": ["html_body"]}],
        },
        "priority": {"enum": ["urgent", "high", "normal", "low"]},
        "status": {"enum": ["new", "open", "pending", "hold", "solved", "closed"]},
        "type": {"enum": ["problem", "incident", "question", "task"]},
        "external_id": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "group_id": _ID, "assignee_id": _ID, "via_followup_source_id": _ID,
    },
}
CREATE = {"type": "object", "required": ["ticket"], "properties": {
    "ticket": {**TICKET, "required": ["comment"]}}}
UPDATE = {"type": "object", "required": ["ticket"], "properties": {"ticket": TICKET}}
BODIES = {"CreateTicket": CREATE, "UpdateTicket": UPDATE}


@cache
def _paths() -> dict[str, Any]:
    path = Path(VENDOR_SPECS / "zendesk" / "tickets-openapi-original.yml")
    paths: dict[str, Any] = yaml.safe_load(path.read_text())["paths"]
    return paths


def _operation(method: str, path: str) -> tuple[dict[str, Any] | None, dict[str, str], str]:
    path = path.removesuffix(".json")
    for template, item in _paths().items():
        names = re.findall(r"\{([^/]+?)\}", template)
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$"
        if match := re.match(pattern, path):
            operation = item.get(method.lower())
            if operation is None:
                return None, {}, f"{template} has no {method} operation"
            return operation, dict(zip(names, match.groups(), strict=True)), ""
    return None, {}, f"no path of the description matches {path}"


def check(seen: Seen) -> list[str]:
    operation, values, missing = _operation(seen.method, seen.path)
    if operation is None:
        return [missing]
    problems = [f"path parameter {k}={v!r} is not an integer id" for k, v in values.items()
                if k.endswith("_id") and not v.isdigit()]
    declared = {p.get("name") for p in operation.get("parameters") or [] if "name" in p}
    problems += [f"query parameter {name!r} is not declared for {operation['operationId']}"
                 for name in seen.query if name not in declared]
    if not (header(seen, "Authorization") or "").startswith("Basic "):
        problems.append("Authorization is not HTTP basic (<email>/token:<api_token>)")
    doc, bad = json_body(seen)
    problems += bad
    schema = BODIES.get(operation["operationId"])
    if schema is None:
        return problems + (["a body where the operation takes none"] if seen.body else [])
    if not (header(seen, "Content-Type") or "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    return problems + schema_problems(Draft202012Validator(schema), doc, "body")
