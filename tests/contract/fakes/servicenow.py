"""A strict ServiceNow Table API for the ``incident`` table, behind the ``servicenow`` connector.

Written from the Table API reference: Basic or Bearer credentials or 401 ("User Not
Authenticated"); ``Accept`` must allow JSON (406 otherwise); a write needs a JSON body
(415 for another content type, 400 for malformed JSON); a PATCH to an unknown sys_id is 404
("No Record found"). Errors have ServiceNow's shape ``{"error": {"message", "detail"},
"status": "failure"}`` and results ``{"result": ...}``. The out-of-box data policy makes
``close_code`` and ``close_notes`` mandatory when the state becomes Resolved or Closed
(403, "Data Policy Exception"). Deliberately stricter than ServiceNow, which ignores
unknown columns silently (and so would lose data without a word): an unknown column is a
400 here. ``GET`` understands ``sysparm_query`` conditions ``field=value`` joined by ``^``.

Scripted replies apply to writes (POST, PATCH), the calls that perform a Baton action;
searches answer normally, so the suite's status table speaks about the action itself.
Accepted actions: POST -> ``trigger`` with keys ``(correlation_id,)``; a PATCH setting
state 6 or 7 -> ``resolve``; any other PATCH -> ``note``; keys of a PATCH ``(sys_id,)``.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Seen, chunked_json

USERNAME = "baton.integration"
PASSWORD = "s3cr3t-SN-password-do-not-leak"
TOKEN = "s3cr3t-SN-oauth-token-do-not-leak"
CALLBACK_PASSWORD = "s3cr3t-SN-callback-password-do-not-leak"
CALLBACK_TOKEN = "s3cr3t-SN-callback-token-do-not-leak"
TABLE = "/api/now/table/incident"
COLUMNS = frozenset({
    "short_description", "description", "urgency", "impact", "correlation_id",
    "correlation_display", "caller_id", "assignment_group", "category", "work_notes",
    "comments", "state", "close_code", "close_notes"})
STATES = frozenset({"1", "2", "3", "6", "7", "8"})
CLOSE_CODES = frozenset({
    "Duplicate", "Known error", "No resolution provided", "Resolved by caller",
    "Resolved by change", "Resolved by problem", "Resolved by request", "Solution provided",
    "Workaround provided", "User error"})


@dataclass
class Incidents:
    """The fake's incident table: sys_id -> record (all values strings)."""

    by_sys_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    work_notes: dict[str, list[str]] = field(default_factory=dict)

    def by_correlation(self, value: str) -> list[dict[str, Any]]:
        return [r for r in self.by_sys_id.values() if r.get("correlation_id") == value]


INCIDENTS = web.AppKey("incidents", Incidents)


def config(base_url: str) -> dict[str, Any]:
    return {
        "instance_url": base_url,
        "username": USERNAME,
        "password": Secret(PASSWORD, "env:SERVICENOW_PASSWORD"),
        "assignment_group": "287ebd7da9fe198100f92cc8d1d2154e",
        "callback_username": "servicenow",
        "callback_password": Secret(CALLBACK_PASSWORD, "env:SN_CALLBACK_PASSWORD"),
        "callback_token": Secret(CALLBACK_TOKEN, "env:SN_CALLBACK_TOKEN"),
    }


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[INCIDENTS] = Incidents()
    app.router.add_get(TABLE, _search)
    app.router.add_post(TABLE, _create)
    app.router.add_get(TABLE + "/{sys_id}", _read)
    app.router.add_patch(TABLE + "/{sys_id}", _update)
    return app


def _error(status: int, message: str, detail: str = "",
           headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return web.json_response(body, status=status, headers=headers)


def _refuse(state: FakeState, status: int, message: str, detail: str = "") -> web.Response:
    state.rejected.append((status, message))
    return _error(status, message, detail)


def _authorized(request: web.Request) -> bool:
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    return request.headers.get("Authorization") in (f"Basic {basic}", f"Bearer {TOKEN}")


def _checks(request: web.Request, seen: Seen, write: bool) -> tuple[int, str, dict[str, Any]]:
    """(status, message, body): status 0 when the request is acceptable."""
    if not _authorized(request):
        return 401, "User Not Authenticated", {}
    accept = request.headers.get("Accept", "*/*")
    if not any(t in accept for t in ("application/json", "*/*", "application/*")):
        return 406, "Invalid Accept header", {}
    if not write:
        return 0, "", {}
    if request.content_type != "application/json":
        return 415, "Unsupported Media Type", {}
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return 400, "Exception while reading request", {}
    if not isinstance(doc, dict):
        return 400, "Exception while reading request", {}
    unknown = sorted(set(doc) - COLUMNS)
    if unknown or not all(isinstance(v, str) for v in doc.values()):
        return 400, f"fake: unknown columns or non-string values {unknown}", {}
    levels = {"1", "2", "3"}
    if doc.get("state", "1") not in STATES or doc.get("urgency", "1") not in levels \
            or doc.get("impact", "1") not in levels:
        return 400, "fake: invalid choice value", {}
    if doc.get("state") in ("6", "7"):
        if not doc.get("close_notes") or doc.get("close_code") not in CLOSE_CODES:
            return 403, "Operation Failed", {}
    return 0, "", doc


def _result(record: dict[str, Any], fields: str | None, status: int,
            headers: dict[str, str]) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    wanted = fields.split(",") if fields else list(record)
    return web.json_response({"result": {k: record.get(k, "") for k in wanted}},
                             status=status, headers=headers)


async def _scripted(state: FakeState) -> tuple[int, dict[str, str]] | web.Response:
    reply = await state.next_reply()
    headers = dict(reply.headers) if reply else {}
    if reply and not 200 <= reply.status < 300:
        return _error(reply.status, reply.message, "", headers)
    return (reply.status if reply else 0), headers


async def _search(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, _ = _checks(request, seen, write=False)
    if status:
        return _refuse(state, status, message)
    rows = list(request.app[INCIDENTS].by_sys_id.values())
    for condition in filter(None, request.query.get("sysparm_query", "").split("^")):
        name, _, value = condition.partition("=")
        rows = [r for r in rows if r.get(name) == value]
    rows = rows[: int(request.query.get("sysparm_limit", "10000"))]
    fields = request.query.get("sysparm_fields")
    wanted = fields.split(",") if fields else None
    return await chunked_json(
        request, {"result": [{k: r.get(k, "") for k in wanted or r} for r in rows]},
        headers={"X-Total-Count": str(len(rows))})


async def _read(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, _ = _checks(request, seen, write=False)
    if status:
        return _refuse(state, status, message)
    record = request.app[INCIDENTS].by_sys_id.get(request.match_info["sys_id"])
    if record is None:
        return _refuse(state, 404, "No Record found",
                       "Record doesn't exist or ACL restricts the record retrieval")
    return _result(record, request.query.get("sysparm_fields"), 200, {})


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, doc = _checks(request, seen, write=True)
    if status:
        return _refuse(state, status, message)
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    incidents = request.app[INCIDENTS]
    sys_id = uuid.uuid4().hex
    notes = doc.pop("work_notes", None)
    record = {"state": "1", "urgency": "3", "impact": "3", **doc, "sys_id": sys_id,
              "number": f"INC{10001 + len(incidents.by_sys_id):07d}",
              "sys_updated_on": "2024-11-20 08:15:31", "sys_updated_by": USERNAME}
    incidents.by_sys_id[sys_id] = record
    incidents.work_notes[sys_id] = [notes] if notes else []
    state.accept("trigger", (doc.get("correlation_id", ""),), seen)
    return _result(record, request.query.get("sysparm_fields"), scripted[0] or 201,
                   scripted[1])


async def _update(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    status, message, doc = _checks(request, seen, write=True)
    if status:
        return _refuse(state, status, message)
    incidents = request.app[INCIDENTS]
    sys_id = request.match_info["sys_id"]
    record = incidents.by_sys_id.get(sys_id)
    if record is None:
        return _refuse(state, 404, "No Record found",
                       "Record doesn't exist or ACL restricts the record retrieval")
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    if notes := doc.pop("work_notes", None):
        incidents.work_notes[sys_id].append(notes)
    record.update(doc)
    state.accept("resolve" if doc.get("state") in ("6", "7") else "note", (sys_id,), seen)
    return _result(record, request.query.get("sysparm_fields"), scripted[0] or 200,
                   scripted[1])


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """What the business rule in examples/servicenow-business-rule.js posts when someone
    changes Baton's incident record (ServiceNow signs nothing: the credential is the
    proof)."""
    state = {"acknowledge": "2", "resolve": "6"}.get(action)
    if state is None:
        return None
    body = json.dumps({
        "sys_id": external_id or "0" * 32, "number": "INC0010001", "state": state,
        "previous_state": "1", "correlation_id": f"baton-{incident_id}",
        "sys_updated_on": event_id, "sys_updated_by": "beth.anglin"}).encode()
    token = "not-the-token" if forged else CALLBACK_TOKEN
    return body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
